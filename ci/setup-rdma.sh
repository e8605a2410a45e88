# Sourced by ci/setup.sh: what ember-rdma's build and tests need.
# The verbs provider goes through the `sideway` crate, whose rdma-mummy-sys builds a small loader
# library (libibverbs/librdmacm are opened at run time, not linked) with cmake and generates its
# bindings with bindgen, which needs libclang.
need_command cmake cmake
need_command clang clang
[ -e /usr/lib/llvm-14/lib/libclang.so ] || ls /usr/lib/x86_64-linux-gnu/libclang*.so >/dev/null 2>&1 \
    || apt_packages+=(libclang-dev)
# ibv_devices: how the verbs tests and README's SoftRoCE check see whether a device exists.
need_command ibv_devices ibverbs-utils
need_command rdma iproute2
