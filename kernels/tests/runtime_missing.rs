//! A missing or broken ONNX Runtime library is an error that names the fix, never a panic. Its own test binary:
//! a process loads one library, so no other test here may load one first.

mod common;

use common::*;
use ember_kernels::{ErrorKind, OrtRuntime};

#[test]
fn missing_then_broken_then_real_library() {
    let missing =
        OrtRuntime::load(Some("/nonexistent/libonnxruntime.so".as_ref())).expect_err("missing");
    assert_eq!(missing.kind(), ErrorKind::RuntimeMissing, "{missing}");
    assert!(
        missing
            .to_string()
            .contains("/nonexistent/libonnxruntime.so"),
        "{missing}"
    );
    assert!(missing.to_string().contains("make setup"), "{missing}");

    let not_a_library =
        std::env::temp_dir().join(format!("ember-not-a-library-{}.so", std::process::id()));
    std::fs::write(&not_a_library, b"not an ELF file").unwrap();
    let broken = OrtRuntime::load(Some(&not_a_library)).expect_err("not a library");
    std::fs::remove_file(&not_a_library).unwrap();
    assert_eq!(broken.kind(), ErrorKind::RuntimeLoad, "{broken}");
    assert!(broken.to_string().contains("make setup"), "{broken}");

    // A library that loads but is not ONNX Runtime (libc has no OrtGetApiBase).
    let libc = [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/libc.so.6",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists());
    if let Some(libc) = libc {
        let wrong = OrtRuntime::load(Some(libc.as_ref())).expect_err("libc is not ONNX Runtime");
        assert_eq!(wrong.kind(), ErrorKind::RuntimeLoad, "{wrong}");
        assert!(wrong.to_string().contains("OrtGetApiBase"), "{wrong}");
    }

    // Failed attempts leave nothing behind: the real library still loads, and a second, different one is refused.
    let runtime =
        OrtRuntime::load(Some(&cpu_library())).expect("the real library loads after the failures");
    assert!(
        runtime.build_info().contains("ORT Build Info"),
        "{}",
        runtime.build_info()
    );
    assert!(
        runtime.version().is_some_and(|v| v.starts_with("1.")),
        "{:?}",
        runtime.library_path()
    );
    let again =
        OrtRuntime::load(Some(&cpu_library())).expect("loading the same library again is fine");
    assert_eq!(again.library_path(), runtime.library_path());
}

#[test]
fn unconfigured_library_names_the_fix() {
    // Only reads the environment; the variable is never set by these tests.
    if std::env::var_os("ORT_DYLIB_PATH").is_some() {
        eprintln!("skipped: ORT_DYLIB_PATH is set in this environment");
        return;
    }
    let err = OrtRuntime::load(None).expect_err("nothing configured");
    assert_eq!(err.kind(), ErrorKind::RuntimeMissing, "{err}");
    assert!(
        err.to_string().contains("--ort-lib") && err.to_string().contains("ORT_DYLIB_PATH"),
        "{err}"
    );
}
