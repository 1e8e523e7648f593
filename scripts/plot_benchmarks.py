#!/usr/bin/env python3
"""Table and plot of benches/head.rs from criterion's output, with no dependencies.

Usage:
  plot_benchmarks.py [--machine TEXT] NAME=CRITERION_DIR... [--table OUT.md] [--svg OUT.svg]

For every flag set NAME it reads CRITERION_DIR/**/new/{benchmark,estimates}.json and
reports the median time per iteration, GFLOP/s (multiply-adds x 2), the speed-up over the
reference (`oxicuda-ssl` 0.5.5) from the same run, and the fraction of the limit measured
by the same run: the FMA peak (`limits/fma_peak`), and for the paper config, when the
weights read exceed the last-level cache (`--llc-bytes`, 32 MiB), also the DRAM bound
(weight bytes read / `limits/read_bandwidth`); the limit is the larger of the two times. Entries marked * are derived, not measured: the reference's batch loss at
paper N = 64 is 64 x its single loss, our scalar twin's is 8 x its N = 8 batch.
"""

import argparse
import json
import math
import os
import sys

CONFIGS = {
    "default": (64, 128, 64, 32),
    "mid": (256, 512, 128, 64),
    "paper": (2048, 2048, 512, 2048),
}
IMPLS = ["simd", "scalar", "reference"]
CASES = [("project", None), ("predict", None), ("loss", None),
         ("batch_loss", 1), ("batch_loss", 8), ("batch_loss", 64)]
BATCH_LANES = 16


def param_counts(dims):
    e, p, q, o = dims
    return e * p + p + p * o + o, o * q + q + q * o + o


def flops(dims, op, n):
    e, p, q, o = dims
    project = 2 * (e * p + p * o)
    predict = 2 * (o * q + q * o)
    return {"project": project, "predict": predict,
            "loss": 2 * (project + predict),
            "batch_loss": 2 * (project + predict) * (n or 1)}[op]


def weight_bytes(dims, op, n, impl):
    """Bytes of weights each implementation reads per call (from DRAM when they do not
    fit in the caches)."""
    proj, pred = param_counts(dims)
    if impl == "reference":  # project, predict per view: every matrix twice per pair
        per_pair = 2 * (proj + pred)
        return 4 * {"project": proj, "predict": pred, "loss": per_pair,
                    "batch_loss": per_pair * (n or 1)}[op]
    if op == "batch_loss":
        passes = 1 if n == 1 else math.ceil(2 * n / BATCH_LANES)
        return 4 * (proj + pred) * passes
    return 4 * {"project": proj, "predict": pred, "loss": proj + pred}[op]


def load(directory):
    """{full_id: median ns} for one criterion directory."""
    out = {}
    for root, _dirs, files in os.walk(directory):
        if os.path.basename(root) != "new" or "benchmark.json" not in files:
            continue
        with open(os.path.join(root, "benchmark.json")) as f:
            bench = json.load(f)
        with open(os.path.join(root, "estimates.json")) as f:
            est = json.load(f)
        out[bench["full_id"]] = est["median"]["point_estimate"]
    return out


def case_id(config, op, n, impl):
    return f"{config}/{op}/{impl}" + (f"/{n}" if n is not None else "")


def analyse(medians):
    """One row per (config, case): (median ns, derived?) per implementation."""
    rows = []
    for config, dims in CONFIGS.items():
        for op, n in CASES:
            row = {"config": config, "op": op, "n": n}
            for impl in IMPLS:
                ns = medians.get(case_id(config, op, n, impl))
                derived = False
                if ns is None and op == "batch_loss" and n == 64:
                    if impl == "reference":
                        single = medians.get(case_id(config, "loss", None, impl))
                        ns = single * 64 if single else None
                    elif impl == "scalar":
                        eight = medians.get(case_id(config, op, 8, impl))
                        ns = eight * 8 if eight else None
                    derived = ns is not None
                row[impl] = (ns, derived)
            rows.append(row)
    return rows


def load_all(directory):
    medians = load(directory)
    throughput = {}
    for root, _dirs, files in os.walk(directory):
        if os.path.basename(root) == "new" and "benchmark.json" in files:
            with open(os.path.join(root, "benchmark.json")) as f:
                bench = json.load(f)
            throughput[bench["full_id"]] = bench.get("throughput") or {}
    return medians, throughput


def fmt_ns(ns):
    if ns is None:
        return "–"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sets", nargs="+", help="NAME=CRITERION_DIR")
    ap.add_argument("--machine", default="")
    ap.add_argument("--table")
    ap.add_argument("--svg")
    ap.add_argument("--splice", help="a Markdown file whose text between "
                    "<!-- results:start --> and <!-- results:end --> is replaced by the table")
    ap.add_argument("--llc-bytes", type=float, default=32 * 2**20,
                    help="last-level cache size: weights smaller than this are not DRAM-bound")
    args = ap.parse_args()

    results = []  # (name, rows, peak GFLOP/s, bandwidth GB/s)
    for entry in args.sets:
        name, directory = entry.split("=", 1)
        medians, throughput = load_all(directory)
        if not medians:
            print(f"no criterion results in {directory}", file=sys.stderr)
            continue
        rows = analyse(medians)
        peak = bandwidth = None
        if "limits/fma_peak" in medians:
            peak = throughput["limits/fma_peak"]["Elements"] / medians["limits/fma_peak"]
        if "limits/read_bandwidth" in medians:
            bandwidth = (throughput["limits/read_bandwidth"]["Bytes"]
                         / medians["limits/read_bandwidth"])
        results.append((name, rows, peak, bandwidth))

    lines = []
    if args.machine:
        lines.append(f"Machine: {args.machine}.\n")
    for name, rows, peak, bandwidth in results:
        lines.append(f"### `{name}` flags\n")
        lines.append(f"Measured limits in this run: FMA peak **{peak:.1f} GFLOP/s**, "
                     f"streaming read of a 42 MB buffer **{bandwidth:.1f} GB/s**.\n")
        lines.append("| case | SIMD | SIMD GFLOP/s | SIMD × ref | SIMD % of limit | "
                     "scalar twin | scalar × ref | reference | ref GFLOP/s |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for row in rows:
            dims = CONFIGS[row["config"]]
            f = flops(dims, row["op"], row["n"])
            label = f"{row['config']} {row['op']}" + (f" N={row['n']}" if row["n"] else "")
            simd_ns, _ = row["simd"]
            scal_ns, scal_d = row["scalar"]
            ref_ns, ref_d = row["reference"]
            cells = [label]
            cells.append(fmt_ns(simd_ns))
            cells.append(f"{f / simd_ns:.1f}" if simd_ns else "–")
            cells.append(f"{ref_ns / simd_ns:.1f}×" if simd_ns and ref_ns else "–")
            if simd_ns and peak:
                t_flop = f / peak
                limit, what = t_flop, "FMA"
                read = weight_bytes(dims, row["op"], row["n"], "simd")
                # Weights that fit in the last-level cache are not bound by DRAM.
                if row["config"] == "paper" and bandwidth and read > args.llc_bytes:
                    t_mem = read / bandwidth
                    if t_mem > t_flop:
                        limit, what = t_mem, "DRAM"
                cells.append(f"{100 * limit / simd_ns:.0f} % ({what})")
            else:
                cells.append("–")
            cells.append(fmt_ns(scal_ns) + ("*" if scal_d else ""))
            cells.append(f"{ref_ns / scal_ns:.1f}×" if scal_ns and ref_ns else "–")
            cells.append(fmt_ns(ref_ns) + ("*" if ref_d else ""))
            cells.append(f"{f / ref_ns:.2f}" if ref_ns else "–")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    table = "\n".join(lines)
    if args.table:
        with open(args.table, "w") as f:
            f.write(table + "\n")
    else:
        print(table)
    if args.splice:
        splice(args.splice, table)
    if args.svg:
        write_svg(args.svg, results, args.machine)


def splice(path, table):
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    with open(path) as f:
        text = f.read()
    if start not in text or end not in text:
        print(f"{path}: no {start} ... {end} markers, not spliced", file=sys.stderr)
        return
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    with open(path, "w") as f:
        f.write(head + start + "\n\n" + table + "\n" + end + tail)


def write_svg(path, results, machine):
    """One panel per flag set: GFLOP/s per case (log scale), SIMD / scalar / reference
    bars, the measured FMA peak as a dashed line."""
    colours = {"simd": "#1f77b4", "scalar": "#ff7f0e", "reference": "#7f7f7f"}
    labels = [f"{c} {op}" + (f" N={n}" if n else "") for c in CONFIGS for op, n in CASES]
    bar_h, gap = 5, 5
    row_h = 3 * bar_h + gap
    left, top, panel_w, panel_gap = 120, 60, 300, 30
    lo, hi = 0.1, 1000.0
    height = top + row_h * len(labels) + 50
    width = left + len(results) * (panel_w + panel_gap)

    def x_of(v):
        v = min(max(v, lo), hi)
        return panel_w * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="10">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="16" font-size="13">simsiam head: GFLOP/s (log scale), '
           f'median of criterion samples{" — " + machine if machine else ""}</text>']
    lx = left
    for impl in IMPLS:
        out.append(f'<rect x="{lx}" y="24" width="10" height="8" fill="{colours[impl]}"/>')
        name = {"simd": "SIMD core", "scalar": "scalar twin",
                "reference": "oxicuda-ssl 0.5.5"}[impl]
        out.append(f'<text x="{lx + 14}" y="32">{name}</text>')
        lx += 110
    out.append(f'<text x="{lx}" y="32">dashed: measured FMA peak; * derived</text>')
    for i, label in enumerate(labels):
        y = top + i * row_h + row_h / 2 + 3
        out.append(f'<text x="{left - 6}" y="{y}" text-anchor="end">{label}</text>')
    for p, (name, rows, peak, _bw) in enumerate(results):
        x0 = left + p * (panel_w + panel_gap)
        out.append(f'<text x="{x0 + panel_w / 2}" y="{top - 8}" text-anchor="middle" '
                   f'font-size="12">{name}</text>')
        for tick in [0.1, 1, 10, 100, 1000]:
            tx = x0 + x_of(tick)
            out.append(f'<line x1="{tx}" y1="{top}" x2="{tx}" y2="{top + row_h * len(labels)}" '
                       f'stroke="#ddd"/>')
            out.append(f'<text x="{tx}" y="{top + row_h * len(labels) + 14}" '
                       f'text-anchor="middle">{tick:g}</text>')
        if peak:
            px = x0 + x_of(peak)
            out.append(f'<line x1="{px}" y1="{top}" x2="{px}" y2="{top + row_h * len(labels)}" '
                       f'stroke="black" stroke-dasharray="4,3"/>')
        for i, row in enumerate(rows):
            f = flops(CONFIGS[row["config"]], row["op"], row["n"])
            for j, impl in enumerate(IMPLS):
                ns, derived = row[impl]
                if not ns:
                    continue
                gf = f / ns
                y = top + i * row_h + j * bar_h + gap / 2
                opacity = "0.45" if derived else "1"
                out.append(f'<rect x="{x0}" y="{y}" width="{x_of(gf):.1f}" height="{bar_h - 1}" '
                           f'fill="{colours[impl]}" fill-opacity="{opacity}">'
                           f'<title>{name} {row["config"]} {row["op"]} {impl}: '
                           f'{gf:.2f} GFLOP/s</title></rect>')
        out.append(f'<text x="{x0 + panel_w / 2}" y="{top + row_h * len(labels) + 30}" '
                   f'text-anchor="middle">GFLOP/s</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
