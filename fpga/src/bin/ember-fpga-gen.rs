//! Rewrites the generated Verilog files of fpga/rtl from the Rust reference.
//!
//! Usage: `cargo run -p ember-fpga --bin ember-fpga-gen` (from anywhere in the workspace).

use std::path::Path;

fn main() -> std::io::Result<()> {
    let fpga_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in ember_fpga::generate::generated_files() {
        let path = fpga_dir.join(&file.path);
        std::fs::write(&path, &file.contents)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
