# Sourced by ci/setup.sh: the cache's own tools. redis-cli for the integration tests,
# redis-server and redis-benchmark for the side-by-side comparisons.
need_command redis-cli redis-tools
need_command redis-server redis-server
