//! Verilates the modules of fpga/rtl and compiles them with a small C++ shim, when Verilator is
//! installed. Without Verilator (or with EMBER_FPGA_NO_SIM set) the crate builds without the
//! simulator: a cargo warning says so, and the co-simulation tests skip with a message.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

include!("src/ports.rs");

fn main() {
    println!("cargo::rustc-check-cfg=cfg(ember_fpga_sim)");
    println!("cargo::rerun-if-changed=rtl");
    println!("cargo::rerun-if-changed=csrc");
    println!("cargo::rerun-if-changed=src/ports.rs");
    println!("cargo::rerun-if-env-changed=EMBER_FPGA_NO_SIM");
    println!("cargo::rerun-if-env-changed=VERILATOR");
    println!("cargo::rerun-if-env-changed=PATH");

    if env::var_os("EMBER_FPGA_NO_SIM").is_some() {
        println!("cargo::warning=ember-fpga: EMBER_FPGA_NO_SIM is set; building without the Verilator simulator");
        return;
    }
    let verilator = env::var("VERILATOR").unwrap_or_else(|_| "verilator".to_string());
    let Some(root) = verilator_root(&verilator) else {
        println!(
            "cargo::warning=ember-fpga: `{verilator}` not found; building without the Verilator simulator \
             (co-simulation tests will skip; `apt-get install verilator` or `make test` installs it)"
        );
        return;
    };

    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let rtl_dir = manifest_dir.join("rtl");

    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++17")
        .warnings(false)
        .opt_level(2)
        .debug(false)
        .include(root.join("include"))
        .include(root.join("include/vltstd"))
        .include(manifest_dir.join("csrc"))
        .flag_if_supported("-faligned-new")
        .flag_if_supported("-fno-var-tracking")
        .define("VM_COVERAGE", "0")
        .define("VM_SC", "0")
        .define("VM_TRACE", "0");
    for spec in MODULE_SPECS {
        let model_dir = out_dir.join("verilated").join(spec.name);
        verilate(&verilator, &rtl_dir, &model_dir, spec);
        build.include(&model_dir);
        for source in cpp_files(&model_dir) {
            build.file(source);
        }
    }
    build.file(root.join("include/verilated.cpp"));
    build.file(root.join("include/verilated_threads.cpp"));

    let shim = out_dir.join("ember_fpga_shim.cpp");
    fs::write(&shim, shim_source()).expect("write the shim");
    build.file(&shim);
    build.compile("ember_fpga_sim");

    fs::write(out_dir.join("ember_fpga_ffi.rs"), ffi_source()).expect("write the FFI declarations");
    println!("cargo::rustc-cfg=ember_fpga_sim");
}

/// Verilator's include root, or None when Verilator cannot be run.
fn verilator_root(verilator: &str) -> Option<PathBuf> {
    let output = Command::new(verilator)
        .arg("--getenv")
        .arg("VERILATOR_ROOT")
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let root = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    root.join("include/verilated.cpp").exists().then_some(root)
}

fn verilate(verilator: &str, rtl_dir: &Path, model_dir: &Path, spec: &ModuleSpec) {
    if model_dir.exists() {
        fs::remove_dir_all(model_dir).expect("clear the old Verilator output");
    }
    fs::create_dir_all(model_dir).expect("make the Verilator output folder");
    let mut command = Command::new(verilator);
    command
        .arg("--cc")
        .arg("-O3")
        .arg("--x-assign")
        .arg("fast")
        .arg("--x-initial")
        .arg("fast")
        .arg("--noassert")
        .arg("-Wno-fatal")
        .arg("--prefix")
        .arg(format!("V{}", spec.name))
        .arg("--top-module")
        .arg(spec.name)
        .arg("-Mdir")
        .arg(model_dir)
        .arg("-y")
        .arg(rtl_dir);
    for (name, value) in spec.parameters {
        command.arg(format!("-G{name}={value}"));
    }
    command.arg(rtl_dir.join(format!("{}.v", spec.name)));
    let output = command.output().expect("run verilator");
    if !output.status.success() {
        panic!(
            "verilator failed on {}:\n{}{}",
            spec.name,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn cpp_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read the Verilator output")
        .map(|entry| entry.expect("read a directory entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "cpp"))
        .collect();
    files.sort();
    files
}

fn words(width: u32) -> usize {
    width.div_ceil(32) as usize
}

/// For each module: new, free and step, where step sets the inputs, evaluates with the clock
/// low, reads the outputs (the values the handshakes of this cycle see), then raises the clock.
fn shim_source() -> String {
    let mut text = String::from(
        "// Generated by fpga/build.rs from fpga/src/ports.rs.\n#include \"shim_common.h\"\n",
    );
    for spec in MODULE_SPECS {
        writeln!(text, "#include \"V{}.h\"", spec.name).unwrap();
    }
    text.push_str("using ember_shim::get_port;\nusing ember_shim::set_port;\n");
    for spec in MODULE_SPECS {
        let name = spec.name;
        writeln!(
            text,
            r#"
namespace {{
struct Sim_{name} {{
    VerilatedContext context;
    V{name} model{{&context, "{name}"}};
}};
}}
extern "C" void* ember_fpga_{name}_new() {{ return new Sim_{name}(); }}
extern "C" void ember_fpga_{name}_free(void* sim) {{ delete static_cast<Sim_{name}*>(sim); }}
extern "C" void ember_fpga_{name}_step(void* sim, const uint32_t* inputs, uint32_t* outputs, int reset) {{
    V{name}& model = static_cast<Sim_{name}*>(sim)->model;
    model.rst = reset ? 1 : 0;
    model.clk = 0;"#
        )
        .unwrap();
        let mut offset = 0;
        for port in spec.inputs {
            writeln!(
                text,
                "    set_port(model.{}, inputs + {offset});",
                port.name
            )
            .unwrap();
            offset += words(port.width);
        }
        text.push_str("    model.eval();\n");
        let mut offset = 0;
        for port in spec.outputs {
            writeln!(
                text,
                "    get_port(model.{}, outputs + {offset});",
                port.name
            )
            .unwrap();
            offset += words(port.width);
        }
        text.push_str("    model.clk = 1;\n    model.eval();\n}\n");
    }
    text
}

fn ffi_source() -> String {
    let mut text = String::from("// Generated by fpga/build.rs.\nunsafe extern \"C\" {\n");
    for spec in MODULE_SPECS {
        let name = spec.name;
        writeln!(
            text,
            "    fn ember_fpga_{name}_new() -> *mut core::ffi::c_void;\n    \
             fn ember_fpga_{name}_free(sim: *mut core::ffi::c_void);\n    \
             fn ember_fpga_{name}_step(sim: *mut core::ffi::c_void, inputs: *const u32, outputs: *mut u32, reset: i32);"
        )
        .unwrap();
    }
    text.push_str("}\n\n/// The shim's entry points for the module called `name`.\npub(crate) fn model_functions(name: &str) -> Option<ModelFunctions> {\n    match name {\n");
    for spec in MODULE_SPECS {
        let name = spec.name;
        writeln!(
            text,
            "        \"{name}\" => Some(ModelFunctions {{ new: ember_fpga_{name}_new, free: ember_fpga_{name}_free, step: ember_fpga_{name}_step }}),"
        )
        .unwrap();
    }
    text.push_str("        _ => None,\n    }\n}\n");
    text
}
