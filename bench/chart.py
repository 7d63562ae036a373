#!/usr/bin/env python3
"""PNG charts of one bench/all.sh results directory, from the parts' JSON:

  start.png       /bin/true start-to-exit by tool (start/startup*.json)
  density.png     run -d + rm -f round trip, COUNT containers up and removed,
                  memory per container (density/*.json)
  throughput.png  pull, import and published-port MB/s (pull/, import/, port/)

A chart whose data is missing (a part skipped or failed) is left out; a
panel likewise. Usage: chart.py RESULTS_DIR. Needs matplotlib (Debian:
python3-matplotlib); draws with the Agg backend, no display.
"""
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

BURROW = "#c0392b"
PEER = "#7f8c8d"


def results(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def colour(name):
    return BURROW if name.startswith("burrow") else PEER


def bars(ax, names, values, errs=None, unit="", fmt="{:.1f}", log=False):
    """Horizontal bars, top to bottom in the given order, each labelled."""
    y = list(range(len(names)))[::-1]
    ax.barh(y, values, xerr=errs, color=[colour(n) for n in names], capsize=3)
    ax.set_yticks(y, names)
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(unit)
    errs = errs or [0] * len(values)
    top = max(v + e for v, e in zip(values, errs)) if values else 1
    for yi, v, e in zip(y, values, errs):
        # Past the error bar, so the two do not overlap.
        x = (v + e) * 1.1 if log else v + e + top * 0.015
        ax.text(x, yi, fmt.format(v), va="center", fontsize=8)
    if log:
        # Bars on a log scale start from the power of ten below the
        # smallest, so their lengths compare the same way in every panel.
        low = min(v for v in values if v > 0)
        ax.set_xlim(left=10 ** math.floor(math.log10(low)), right=top * 4)
    else:
        ax.set_xlim(right=top * 1.3)
    ax.grid(axis="x", alpha=0.3)


def hyperfine_rows(doc):
    rows = doc["results"]
    return ([r["command"] for r in rows], [r["median"] * 1e3 for r in rows],
            [(r.get("stddev") or 0) * 1e3 for r in rows])


def start_chart(d, out):
    panels = [(f, t) for f, t in (("startup.json", "with a subordinate id range"),
                                  ("startup-nosub.json", "without a subordinate id range"))
              if results(os.path.join(d, "start", f))]
    if not panels:
        return False
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.2 + 2.6 * len(panels)), squeeze=False)
    limits = []
    for ax, (f, title) in zip(axes[:, 0], panels):
        names, med, sd = hyperfine_rows(results(os.path.join(d, "start", f)))
        bars(ax, names, med, sd, unit="median ms (log scale)", fmt="{:.1f} ms", log=True)
        ax.set_title(f"/bin/true in a fresh sandbox, {title}", fontsize=10)
        limits.append(ax.get_xlim())
    # One scale for both panels, so the same time has the same length.
    for ax in axes[:, 0]:
        ax.set_xlim(min(lo for lo, _ in limits), max(hi for _, hi in limits))
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


def density_chart(d, out):
    rt = results(os.path.join(d, "density", "roundtrip.json"))
    many = results(os.path.join(d, "density", "many.json"))
    pss = results(os.path.join(d, "density", "pss.json"))
    panels = [p for p in (rt, many, pss) if p]
    if not panels:
        return False
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 1.2 + 1.6 * len(panels)), squeeze=False)
    axes = list(axes[:, 0])
    if rt:
        ax = axes.pop(0)
        names, med, sd = hyperfine_rows(rt)
        bars(ax, names, med, sd, unit="median ms", fmt="{:.0f} ms")
        ax.set_title("run -d IMG sleep 1000, then rm -f", fontsize=10)
    if many:
        ax = axes.pop(0)
        names, med, sd = hyperfine_rows(many)
        bars(ax, [f"burrow: {n}" for n in names], [m / 1e3 for m in med],
             [s / 1e3 for s in sd], unit="median s", fmt="{:.2f} s")
        ax.set_title(f"{many.get('bench', {}).get('count', '?')} containers up, then removed", fontsize=10)
    if pss:
        ax = axes.pop(0)
        names = ["burrow: monitor", "burrow: inner process", "burrow: both"]
        vals = [pss["monitor_pss_kib"], pss["inner_pss_kib"], pss["total_pss_kib"]]
        bars(ax, names, vals, unit="mean Pss KiB per container", fmt="{:.0f} KiB")
        ax.axvline(1024, color="black", linestyle="--", linewidth=0.8)
        ax.set_title(f"memory with {pss['containers']} containers up (dashed: 1 MiB)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


def throughput_chart(d, out):
    panels = []
    for title, files in (("pull from a registry on loopback (compressed MB/s)", ["pull/pull.json"]),
                         ("import (uncompressed MB/s)", ["import/import-gzip.json", "import/import-zstd.json"]),
                         ("published port", ["port/port.json"])):
        names, rates = [], []
        for f in files:
            doc = results(os.path.join(d, f))
            if not doc or not doc.get("bench", {}).get("bytes"):
                continue
            n = doc["bench"]["bytes"]
            for r in doc["results"]:
                names.append(r["command"])
                rates.append(n / 1e6 / r["median"])
        if names:
            panels.append((title, names, rates))
    if not panels:
        return False
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, sum(1.2 + 0.35 * len(p[1]) for p in panels)),
                             squeeze=False)
    for ax, (title, names, rates) in zip(axes[:, 0], panels):
        bars(ax, names, rates, unit="MB/s (median run)", fmt="{:.0f} MB/s")
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    for name, draw in (("start.png", start_chart), ("density.png", density_chart),
                       ("throughput.png", throughput_chart)):
        path = os.path.join(d, name)
        if draw(d, path):
            print(path)
        elif os.path.exists(path):
            os.remove(path)


if __name__ == "__main__":
    main()
