#!/usr/bin/env bash
# The committed demo models are exactly what models/generate.py writes (fixed seeds, pinned packages, float64
# references rounded once): regenerate into a scratch folder and compare byte for byte with git's committed
# files (HEAD), never with the work tree, which anything may have rewritten. A generator change whose output is
# not committed fails here, and so does a committed model that the generator no longer writes.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
.deps/venv/bin/python models/generate.py "$scratch/models" >/dev/null

committed_file() { # committed_file PATH: the bytes git holds for PATH at HEAD
    git cat-file blob "HEAD:$1"
}
status=0
generated="$(cd "$scratch" && find models -type f | sort)"
committed="$(git ls-files -- 'models/*.onnx' 'models/*.npy' | sort)"
if [ -z "$committed" ]; then
    echo "test-kernels: git lists no committed models (not a git checkout?)" >&2
    exit 1
fi
while IFS= read -r relative; do
    if ! git cat-file -e "HEAD:$relative" 2>/dev/null; then
        echo "test-kernels: $relative is written by models/generate.py but not committed" >&2
        status=1
    elif ! cmp -s "$scratch/$relative" <(committed_file "$relative"); then
        echo "test-kernels: $relative as committed differs from what models/generate.py writes" >&2
        status=1
    fi
done <<<"$generated"
while IFS= read -r relative; do
    if [ ! -f "$scratch/$relative" ]; then
        echo "test-kernels: $relative is committed but models/generate.py no longer writes it" >&2
        status=1
    fi
done <<<"$committed"
# The test run must leave the committed models as they are (setup never rewrites them; neither may a test).
if ! git diff --quiet HEAD -- 'models/*.onnx' 'models/*.npy'; then
    echo "test-kernels: the work tree's models differ from the committed ones:" >&2
    git diff --stat HEAD -- 'models/*.onnx' 'models/*.npy' >&2
    status=1
fi
[ "$status" -eq 0 ] && echo "test-kernels: $(wc -l <<<"$generated") committed model files match the generator"
exit "$status"
