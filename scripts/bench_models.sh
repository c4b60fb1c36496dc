#!/usr/bin/env bash
# Model benchmarks, measured side by side in one run on this machine, printed as one table:
#  - decode tokens/s, KV-cache generate() vs full recomputation, 256 new tokens, batch 1 and 32
#    (bench/decode_bench.cpp; target: >= 10x at batch 1);
#  - forward + backward + AdamW step of a ~25M-parameter Llama-layout model, seq 256, batch 8,
#    keel (bench/train_step_bench.cpp) vs a PyTorch-eager twin (bench/py/train_step.py) on Debian's
#    python3-torch, the same LibTorch 1.13 (targets: keel <= 0.9x Python's time, and >= 40% of the
#    fp32 matmul peak that the benches measure with a 2048^3 sgemm at the same thread count).
# Each benchmark runs RUNS times. The train-step benches run in lockstep (bench/py/lockstep.py:
# keel and Python steps alternate, each pair under the same load — this shared VM's speed drifts by
# tens of percent within minutes); the keel/Python ratio is the median over every timed pair of
# every run, the other figures medians over runs (and a ratio normalised by each side's own
# measured sgemm peak). Both sides
# get the same thread count: OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = THREADS and --threads.
#
#   scripts/bench_models.sh                      # RUNS=3 THREADS=2
#   RUNS=5 TRAIN_ARGS="--warmup 2 --steps 5" DECODE_ARGS="--stride-b1 1 --stride 1" scripts/bench_models.sh
#   REPORT_ONLY=1 OUT_DIR=/tmp/keel_bench_models.XXXX scripts/bench_models.sh   # table of an earlier run
# Needs /usr/bin/python3 with python3-torch (apt install python3-torch). Logs: $OUT_DIR (default a temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${KEEL_BUILD_DIR:-build}
RUNS=${RUNS:-3}
THREADS=${THREADS:-2}
TRAIN_ARGS=${TRAIN_ARGS:-"--warmup 1 --steps 6"}
DECODE_ARGS=${DECODE_ARGS:-""}
PY=/usr/bin/python3
OUT_DIR=${OUT_DIR:-$(mktemp -d /tmp/keel_bench_models.XXXXXX)}
mkdir -p "$OUT_DIR"

if [ -z "${REPORT_ONLY:-}" ]; then  # REPORT_ONLY=1 OUT_DIR=<logs of a run>: only print the table
[ -f "$build/build.ninja" ] || cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
ninja -C "$build" -j "${KEEL_JOBS:-2}" decode_bench train_step_bench > "$OUT_DIR/build.log" 2>&1 || {
  tail -30 "$OUT_DIR/build.log"; exit 1; }
"$PY" -c 'import torch' 2>/dev/null || { echo "error: $PY has no torch (apt install python3-torch)"; exit 1; }

export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
echo "bench_models: $RUNS runs, $THREADS threads, logs in $OUT_DIR; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
for run in $(seq 1 "$RUNS"); do
  log="$OUT_DIR/run$run"
  echo "run $run/$RUNS: load $(cut -d' ' -f1-3 /proc/loadavg)"
  # shellcheck disable=SC2086
  "$build/bench/decode_bench" --threads "$THREADS" $DECODE_ARGS > "$log.decode.txt"
  grep -v '^RESULT' "$log.decode.txt" | sed 's/^/  /'
  mkdir -p "$log.init"
  # The two train-step benches in lockstep: their steps alternate, each pair under the same load.
  # shellcheck disable=SC2086
  "$PY" bench/py/lockstep.py --keel "$build/bench/train_step_bench --threads $THREADS --init-dir $log.init" \
    --py "$PY bench/py/train_step.py --threads $THREADS --init $log.init/init.safetensors" $TRAIN_ARGS \
    --keel-out "$log.keel.txt" --py-out "$log.py.txt" > "$log.pair.txt"
  grep -v '^RESULT' "$log.pair.txt" | sed 's/^/  /'
  grep -v '^RESULT' "$log.keel.txt" | grep -v '  keel step' | sed 's/^/  /'
  grep -v '^RESULT' "$log.py.txt" | grep -v '  python step' | sed 's/^/  /'
  rm -rf "$log.init"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
fi

"$PY" - "$OUT_DIR" "$RUNS" <<'EOF'
import statistics, sys
out_dir, runs = sys.argv[1], int(sys.argv[2])
def results(path):
    r = {}
    for line in open(path):
        if line.startswith("RESULT "):
            _, k, v = line.split(maxsplit=2)
            r[k] = v.strip()
    return r
R = [dict(**results(f"{out_dir}/run{i}.decode.txt"), **results(f"{out_dir}/run{i}.keel.txt"),
          **results(f"{out_dir}/run{i}.py.txt")) for i in range(1, runs + 1)]
pair_ratios = []  # keel / python of every timed lockstep pair, all runs
for i in range(1, runs + 1):
    for line in open(f"{out_dir}/run{i}.pair.txt"):
        if line.startswith("  pair ") and "warm-up" not in line:
            pair_ratios.append(float(line.rsplit("ratio ", 1)[1]))
f = lambda k: [float(r[k]) for r in R]
med = statistics.median
rows = []
def row(metric, keel, base, ratio, target, ok):
    rows.append((metric, keel, base, ratio, target, "-" if ok is None else ("PASS" if ok else "FAIL")))
for b in (1, 32):
    if f"decode/b{b}/cache_tok_s" not in R[0]:
        continue
    c, full = f(f"decode/b{b}/cache_tok_s"), f(f"decode/b{b}/full_tok_s")
    ratio = med([x / y for x, y in zip(c, full)])
    stride = int(f(f"decode/b{b}/full_stride")[0])
    note = "" if stride == 1 else f" (every {stride}th step timed)"
    target, ok = (">= 10x", ratio >= 10) if b == 1 else ("report", None)
    row(f"decode tok/s, batch {b}: KV cache vs full recompute{note}", f"{med(c):.1f}", f"{med(full):.1f}",
        f"{ratio:.2f}x", target, ok)
k_ms, p_ms = f("train/ms_per_step"), f("py/ms_per_step")
ratio = med(pair_ratios)
q = statistics.quantiles(pair_ratios, n=4) if len(pair_ratios) >= 2 else [ratio, ratio, ratio]
row(f"train step ms (fwd+bwd+AdamW, 25.8M, 8x256): keel vs python eager, median of {len(pair_ratios)} lockstep "
    f"pairs (quartiles {q[0]:.3f}-{q[2]:.3f})", f"{med(k_ms):.0f}", f"{med(p_ms):.0f}", f"{ratio:.3f}", "<= 0.9",
    ratio <= 0.9)
k_g, p_g, peak, p_peak = f("train/gflops"), f("py/gflops"), f("train/peak_gflops"), f("py/peak_gflops")
# On a shared machine the load moves between the keel and the Python half of a run; each side's
# sgemm peak is measured right after its steps, so time x peak compares them at equal machine speed.
norm = med([(km * kp) / (pm * pp) for km, kp, pm, pp in zip(k_ms, peak, p_ms, p_peak)])
row("  same, each side's time x its own measured sgemm peak (load-normalised)", "-", "-", f"{norm:.3f}", "<= 0.9",
    norm <= 0.9)
frac = med([g / p for g, p in zip(k_g, peak)])
py_frac = med([g / p for g, p in zip(p_g, p_peak)])
row("train GFLOP/s (6*N*tokens + attention)", f"{med(k_g):.1f}", f"{med(p_g):.1f}", f"{med([x / y for x, y in zip(k_g, p_g)]):.3f}", "-", None)
row("train GFLOP/s as % of measured sgemm peak", f"{100 * frac:.1f}%", f"{100 * py_frac:.1f}%", "-", ">= 40%", frac >= 0.4)
row("fp32 sgemm peak 2048^3 GFLOP/s (same threads)", f"{med(peak):.1f}", f"{med(p_peak):.1f}", f"{med([x / y for x, y in zip(peak, p_peak)]):.3f}", "-", None)
l0, p0 = f("train/loss0"), f("py/loss0")
d = max(abs(x - y) for x, y in zip(l0, p0))
row("step-0 loss, same weights and tokens (parity check)", f"{l0[0]:.6f}", f"{p0[0]:.6f}", f"|diff| {d:.1e}", "< 1e-4", d < 1e-4)
hdr = ("metric", "keel", "python/baseline", "ratio", "target", "result")
w = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(6)]
line = lambda r: "| " + " | ".join(str(x).ljust(w[i]) for i, x in enumerate(r)) + " |"
print()
print(f"medians over {runs} runs; per-run figures in {out_dir}")
print(line(hdr))
print("|" + "|".join("-" * (x + 2) for x in w) + "|")
for r in rows:
    print(line(r))
EOF
