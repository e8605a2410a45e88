# Sourced by ci/setup.sh: what ember-bench compare needs beyond the base set (redis-server comes
# from setup-base.sh). taskset pins the servers to a core; it is in util-linux, which Debian
# always has, but a slimmed image may not.
need_command taskset util-linux
