# Sourced by ci/setup.sh: the inference side. A project-local Python venv (.deps/venv) holding numpy, onnx and
# the onnxruntime wheel; Ember loads the wheel's libonnxruntime.so at run time through .deps/onnxruntime (a link to
# the wheel's library folder), ORT_DYLIB_PATH or --ort-lib. The generator then rebuilds models/ (deterministic:
# the committed files come out byte for byte) and checks its graphs against numpy with onnxruntime.
need_command python3 python3
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || apt_packages+=(python3-venv)

# kernels_python_env VENV_DIR REQUIREMENTS LINK: venv with the pinned packages; LINK -> the wheel's capi folder.
kernels_python_env() {
    local venv="$1" requirements="$2" link="$3" stamp="$1/.ember-requirements"
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
    fi
    if ! cmp -s "$requirements" "$stamp"; then
        echo "setup: installing $requirements into $venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
        cp "$requirements" "$stamp"
    fi
    local capi
    capi="$("$venv/bin/python" -c 'import onnxruntime, os; print(os.path.join(os.path.dirname(onnxruntime.__file__), "capi"))')"
    local library
    library="$(cd "$capi" && ls libonnxruntime.so.* | head -n 1)"
    ln -sfn "$library" "$capi/libonnxruntime.so"
    ln -sfn "$capi" "$link"
}

setup_kernels() {
    mkdir -p .deps
    kernels_python_env .deps/venv models/requirements.txt .deps/onnxruntime
    if [ "${EMBER_ORT_GPU:-0}" = "1" ]; then
        kernels_python_env .deps/venv-gpu models/requirements-gpu.txt .deps/onnxruntime-gpu
    fi
    echo "setup: ONNX Runtime at .deps/onnxruntime/libonnxruntime.so"
}
post_apt_hooks+=(setup_kernels)
