//! Finding the CUDA libraries before cudarc touches them.
//!
//! cudarc loads libcuda, libnvrtc and libcublasLt on first use and panics when one is missing.
//! Every entry point of the backend therefore checks here first and returns a typed error, and
//! [`guard`] catches whatever panic still escapes a binding (a missing symbol in an old driver).
//!
//! cudarc opens libraries by name only. A library from an explicit path (the NVRTC that setup
//! installs from PyPI into `.deps/`) is opened here first and kept open: the dynamic loader then
//! answers cudarc's later `dlopen("libnvrtc.so.12")` with the already loaded object, because it
//! matches loaded objects by their SONAME before it searches the file system.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::error::{CudaError, CudaErrorKind};

/// The driver library's name as the NVIDIA driver installs it.
pub const DRIVER_LIBRARY: &str = "libcuda.so.1";
/// NVRTC's SONAME for CUDA 12 (the version cudarc's bindings are built for).
pub const NVRTC_LIBRARY: &str = "libnvrtc.so.12";
/// cuBLASLt's SONAME for CUDA 12.
pub const CUBLASLT_LIBRARY: &str = "libcublasLt.so.12";
/// Environment variable naming the NVRTC library file to use (for example the PyPI wheel's).
pub const NVRTC_LIBRARY_ENV: &str = "EMBER_NVRTC_LIB";
/// Environment variable naming the cuBLASLt library file to use.
pub const CUBLASLT_LIBRARY_ENV: &str = "EMBER_CUBLASLT_LIB";
/// Where `ci/setup-cuda.sh` installs the `nvidia-cuda-nvrtc-cu12` wheel, relative to the
/// repository root.
pub const NVRTC_WHEEL_LIBRARY: &str = ".deps/nvrtc/nvidia/cuda_nvrtc/lib/libnvrtc.so.12";
/// Where `ci/setup-cuda.sh` installs the `nvidia-cublas-cu12` wheel (on machines with a GPU),
/// relative to the repository root.
pub const CUBLASLT_WHEEL_LIBRARY: &str = ".deps/cublas/nvidia/cublas/lib/libcublasLt.so.12";

/// Libraries opened from explicit paths. They stay open for the life of the process so that
/// cudarc's by-name `dlopen` finds them (see the module docs).
static PRELOADED: Mutex<Vec<(PathBuf, libloading::Library)>> = Mutex::new(Vec::new());

/// Opens the library at `path` and keeps it open, so that cudarc's later load by SONAME resolves
/// to it. Opening the same path twice is a no-op.
///
/// # Errors
/// [`CudaErrorKind::LibraryMissing`] when the file does not exist or the loader rejects it.
pub fn preload_library(path: &Path) -> Result<(), CudaError> {
    let mut preloaded = PRELOADED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if preloaded.iter().any(|(loaded, _)| loaded == path) {
        return Ok(());
    }
    // SAFETY: loading a CUDA library runs its initialisers, which have no preconditions on the
    // caller; the handle is kept in PRELOADED until exit, so no symbol outlives it.
    let library = unsafe { libloading::Library::new(path) }.map_err(|error| {
        CudaError::new(
            CudaErrorKind::LibraryMissing,
            format!("cannot load {}: {error}", path.display()),
        )
    })?;
    preloaded.push((path.to_path_buf(), library));
    Ok(())
}

/// True when the dynamic loader can open `name` (a SONAME such as `libcuda.so.1`).
fn can_open(name: &str) -> bool {
    // SAFETY: as in preload_library; the handle is dropped at once and no symbol is taken.
    unsafe { libloading::Library::new(name) }.is_ok()
}

/// Checks that the CUDA driver library can be loaded.
///
/// # Errors
/// [`CudaErrorKind::NoDriver`]: "no CUDA driver: libcuda.so.1 not found".
pub fn require_driver() -> Result<(), CudaError> {
    if can_open(DRIVER_LIBRARY) {
        Ok(())
    } else {
        Err(CudaError::new(
            CudaErrorKind::NoDriver,
            format!("no CUDA driver: {DRIVER_LIBRARY} not found"),
        ))
    }
}

/// Makes NVRTC loadable: from `explicit` if given, else from `$EMBER_NVRTC_LIB`, else from the
/// system's library path.
///
/// # Errors
/// [`CudaErrorKind::LibraryMissing`] naming the places searched and the fix.
pub fn require_nvrtc(explicit: Option<&Path>) -> Result<(), CudaError> {
    require_library(
        explicit,
        NVRTC_LIBRARY_ENV,
        NVRTC_LIBRARY,
        // SAFETY: tries to load each name cudarc would, takes no symbol and drops the handles.
        || unsafe { cudarc::nvrtc::sys::is_culib_present() },
        "run ci/setup.sh, which installs the nvidia-cuda-nvrtc-cu12 wheel into .deps/nvrtc",
    )
}

/// Makes cuBLASLt loadable: from `explicit` if given, else from `$EMBER_CUBLASLT_LIB`, else from
/// the system's library path.
///
/// # Errors
/// [`CudaErrorKind::LibraryMissing`] naming the places searched and the fix.
pub fn require_cublaslt(explicit: Option<&Path>) -> Result<(), CudaError> {
    require_library(
        explicit,
        CUBLASLT_LIBRARY_ENV,
        CUBLASLT_LIBRARY,
        // SAFETY: as for NVRTC above.
        || unsafe { cudarc::cublaslt::sys::is_culib_present() },
        "run ci/setup.sh on the GPU machine (it installs the nvidia-cublas-cu12 wheel into \
         .deps/cublas), or install the CUDA 12 toolkit's libcublas, or point EMBER_CUBLASLT_LIB at \
         a libcublasLt.so.12",
    )
}

fn require_library(
    explicit: Option<&Path>,
    env_name: &str,
    soname: &str,
    present_under_another_name: impl FnOnce() -> bool,
    fix: &str,
) -> Result<(), CudaError> {
    let from_env = std::env::var_os(env_name).map(PathBuf::from);
    if let Some(path) = explicit.map(Path::to_path_buf).or(from_env) {
        return preload_library(&path);
    }
    if can_open(soname) || present_under_another_name() {
        return Ok(());
    }
    Err(CudaError::new(
        CudaErrorKind::LibraryMissing,
        format!("{soname} not found on the library path and ${env_name} is not set: {fix}"),
    ))
}

/// Runs `body`, turning a panic inside a CUDA binding into [`CudaErrorKind::Panicked`].
///
/// # Errors
/// Whatever `body` returns, or [`CudaErrorKind::Panicked`] with the panic's message.
pub fn guard<T>(body: impl FnOnce() -> Result<T, CudaError>) -> Result<T, CudaError> {
    match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|text| (*text).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic payload".to_string());
            Err(CudaError::new(
                CudaErrorKind::Panicked,
                format!("a CUDA binding panicked: {message}"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_library_file_is_an_error() {
        let error = preload_library(Path::new("/nonexistent/libnvrtc.so.12")).unwrap_err();
        assert_eq!(error.kind(), CudaErrorKind::LibraryMissing);
        assert!(error.message().contains("/nonexistent/libnvrtc.so.12"));
    }

    #[test]
    fn guard_turns_a_panic_into_an_error() {
        let result: Result<(), CudaError> = guard(|| panic!("Unable to dynamically load"));
        let error = result.unwrap_err();
        assert_eq!(error.kind(), CudaErrorKind::Panicked);
        assert!(error.message().contains("Unable to dynamically load"));
    }

    #[test]
    fn guard_passes_results_through() {
        assert_eq!(guard(|| Ok(7)), Ok(7));
    }

    #[test]
    fn missing_cublaslt_names_the_fix() {
        if std::env::var_os(CUBLASLT_LIBRARY_ENV).is_some() {
            eprintln!("skipped: {CUBLASLT_LIBRARY_ENV} is set");
            return;
        }
        match require_cublaslt(None) {
            Ok(()) => eprintln!("skipped: cuBLASLt is installed here"),
            Err(error) => {
                assert_eq!(error.kind(), CudaErrorKind::LibraryMissing);
                assert!(
                    error.message().contains("libcublasLt.so.12 not found"),
                    "{error}"
                );
                assert!(error.message().contains("EMBER_CUBLASLT_LIB"), "{error}");
            }
        }
    }

    #[test]
    fn driver_check_matches_the_loader() {
        match require_driver() {
            Ok(()) => assert!(can_open(DRIVER_LIBRARY)),
            Err(error) => {
                assert_eq!(error.kind(), CudaErrorKind::NoDriver);
                assert_eq!(error.message(), "no CUDA driver: libcuda.so.1 not found");
            }
        }
    }
}
