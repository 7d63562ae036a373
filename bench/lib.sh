# shellcheck shell=bash
# Shared by the benchmarks: messages, knobs, the unprivileged users they run
# as, running a command as such a user inside the benchmark's temp dir
# ($work), and choosing podman's runtime. Globals (repo, work, run_user,
# burrow_bin, podman...) pass between this file and the scripts that source
# it, both ways.
# shellcheck disable=SC2034,SC2154

say() { printf '\n== %s\n' "$*" >&2; }
warn() { printf '!! %s\n' "$*" >&2; }

# A knob's value: $NAME if set, else QUICK_VALUE when QUICK=1 (a smoke run:
# few runs, small sizes), else FULL_VALUE.
knob() {
	local name=$1 full=$2 quick=$3
	if [[ -n ${!name:-} ]]; then
		echo "${!name}"
	elif [[ ${QUICK:-0} != 0 ]]; then
		echo "$quick"
	else
		echo "$full"
	fi
}

# /etc/subuid and /etc/subgid are rewritten by the integration tests' harness
# too (tests/common), under this lock; edits here take the same lock.
subid_lock=/tmp/.burrow-it-users.lock

# As root: create burrow-bench (with a subordinate id range) if missing and
# print its name; as an ordinary user: print our own name.
bench_user() {
	local user=burrow-bench
	if [[ $EUID -ne 0 ]]; then
		id -un
		return
	fi
	if ! id "$user" >/dev/null 2>&1; then
		say "creating user $user"
		useradd --no-create-home --shell /usr/sbin/nologin "$user"
	fi
	(
		flock 9
		for f in /etc/subuid /etc/subgid; do
			if ! grep -q "^$user:" "$f" 2>/dev/null; then
				echo "$user:300000:65536" >>"$f"
			fi
		done
	) 9>"$subid_lock"
	echo "$user"
}

# As root: create burrow-bench-nosub, a user with no subordinate id range
# (burrow then maps only the user itself, as on HPC nodes without
# /etc/subuid), and print its name. As an ordinary user there is no second
# user to switch to: print nothing and return 1.
bench_user_nosub() {
	local user=burrow-bench-nosub
	[[ $EUID -eq 0 ]] || return 1
	if ! id "$user" >/dev/null 2>&1; then
		say "creating user $user"
		# --system: Debian's useradd gives ordinary users a range.
		useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
	fi
	(
		flock 9
		sed -i "/^$user:/d" /etc/subuid /etc/subgid
	) 9>"$subid_lock"
	echo "$user"
}

# Runs a command as the unprivileged user with HOME, XDG_* and BURROW_ROOT
# inside the temp dir, so no peer touches the user's real configuration.
# $user_dir, if set, holds that user's home, run and store dirs instead of
# $work (a second user needs its own: `run_user=U user_dir=D as_user ...`).
# $in_netns, if set (as root only), names a network namespace (`ip netns
# add`) the command runs in.
as_user() {
	local dir=${user_dir:-$work} pre=()
	[[ -z ${in_netns:-} ]] || pre=(ip netns exec "$in_netns")
	local env=(env -i "PATH=$work/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
		"USER=$run_user" "LOGNAME=$run_user" "HOME=$dir/home"
		"XDG_RUNTIME_DIR=$dir/run" "XDG_DATA_HOME=$dir/home/.local/share"
		"XDG_CONFIG_HOME=$dir/home/.config" "BURROW_ROOT=$dir/store"
		"TMPDIR=$dir/run" "LANG=C.UTF-8")
	if [[ $EUID -eq 0 ]]; then
		"${pre[@]}" setpriv --reuid "$run_user" --regid "$run_user" --init-groups "${env[@]}" "$@"
	else
		"${env[@]}" "$@"
	fi
}

# Install what is missing, given as COMMAND:PACKAGE pairs (a COMMAND with a
# slash is a path that must be executable). As an ordinary user, say what
# to install and stop.
need_packages() {
	local pair cmd missing=()
	for pair in "$@"; do
		cmd=${pair%%:*}
		if [[ $cmd == */* ]]; then
			[[ -x $cmd ]] && continue
		else
			command -v "$cmd" >/dev/null && continue
		fi
		missing+=("${pair#*:}")
	done
	((${#missing[@]})) || return 0
	if [[ $EUID -ne 0 ]]; then
		warn "missing: ${missing[*]}; as root: apt-get install -y ${missing[*]}"
		exit 1
	fi
	say "installing ${missing[*]}"
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

# Sets burrow_bin: $BURROW_BIN, else a release build of this tree ($repo,
# into $target_dir).
burrow_release() {
	if [[ -n ${BURROW_BIN:-} ]]; then
		burrow_bin=$BURROW_BIN
	else
		say "building burrow (release)"
		(cd "$repo" && cargo build --release --quiet)
		burrow_bin=$target_dir/release/burrow
	fi
	[[ -x $burrow_bin ]] || {
		warn "no binary at $burrow_bin"
		exit 1
	}
}

# Creates DIR/home, DIR/run and DIR/store for USER: what as_user points
# HOME, XDG_RUNTIME_DIR and BURROW_ROOT at. The run dir is private, as
# XDG_RUNTIME_DIR must be.
user_dirs() {
	local dir=$1 user=$2
	mkdir -p "$dir/home" "$dir/run" "$dir/store"
	if [[ $EUID -eq 0 ]]; then
		chown "$user:" "$dir/home" "$dir/run" "$dir/store"
	fi
	chmod 0700 "$dir/run"
}

# Sets up a benchmark's world-readable temp dir, $work (named after NAME):
# burrow in $work/bin, the busybox rootfs tarball at $work/busybox.tar, the
# user's dirs (user_dirs) and $work/results, which the user may write. Needs burrow_bin and run_user. Removes it on
# exit (KEEP=1 keeps it), after calling bench_teardown if the script defines
# one (to stop its containers first).
bench_work() {
	work=$(mktemp -d "/tmp/burrow-$1.XXXXXX")
	chmod 0755 "$work"
	trap bench_cleanup EXIT
	mkdir -p "$work/bin"
	install -m 0755 "$burrow_bin" "$work/bin/burrow"
	"$repo/rootfs-tools/busybox.sh" "$work/busybox.tar" >/dev/null
	chmod a+r "$work/busybox.tar"
	user_dirs "$work" "$run_user"
	# Where the user's hyperfine writes its JSON.
	mkdir "$work/results"
	[[ $EUID -ne 0 ]] || chown "$run_user:" "$work/results"
}

# shellcheck disable=SC2317  # called by the EXIT trap
bench_cleanup() {
	if declare -F bench_teardown >/dev/null; then
		bench_teardown || true
	fi
	podman_stop_pause "$work"
	if [[ -n ${KEEP:-} ]]; then
		warn "kept $work"
		return
	fi
	rm -rf "$work" || warn "could not remove all of $work"
}

# Runs CMD once as the user; on failure prints why and returns non-zero.
probe() {
	local name=$1 err
	shift
	if err=$(as_user "$@" 2>&1 >/dev/null); then
		return 0
	fi
	warn "$name: \`$*\` failed:"
	tail -n 15 <<<"$err" | sed 's/^/   /' >&2
	return 1
}

# Checks every command of the arrays names/cmds once as the user (a command
# that fails fast would look fast), then times them all in one hyperfine
# run as the user ($runs runs, $warmup warm-ups), into JSON, a path the
# user may write.
time_commands() {
	local json=$1 i argv args=()
	for i in "${!cmds[@]}"; do
		read -ra argv <<<"${cmds[$i]}"
		probe "${names[$i]}" "${argv[@]}" || exit 1
		args+=(--command-name "${names[$i]}" "${cmds[$i]}")
	done
	as_user hyperfine --shell=none --style basic --warmup "$warmup" --runs "$runs" \
		--export-json "$json" "${args[@]}"
}

# Rootless podman starts a pause process (catatonit) per XDG_RUNTIME_DIR and
# leaves it running; stops the one of the user dirs in DIR (see user_dirs),
# if its pid file names a catatonit.
podman_stop_pause() {
	local pidfile=$1/run/libpod/tmp/pause.pid pid
	[[ -f $pidfile ]] || return 0
	pid=$(<"$pidfile")
	[[ $pid =~ ^[0-9]+$ ]] || return 0
	if grep -q catatonit "/proc/$pid/cmdline" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
	fi
}

# Imports TAR into the user's podman store as IMAGE and sets podman=(podman)
# or, where its default runtime fails, podman=(podman --runtime runc): crun
# refuses hybrid cgroup v1/v2 hosts ("cgroups in hybrid mode not
# supported"), runc does not. Returns 1, having said why, if neither runs
# `run --rm --network=none IMAGE /bin/true`.
pick_podman() {
	local tar=$1 image=$2
	local try=(run --rm --network=none "$image" /bin/true)
	probe "podman (import)" podman import --quiet "$tar" "$image" || return 1
	if probe podman podman "${try[@]}"; then
		podman=(podman)
	elif command -v runc >/dev/null && probe "podman (runc)" podman --runtime runc "${try[@]}"; then
		warn "podman's default runtime failed (above); using --runtime runc"
		podman=(podman --runtime runc)
	else
		command -v runc >/dev/null || warn "(runc, which may work here, is not installed: apt-get install -y runc)"
		return 1
	fi
}

# bench/summary.py: markdown tables from hyperfine JSON, timings recorded
# in the same shape (standard library only, so any python3 does).
summary() {
	python3 "$repo/bench/summary.py" "$@"
}

# Prints paths (relative to /) of regular files under /usr/lib, smaller than
# 8 MB and readable, adding up to about MB megabytes: real files of many
# sizes to pack into an image. Shuffled (the same way every time), so a few
# megabytes are not all one directory's big libraries.
usr_lib_files() {
	local mb=$1 f size acc=0
	while IFS= read -r f; do
		size=$(stat -c %s "/$f")
		echo "$f"
		acc=$((acc + size))
		((acc < mb * 1024 * 1024)) || break
	done < <(cd / && find usr/lib -type f -size -8M -readable 2>/dev/null | LC_ALL=C sort |
		shuf --random-source=<(yes))
}
