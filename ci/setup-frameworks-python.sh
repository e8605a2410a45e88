# Sourced by ci/setup.sh: the Python job-queue and caching frameworks that ci/test-frameworks-python.sh
# runs against Ember (and against redis-server, the oracle, from ci/setup-base.sh). Each framework
# gets a folder of its own under .deps/python-frameworks, installed with --target (Debian's
# externally-managed rule allows it) from the pinned examples/frameworks/<name>/requirements.txt:
# they want different redis-py majors (arq keeps to 5, the others take 8), so one folder for all
# would not resolve. A folder is reinstalled when its requirements file changes.
need_command python3 python3
need_command pip3 python3-pip

EMBER_PYTHON_FRAMEWORKS="rq celery django huey dramatiq arq"
EMBER_PYTHON_FRAMEWORKS_DIR=".deps/python-frameworks"

install_python_frameworks() {
    local name requirements folder marker wanted
    for name in $EMBER_PYTHON_FRAMEWORKS; do
        requirements="examples/frameworks/$name/requirements.txt"
        folder="$EMBER_PYTHON_FRAMEWORKS_DIR/$name"
        marker="$folder/.installed"
        wanted=$(sha256sum "$requirements" | cut -d' ' -f1)
        if [ -f "$marker" ] && [ "$(cat "$marker")" = "$wanted" ]; then
            continue
        fi
        echo "setup: installing $name (examples/frameworks/$name/requirements.txt) into $folder"
        rm -rf "$folder"
        # Wheels only: nothing is compiled, and a missing wheel fails here rather than half-way.
        # A failed install leaves no marker; ci/test-frameworks-python.sh reports the framework as
        # missing (a failure where EMBER_REQUIRE_FRAMEWORKS=1), and the other frameworks go on.
        if python3 -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
            --target "$folder" --requirement "$requirements"; then
            echo "$wanted" >"$marker"
        else
            echo "setup: installing $name failed; its framework test will report it" >&2
        fi
    done
}
post_apt_hooks+=(install_python_frameworks)
