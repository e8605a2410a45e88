# Sourced by ci/setup.sh: the native CUDA backend (ember-kernels, module `cuda`).
# NVRTC from PyPI's nvidia-cuda-nvrtc-cu12 wheel, unpacked into .deps/nvrtc, so that the
# kernels/cuda/*.cu compile check runs on machines with no CUDA toolkit and no GPU. The version
# matches cudarc's `cuda-12080` bindings (root Cargo.toml).
need_command python3 python3
need_command pip3 python3-pip

EMBER_NVRTC_WHEEL="nvidia-cuda-nvrtc-cu12==12.8.93"
EMBER_NVRTC_DIR=".deps/nvrtc"

install_nvrtc_wheel() {
    local marker="$EMBER_NVRTC_DIR/.installed"
    if [ -f "$marker" ] && [ "$(cat "$marker")" = "$EMBER_NVRTC_WHEEL" ] \
        && [ -f "$EMBER_NVRTC_DIR/nvidia/cuda_nvrtc/lib/libnvrtc.so.12" ]; then
        return 0
    fi
    echo "setup: installing $EMBER_NVRTC_WHEEL into $EMBER_NVRTC_DIR"
    rm -rf "$EMBER_NVRTC_DIR"
    # --target installs into a plain folder, which Debian's externally-managed rule allows.
    python3 -m pip install --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --target "$EMBER_NVRTC_DIR" "$EMBER_NVRTC_WHEEL"
    echo "$EMBER_NVRTC_WHEEL" >"$EMBER_NVRTC_DIR/.installed"
}
post_apt_hooks+=(install_nvrtc_wheel)
