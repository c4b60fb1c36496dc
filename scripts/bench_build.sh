# Sourced by the scripts/bench_*.sh: bench_build TARGET... configures build/ (KEEL_BUILD_DIR) when
# needed and builds the targets (KEEL_JOBS jobs, under flock(1) on KEEL_BUILD_LOCK when set), the
# log in $OUT_DIR/build.log; on failure it prints the log's tail and exits.
bench_build() {
  local build=${KEEL_BUILD_DIR:-build}
  [ -f "$build/build.ninja" ] || cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
  local lock=()
  [ -n "${KEEL_BUILD_LOCK:-}" ] && lock=(flock "$KEEL_BUILD_LOCK")
  "${lock[@]}" ninja -C "$build" -j "${KEEL_JOBS:-2}" "$@" > "$OUT_DIR/build.log" 2>&1 || {
    tail -30 "$OUT_DIR/build.log"; exit 1; }
}
