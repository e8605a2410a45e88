#!/usr/bin/env bash
# The one prepared device check (issue 17): everything Ember can check only on an NVIDIA GPU, in one call of at
# most 8 minutes on a machine that has no package registry and nothing to build with.
#
#   bash ci/gpu-check.sh stage      here: builds the GPU test binaries (`cargo test --no-run`: the kernel crate's
#                                   cuda_engine, generated_models and onnxruntime_gpu tests, the server's inference
#                                   tests) and release `ember` and `ember-bench`, strips them, and packs them with
#                                   NVRTC and the ONNX Runtime CPU library (xz) into target/gpu-check, the folder
#                                   to carry (`run` tool: carry ["target/gpu-check"]). The models travel with the
#                                   tree (they are committed).
#   bash ci/gpu-check.sh run        there, from the repository root: unpacks, finds the GPU and the libraries that
#                                   cannot be carried (cuBLASLt, the onnxruntime-gpu build), runs the GPU tests
#                                   with every skip turned into a failure, then `ember-bench infer` on each GPU
#                                   backend at batches 64, 256, 1024 and 4096; writes $OUT/gpu-check/results.md (the
#                                   block for bench/RESULTS.md), summary.txt and log.txt.
#   bash ci/gpu-check.sh --dry-run  anywhere: prints what stage and run would do, with what this machine has.
#
# EMBER_GPU_CHECK_REHEARSAL=1 bash ci/gpu-check.sh run rehearses `run` on a machine with no GPU: every step runs
# (and every GPU step fails, saying why), which checks the unpacking, the paths and the results block here.
#
# Nothing here waits for input. Every step has a time limit taken from one 8-minute budget, so the whole run
# fits twice into a 15-minute device window (once to find problems, once to confirm).
set -euo pipefail
cd "$(dirname "$0")/.."

STAGE_DIR="target/gpu-check"
# The run tool carries at most 64 MiB of ignored paths; keep room under it for anything else carried.
CARRY_BYTES_MAX=$((60 * 1024 * 1024))
# The issue's bound for one run: 8 minutes, so that two runs and a machine start fit into 15 minutes.
RUN_SECONDS_MAX=480
# Left at the end of the budget for writing the results after the last step is cut short.
RESULT_RESERVE_SECONDS=10
BENCH_BATCHES="64,256,1024,4096"
# One round of 1 s per measurement: 4 batches x (4 closed-loop + 1 open-loop) x 1 s = 20 s per backend, so all
# three GPU backends fit in the budget beside the tests. Enough for samples/s and percentiles; RESULTS.md says so.
BENCH_SECONDS=1
BENCH_ROUNDS=1
BENCH_CONNECTIONS=4
# 20 s of measurement, server start-up and warm-up; a TensorRT engine build may take the rest.
BENCH_STEP_SECONDS=150
# Shards of the benchmarked server (EMBER_GPU_CHECK_THREADS=1: one shard, no cross-shard gathers, for comparison).
SERVER_THREADS=${EMBER_GPU_CHECK_THREADS:-2}
# More flags for the benchmarked server (for example `--busy-poll-us 0`), split on spaces.
read -r -a SERVER_EXTRA_ARGS <<<"${EMBER_GPU_CHECK_SERVER_ARGS:-}"
# A GPU launch costs about the same for 64 rows as for 4096, so the server batches up to the largest size measured.
SERVER_MAX_BATCH=4096
NVRTC_LIBRARY=".deps/nvrtc/nvidia/cuda_nvrtc/lib/libnvrtc.so.12"
NVRTC_BUILTINS=".deps/nvrtc/nvidia/cuda_nvrtc/lib/libnvrtc-builtins.so.12.8"
ORT_CPU_DIR=".deps/onnxruntime"

mode="${1:-}"
DRY_RUN=0
case "$mode" in
    stage | run) ;;
    --dry-run | dry-run) DRY_RUN=1 ;;
    *)
        echo "usage: bash ci/gpu-check.sh stage | run | --dry-run" >&2
        exit 2
        ;;
esac

say() { echo "gpu-check: $*"; }

# show_or_run DESCRIPTION COMMAND...: prints the command in a dry run, runs it otherwise.
show_or_run() {
    local description="$1"
    shift
    if [ "$DRY_RUN" = 1 ]; then
        echo "  [$description] $*"
    else
        "$@"
    fi
}

# ---------------------------------------------------------------------------------------------------------------
# stage (here)

# test_executables CARGO_ARGS...: the test binaries `cargo test --no-run` builds, one path a line.
test_executables() {
    cargo test "$@" --no-run --message-format=json 2>/dev/null \
        | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        message = json.loads(line)
    except ValueError:
        continue
    if message.get("reason") == "compiler-artifact" and message.get("profile", {}).get("test") and message.get("executable"):
        print(message["executable"])
'
}

stage() {
    say "stage: building (cargo test --no-run and release binaries), then packing into $STAGE_DIR"
    local kernels_tests=(-p ember-kernels --test cuda_engine --test generated_models --test onnxruntime_gpu)
    local server_tests=(-p ember-server --test inference)
    if [ "$DRY_RUN" = 1 ]; then
        echo "  [build] cargo test ${kernels_tests[*]} --no-run"
        echo "  [build] cargo test ${server_tests[*]} --no-run"
        echo "  [build] cargo build --release --bin ember --bin ember-bench"
        echo "  [pack]  strip each into $STAGE_DIR/bin: kernels-cuda_engine kernels-generated_models" \
            "kernels-onnxruntime_gpu server-inference ember ember-bench"
        echo "  [pack]  tar -chf - $NVRTC_LIBRARY $NVRTC_BUILTINS $ORT_CPU_DIR/libonnxruntime.so.1.*" \
            "$ORT_CPU_DIR/libonnxruntime_providers_shared.so | xz -9 -T2 > $STAGE_DIR/deps.tar.xz"
        echo "  [pack]  tar -C $STAGE_DIR -cf - bin | xz -9 -T2 > $STAGE_DIR/bin.tar.xz (then bin/ removed)"
        echo "  [check] $STAGE_DIR under $((CARRY_BYTES_MAX >> 20)) MiB; manifest.txt with the commit"
        return
    fi
    for needed in "$NVRTC_LIBRARY" "$NVRTC_BUILTINS" "$ORT_CPU_DIR/libonnxruntime.so"; do
        [ -e "$needed" ] || { say "stage: $needed is missing: run ci/setup.sh first" >&2; exit 1; }
    done
    rm -rf "$STAGE_DIR"
    mkdir -p "$STAGE_DIR/bin"
    local executable
    while IFS= read -r executable; do
        local name
        name="$(basename "$executable" | sed 's/-[0-9a-f]\{16\}$//')"
        case "$executable" in
            */deps/inference-*) name="server-inference" ;;
            *) name="kernels-$name" ;;
        esac
        strip -o "$STAGE_DIR/bin/$name" "$executable"
    done < <(test_executables "${kernels_tests[@]}"; test_executables "${server_tests[@]}")
    cargo build --release --bin ember --bin ember-bench
    strip -o "$STAGE_DIR/bin/ember" target/release/ember
    strip -o "$STAGE_DIR/bin/ember-bench" target/release/ember-bench
    local expected
    for expected in kernels-cuda_engine kernels-generated_models kernels-onnxruntime_gpu server-inference; do
        [ -x "$STAGE_DIR/bin/$expected" ] || { say "stage: no $expected built" >&2; exit 1; }
    done
    local ort_library
    ort_library="$(cd "$ORT_CPU_DIR" && ls libonnxruntime.so.1.* | head -n 1)"
    # -h stores the files the links point to; xz -9 halves NVRTC (104 MB -> ~31 MB).
    tar -chf - "$NVRTC_LIBRARY" "$NVRTC_BUILTINS" "$ORT_CPU_DIR/$ort_library" \
        "$ORT_CPU_DIR/libonnxruntime_providers_shared.so" | xz -9 -T2 >"$STAGE_DIR/deps.tar.xz"
    # The binaries too (17 MB -> ~5 MB): with the tree's own ~13 MB, the whole call must stay under 64 MiB.
    tar -C "$STAGE_DIR" -cf - bin | xz -9 -T2 >"$STAGE_DIR/bin.tar.xz"
    rm -rf "$STAGE_DIR/bin"
    {
        echo "commit $(git rev-parse HEAD)$(git diff --quiet HEAD -- . ':!models' || echo ' (work tree modified)')"
        echo "staged $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -srm), $(ldd --version | head -n 1)"
        echo "onnxruntime $ort_library"
    } >"$STAGE_DIR/manifest.txt"
    local bytes
    bytes="$(du -sb "$STAGE_DIR" | cut -f1)"
    say "stage: $STAGE_DIR holds $((bytes >> 20)) MiB:"
    (cd "$STAGE_DIR" && ls -la bin.tar.xz deps.tar.xz manifest.txt)
    if [ "$bytes" -gt "$CARRY_BYTES_MAX" ]; then
        say "stage: $bytes bytes is over the carry limit of $CARRY_BYTES_MAX" >&2
        exit 1
    fi
    say "stage: done; run on the GPU machine: bash ci/gpu-check.sh run (carry: $STAGE_DIR)"
}

# ---------------------------------------------------------------------------------------------------------------
# run (on the GPU machine)

started_s=$SECONDS
remaining_s() { echo $((RUN_SECONDS_MAX - RESULT_RESERVE_SECONDS - (SECONDS - started_s))); }

# first_existing PATH...: the first of the paths that exists.
first_existing() {
    local path
    for path in "$@"; do
        [ -e "$path" ] && { echo "$path"; return 0; }
    done
    return 1
}

# search_library NAME: a file NAME on this machine (library cache, CUDA toolkits, Python packages, then a bounded
# search of the file system), or nothing.
search_library() {
    local name="$1" found
    found="$(ldconfig -p 2>/dev/null | awk -v name="$name" '$1 == name { print $NF; exit }')"
    [ -n "$found" ] && { echo "$found"; return 0; }
    # shellcheck disable=SC2231
    found="$(first_existing /usr/local/cuda*/lib64/"$name" /usr/local/cuda*/targets/*/lib/"$name" \
        /usr/lib/x86_64-linux-gnu/"$name" /opt/conda/lib/"$name" \
        /usr/local/lib/python3*/dist-packages/nvidia/*/lib/"$name" \
        /usr/lib/python3/dist-packages/nvidia/*/lib/"$name" \
        /opt/*/.venv/lib/python3*/site-packages/nvidia/*/lib/"$name" 2>/dev/null || true)"
    [ -n "$found" ] && { echo "$found"; return 0; }
    timeout 20 find / -xdev \( -path /proc -o -path /sys \) -prune -o -name "$name" -print -quit 2>/dev/null || true
}

# find_cublaslt: cuBLASLt (the native engine's MLPs): too large to carry (~500 MB), so it must be on the machine.
find_cublaslt() {
    if [ -n "${EMBER_CUBLASLT_LIB:-}" ]; then
        echo "$EMBER_CUBLASLT_LIB"
        return
    fi
    first_existing .deps/cublas/nvidia/cublas/lib/libcublasLt.so.12 && return 0
    local found
    found="$(search_library libcublasLt.so.12)"
    [ -n "$found" ] && { echo "$found"; return 0; }
    # A machine with only CUDA 13 (its toolkit, or PyTorch's nvidia-cublas wheel) has libcublasLt.so.13. The calls
    # the engine makes (cublasLtCreate, MatmulDesc/MatrixLayout/Preference, AlgoGetHeuristic, Matmul) keep their
    # signatures and enum values from 12 to 13, so the 12.8 bindings run on it; link_unversioned below makes
    # cudarc's by-name load (it asks for libcublasLt.so before libcublasLt.so.12) find this file.
    search_library libcublasLt.so.13
}

# link_unversioned LIBRARY DIR: DIR/<name>.so pointing at LIBRARY (libcublasLt.so.13 -> DIR/libcublasLt.so), so that
# cudarc's first candidate name resolves to the library preloaded from LIBRARY (same file, so the same object).
link_unversioned() {
    local library="$1" dir="$2" name
    name="$(basename "$library" | sed 's/\.so\..*$/.so/')"
    mkdir -p "$dir"
    ln -sfn "$library" "$dir/$name"
}

# find_ort_gpu: an onnxruntime-gpu 1.31 library with its CUDA provider beside it (too large to carry), or nothing.
find_ort_gpu() {
    if [ -n "${EMBER_ORT_GPU_LIB:-}" ]; then
        echo "$EMBER_ORT_GPU_LIB"
        return
    fi
    local provider
    provider="$(first_existing .deps/onnxruntime-gpu/libonnxruntime_providers_cuda.so \
        || search_library libonnxruntime_providers_cuda.so)"
    [ -n "$provider" ] || return 0
    # Ember's `ort` needs the 1.31 API; an older library fails at load.
    first_existing "$(dirname "$provider")"/libonnxruntime.so.1.3[1-9]* || true
}

gpu_name() {
    if command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n 1
    fi
}

OUT_DIR="${OUT:-target/gpu-check-out}/gpu-check"
RESULTS="$OUT_DIR/results.md"
SUMMARY="$OUT_DIR/summary.txt"
LOG="$OUT_DIR/log.txt"

# step NAME SECONDS COMMAND...: runs COMMAND with at most SECONDS (and never past the budget), output to the log,
# and records the outcome in the summary. A step that fails does not stop the run: later steps still report.
step() {
    local name="$1" limit="$2"
    shift 2
    local left
    left="$(remaining_s)"
    [ "$limit" -gt "$left" ] && limit="$left"
    if [ "$DRY_RUN" = 1 ]; then
        echo "  [$name, at most ${limit}s] $*"
        return 0
    fi
    if [ "$limit" -le 0 ]; then
        echo "$name: not run (the 8-minute budget is spent)" | tee -a "$SUMMARY"
        return 1
    fi
    local step_started=$SECONDS status=0 output="$OUT_DIR/step.out"
    echo "=== $name (at most ${limit}s): $*" >>"$LOG"
    timeout --kill-after=5 "$limit" "$@" >"$output" 2>&1 || status=$?
    cat "$output" >>"$LOG"
    local outcome="passed"
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
        outcome="TIMED OUT"
    elif [ "$status" -ne 0 ]; then
        # The first panic's message (a test's assertion), else the last line: enough to act on without the log.
        local reason
        reason="$(grep -A1 -m1 'panicked at' "$output" | tail -n 1)"
        [ -n "$reason" ] || reason="$(tail -n 1 "$output")"
        outcome="FAILED (exit $status: ${reason:0:200})"
    fi
    rm -f "$output"
    echo "$name: $outcome in $((SECONDS - step_started))s" | tee -a "$SUMMARY"
    [ "$status" -eq 0 ]
}

# wait_for_port PORT SECONDS: polls until something listens on 127.0.0.1:PORT (the server is ready), or fails.
wait_for_port() {
    local port="$1" deadline=$((SECONDS + $2))
    while [ $SECONDS -lt "$deadline" ]; do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}

# server_figures PORT: what the server says of the run it just served (AI.INFO of both models: time spent running
# batches, batches, samples; INFO gpu: the embedding cache; commandstats: microseconds per RECOMMEND), read with a
# few lines of Python over a socket (the machine has no redis-cli). It splits the server's latency into the model's
# own run time and everything else (the gather, queueing, the wire).
server_figures() {
    python3 - "$1" <<'PYTHON'
import socket, sys
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
reader = sock.makefile("rb")
def read():
    line = reader.readline().rstrip(b"\r\n")
    kind, rest = line[:1], line[1:]
    if kind in (b"+", b"-", b":"):
        return rest.decode()
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        data = reader.read(size + 2)[:-2]
        return data.decode(errors="replace")
    if kind == b"*":
        return [read() for _ in range(int(rest))]
    return line.decode(errors="replace")
def call(*words):
    sock.sendall(b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in (w.encode() for w in words)))
    return read()
for model in ("dlrm_dense", "dlrm"):
    info = call("AI.INFO", model)
    if isinstance(info, list):
        fields = dict(zip(info[0::2], info[1::2]))
        batches = int(fields.get("batches", 0)) or 1
        samples = int(fields.get("samples", 0)) or 1
        print(f"AI.INFO {model}: " + ", ".join(f"{k} {fields[k]}" for k in ("duration", "samples", "calls", "batches", "batch_rows_max")
              if k in fields) + f"; run time {int(fields.get('duration', 0)) / batches:.0f} us a batch, {int(fields.get('duration', 0)) * 1000 / samples:.0f} ns a sample")
    else:
        print(f"AI.INFO {model}: {info}")
for section in ("gpu", "commandstats"):
    text = call("INFO", section) or ""
    for line in text.splitlines():
        if line.startswith(("gpu_cache", "gpu_slot")) or line.startswith(("cmdstat_recommend", "cmdstat_ai.")):
            print(line)
PYTHON
}

# bench_backend BACKEND ORT_LIB: one server on BACKEND and ember-bench infer against it; its tables into RESULTS.
bench_backend() {
    local backend="$1" ort_lib="$2" port=$((17000 + RANDOM % 1000))
    local server=(bin/ember --port "$port" --threads "$SERVER_THREADS" --ort-lib "$ort_lib" --backend "$backend"
        --max-batch "$SERVER_MAX_BATCH" --tensorrt-cache "$OUT_DIR/tensorrt-cache"
        --model dlrm_dense=models/dlrm_dense.onnx --model dlrm=models/dlrm.onnx --demo-embeddings models
        ${SERVER_EXTRA_ARGS[@]+"${SERVER_EXTRA_ARGS[@]}"})
    local bench=(bin/ember-bench infer --port "$port" --backend "$backend" --ort-lib "$ort_lib"
        --batch "$BENCH_BATCHES" --rounds "$BENCH_ROUNDS" --seconds "$BENCH_SECONDS"
        --connections "$BENCH_CONNECTIONS" --max-delay-us 2000)
    if [ "$DRY_RUN" = 1 ]; then
        echo "  [bench $backend] $STAGE_DIR/${server[*]} &"
        echo "  [bench $backend, at most ${BENCH_STEP_SECONDS}s] $STAGE_DIR/${bench[*]}"
        return 0
    fi
    local server_log="$OUT_DIR/ember-$backend.log" tables="$OUT_DIR/bench-$backend.md"
    "$STAGE_DIR/${server[0]}" "${server[@]:1}" >"$server_log" 2>&1 &
    local server_pid=$!
    local status=0
    if wait_for_port "$port" 120; then
        step "ember-bench infer, $backend" "$BENCH_STEP_SECONDS" "$STAGE_DIR/${bench[0]}" "${bench[@]:1}" || status=$?
        sed -n "/^=== ember-bench infer, $backend/,/^=== /p" "$LOG" | grep -v '^=== ' >"$tables" || true
        timeout 20 bash -c "$(declare -f server_figures); server_figures $port" >"$OUT_DIR/server-$backend.txt" 2>&1 || true
    else
        echo "ember-bench infer, $backend: FAILED (the server did not listen within 120 s)" | tee -a "$SUMMARY"
        status=1
    fi
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    {
        echo
        echo "#### $backend"
        echo
        echo "Server: \`ember ${server[*]:1}\` (its start-up line: $(grep -m1 'hardware:' "$server_log" | sed 's/.*hardware: //'))"
        echo
        echo "Command: \`ember-bench ${bench[*]:1}\`"
        echo
        if [ "$status" -eq 0 ]; then
            cat "$tables"
            echo
            echo "The server's own figures after the run (AI.INFO, INFO gpu, INFO commandstats):"
            echo
            echo '```'
            cat "$OUT_DIR/server-$backend.txt" 2>/dev/null
            echo '```'
        else
            echo "Not measured: the run failed; the server's log ends:"
            echo
            echo '```'
            tail -n 5 "$server_log"
            tail -n 5 "$tables" 2>/dev/null || true
            echo '```'
        fi
    } >>"$RESULTS"
}

device_run() {
    if [ "$DRY_RUN" = 1 ]; then
        say "run (on the GPU machine, from the repository root, $STAGE_DIR carried), at most ${RUN_SECONDS_MAX}s:"
    else
        [ -f "$STAGE_DIR/deps.tar.xz" ] || { say "run: no $STAGE_DIR/deps.tar.xz: carry it after 'stage'" >&2; exit 1; }
        rm -rf "$OUT_DIR"
        mkdir -p "$OUT_DIR"
        : >"$SUMMARY"
        : >"$LOG"
    fi
    local gpu
    gpu="$(gpu_name || true)"
    local has_gpu=0
    if [ -e /dev/nvidia0 ] || [ -e /dev/nvidiactl ]; then
        has_gpu=1
    fi
    if [ "$has_gpu" = 0 ] && [ "$DRY_RUN" = 0 ] && [ "${EMBER_GPU_CHECK_REHEARSAL:-0}" != 1 ]; then
        say "run: no NVIDIA GPU here (/dev/nvidia0 and /dev/nvidiactl are absent): nothing to check" | tee -a "$SUMMARY"
        exit 1
    fi
    local cublaslt ort_gpu
    cublaslt="$(find_cublaslt || true)"
    ort_gpu="$(find_ort_gpu || true)"
    local root="$PWD" deps="$PWD/$STAGE_DIR/deps"
    local nvrtc_dir="$deps/${NVRTC_LIBRARY%/*}"
    local ort_cpu="$deps/$ORT_CPU_DIR/libonnxruntime.so"
    {
        echo "machine: ${gpu:-$([ "$has_gpu" = 1 ] && echo 'NVIDIA device nodes present, no nvidia-smi' || echo 'no NVIDIA GPU here')}"
        echo "cuBLASLt: ${cublaslt:-not found (the native backend cannot load: install the CUDA toolkit or nvidia-cublas-cu12, or set EMBER_CUBLASLT_LIB)}"
        echo "onnxruntime-gpu: ${ort_gpu:-not found (ort-cuda and ort-tensorrt are not run; set EMBER_ORT_GPU_LIB to a 1.31 build)}"
    } | if [ "$DRY_RUN" = 1 ]; then sed 's/^/  [found] /'; else tee -a "$SUMMARY"; fi

    show_or_run unpack mkdir -p "$deps"
    show_or_run unpack tar -xJf "$STAGE_DIR/deps.tar.xz" -C "$deps"
    show_or_run unpack tar -xJf "$STAGE_DIR/bin.tar.xz" -C "$STAGE_DIR"
    show_or_run unpack ln -sfn "$(cd "$deps/$ORT_CPU_DIR" 2>/dev/null && ls libonnxruntime.so.1.* 2>/dev/null | head -n 1 || echo 'libonnxruntime.so.1.31.1')" "$ort_cpu"

    # Every test binary runs away from the tree that built it: EMBER_REPO_ROOT and EMBER_BIN say where things are.
    # EMBER_REQUIRE_GPU=1 turns each GPU skip into a failure; NVRTC's builtins load from the library path.
    export EMBER_REPO_ROOT="$root" EMBER_BIN="$root/$STAGE_DIR/bin/ember" EMBER_REQUIRE_GPU=1
    export EMBER_NVRTC_LIB="$nvrtc_dir/libnvrtc.so.12" ORT_DYLIB_PATH="$ort_cpu"
    export LD_LIBRARY_PATH="$nvrtc_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    if [ -n "$cublaslt" ]; then
        export EMBER_CUBLASLT_LIB="$cublaslt"
        case "$cublaslt" in
            *.so.12) ;;
            *)
                show_or_run link link_unversioned "$cublaslt" "$deps/unversioned"
                export LD_LIBRARY_PATH="$deps/unversioned:$LD_LIBRARY_PATH"
                ;;
        esac
    fi
    if [ -n "$ort_gpu" ]; then
        export EMBER_ORT_GPU_LIB="$ort_gpu" EMBER_REQUIRE_ORT_GPU=1
        # A pip-installed onnxruntime-gpu finds cuDNN, cuBLAS and TensorRT in the nvidia-* wheels beside it.
        local site lib_dirs=""
        site="$(dirname "$(dirname "$(dirname "$ort_gpu")")")"
        for dir in "$site"/nvidia/*/lib "$site"/tensorrt_libs; do
            [ -d "$dir" ] && lib_dirs="$lib_dirs:$dir"
        done
        export LD_LIBRARY_PATH="$LD_LIBRARY_PATH$lib_dirs"
    fi
    if [ "$DRY_RUN" = 1 ]; then
        echo "  [env] EMBER_REPO_ROOT=$EMBER_REPO_ROOT EMBER_BIN=$EMBER_BIN EMBER_REQUIRE_GPU=1"
        echo "  [env] EMBER_NVRTC_LIB=$EMBER_NVRTC_LIB ORT_DYLIB_PATH=$ORT_DYLIB_PATH LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
        echo "  [env] EMBER_CUBLASLT_LIB=${cublaslt:-<unset: not found here>}" \
            "EMBER_ORT_GPU_LIB=${ort_gpu:-<unset: not found here>}" \
            "EMBER_REQUIRE_ORT_GPU=$([ -n "$ort_gpu" ] && echo 1 || echo '<unset>')"
    fi

    local bin="$STAGE_DIR/bin"
    # What the machine has, for the log (a later session reads it when a step fails to load a library).
    step "machine: CUDA libraries" 30 bash -c 'nvidia-smi || true; uname -a; ldconfig -p | grep -E "libcuda\.|cublas|nvrtc|onnxruntime" || true; ls /usr/local/cuda*/lib64 2>/dev/null | grep -E "cublas|nvrtc" || true; python3 -c "import onnxruntime as o; print(\"onnxruntime\", o.__version__, o.get_available_providers())" 2>&1 || true; echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"' || true
    # --include-ignored: also the engine's own throughput (cuda_throughput, at most 5000 launches per batch size).
    step "kernels: cuda_engine" 90 "$bin/kernels-cuda_engine" --include-ignored --test-threads 1 --nocapture || true
    step "kernels: generated_models" 60 "$bin/kernels-generated_models" --test-threads 1 --nocapture || true
    if [ -n "$ort_gpu" ] || [ "$DRY_RUN" = 1 ]; then
        step "kernels: onnxruntime_gpu" 120 "$bin/kernels-onnxruntime_gpu" --test-threads 1 --nocapture || true
    else
        echo "kernels: onnxruntime_gpu: not run (no onnxruntime-gpu library here)" | tee -a "$SUMMARY"
    fi
    step "server: inference gpu_ tests" 150 "$bin/server-inference" gpu_ --test-threads 1 --nocapture || true

    if [ "$DRY_RUN" = 0 ]; then
        {
            echo "### GPU inference: ci/gpu-check.sh, $(date -u +%Y-%m-%d)"
            echo
            echo "$(sed -n 1p "$STAGE_DIR/manifest.txt"); GPU: ${gpu:-unknown (no nvidia-smi)}."
            echo "One round of ${BENCH_SECONDS} s per measurement (the device window is short): read the figures as one sample each."
            echo
            echo "Checks:"
            echo
            echo '```'
            cat "$SUMMARY"
            echo '```'
            echo
            echo "Native engine alone, in the test process (kernels cuda_engine::cuda_throughput, seeded weights of the demo's shapes):"
            echo
            echo '```'
            grep -E 'batch [0-9]+: [0-9.]+ samples/s' "$LOG" || echo "(not measured: see the cuda_engine step)"
            echo '```'
        } >"$RESULTS"
    fi
    bench_backend native "$ort_cpu" || true
    if [ -n "$ort_gpu" ] || [ "$DRY_RUN" = 1 ]; then
        bench_backend ort-cuda "${ort_gpu:-<onnxruntime-gpu library>}" || true
        bench_backend ort-tensorrt "${ort_gpu:-<onnxruntime-gpu library>}" || true
    elif [ "$DRY_RUN" = 0 ]; then
        printf '\n#### ort-cuda, ort-tensorrt\n\nNot measured: no onnxruntime-gpu 1.31 library on the machine (too large to carry).\n' >>"$RESULTS"
    fi
    if [ "$DRY_RUN" = 1 ]; then
        echo "  [results] \$OUT/gpu-check/results.md (the block for bench/RESULTS.md), summary.txt, log.txt"
        return
    fi
    # The summary again at the end, with the bench steps, so that results.md holds every outcome.
    {
        echo
        echo "All steps:"
        echo
        echo '```'
        cat "$SUMMARY"
        echo '```'
    } >>"$RESULTS"
    say "run: done in $((SECONDS - started_s))s; results in $RESULTS"
    cat "$SUMMARY"
    ! grep -q -E 'FAILED|TIMED OUT' "$SUMMARY"
}

case "$mode" in
    stage) stage ;;
    run) device_run ;;
    *)
        say "dry run: nothing is built or run; this is what each mode would do on this machine."
        stage
        device_run
        ;;
esac
