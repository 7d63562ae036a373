#!/usr/bin/env bash
# Container density, rootless, as the unprivileged user burrow-bench:
#
# 1. Round trip: `run -d IMG sleep 1000` then `rm -f` of that container,
#    burrow against podman (both on their default networks, or both
#    `--network none` with NETWORK=none; podman with runc where its default
#    runtime fails), in one hyperfine run.
# 2. COUNT (100) containers up: `burrow run -d` COUNT times in a loop until
#    `burrow ps -q` lists COUNT, then their removal with one `burrow rm -f`
#    of every id; ROUNDS times each, timed from outside.
# 3. Memory: while COUNT containers are up, the proportional set size (Pss,
#    /proc/PID/smaps_rollup) of each container's burrow processes: the
#    monitor (`burrow __monitor ID`, a session leader) and its child, the
#    sandbox's inner process (shown in `ps` with the same command line; the
#    parent of the container's PID 1, whose host pid `burrow inspect` gives).
#    Pss shares each page among the processes mapping it, so the mean per
#    container is what one more container costs.
#
# Run as root (as on the project's machines): it installs what is missing
# from Debian and runs both tools as the user. As an ordinary user it expects
# them installed and runs as that user. Results (JSON, density.md) go to
# OUT_DIR (default target/bench/density-<date-time>).
#
# Environment: NETWORK (default: each tool's default network; none),
# RUNS (20), WARMUP (2), COUNT (100), ROUNDS (3), QUICK=1
# (RUNS=3 WARMUP=1 COUNT=20 ROUNDS=1 unless set), KEEP, OUT_DIR,
# BURROW_BIN, CARGO_TARGET_DIR.
set -euo pipefail

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
out_dir=${OUT_DIR:-$target_dir/bench/density-$(date +%Y%m%d-%H%M%S)}

# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
runs=$(knob RUNS 20 3)
warmup=$(knob WARMUP 2 1)
count=$(knob COUNT 100 20)
rounds=$(knob ROUNDS 3 1)
network=${NETWORK:-default}
case $network in
default) burrow_net="" podman_net="" ;;
none) burrow_net="--network none" podman_net="--network=none" ;;
*)
	warn "NETWORK is default or none, not '$network'"
	exit 2
	;;
esac

need_packages podman:podman runc:runc hyperfine:hyperfine newuidmap:uidmap /bin/busybox:busybox-static
burrow_release
run_user=$(bench_user)

# shellcheck disable=SC2317  # called by bench_cleanup
bench_teardown() {
	local ids
	mapfile -t ids < <(as_user burrow ps -aq 2>/dev/null)
	((${#ids[@]} == 0)) || as_user burrow rm -f "${ids[@]}" >/dev/null 2>&1
	as_user podman rm -f -t 0 -a >/dev/null 2>&1 || true
	# podman's store holds files of subordinate ids: its own reset removes them.
	as_user podman system reset -f >/dev/null 2>&1 || true
}
bench_work densitybench
mkdir -p "$out_dir"
chmod -R a+rX "$work/bin"

as_user burrow import "$work/busybox.tar" busybox >/dev/null

# --- 1. run -d + rm -f round trip ---------------------------------------------
names=() cmds=()
cat >"$work/bin/burrow-roundtrip" <<SH
#!/bin/sh
set -e
id=\$(burrow run -d $burrow_net busybox sleep 1000)
burrow rm -f "\$id" >/dev/null
SH
names+=("burrow") cmds+=("burrow-roundtrip")
if pick_podman "$work/busybox.tar" localhost/busybox-bench; then
	# -t 0: kill at once, as burrow's and Docker's `rm -f` do (podman would
	# first send SIGTERM, which a PID 1 without a handler ignores, and wait
	# 10 s).
	cat >"$work/bin/podman-roundtrip" <<SH
#!/bin/sh
set -e
id=\$(${podman[*]} run -d $podman_net localhost/busybox-bench sleep 1000)
podman rm -f -t 0 "\$id" >/dev/null
SH
	podman_name=podman
	[[ ${#podman[@]} -eq 1 ]] || podman_name="podman (runc)"
	names+=("$podman_name") cmds+=("podman-roundtrip")
else
	warn "SKIPPING podman"
fi
chmod 0755 "$work"/bin/*-roundtrip
say "run -d + rm -f round trip, $runs runs each, as $run_user"
time_commands "$work/results/roundtrip.json"
cp "$work/results/roundtrip.json" "$out_dir/"
summary meta "$out_dir/roundtrip.json" "network=$network"

# --- 2. COUNT containers up, and their removal ----------------------------
cat >"$work/bin/up-many" <<SH
#!/bin/sh
set -e
i=0
while [ "\$i" -lt "\$1" ]; do
	burrow run -d $burrow_net busybox sleep 1000 >/dev/null
	i=\$((i + 1))
done
SH
cat >"$work/bin/rm-all" <<'SH'
#!/bin/sh
set -e
# shellcheck disable=SC2046  # one id per word
burrow rm -f $(burrow ps -aq) >/dev/null
SH
chmod 0755 "$work/bin/up-many" "$work/bin/rm-all"
now() { date +%s%N; }
up_times=() down_times=()
say "$count containers up, then removed; $rounds rounds, as $run_user"
for round in $(seq "$rounds"); do
	t0=$(now)
	as_user up-many "$count"
	t1=$(now)
	up=$(as_user burrow ps -q | wc -l)
	if [[ $up -ne $count ]]; then
		warn "round $round: burrow ps -q lists $up containers, not $count"
		exit 1
	fi
	if [[ $round -eq 1 ]]; then
		# --- 3. memory, with COUNT containers up ----------------------------
		mapfile -t ids < <(as_user burrow ps -q)
		mapfile -t pids < <(as_user burrow inspect -f '{{.State.Pid}}' "${ids[@]}")
		python3 - "$out_dir/pss.json" "${pids[@]}" <<'PY'
import json, statistics, sys

def ppid(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])

def is_monitor(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return b"__monitor" in f.read().split(b"\0")

def pss_kib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise RuntimeError(f"no Pss for {pid}")

# From each container's PID 1 up: the burrow processes above it.
per = []
for init in map(int, sys.argv[2:]):
    chain, p = [], ppid(init)
    while p > 1 and is_monitor(p):
        chain.append(p)
        p = ppid(p)
    if not chain:
        sys.exit(f"no burrow __monitor above pid {init}")
    per.append([pss_kib(q) for q in chain])
# chain[-1] is the monitor (outermost), the others sit between it and PID 1.
monitor = [c[-1] for c in per]
inner = [sum(c[:-1]) for c in per]
total = [sum(c) for c in per]
doc = {"containers": len(per), "processes_per_container": sorted({len(c) for c in per}),
       "monitor_pss_kib": statistics.fmean(monitor), "inner_pss_kib": statistics.fmean(inner),
       "total_pss_kib": statistics.fmean(total), "per_container_kib": per}
json.dump(doc, open(sys.argv[1], "w"), indent=2)
PY
	fi
	t2=$(now)
	as_user rm-all
	t3=$(now)
	left=$(as_user burrow ps -aq | wc -l)
	if [[ $left -ne 0 ]]; then
		warn "round $round: $left containers left after rm -f"
		exit 1
	fi
	up_times+=("$(((t1 - t0) / 1000))e-6")
	down_times+=("$(((t3 - t2) / 1000))e-6")
done
summary record "$out_dir/many.json" "$count x run -d" "${up_times[@]}"
summary record "$out_dir/many.json" "rm -f of $count" "${down_times[@]}"
summary meta "$out_dir/many.json" "count=$count" "network=$network"

# --- summary -------------------------------------------------------------------
{
	echo "## Density"
	echo
	if [[ $network == none ]]; then
		echo "As $run_user (with a subordinate id range); every container \`--network none\`."
	else
		echo "As $run_user (with a subordinate id range); every container on its tool's default network (burrow: the keeper's bridge; podman: its rootless default)."
	fi
	echo
	summary table "$out_dir/roundtrip.json" --title "\`run -d busybox sleep 1000\` + \`rm -f\`" --ref burrow
	summary table "$out_dir/many.json" --title "$count containers: \`run -d\` in a loop until \`ps -q\` lists $count, then one \`rm -f\` of all"
	python3 - "$out_dir/pss.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"### Memory with {d['containers']} containers up\n")
print("Mean proportional set size (Pss, from /proc/PID/smaps_rollup) per container:\n")
print("| | Pss KiB |\n| --- | ---: |")
print(f"| monitor (`burrow __monitor`) | {d['monitor_pss_kib']:.0f} |")
print(f"| inner process (parent of PID 1) | {d['inner_pss_kib']:.0f} |")
print(f"| both | {d['total_pss_kib']:.0f} |\n")
PY
} >"$out_dir/density.md"
cat "$out_dir/density.md"
echo "results: $out_dir" >&2
