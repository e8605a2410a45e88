# Sourced by ci/setup.sh: the Node.js and Ruby frameworks that ci/test-frameworks-js-ruby.sh runs
# against Ember (examples/frameworks/): from npm, into .deps/node-frameworks, BullMQ with its two
# client libraries, ioredis and node-redis (npm's `redis`), Bull 4, and cache-manager with Keyv's
# Redis store; from Debian 12's packages, Sidekiq, redis-rb (with hiredis) and ActiveSupport's
# RedisCacheStore (rubygems.org is not among the registries CI reaches). redis-server, the oracle, comes from ci/setup-base.sh.
#
# Versions: Debian 12's nodejs is 18.20; bullmq 6.7.6 asks for node >= 14.18 (its cron-parser
# for >= 18), ioredis 6 for node >= 20, so ioredis stays on 5.9.3, which BullMQ 6 accepts
# (its peer range is >= 5); node-redis 5.12 and @keyv/redis 5.1 ask for node >= 18.19, bull
# 4.16 for >= 12. Debian 12: ruby 3.1, ruby-sidekiq 6.4.1, ruby-redis 4.8.0,
# ruby-activesupport 6.1.7 (whose RedisCacheStore wants redis-rb >= 4.0.1).
need_command node nodejs
need_command npm npm
need_command ruby ruby

# need_package PACKAGE: installs a Debian package that no command stands for (a Ruby library).
need_package() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" || apt_packages+=("$1")
}
need_package ruby-sidekiq
need_package ruby-redis
need_package ruby-activesupport
# redis-rb's C reply parser, for the RedisCacheStore run through it.
need_package ruby-hiredis

EMBER_NODE_FRAMEWORKS="bullmq@6.7.6 ioredis@5.9.3 redis@5.12.4 bull@4.16.5 cache-manager@7.2.9 keyv@5.6.0 @keyv/redis@5.1.6"
EMBER_NODE_FRAMEWORKS_DIR=".deps/node-frameworks"

install_node_frameworks() {
    local marker="$EMBER_NODE_FRAMEWORKS_DIR/.installed"
    if [ -f "$marker" ] && [ "$(cat "$marker")" = "$EMBER_NODE_FRAMEWORKS" ]; then
        return 0
    fi
    echo "setup: installing $EMBER_NODE_FRAMEWORKS into $EMBER_NODE_FRAMEWORKS_DIR"
    rm -rf "$EMBER_NODE_FRAMEWORKS_DIR"
    mkdir -p "$EMBER_NODE_FRAMEWORKS_DIR"
    # shellcheck disable=SC2086 # one word per package
    npm install --silent --no-audit --no-fund --prefix "$EMBER_NODE_FRAMEWORKS_DIR" $EMBER_NODE_FRAMEWORKS
    echo "$EMBER_NODE_FRAMEWORKS" >"$marker"
}
post_apt_hooks+=(install_node_frameworks)
