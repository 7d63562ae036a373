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
# (a static build of the suite's tests/init), python3 and podman.
set -euo pipefail

src=${1:?crun source directory}
bin=${2:?the burrow binary}
work=${3:-$(mktemp -d /tmp/crun-suite.XXXXXX)}

mkdir -p "$work"
cp -r "$src/tests" "$work/"
touch "$work/config.h"
gcc -static -O1 -I"$work" -o "$work/tests/init" "$work/tests/init.c"
cp "$bin" "$work/burrow"
ln -sf burrow "$work/burrow-runc"

cd "$work"
: >results.txt
for f in tests/test_*.py; do
	echo "=== $(basename "$f")" >>results.txt
	OCI_RUNTIME="$work/burrow-runc" INIT="$work/tests/init" \
		timeout 300 podman unshare python3 "$f" >>results.txt 2>&1 || true
done

pass=$(grep -E '^ok ' results.txt | grep -vc '#SKIP' || true)
skip=$(grep -cE '^ok .*#SKIP' results.txt || true)
fail=$(grep -c '^not ok' results.txt || true)
planned=$(grep -E '^1\.\.[0-9]+$' results.txt | sed 's/^1\.\.//' | paste -sd+ | bc)
echo "crun suite against burrow-runc: $pass passed, $skip skipped, $fail failed, of $planned planned"
echo "failures:"
awk '/^===/{f=$2} /^not ok/{sub(/ # [0-9.]*s$/, ""); print "  " f ": " $0}' results.txt
echo "(full output: $work/results.txt)"
