#!/usr/bin/env python3
"""Mean ± sample std over seeds of the HAPT JSONs in this directory (run by hand).

    python benchmarks/hapt/summarise.py [DIR]

For each of `rust-<recipe>-seed<S>.json` and `pytorch-<recipe>-seed<S>.json`: the six
protocols of `raw`, `random` and `simsiam`, the final loss, the collapse std·√128 of the
last epoch, wall and CPU seconds per epoch; as Markdown table rows.
"""
import glob
import json
import os
import re
import statistics
import sys

PROTOCOLS = ("linear_all", "knn5_all", "linear_5", "nn1_5", "linear_20", "nn1_20")


def ms(values, digits=1):
    m = statistics.fmean(values)
    s = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def main():
    here = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    runs = {}
    for path in sorted(glob.glob(os.path.join(here, "*-seed*.json"))):
        name = os.path.basename(path)[:-5]
        # `<impl>-<recipe>-seed<S>` only: runs with a batch or step count after the seed
        # (`rust-hapt-mcu-seed0-b32-k500`) are single runs, not seeds of one recipe.
        match = re.fullmatch(r"([a-z]+)-(.+)-seed(\d+)", name)
        if match is None:
            continue
        impl, recipe, seed = match.groups()
        with open(path) as f:
            runs.setdefault((recipe, impl), {})[int(seed)] = json.load(f)
    for (recipe, impl), by_seed in sorted(runs.items()):
        seeds = sorted(by_seed)
        print(f"\n{recipe} {impl} seeds {seeds}")
        for features in ("raw", "random", "simsiam"):
            cells = [ms([by_seed[s][features][p] for s in seeds]) for p in PROTOCOLS]
            print(f"| {features} | {impl} | " + " | ".join(cells) + " |")
        rows = [by_seed[s] for s in seeds]
        collapse = [r.get("collapse_std_normalised_per_epoch", [float("nan")])[-1] for r in rows]
        print(f"final loss {ms([r['final_loss'] for r in rows], 3)} "
              f"({', '.join('%.3f' % r['final_loss'] for r in rows)}); "
              f"collapse std·√128 last epoch {ms(collapse, 3)}; "
              f"s/epoch wall {ms([r['s_per_epoch'] for r in rows], 2)}, "
              f"CPU {ms([r['cpu_s_per_epoch'] for r in rows], 3)}; "
              f"SimSiam − random linear_5 "
              f"{ms([r['simsiam']['linear_5'] - r['random']['linear_5'] for r in rows])}")
        print("loadavg / build:", [r.get("loadavg_before_after", r.get("build")) for r in rows][:1])


if __name__ == "__main__":
    main()
