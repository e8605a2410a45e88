#!/usr/bin/env bash
# Installs what Ember's build, run and tests need, skipping what is already there.
# Each area keeps its own steps in ci/setup-<area>.sh; this script runs them all in order.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages are installed in one apt-get call; each setup-<area>.sh appends to this list.
apt_packages=()
need_command() { # need_command COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 || apt_packages+=("$2")
}
install_apt_packages() {
    if [ ${#apt_packages[@]} -gt 0 ]; then
        echo "setup: installing Debian packages: ${apt_packages[*]}"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        export DEBIAN_FRONTEND=noninteractive
        $sudo apt-get update -qq
        $sudo apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
    fi
}

for area in ci/setup-*.sh; do
    # shellcheck source=/dev/null
    source "$area"
done
install_apt_packages
for hook in "${post_apt_hooks[@]:-}"; do
    [ -n "$hook" ] && "$hook"
done
echo "setup: done"
