#!/usr/bin/env bash
# Throughput through burrow's networks, side by side in one hyperfine run,
# each a download of SIZE_MB (512) by busybox wget to /dev/null from
# busybox httpd:
#
#   - loopback: server and client in two `--network host` containers, over
#     the host's loopback (the floor for container to container);
#   - user network: server and client in two containers on one user network
#     (`burrow network create`), the client naming the server (the
#     network's DNS), the bytes crossing the keeper's bridge and two veths;
#   - direct: the client in a `--network host` container downloading from a
#     server outside (an address of the "host" below; the floor for
#     outbound traffic);
#   - default network: the same download from a container on the default
#     network (the keeper's bridge, NAT, the one pasta or slirp4netns);
#   - default network, a helper each (BURROW_KEEPER=off): the same from a
#     container with its own pasta.
#
# Every download is a `burrow exec` into a running client, so each row
# carries the same exec cost. The outbound rows run in a network namespace
# the benchmark makes (`ip netns add`): its "host" has a veth pair with the
# outside server's address on one end, as in tests/network.rs. The host's
# own loopback is not used for the outside server because containers on
# burrow's default network cannot reach it, on purpose (pasta runs with
# --no-map-gw, so the gateway address never leads to the host's loopback).
# The container-to-container rows run in the host's own namespaces: `ip
# netns exec` gives each command a new mount namespace, and the keeper
# (whose bridges carry user networks) is per mount namespace, so two
# containers started that way would sit on two keepers.
#
# Run it as root (as on the project's machines): it makes the namespace,
# installs what is missing from Debian and runs burrow as the unprivileged
# user burrow-bench. Results (hyperfine JSON, net.md) go to OUT_DIR
# (default target/bench/net-<date-time>).
#
# Environment: RUNS (10), WARMUP (2), SIZE_MB (512), QUICK=1 (RUNS=3
# WARMUP=1 SIZE_MB=32 unless set), KEEP, OUT_DIR, BURROW_BIN,
# CARGO_TARGET_DIR.
set -euo pipefail

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
out_dir=${OUT_DIR:-$target_dir/bench/net-$(date +%Y%m%d-%H%M%S)}

# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
runs=$(knob RUNS 10 3)
warmup=$(knob WARMUP 2 1)
size_mb=$(knob SIZE_MB 512 32)

if [[ $EUID -ne 0 ]]; then
	warn "run as root: the benchmark makes a network namespace and runs burrow as the unprivileged user burrow-bench"
	exit 1
fi
need_packages hyperfine:hyperfine newuidmap:uidmap /bin/busybox:busybox-static ip:iproute2 pasta:passt nft:nftables
burrow_release
run_user=$(bench_user)

outside=10.204.0.1
in_netns=burrow-netbench-$$
server=
# shellcheck disable=SC2317  # called by bench_cleanup
bench_teardown() {
	in_netns='' as_user burrow rm -f nb-srv nb-cli nb-srv-host nb-cli-host nb-out nb-out-direct nb-out-helper >/dev/null 2>&1 || true
	in_netns='' as_user burrow network rm nb-net >/dev/null 2>&1 || true
	[[ -z $server ]] || kill "$server" 2>/dev/null || true
	local ns=$in_netns
	in_netns=
	ip netns del "$ns" 2>/dev/null || true
}
bench_work netbench
mkdir -p "$out_dir" "$work/www"

# The "host": lo, and a veth pair with both ends inside, v0 carrying the
# default route and v1 the outside server's address (pasta copies v0's
# configuration, as it copies a real host's).
ns_ip() { ip -n "$in_netns" "$@"; }
ip netns add "$in_netns"
ns_ip link set lo up
ns_ip link add v0 type veth peer name v1
ns_ip addr add 10.203.0.2/24 dev v0
ns_ip addr add "$outside/24" dev v1
ns_ip link set v0 up
ns_ip link set v1 up
ns_ip route add default via 10.203.0.1 dev v0

head -c "$((size_mb << 20))" /dev/urandom >"$work/www/big"
chmod -R a+rX "$work/www"
ip netns exec "$in_netns" busybox httpd -f -p "$outside:8000" -h "$work/www" &
server=$!

host() { in_netns='' as_user "$@"; }
host burrow import "$work/busybox.tar" busybox >/dev/null
www="$work/www:/www:ro"
host burrow network create nb-net >/dev/null
host burrow run -d --name nb-srv --network nb-net -v "$www" busybox httpd -f -p 8000 -h /www >/dev/null
host burrow run -d --name nb-cli --network nb-net busybox sleep 100000 >/dev/null
host burrow run -d --name nb-srv-host --network host -v "$www" busybox httpd -f -p 127.0.0.1:18431 -h /www >/dev/null
host burrow run -d --name nb-cli-host --network host busybox sleep 100000 >/dev/null
as_user burrow run -d --name nb-out busybox sleep 100000 >/dev/null
as_user burrow run -d --name nb-out-direct --network host busybox sleep 100000 >/dev/null
as_user env BURROW_KEEPER=off burrow run -d --name nb-out-helper busybox sleep 100000 >/dev/null

fetch() { # CLIENT URL
	printf 'burrow exec %s wget -q -O /dev/null %s' "$1" "$2"
}
# Times NAME=COMMAND pairs in one hyperfine run into $out_dir/FILE, as the
# user, in the namespace $in_netns names (none: the host's).
timed() { # FILE NAME=COMMAND...
	local file=$1 pair name cmd args=()
	shift
	for pair in "$@"; do
		name=${pair%%=*} cmd=${pair#*=}
		# Each path serves the whole file before it is timed (a server
		# still starting, or a name the DNS does not know yet, shows here).
		for _ in $(seq 50); do
			as_user sh -c "$cmd" >/dev/null 2>&1 && break
			sleep 0.2
		done
		probe "$name" sh -c "$cmd" || exit 1
		args+=(--command-name "$name" "$cmd")
	done
	as_user hyperfine --shell=none --style basic --runs "$runs" --warmup "$warmup" \
		--export-json "$work/results/$file" "${args[@]}"
	cp "$work/results/$file" "$out_dir/"
	summary meta "$out_dir/$file" "size_mb=$size_mb" "bytes=$((size_mb << 20))"
}
say "$size_mb MiB per download; $runs runs each, as $run_user"
# A `--network host` container's namespace is the host's, which the user
# may not join from another one: each pair runs where its containers are.
in_netns='' timed net-c2c.json \
	"loopback=$(fetch nb-cli-host http://127.0.0.1:18431/big)" \
	"user network=$(fetch nb-cli http://nb-srv:8000/big)"
timed net-out.json \
	"direct=$(fetch nb-out-direct "http://$outside:8000/big")" \
	"default network=$(fetch nb-out "http://$outside:8000/big")" \
	"default network, a helper each=$(fetch nb-out-helper "http://$outside:8000/big")"

{
	echo "## Network throughput"
	echo
	echo "As $run_user (with a subordinate id range). Each row is \`burrow exec CLIENT"
	echo "wget -q -O /dev/null URL\` of $size_mb MiB from busybox httpd; every row pays"
	echo "the same exec."
	echo
	summary table "$out_dir/net-c2c.json" --title "Container to container" --ref loopback
	summary table "$out_dir/net-out.json" --title "Outbound, in a network namespace the benchmark makes" --ref direct
	echo
	echo "Rows: *loopback*: two \`--network host\` containers over the host's loopback;"
	echo "*user network*: two containers on one user network (a bridge of the keeper);"
	echo "*direct*: a \`--network host\` container fetching from an address of the host;"
	echo "*default network*: a container on the keeper's bridge, out through its one"
	echo "pasta; *a helper each*: \`BURROW_KEEPER=off\`, a pasta for that container."
} >"$out_dir/net.md"
cat "$out_dir/net.md"
echo "results: $out_dir" >&2
