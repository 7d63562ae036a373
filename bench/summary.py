#!/usr/bin/env python3
"""Markdown tables from the benchmarks' hyperfine JSON, and timings taken
without hyperfine recorded in the same shape, so that bench/chart.py and
the tables read one format. Standard library only.

  summary.py table FILE [--title T] [--ref NAME]... [--bytes N]
      a markdown table: median, stddev, the ratio to each reference command
      (median / the reference's median) and, given the bytes each command
      moves (or a "bytes" in the file's "bench" metadata), MB/s
  summary.py record FILE NAME SECONDS...
      adds (or replaces) a result NAME with these times
  summary.py meta FILE KEY=VALUE...
      sets metadata (numbers stay numbers) under the file's "bench" key
"""
import argparse
import json
import os
import statistics
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def save(path, doc):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=2)
    os.replace(tmp, path)


def ms(seconds):
    v = seconds * 1e3
    if v < 10:
        return f"{v:.2f} ms"
    if v < 100:
        return f"{v:.1f} ms"
    return f"{v:.0f} ms"


def cell(text):
    # A bare | would end the cell (commands like `zstd -dc | tar -x`).
    return text.replace("|", "\\|")


def table(a):
    doc = load(a.file)
    rows = doc["results"]
    med = {r["command"]: r["median"] for r in rows}
    refs = [r for r in a.ref if r in med]
    for r in a.ref:
        if r not in med:
            print(f"(no ratio to {r}: it was not measured)\n")
    nbytes = a.bytes if a.bytes is not None else doc.get("bench", {}).get("bytes")
    head = ["", "median", "stddev"] + [f"× {r}" for r in refs]
    if nbytes:
        head.append("MB/s")
    if a.title:
        print(f"### {a.title}\n")
    print("| " + " | ".join(cell(c) for c in head) + " |")
    print("| --- |" + " ---: |" * (len(head) - 1))
    for r in rows:
        sd = r.get("stddev")
        cells = [r["command"], ms(r["median"]), ms(sd) if sd is not None else "-"]
        cells += [f"{r['median'] / med[ref]:.2f}" for ref in refs]
        if nbytes:
            cells.append(f"{nbytes / 1e6 / r['median']:.0f}")
        print("| " + " | ".join(cell(c) for c in cells) + " |")
    runs = sorted({len(r.get("times") or []) for r in rows})
    if runs and runs[0]:
        each = f"{runs[0]}" if len(runs) == 1 else f"{runs[0]}-{runs[-1]}"
        print(f"\n{each} runs each; medians, stddev over the runs.")
    print()


def record(a):
    doc = load(a.file) if os.path.exists(a.file) else {"results": []}
    times = [float(t) for t in a.seconds]
    entry = {
        "command": a.name,
        "mean": statistics.fmean(times),
        "stddev": statistics.stdev(times) if len(times) > 1 else None,
        "median": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "times": times,
    }
    doc["results"] = [r for r in doc["results"] if r["command"] != a.name] + [entry]
    save(a.file, doc)


def meta(a):
    doc = load(a.file)
    m = doc.setdefault("bench", {})
    for kv in a.pairs:
        k, _, v = kv.partition("=")
        for conv in (int, float):
            try:
                v = conv(v)
                break
            except ValueError:
                pass
        m[k] = v
    save(a.file, doc)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("table")
    t.add_argument("file")
    t.add_argument("--title")
    t.add_argument("--ref", action="append", default=[])
    t.add_argument("--bytes", type=int)
    t.set_defaults(func=table)
    r = sub.add_parser("record")
    r.add_argument("file")
    r.add_argument("name")
    r.add_argument("seconds", nargs="+")
    r.set_defaults(func=record)
    m = sub.add_parser("meta")
    m.add_argument("file")
    m.add_argument("pairs", nargs="+")
    m.set_defaults(func=meta)
    a = p.parse_args()
    a.func(a)


if __name__ == "__main__":
    sys.exit(main())
