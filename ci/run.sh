#!/usr/bin/env bash
# `make run`: Ember in the foreground on 127.0.0.1, with whatever demo data is configured.
set -euo pipefail
cd "$(dirname "$0")/.."
args=("$@")
for extra in ci/run-args-*.sh; do
    [ -e "$extra" ] || continue
    # shellcheck source=/dev/null
    source "$extra"
done
exec ./target/release/ember "${args[@]}"
