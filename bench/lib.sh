# Shared by the benchmarks: messages, the unprivileged user they run as, and
# running a command as that user inside the benchmark's temp dir ($work).

say() { printf '\n== %s\n' "$*" >&2; }
warn() { printf '!! %s\n' "$*" >&2; }

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
	for f in /etc/subuid /etc/subgid; do
		if ! grep -q "^$user:" "$f" 2>/dev/null; then
			echo "$user:300000:65536" >>"$f"
		fi
	done
	echo "$user"
}

# Runs a command as the unprivileged user with HOME, XDG_* and BURROW_ROOT
# inside the temp dir, so no peer touches the user's real configuration.
as_user() {
	local env=(env -i "PATH=$work/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
		"USER=$run_user" "LOGNAME=$run_user" "HOME=$work/home"
		"XDG_RUNTIME_DIR=$work/run" "XDG_DATA_HOME=$work/home/.local/share"
		"XDG_CONFIG_HOME=$work/home/.config" "BURROW_ROOT=$work/store"
		"TMPDIR=$work/run" "LANG=C.UTF-8")
	if [[ $EUID -eq 0 ]]; then
		setpriv --reuid "$run_user" --regid "$run_user" --init-groups "${env[@]}" "$@"
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
