#!/bin/bash
# Run crun's Python test suite (crun's tests/*.py, from a crun source tree)
# against burrow-runc, rootless, and count the results. Not part of `cargo
# test`: it needs crun's sources, which the tests may not fetch.
#
#   tests/crun-suite.sh CRUN_SRC BURROW_BINARY [WORKDIR]
#
# Run it as an ordinary user with a subuid range: each test file runs as
# root of that user's podman user namespace (`podman unshare`), where crun's
# suite takes its rootless paths and skips what needs real root. Needs gcc
# (a static build of the suite's tests/init), python3 and podman;
# python3-libmount is replaced by a stand-in (below) where it is missing.
# podman needs a HOME and XDG_RUNTIME_DIR the user owns, e.g. as root:
#
#   runuser -u burrow-it -- env -i PATH=/usr/bin:/bin HOME=/tmp/h \
#       XDG_RUNTIME_DIR=/tmp/h/xdg bash tests/crun-suite.sh SRC BIN WORK
set -euo pipefail

src=${1:?crun source directory}
bin=${2:?the burrow binary}
work=${3:-$(mktemp -d /tmp/crun-suite.XXXXXX)}

mkdir -p "$work"
cp -r "$src/tests" "$work/"
touch "$work/config.h"
gcc -static -O1 -I"$work" -o "$work/tests/init" "$work/tests/init.c"
cp "$bin" "$work/burrow"
# Called `crun`, as podman finds it first on PATH: burrow's usage lines and
# version line name the program as it was called, and the suite reads
# crun's name in them.
ln -sf burrow "$work/crun"

# test_mounts.py reads the container's mountinfo through python3-libmount,
# which Debian 12 does not package; it uses only Table(path),
# find_target(path) and an entry's vfs_options and fs_options, which this
# stand-in gives from the mountinfo format (proc(5)).
mkdir -p "$work/pyshim"
cat >"$work/pyshim/libmount.py" <<'PY'
"""The part of python3-libmount that crun's test_mounts.py uses."""
import re


def _unescape(s):
    return re.sub(r'\\([0-7]{3})', lambda m: chr(int(m.group(1), 8)), s)


class Fs:
    def __init__(self, line):
        pre, post = line.split(' - ', 1)
        f = pre.split()
        g = post.split()
        self.id, self.parent = int(f[0]), int(f[1])
        self.root, self.target = _unescape(f[3]), _unescape(f[4])
        self.vfs_options = f[5]
        self.fstype = g[0]
        self.source = _unescape(g[1]) if len(g) > 1 else None
        self.fs_options = g[2] if len(g) > 2 else None


class Table:
    def __init__(self, path):
        with open(path) as f:
            self._fs = [Fs(l.rstrip('\n')) for l in f if ' - ' in l]

    def find_target(self, target):
        # libmount searches from the end: the mount on top wins.
        for fs in reversed(self._fs):
            if fs.target == target:
                return fs
        return None
PY
export PYTHONPATH="$work/pyshim${PYTHONPATH:+:$PYTHONPATH}"

cd "$work"
: >results.txt
for f in tests/test_*.py; do
	echo "=== $(basename "$f")" >>results.txt
	OCI_RUNTIME="$work/crun" INIT="$work/tests/init" \
		timeout 300 podman unshare python3 "$f" >>results.txt 2>&1 || true
done

pass=$(grep -E '^ok ' results.txt | grep -vc '#SKIP' || true)
skip=$(grep -cE '^ok .*#SKIP' results.txt || true)
fail=$(grep -c '^not ok' results.txt || true)
planned=$(grep -E '^1\.\.[0-9]+$' results.txt | sed 's/^1\.\.//' | paste -sd+ | bc)
echo "crun suite against burrow (as crun): $pass passed, $skip skipped, $fail failed, of $planned planned"
echo "failures:"
awk '/^===/{f=$2} /^not ok/{sub(/ # [0-9.]*s$/, ""); print "  " f ": " $0}' results.txt
echo "(full output: $work/results.txt)"
