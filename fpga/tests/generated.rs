//! The generated Verilog in fpga/rtl is what the generator makes from the Rust reference now.

#[test]
fn generated_rtl_is_up_to_date() {
    let fpga_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in ember_fpga::generate::generated_files() {
        let path = fpga_dir.join(&file.path);
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|err| {
            panic!(
                "{}: {err}; run `cargo run -p ember-fpga --bin ember-fpga-gen`",
                path.display()
            )
        });
        assert!(
            committed == file.contents,
            "{} is out of date; run `EMBER_FPGA_NO_SIM=1 cargo run -p ember-fpga --bin ember-fpga-gen`",
            path.display()
        );
    }
}
