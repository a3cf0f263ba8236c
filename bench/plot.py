#!/usr/bin/python3
"""Plots tutti-bench JSON files (-J) as one PNG.

Two panels, both against the message size on log axes: bus bandwidth
(GB/s) and time per call (us). Every file contributes one line per library
(tutti, and the --peer library when the run had one) and per (type, redop)
it swept, and with --algo one tutti line per algorithm; --bound runs add
the bound as a dashed line. Lines are labelled with the file's name (or
--label), so several runs compare on one plot.

    /usr/bin/python3 bench/plot.py out.json [more.json ...] -o bench.png

Uses only the standard library and Debian's python3-matplotlib. Exits 1
with a message when a file is not a tutti-bench JSON document.
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend choice)

SCHEMA_PREFIX = "tutti-bench/"


def load(path):
    with open(path) as f:
        doc = json.load(f)
    if not str(doc.get("schema", "")).startswith(SCHEMA_PREFIX):
        raise ValueError("%s: not a tutti-bench JSON file" % path)
    return doc


def series(doc, label, placement):
    """Yields (name, style, sizes, busbw, times) for one document.

    One tutti line per (algorithm, type, redop); the peer and the bound do
    not depend on tutti's algorithm, so with --algo all they are drawn
    once, from the first algorithm's rows.
    """
    rows = [r for r in doc["rows"] if r["size"] > 0]
    keys = sorted({(r["type"], r["redop"]) for r in rows})
    algos = []
    for r in rows:  # in sweep order
        if r.get("algorithm") not in algos:
            algos.append(r.get("algorithm"))
    peer = doc["environment"].get("peer")
    for dtype, redop in keys:
        for algo in algos:
            sel = [r for r in rows if (r["type"], r["redop"]) ==
                   (dtype, redop) and r.get("algorithm") == algo]
            suffix = "" if len(keys) == 1 else " %s %s" % (dtype, redop)
            libs = [("tutti", "tutti" if len(algos) == 1
                     else "tutti %s" % algo)]
            if peer and algo == algos[0]:
                libs.append(("peer", peer["name"]))
            for key, lib in libs:
                pts = [(r["size"], r[key][placement]) for r in sel
                       if r.get(key) and r[key][placement]["busbw_gbs"]
                       is not None]
                if pts:
                    yield ("%s %s%s" % (label, lib, suffix), "-o",
                           [p[0] for p in pts],
                           [p[1]["busbw_gbs"] for p in pts],
                           [p[1]["time_us"] for p in pts])
            bound = [(r["size"], r["bound"]["busbw_bound_gbs"]) for r in sel
                     if r.get("bound") and r["bound"]["busbw_bound_gbs"]]
            if bound and algo == algos[0]:
                yield ("%s memcpy bound%s" % (label, suffix), "--",
                       [b[0] for b in bound], [b[1] for b in bound], None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", nargs="+", help="tutti-bench -J output")
    ap.add_argument("-o", "--output", default="tutti-bench.png",
                    help="PNG to write (default tutti-bench.png)")
    ap.add_argument("--label", action="append", default=[],
                    help="a label per file, in order (default: file name)")
    ap.add_argument("--in-place", action="store_true",
                    help="plot the in-place results (default out-of-place)")
    args = ap.parse_args()

    placement = "in_place" if args.in_place else "out_of_place"
    fig, (ax_bw, ax_t) = plt.subplots(1, 2, figsize=(13, 5))
    colls = set()
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colors = {}  # one colour per line name, the same in both panels
    for k, path in enumerate(args.json):
        try:
            doc = load(path)
        except (OSError, ValueError, KeyError) as e:
            print("plot.py: %s" % e, file=sys.stderr)
            return 1
        colls.add("%s, %d ranks" % (doc["parameters"]["collective"],
                                    doc["parameters"]["nranks"]))
        label = (args.label[k] if k < len(args.label)
                 else os.path.splitext(os.path.basename(path))[0])
        for name, style, sizes, bw, times in series(doc, label, placement):
            color = colors.setdefault(name, cycle[len(colors) % len(cycle)])
            ax_bw.plot(sizes, bw, style, label=name, color=color,
                       markersize=3)
            if times is not None:
                ax_t.plot(sizes, times, style, label=name, color=color,
                          markersize=3)
    for ax, ylabel in ((ax_bw, "bus bandwidth (GB/s)"),
                       (ax_t, "time per call (us)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("size (bytes)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle("tutti-bench: %s (%s)" % ("; ".join(sorted(colls)),
                                          placement.replace("_", "-")))
    fig.tight_layout()
    fig.savefig(args.output, dpi=100)
    print("plot.py: wrote %s" % args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
