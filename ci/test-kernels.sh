#!/usr/bin/env bash
# The committed demo models are exactly what models/generate.py writes (fixed seeds, pinned packages): regenerate
# into a scratch folder and compare byte for byte, so a generator change that is not committed fails here.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
.deps/venv/bin/python models/generate.py "$scratch" >/dev/null
status=0
while IFS= read -r file; do
    relative="${file#"$scratch"/}"
    if ! cmp -s "$file" "models/$relative"; then
        echo "test-kernels: models/$relative differs from what models/generate.py writes" >&2
        status=1
    fi
done < <(find "$scratch" -type f)
[ "$status" -eq 0 ] && echo "test-kernels: committed models match the generator"
exit "$status"
