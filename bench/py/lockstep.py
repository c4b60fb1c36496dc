#!/usr/bin/python3
"""Runs keel's train-step bench and its Python twin in lockstep on a shared machine.

Both benches start with --lockstep 1 (each step waits for a line on stdin). This script alternates
their steps — keel, Python, Python, keel, keel, Python, ... — so that each pair of steps sees the
same machine load, and reports the median of the per-pair time ratios keel / Python over the timed
pairs (steps after the warm-up). A run-level median of each side alone mixes minutes of different
load on a VM whose speed drifts by tens of percent; the paired ratio does not.

  bench/py/lockstep.py --keel 'build/bench/train_step_bench --threads 2 --init-dir D' \\
                       --py '/usr/bin/python3 bench/py/train_step.py --threads 2 --init D/init.safetensors' \\
                       --warmup 1 --steps 6 --keel-out K.txt --py-out P.txt

The step count flags (--warmup, --steps) are passed to both commands. Each side's own output goes to
--keel-out / --py-out; this script prints one line per pair and "RESULT pair/<key> <value>" lines.
"""
import argparse
import re
import shlex
import statistics
import subprocess
import sys

STEP = re.compile(r"step (\d+): loss ([-\d.naninf]+), ([\d.]+) ms")


class Side:
    def __init__(self, cmd, out_path):
        self.out = open(out_path, "w")
        self.proc = subprocess.Popen(shlex.split(cmd), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     bufsize=1)

    def step(self):
        """Starts one step and returns its time in ms."""
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            self.out.write(line)
            m = STEP.search(line)
            if m:
                return float(m.group(3))
        raise SystemExit(f"lockstep: {self.proc.args[0]} ended before its step finished (exit {self.proc.wait()})")

    def finish(self):
        self.proc.stdin.close()
        for line in self.proc.stdout:
            self.out.write(line)
        rc = self.proc.wait()
        self.out.close()
        if rc != 0:
            raise SystemExit(f"lockstep: {self.proc.args[0]} exited {rc}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keel", required=True)
    ap.add_argument("--py", required=True)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--keel-out", required=True)
    ap.add_argument("--py-out", required=True)
    a = ap.parse_args()
    counts = f" --lockstep 1 --warmup {a.warmup} --steps {a.steps}"
    keel = Side(a.keel + counts, a.keel_out)
    k0 = keel.step()  # keel writes the shared initial weights before its first step
    py = Side(a.py + counts, a.py_out)
    p0 = py.step()
    pairs = [(k0, p0)]
    for i in range(1, a.warmup + a.steps):
        if i % 2 == 0:
            k = keel.step()
            p = py.step()
        else:
            p = py.step()
            k = keel.step()
        pairs.append((k, p))
    keel.finish()
    py.finish()
    timed = pairs[a.warmup:]
    for i, (k, p) in enumerate(pairs):
        tag = " (warm-up)" if i < a.warmup else ""
        print(f"  pair {i}: keel {k:.1f} ms, python {p:.1f} ms, ratio {k / p:.3f}{tag}")
    ratios = [k / p for k, p in timed]
    print(f"RESULT pair/ratio_median {statistics.median(ratios):.4f}")
    print(f"RESULT pair/ratio_min {min(ratios):.4f}")
    print(f"RESULT pair/ratio_max {max(ratios):.4f}")
    print(f"RESULT pair/count {len(ratios)}")


if __name__ == "__main__":
    sys.exit(main())
