# Sourced by ci/setup.sh: Redis 7.0.15's own TCL test suite, the oracle that ci/test-redis-tcl.sh
# runs against Ember. It ships in Debian's `redis` source package; the upstream tarball inside it
# is unpacked into .deps/redis-tests (Debian's patches touch packaging, not the tests we run).
need_command tclsh8.6 tcl8.6

EMBER_REDIS_TCL_VERSION="7.0.15"
EMBER_REDIS_TCL_DIR=".deps/redis-tests"

install_redis_tcl() {
    local root="$EMBER_REDIS_TCL_DIR/redis-$EMBER_REDIS_TCL_VERSION"
    if [ -f "$root/runtest" ]; then
        return 0
    fi
    echo "setup: fetching Redis $EMBER_REDIS_TCL_VERSION's test suite (Debian source package redis)"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    local sources=/etc/apt/sources.list.d/ember-redis-src.sources
    if ! grep -rqs '^Types: deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
        $sudo tee "$sources" >/dev/null <<'SOURCES'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    fi
    # Without gpgv apt refuses to verify as the sandbox user; as root it can.
    $sudo apt-get -o APT::Sandbox::User=root update -qq
    local download
    download=$(mktemp -d)
    # Debian 12 keeps Redis 7.0.15 (security updates change only the Debian revision).
    (cd "$download" && apt-get -o APT::Sandbox::User=root source -qq --download-only redis)
    local tarball
    tarball=$(ls "$download"/redis_"$EMBER_REDIS_TCL_VERSION".orig.tar.gz)
    mkdir -p "$EMBER_REDIS_TCL_DIR"
    tar -xzf "$tarball" -C "$EMBER_REDIS_TCL_DIR" "redis-$EMBER_REDIS_TCL_VERSION/runtest" \
        "redis-$EMBER_REDIS_TCL_VERSION/tests"
    rm -rf "$download"
    # The suite looks for its binaries under src/; in external-server mode only redis-cli and
    # redis-benchmark are started (a few tests), from the installed Redis.
    mkdir -p "$root/src"
    local tool
    for tool in redis-server redis-cli redis-benchmark redis-check-aof redis-check-rdb; do
        [ -x "/usr/bin/$tool" ] && ln -sf "/usr/bin/$tool" "$root/src/$tool"
    done
    echo "setup: Redis test suite in $root"
}
post_apt_hooks+=(install_redis_tcl)
