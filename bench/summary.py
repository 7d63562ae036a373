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
  summary.py targets DIR
      the speed targets, each with what bench/all.sh's results in DIR
      measured and whether it is met
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
        print(f"\n{each} {'run' if each == '1' else 'runs'} each; medians, stddev over the runs.")
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


def targets(a):
    d = a.dir

    def medians(rel):
        path = os.path.join(d, rel)
        if not os.path.exists(path):
            return None, {}
        doc = load(path)
        return doc, {r["command"]: r["median"] for r in doc["results"]}

    rows = []

    def check(target, measured, ok):
        rows.append((target, measured, ok if isinstance(ok, str) else "yes" if ok else "**no**"))

    def ratio(target, med, a_name, b_name, limit, faster=False):
        """a/b at most limit, or (faster) b/a at least limit."""
        a_ = next((v for k, v in med.items() if k.startswith(a_name)), None)
        b_ = next((v for k, v in med.items() if k.startswith(b_name)), None)
        if a_ is None or b_ is None:
            return
        if faster:
            check(target, f"{b_ / a_:.1f}x ({ms(a_)} vs {ms(b_)})", b_ / a_ >= limit)
        else:
            check(target, f"{a_ / b_:.2f}x ({ms(a_)} vs {ms(b_)})", a_ / b_ <= limit)

    for f, who in (("startup.json", "subuid range"), ("startup-nosub.json", "no subuid range")):
        _, med = medians(os.path.join("start", f))
        ratio(f"`run --rm --network none` ≤ 1.5x ch-run ({who})", med, "burrow run --rm", "ch-run", 1.5)
        ratio(f"`run --rm --network none` ≥ 50x faster than podman's ({who})", med, "burrow run --rm", "podman", 50, True)
        ratio(f"plain `run --network none` ≤ 2x ch-run ({who})", med, "burrow run (kept)", "ch-run", 2)
    _, med = medians(os.path.join("start", "startup.json"))
    ratio("`run --rm` on the default network ≤ 3x ch-run (subuid range)", med,
          "default network: burrow run --rm", "ch-run", 3)
    doc, med = medians("density/roundtrip.json")
    mode = (doc or {}).get("bench", {}).get("network", "none")
    ratio(f"`run -d` + `rm -f` ≥ 20x faster than podman (network: {mode})", med, "burrow", "podman", 20, True)
    doc, med = medians("density/many.json")
    for k, v in med.items():
        if "run -d" in k:
            n = doc.get("bench", {}).get("count")
            mode = doc.get("bench", {}).get("network", "none")
            check(f"100 containers up in under 2 s (network: {mode})", f"{v:.2f} s for {n}",
                  v < 2 if n == 100 else f"not measured ({n}, not 100)")
    pss = os.path.join(d, "density", "pss.json")
    if os.path.exists(pss):
        p = load(pss)
        check("monitor Pss ≤ 1 MiB", f"{p['monitor_pss_kib']:.0f} KiB monitor, "
              f"{p['total_pss_kib']:.0f} KiB with the inner process ({p['containers']} up)",
              p["monitor_pss_kib"] <= 1024)
    _, med = medians("start/create.json")
    names = list(med)
    if len(names) == 2:
        ratio(f"creating from the {names[1]} image within 10 % of the {names[0]} one",
              med, names[1], names[0], 1.10)
    _, med = medians("import/import-gzip.json")
    ratio("`import` (gzip) ≤ `tar -xzf`", med, "burrow import", "tar -xzf", 1.0)
    _, med = medians("import/import-zstd.json")
    ratio("`import` (zstd) faster than `zstd -dc | tar -x`", med, "burrow import", "zstd -dc", 1.0)
    _, med = medians("pull/pull.json")
    ratio("`pull` ≤ `skopeo copy` to a directory", med, "burrow pull", "skopeo copy dir:", 1.0)
    doc, med = medians("listing/listing.json")
    for k, v in med.items():
        check(f"`{k.split(' (')[0]}` under 20 ms ({k.split(' (')[1].rstrip(')')})", ms(v), v < 0.020)
    _, med = medians("port/port.json")
    for k in med:
        if k.startswith("burrow -p"):
            ratio(f"`{k}` within 2x of direct", med, k, "direct", 2.0)
    _, med = medians("net/net-c2c.json")
    ratio("container to container on a user network within 1.5x of loopback", med,
          "user network", "loopback", 1.5)
    _, med = medians("net/net-out.json")
    ratio("outbound download through the default network within 2x of direct", med,
          "default network", "direct", 2.0)
    if not rows:
        return
    print("| target | measured | met |")
    print("| --- | --- | --- |")
    for r in rows:
        print("| " + " | ".join(cell(c) for c in r) + " |")
    print()


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
    g = sub.add_parser("targets")
    g.add_argument("dir")
    g.set_defaults(func=targets)
    a = p.parse_args()
    a.func(a)


if __name__ == "__main__":
    sys.exit(main())
