//! The CUDA C++ sources in `kernels/cuda/` and their compilation with NVRTC.
//!
//! The sources are built into the binary, so a deployment needs no source tree: NVRTC compiles
//! them at start-up for the device that is present (a CUBIN for its exact architecture, so the
//! driver does not have to JIT PTX that may be newer than it understands).

use std::ffi::{c_char, CStr, CString};

use cudarc::nvrtc::{result, sys};

use super::error::{CudaError, CudaErrorKind};
use super::library;

/// One `.cu` file of `kernels/cuda/` and the kernels it defines.
#[derive(Clone, Copy, Debug)]
pub struct KernelSource {
    /// The file name, used as NVRTC's program name so that its messages point at the file.
    pub file_name: &'static str,
    /// The file's text.
    pub text: &'static str,
    /// The `extern "C"` kernels the file defines.
    pub function_names: &'static [&'static str],
}

/// Embedding-bag gather and pooling.
pub const EMBEDDING_BAG: KernelSource = KernelSource {
    file_name: "embedding_bag.cu",
    text: include_str!("../../cuda/embedding_bag.cu"),
    function_names: &["embedding_bag_f32"],
};

/// DLRM's dot interaction (strict lower triangle) with the bottom output copied in front.
pub const INTERACTION: KernelSource = KernelSource {
    file_name: "interaction.cu",
    text: include_str!("../../cuda/interaction.cu"),
    function_names: &["dot_interaction_f32"],
};

/// Element-wise activations that cuBLASLt's epilogues do not cover (the final sigmoid).
pub const ACTIVATION: KernelSource = KernelSource {
    file_name: "activation.cu",
    text: include_str!("../../cuda/activation.cu"),
    function_names: &["sigmoid_f32"],
};

/// Every source in `kernels/cuda/`; the compile check test asserts that this list and the
/// directory agree.
pub const KERNEL_SOURCES: [KernelSource; 3] = [EMBEDDING_BAG, INTERACTION, ACTIVATION];

/// What NVRTC should produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompileTarget {
    /// PTX for a virtual architecture, e.g. `compute_80`.
    Ptx,
    /// Machine code for a real architecture, e.g. `sm_90`.
    Cubin,
}

/// Compiles the CUDA C++ `text` of the file `file_name` for `architecture` (`compute_XY` for
/// PTX, `sm_XY` for CUBIN) and returns the PTX text (without its trailing NUL) or the CUBIN bytes.
///
/// NVRTC must be loadable: call [`super::library::require_nvrtc`] first.
///
/// # Errors
/// [`CudaErrorKind::LibraryMissing`] when NVRTC cannot be loaded;
/// [`CudaErrorKind::Compile`] with NVRTC's log when the source does not compile;
/// [`CudaErrorKind::InvalidInput`] when `architecture` holds a NUL byte.
pub fn compile(
    file_name: &str,
    text: &str,
    architecture: &str,
    target: CompileTarget,
) -> Result<Vec<u8>, CudaError> {
    library::guard(|| {
        require_loaded_nvrtc()?;
        compile_unguarded(file_name, text, architecture, target)
    })
}

/// Fails with [`CudaErrorKind::LibraryMissing`] instead of letting cudarc panic on first use.
fn require_loaded_nvrtc() -> Result<(), CudaError> {
    // SAFETY: tries to load each name cudarc would, takes no symbol and drops the handles.
    if unsafe { sys::is_culib_present() } {
        Ok(())
    } else {
        Err(CudaError::new(
            CudaErrorKind::LibraryMissing,
            "NVRTC is not loadable: call cuda::library::require_nvrtc with its path first",
        ))
    }
}

fn compile_unguarded(
    file_name: &str,
    text: &str,
    architecture: &str,
    target: CompileTarget,
) -> Result<Vec<u8>, CudaError> {
    let c_text = CString::new(text)
        .map_err(|_| CudaError::invalid_input(format!("{file_name} contains a NUL byte")))?;
    let c_name = CString::new(file_name).map_err(|_| {
        CudaError::invalid_input(format!("{file_name} is not a valid program name"))
    })?;
    if architecture.contains('\0') {
        return Err(CudaError::invalid_input("architecture contains a NUL byte"));
    }
    // Bound the options to what the sources need: no headers (NVRTC's built-ins cover expf and
    // sqrtf), C++17, and the exact architecture.
    let options = [
        format!("--gpu-architecture={architecture}"),
        "--std=c++17".to_string(),
    ];
    let program = Program::create(&c_text, &c_name, file_name)?;
    // SAFETY: `program` was created above and is destroyed only by Program's Drop, after this.
    let compiled = unsafe { result::compile_program(program.handle, &options) };
    if let Err(error) = compiled {
        return Err(CudaError::new(
            CudaErrorKind::Compile,
            format!(
                "NVRTC could not compile {file_name} for {architecture}: {error:?}\n{}",
                program.log()
            ),
        ));
    }
    match target {
        CompileTarget::Ptx => program.ptx(),
        CompileTarget::Cubin => program.cubin(),
    }
}

/// The version of the NVRTC library that was loaded, as (major, minor).
///
/// # Errors
/// [`CudaErrorKind::LibraryMissing`] when NVRTC cannot be loaded; [`CudaErrorKind::Compile`]
/// when NVRTC reports an error.
pub fn nvrtc_version() -> Result<(i32, i32), CudaError> {
    library::guard(|| {
        require_loaded_nvrtc()?;
        let mut major = 0;
        let mut minor = 0;
        // SAFETY: both pointers are to live locals for the duration of the call.
        unsafe { sys::nvrtcVersion(&mut major, &mut minor) }
            .result()
            .map_err(|error| {
                CudaError::new(CudaErrorKind::Compile, format!("nvrtcVersion: {error:?}"))
            })?;
        Ok((major, minor))
    })
}

/// An NVRTC program, destroyed on drop. Holds the source and name strings because NVRTC may
/// keep pointers into them until the program is destroyed.
struct Program<'a> {
    handle: sys::nvrtcProgram,
    file_name: &'a str,
}

impl<'a> Program<'a> {
    fn create(text: &'a CStr, name: &'a CStr, file_name: &'a str) -> Result<Self, CudaError> {
        let handle = result::create_program(text, Some(name)).map_err(|error| {
            CudaError::new(
                CudaErrorKind::Compile,
                format!("nvrtcCreateProgram for {file_name}: {error:?}"),
            )
        })?;
        Ok(Self { handle, file_name })
    }

    fn log(&self) -> String {
        // SAFETY: the handle is live (destroyed only in Drop).
        match unsafe { result::get_program_log(self.handle) } {
            Ok(log) => c_chars_to_string(&log),
            Err(error) => format!("(no log: {error:?})"),
        }
    }

    fn ptx(&self) -> Result<Vec<u8>, CudaError> {
        // SAFETY: the handle is live and was compiled successfully.
        let ptx = unsafe { result::get_ptx(self.handle) }.map_err(|error| {
            CudaError::new(
                CudaErrorKind::Compile,
                format!("nvrtcGetPTX for {}: {error:?}", self.file_name),
            )
        })?;
        Ok(c_chars_to_string(&ptx).into_bytes())
    }

    fn cubin(&self) -> Result<Vec<u8>, CudaError> {
        let mut size = 0usize;
        // SAFETY: the handle is live and compiled; `size` is a live local.
        unsafe { sys::nvrtcGetCUBINSize(self.handle, &mut size) }
            .result()
            .map_err(|error| {
                CudaError::new(
                    CudaErrorKind::Compile,
                    format!("nvrtcGetCUBINSize for {}: {error:?}", self.file_name),
                )
            })?;
        let mut cubin = vec![0u8; size];
        // SAFETY: `cubin` holds exactly the `size` bytes NVRTC asked for.
        unsafe { sys::nvrtcGetCUBIN(self.handle, cubin.as_mut_ptr().cast::<c_char>()) }
            .result()
            .map_err(|error| {
                CudaError::new(
                    CudaErrorKind::Compile,
                    format!("nvrtcGetCUBIN for {}: {error:?}", self.file_name),
                )
            })?;
        if cubin.is_empty() {
            return Err(CudaError::new(
                CudaErrorKind::Compile,
                format!(
                    "NVRTC produced no CUBIN for {} (was a virtual architecture given?)",
                    self.file_name
                ),
            ));
        }
        Ok(cubin)
    }
}

impl Drop for Program<'_> {
    fn drop(&mut self) {
        // SAFETY: the handle was created by nvrtcCreateProgram and is destroyed only here. A
        // failure to destroy leaks the program; there is nothing better to do in Drop.
        let _ = unsafe { result::destroy_program(self.handle) };
    }
}

/// NVRTC's text buffers end in a NUL; the text before it, lossily decoded.
fn c_chars_to_string(chars: &[c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiling_without_nvrtc_is_an_error_not_a_panic() {
        // SAFETY: as in require_loaded_nvrtc.
        if unsafe { sys::is_culib_present() } {
            eprintln!("skipped: NVRTC is loadable in this process");
            return;
        }
        let error = compile(
            "activation.cu",
            ACTIVATION.text,
            "compute_80",
            CompileTarget::Ptx,
        )
        .unwrap_err();
        assert_eq!(error.kind(), CudaErrorKind::LibraryMissing);
        assert_eq!(
            nvrtc_version().unwrap_err().kind(),
            CudaErrorKind::LibraryMissing
        );
    }
}
