#!/usr/bin/env python3
"""What the lens hooks cost while instrumentation is off: runs bench_buf, bench_watch and
bench_task from a normal build (hooks compiled in, off) and from a build configured with
-DSHK_LENS_HOOKS=OFF (no hooks at all), alternately, and prints for every row the ratio
hooked/unhooked of the median of each figure that varies (1.00: the same; above 1: the hooked
build's figure is larger, which is slower for times and faster for rates such as events/s). The raw mechanisms on the same rows (malloc+free,
bare faults, fork+wait) have no hooks: their ratios show this machine's noise.
Usage: bench/lens_hooks_cost.py HOOKED_BUILD NOHOOK_BUILD [REPS [BENCH]]   (default 5, all three)"""
import re
import statistics
import subprocess
import sys

NUM = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")
RATIO = re.compile(r"(?<![\w.])\d+(?:\.\d+)?x")  # printed ratios: left out of key and figures
BENCHES = [["bench_buf", "--quick"], ["bench_watch", "--quick"],
           ["bench_task", "--quick", "--workers", "2", "--parts", "a"]]


def rows(text):
    out = {}
    for line in text.splitlines():
        line = RATIO.sub("#x", line)
        nums = [float(n) for n in NUM.findall(line)]
        if nums:
            out.setdefault(" ".join(NUM.sub("#", line).split()), nums)
    return out


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    hooked, nohook = sys.argv[1], sys.argv[2]
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    only = sys.argv[4] if len(sys.argv) > 4 else None
    for bench in BENCHES:
        if only and bench[0] != only:
            continue
        runs = {hooked: [], nohook: []}
        for _ in range(reps):
            for build in (hooked, nohook):
                p = subprocess.run([f"{build}/bin/{bench[0]}"] + bench[1:], capture_output=True,
                                   text=True, timeout=300)
                runs[build].append(rows(p.stdout))
        print(f"{' '.join(bench)}: hooks compiled in and off / no hooks, median of {reps}")
        for key in runs[hooked][0]:
            a = [r[key] for r in runs[hooked] if key in r]
            b = [r[key] for r in runs[nohook] if key in r]
            if not a or not b or any(len(x) != len(a[0]) for x in a + b):
                continue
            ratios = []
            for i in range(len(a[0])):
                if len(set(x[i] for x in a + b)) == 1:
                    continue  # the same in every run: a label (sizes, counts), not a figure
                ma = statistics.median(x[i] for x in a)
                mb = statistics.median(x[i] for x in b)
                ratios.append(f"{ma / mb:.3f}" if mb else "-")
            if ratios:
                print(f"  {key[:74]:74s} {' '.join(ratios)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
