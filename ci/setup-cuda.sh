# Sourced by ci/setup.sh: the native CUDA backend (ember-kernels, module `cuda`).
# NVRTC from PyPI's nvidia-cuda-nvrtc-cu12 wheel, unpacked into .deps/nvrtc, so that the
# kernels/cuda/*.cu compile check runs on machines with no CUDA toolkit and no GPU. Where a GPU is
# present (an NVIDIA device node) or EMBER_CUBLASLT=1, also cuBLASLt from nvidia-cublas-cu12 into
# .deps/cublas: the engine runs its MLPs through it, so without it (and with no CUDA toolkit) the
# engine cannot load. It is a ~600 MB wheel that nothing on a machine without a GPU uses, hence
# the condition. The versions match cudarc's `cuda-12080` bindings (root Cargo.toml): CUDA 12.8
# update 1 ships NVRTC 12.8.93 and cuBLAS 12.8.4.1.
need_command python3 python3
need_command pip3 python3-pip

EMBER_NVRTC_WHEEL="nvidia-cuda-nvrtc-cu12==12.8.93"
EMBER_NVRTC_DIR=".deps/nvrtc"
EMBER_CUBLAS_WHEEL="nvidia-cublas-cu12==12.8.4.1"
EMBER_CUBLAS_DIR=".deps/cublas"

# install_cuda_wheel WHEEL DIR LIBRARY: WHEEL unpacked into DIR unless DIR already holds it and LIBRARY (relative).
install_cuda_wheel() {
    local wheel="$1" dir="$2" library="$3" marker="$2/.installed"
    if [ -f "$marker" ] && [ "$(cat "$marker")" = "$wheel" ] && [ -f "$dir/$library" ]; then
        return 0
    fi
    echo "setup: installing $wheel into $dir"
    rm -rf "$dir"
    # --target installs into a plain folder, which Debian's externally-managed rule allows.
    python3 -m pip install --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --target "$dir" "$wheel"
    echo "$wheel" >"$marker"
}

install_nvrtc_wheel() {
    install_cuda_wheel "$EMBER_NVRTC_WHEEL" "$EMBER_NVRTC_DIR" nvidia/cuda_nvrtc/lib/libnvrtc.so.12
    if [ -e /dev/nvidia0 ] || [ -e /dev/nvidiactl ] || [ "${EMBER_CUBLASLT:-0}" = "1" ]; then
        install_cuda_wheel "$EMBER_CUBLAS_WHEEL" "$EMBER_CUBLAS_DIR" nvidia/cublas/lib/libcublasLt.so.12
    fi
}
post_apt_hooks+=(install_nvrtc_wheel)
