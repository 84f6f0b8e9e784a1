#!/usr/bin/env python3
"""Coverage per file from a gcovr JSON report (ci/stages/45-coverage.sh): lines, branches and
functions of every file, the totals, the files short of the goal and the functions no test calls.
With --floor-lines/--floor-branches: exits 1 when a total is below its floor."""
import argparse
import json
import sys


def pct(hit, total):
    return 100.0 * hit / total if total else 100.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("--goal-lines", type=float, default=90.0)
    ap.add_argument("--goal-branches", type=float, default=80.0)
    ap.add_argument("--floor-lines", type=float)
    ap.add_argument("--floor-branches", type=float)
    ap.add_argument("--uncalled", help="write the functions never called here")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    with open(args.report, encoding="utf-8") as f:
        data = json.load(f)

    rows, uncalled = [], []
    totals = [0, 0, 0, 0, 0, 0]  # lines hit/all, branches hit/all, functions hit/all
    for entry in sorted(data["files"], key=lambda e: e["file"]):
        name = entry["file"]
        lines = [l for l in entry["lines"] if not l.get("gcovr/noncode")]
        lh = sum(1 for l in lines if l["count"] > 0)
        branches = [b for l in lines for b in l.get("branches", [])]
        bh = sum(1 for b in branches if b["count"] > 0)
        # gcovr 5.2 lists a function once per object file it was compiled into (the shared and
        # the internal static library): a function is called when any of its copies was.
        functions = {}
        for fn in entry.get("functions", []):
            key = (fn["name"], fn["lineno"])
            functions[key] = functions.get(key, 0) + fn["execution_count"]
        fh = sum(1 for c in functions.values() if c > 0)
        for (fname, line), count in sorted(functions.items(), key=lambda kv: kv[0][1]):
            if count == 0:
                uncalled.append(f"{name}:{line}: {fname}")
        rows.append((name, lh, len(lines), bh, len(branches), fh, len(functions)))
        for i, v in enumerate((lh, len(lines), bh, len(branches), fh, len(functions))):
            totals[i] += v

    tl, tb = pct(totals[0], totals[1]), pct(totals[2], totals[3])
    if not args.quiet:
        print(f"{'file':<44} {'lines':>15} {'branches':>15} {'functions':>11}")
        short = []
        for name, lh, ln, bh, bn, fh, fn in rows:
            mark = ""
            if pct(lh, ln) < args.goal_lines or pct(bh, bn) < args.goal_branches or fh < fn:
                mark = "  < goal"
                short.append(name)
            print(f"{name:<44} {pct(lh, ln):6.1f}% {lh:4}/{ln:<4} {pct(bh, bn):6.1f}% {bh:4}/{bn:<4}"
                  f" {fh:4}/{fn:<4}{mark}")
        print(f"{'TOTAL':<44} {tl:6.1f}% {totals[0]:4}/{totals[1]:<4} {tb:6.1f}% "
              f"{totals[2]:4}/{totals[3]:<4} {totals[4]:4}/{totals[5]:<4}")
        print(f"goal: >= {args.goal_lines:g}% of lines, >= {args.goal_branches:g}% of branches "
              f"per file, every function called")
        print(f"files short of the goal: {len(short)} of {len(rows)}")
        print(f"functions never called: {len(uncalled)} of {totals[5]}")
        for u in uncalled:
            print("  never called: " + u)
    if args.uncalled:
        with open(args.uncalled, "w", encoding="utf-8") as f:
            f.write("".join(u + "\n" for u in uncalled))
    print(f"coverage: {tl:.1f}% of lines ({totals[0]}/{totals[1]}), {tb:.1f}% of branches "
          f"({totals[2]}/{totals[3]}), {totals[4]}/{totals[5]} functions called")
    ok = True
    if args.floor_lines is not None and tl < args.floor_lines:
        print(f"lines {tl:.1f}% < floor {args.floor_lines}%")
        ok = False
    if args.floor_branches is not None and tb < args.floor_branches:
        print(f"branches {tb:.1f}% < floor {args.floor_branches}%")
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
