# Sourced by ci/setup.sh: what the server's integration tests need beyond ci/setup-base.sh.
# redis-py, for the smoke test in dataplane/server/tests/clients_and_shards.rs, installed into a
# project-local folder (Debian's externally-managed rule allows --target) that the test puts on
# PYTHONPATH (with its dependencies: async-timeout on Python before 3.11.3, as Debian 12 has).
# The test skips with a message when it is missing.
need_command python3 python3
need_command pip3 python3-pip
# tests/tls.rs makes its certificates with the openssl command (they skip without it).
need_command openssl openssl

EMBER_REDIS_PY="redis==5.2.1"
EMBER_REDIS_PY_DIR=".deps/python-redis"

install_redis_py() {
    local marker="$EMBER_REDIS_PY_DIR/.installed"
    if [ -f "$marker" ] && [ "$(cat "$marker")" = "$EMBER_REDIS_PY" ]; then
        return 0
    fi
    echo "setup: installing $EMBER_REDIS_PY into $EMBER_REDIS_PY_DIR"
    rm -rf "$EMBER_REDIS_PY_DIR"
    python3 -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
        --target "$EMBER_REDIS_PY_DIR" "$EMBER_REDIS_PY"
    echo "$EMBER_REDIS_PY" >"$EMBER_REDIS_PY_DIR/.installed"
}
post_apt_hooks+=(install_redis_py)
