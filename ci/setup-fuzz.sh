# Sourced by ci/setup.sh: what the fuzz targets (fuzz/, cargo-fuzz and libFuzzer) need. cargo-fuzz
# builds with sanitizer flags that only nightly Rust accepts; libfuzzer-sys compiles libFuzzer's C++
# sources, so a C++ compiler too.
need_command c++ g++

# The cargo-fuzz release the targets were written and run with (fuzz/Cargo.toml's layout).
EMBER_CARGO_FUZZ_VERSION="0.13.2"

setup_fuzz() {
    if ! rustup run nightly rustc --version >/dev/null 2>&1; then
        echo "setup: installing the nightly Rust toolchain (cargo-fuzz needs it)"
        rustup toolchain install nightly --profile minimal
    fi
    if ! cargo fuzz --version 2>/dev/null | grep -qF "$EMBER_CARGO_FUZZ_VERSION"; then
        echo "setup: installing cargo-fuzz $EMBER_CARGO_FUZZ_VERSION"
        cargo install cargo-fuzz --version "$EMBER_CARGO_FUZZ_VERSION" --locked
    fi
}
post_apt_hooks+=(setup_fuzz)
