#!/usr/bin/env bash
# What health checks cost, rootless, as the unprivileged user burrow-bench:
# COUNT (50) containers, each probed every second (`--health-cmd` with the
# shell builtin `echo`, so the probe itself is as cheap as `true` and counts
# itself), for DURATION (60) seconds. Measured from /proc: the CPU time of
# every container's monitor (`burrow __monitor ID`, which runs the probes)
# and of every process of its session (the joiner it keeps in the container
# for the probes, the sandbox's inner process), each with its reaped
# children (every probe's command ends up in its joiner's cutime/cstime),
# before and after the window, as a share of one core; and the number of
# probes that ran, from the lines each probe appended inside its
# container. Between probes a monitor and its joiner sleep, so what they
# cost is the probes.
#
# The load average at the window's start and end is recorded beside the
# result: what a wake-up costs on a shared VM depends on how busy its other
# CPUs are, so compare builds only under the same load (or run them
# side by side).
#
# Run as root (as on the project's machines) or as an ordinary user with a
# subordinate id range. Results (health.json, health.md) go to OUT_DIR
# (default target/bench/health-<date-time>).
#
# Environment: COUNT (50), DURATION (60), QUICK=1 (COUNT=10 DURATION=10
# unless set), KEEP, OUT_DIR, BURROW_BIN, CARGO_TARGET_DIR.
set -euo pipefail

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
out_dir=${OUT_DIR:-$target_dir/bench/health-$(date +%Y%m%d-%H%M%S)}

# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
count=$(knob COUNT 50 10)
duration=$(knob DURATION 60 10)

need_packages /bin/busybox:busybox-static
burrow_release
run_user=$(bench_user)

# shellcheck disable=SC2317  # called by bench_cleanup
bench_teardown() {
	local ids
	mapfile -t ids < <(as_user burrow ps -aq 2>/dev/null)
	((${#ids[@]} == 0)) || as_user burrow rm -f "${ids[@]}" >/dev/null 2>&1
}
bench_work healthbench
mkdir -p "$out_dir"
as_user burrow import "$work/busybox.tar" busybox >/dev/null

say "$count containers probed every second, as $run_user"
for i in $(seq "$count"); do
	as_user burrow run -d --network none --name "hc$i" \
		--health-cmd 'echo >>/probes' --health-interval 1s \
		busybox sleep 100000 >/dev/null
done
# Every one has been probed once before the window opens.
for i in $(seq "$count"); do
	for _ in $(seq 600); do
		[[ $(as_user burrow inspect -f '{{.State.Health.Status}}' "hc$i") == healthy ]] && break
		sleep 0.1
	done
done

probes() {
	local total=0 n i
	for i in $(seq "$count"); do
		n=$(as_user burrow exec "hc$i" sh -c 'cat /probes | wc -l')
		total=$((total + n))
	done
	echo "$total"
}

# utime + stime + cutime + cstime of every process in the session of a
# monitor of this store, in clock ticks.
monitor_ticks() {
	python3 - "$work/store" <<'PY'
import os, sys
store = os.fsencode(sys.argv[1])
procs = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    procs[int(pid)] = (argv, fields)
# The monitor leads its session; the joiner it forks for the probes and
# the sandbox's inner process stay in it (a probe's command and the
# container's processes start sessions of their own).
monitors = {
    pid for pid, (argv, fields) in procs.items()
    if b"__monitor" in argv and store in argv and int(fields[3]) == pid
}
print(sum(
    sum(int(x) for x in fields[11:15])
    for argv, fields in procs.values() if int(fields[3]) in monitors
))
PY
}

p0=$(probes)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
c0=$(monitor_ticks)
t0=$(date +%s%N)
sleep "$duration"
c1=$(monitor_ticks)
t1=$(date +%s%N)
load1=$(cut -d' ' -f1-3 /proc/loadavg)
p1=$(probes)
hz=$(getconf CLK_TCK)

python3 - "$out_dir" "$count" "$hz" "$c0" "$c1" "$t0" "$t1" "$p0" "$p1" "$load0" "$load1" <<'PY'
import json, sys
out, count, hz, c0, c1, t0, t1, p0, p1, load0, load1 = sys.argv[1:]
count, hz = int(count), int(hz)
cpu_s = (int(c1) - int(c0)) / hz
wall_s = (int(t1) - int(t0)) / 1e9
n = int(p1) - int(p0)
d = {
    "containers": count,
    "seconds": round(wall_s, 1),
    "probes": n,
    "monitor_cpu_seconds": cpu_s,
    "share_of_one_core_percent": round(100 * cpu_s / wall_s, 2),
    "cpu_ms_per_probe": round(1000 * cpu_s / n, 2) if n else None,
    "load_average_start": load0,
    "load_average_end": load1,
}
json.dump(d, open(f"{out}/health.json", "w"), indent=1)
with open(f"{out}/health.md", "w") as f:
    f.write("## Health checks\n\n")
    f.write(f"{count} containers, each probed every second, for {d['seconds']} s ")
    f.write("(the monitors' CPU time with their reaped children, from /proc):\n\n")
    f.write("| probes | monitors' CPU | share of one core | CPU per probe | load average |\n")
    f.write("| ---: | ---: | ---: | ---: | --- |\n")
    f.write(f"| {n} | {cpu_s:.2f} s | {d['share_of_one_core_percent']} % | ")
    f.write(f"{d['cpu_ms_per_probe']} ms | {load0} to {load1} |\n")
PY
cat "$out_dir/health.md"
echo "results: $out_dir" >&2
