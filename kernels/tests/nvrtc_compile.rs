//! Compiles every `kernels/cuda/*.cu` with NVRTC, with no GPU needed: PTX for a virtual
//! architecture and CUBIN (which runs ptxas inside NVRTC) for the data-centre GPUs Ember targets.
//!
//! NVRTC comes from `$EMBER_NVRTC_LIB`, else from the `nvidia-cuda-nvrtc-cu12` wheel that
//! `ci/setup-cuda.sh` installs into `.deps/nvrtc`. When neither exists the test skips with a
//! message, unless `EMBER_REQUIRE_NVRTC=1` (set by `ci/test-cuda.sh`), where it fails.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ember_kernels::cuda::compile::{self, CompileTarget, KERNEL_SOURCES};
use ember_kernels::cuda::library::{self, NVRTC_LIBRARY_ENV, NVRTC_WHEEL_LIBRARY};
use ember_kernels::cuda::CudaErrorKind;

/// Virtual architecture for the PTX check: Ampere, the oldest GPU generation Ember targets.
const PTX_ARCHITECTURE: &str = "compute_80";
/// Real architectures for the CUBIN check: A100 (sm_80) and H100/H200 (sm_90).
const CUBIN_ARCHITECTURES: [&str; 2] = ["sm_80", "sm_90"];

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("kernels/ has a parent")
        .to_path_buf()
}

/// Loads NVRTC; None (after printing why) when it is absent and not required.
fn load_nvrtc() -> Option<()> {
    let path = std::env::var_os(NVRTC_LIBRARY_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| repository_root().join(NVRTC_WHEEL_LIBRARY));
    let required = std::env::var("EMBER_REQUIRE_NVRTC").is_ok_and(|value| value == "1");
    if !path.exists() {
        assert!(
            !required,
            "EMBER_REQUIRE_NVRTC=1 but {} does not exist: run ci/setup.sh",
            path.display()
        );
        eprintln!(
            "skipped: no NVRTC library at {} (run ci/setup.sh, or set {NVRTC_LIBRARY_ENV})",
            path.display()
        );
        return None;
    }
    library::preload_library(&path).expect("NVRTC loads");
    library::require_nvrtc(Some(&path)).expect("NVRTC loads");
    Some(())
}

fn cuda_files() -> Vec<(String, String)> {
    let directory = repository_root().join("kernels/cuda");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&directory)
        .expect("kernels/cuda exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "cu"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("readable .cu file");
            (name, text)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn kernel_table_lists_every_cuda_file() {
    let on_disk: BTreeSet<String> = cuda_files().into_iter().map(|(name, _)| name).collect();
    let listed: BTreeSet<String> = KERNEL_SOURCES
        .iter()
        .map(|source| source.file_name.to_string())
        .collect();
    assert_eq!(
        on_disk, listed,
        "kernels/cuda/*.cu and KERNEL_SOURCES differ"
    );
    for source in KERNEL_SOURCES {
        let path = repository_root()
            .join("kernels/cuda")
            .join(source.file_name);
        let text = std::fs::read_to_string(path).unwrap();
        assert_eq!(text, source.text, "{} is built in stale", source.file_name);
    }
}

#[test]
fn every_cuda_file_compiles_to_ptx_and_cubin() {
    if load_nvrtc().is_none() {
        return;
    }
    let (major, minor) = compile::nvrtc_version().expect("nvrtcVersion");
    eprintln!("NVRTC {major}.{minor}");
    let files = cuda_files();
    assert!(!files.is_empty(), "no .cu files found");
    for (name, text) in &files {
        let ptx = compile::compile(name, text, PTX_ARCHITECTURE, CompileTarget::Ptx)
            .unwrap_or_else(|error| panic!("{error}"));
        let ptx = String::from_utf8(ptx).expect("PTX is text");
        let source = KERNEL_SOURCES
            .iter()
            .find(|source| source.file_name == name)
            .expect("listed");
        for function in source.function_names {
            assert!(
                ptx.contains(&format!(".entry {function}(")),
                "{name}: PTX has no entry point {function}"
            );
        }
        for architecture in CUBIN_ARCHITECTURES {
            let cubin = compile::compile(name, text, architecture, CompileTarget::Cubin)
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(
                &cubin[..4],
                b"\x7fELF",
                "{name} for {architecture}: CUBIN is not ELF"
            );
        }
        eprintln!("compiled {name}: PTX for {PTX_ARCHITECTURE}, CUBIN for {CUBIN_ARCHITECTURES:?}");
    }
}

#[test]
fn a_broken_source_is_a_compile_error_with_the_log() {
    if load_nvrtc().is_none() {
        return;
    }
    let broken = "extern \"C\" __global__ void broken(float* x) { x[0] = undeclared_name; }";
    let error =
        compile::compile("broken.cu", broken, PTX_ARCHITECTURE, CompileTarget::Ptx).unwrap_err();
    assert_eq!(error.kind(), CudaErrorKind::Compile);
    assert!(
        error.message().contains("undeclared_name"),
        "log missing: {}",
        error.message()
    );
}
