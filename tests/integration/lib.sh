# tests/integration/lib.sh - shared by the integration tests (source it).
#
# Every test mounts the real binary ($REPLICAFS) in a private temporary
# folder, uses real tools on the mount, and cleans up in an EXIT trap:
# unmount, detach loop devices, check the daemon exited, check no sanitizer
# report was written. FUSE missing or not root is a failure, never a skip.
# Readiness: replicafs daemonises only once the mount is ready, so when
# rfs_mount returns the tree is there; no test sleeps to synchronise.
set -euo pipefail

: "${REPLICAFS:?REPLICAFS must point at the replicafs binary}"
: "${RFS_TESTDATA:?RFS_TESTDATA must point at tests/data}"
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

[ "$(id -u)" = 0 ] || { echo "FAIL: integration tests need root (mount, losetup)"; exit 1; }
[ -c /dev/fuse ] || { echo "FAIL: /dev/fuse is missing: FUSE is required"; exit 1; }

T=$(mktemp -d /tmp/rfs-it.XXXXXX)
export ASAN_OPTIONS="log_path=$T/sanitizer:abort_on_error=0:detect_leaks=1"
export UBSAN_OPTIONS="log_path=$T/sanitizer:print_stacktrace=1:halt_on_error=1"
NFAIL=0
NPASS=0

# Run on exit: everything a test made goes away, whatever happened.
rfs_cleanup() {
	local rc=$?
	set +e
	for dev in $(losetup -n -O NAME,BACK-FILE 2>/dev/null | awk -v t="$T" 'index($0, t) {print $1}'); do
		losetup -d "$dev"
	done
	grep -F " $T/" /proc/self/mounts | awk '{print $2}' | sort -r | while read -r m; do
		umount "$m" 2>/dev/null || fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m"
	done
	for p in $(pgrep -f "^$REPLICAFS .*$T/" 2>/dev/null); do kill -9 "$p"; done
	if ls "$T"/sanitizer* >/dev/null 2>&1; then
		echo "FAIL: sanitizer report:"; cat "$T"/sanitizer*; rc=1
	fi
	rm -rf "$T"
	exit "$rc"
}
trap rfs_cleanup EXIT

fail() { echo "FAIL: $*"; NFAIL=$((NFAIL + 1)); }
pass() { echo "ok: $*"; NPASS=$((NPASS + 1)); }
# check DESCRIPTION COMMAND...: pass if the command succeeds.
check() { local d=$1; shift; if "$@"; then pass "$d"; else fail "$d"; fi; }
# check_eq DESCRIPTION EXPECTED ACTUAL
check_eq() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected '$2', got '$3'"; fi; }
# Finish: print the summary line and exit non-zero on any failure.
finish() { echo "$NPASS passed, $NFAIL failed"; [ "$NFAIL" -eq 0 ]; }

# The pid of the daemon serving MOUNTPOINT.
rfs_pid() { pgrep -f "^$REPLICAFS .*$1\$" | head -1; }

# rfs_mount REPLICA MNT [options...]: mount and return once it is ready.
rfs_mount() {
	local replica=$1 mnt=$2; shift 2
	mkdir -p "$mnt"
	"$REPLICAFS" --log="$T/replicafs.log" "$@" "$replica" "$mnt"
}

# Wait for process PID (not our child) to exit, with pidfd: no polling.
wait_exit() {
	python3 - "$1" <<'PY'
import os, select, sys
try:
    fd = os.pidfd_open(int(sys.argv[1]))
except ProcessLookupError:
    sys.exit(0)
r, _, _ = select.select([fd], [], [], 60)
sys.exit(0 if r else 1)
PY
}

# alive PID: the process exists and has not exited (a zombie has: on
# machines without an init that reaps, an exited daemon stays a zombie).
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [ -n "$st" ] && [ "${st:0:1}" != Z ]; }

# rfs_umount MNT: unmount and wait until the daemon has exited.
rfs_umount() {
	local pid
	pid=$(rfs_pid "$1" || true)
	fusermount3 -u "$1"
	[ -z "$pid" ] || wait_exit "$pid" || { echo "daemon $pid did not exit"; return 1; }
}

sha() { sha256sum "$1" | awk '{print $1}'; }

# Expected sha256 of a fixture from MANIFEST.tsv.
manifest_sha() { awk -F'\t' -v f="dfvfs/$1.xz" '$1 == f {print $3}' "$RFS_TESTDATA/MANIFEST.tsv"; }

# unpack_fixture NAME DIR: xz -dc a fixture into DIR under its own name.
unpack_fixture() { mkdir -p "$2"; xz -dc "$RFS_TESTDATA/dfvfs/$1.xz" >"$2/$1"; }

# Fingerprint every file of a replica folder (to prove it never changes).
replica_sums() { (cd "$1" && find . -path ./.replicafs -prune -o -type f -print0 | sort -z | xargs -0 -r sha256sum); }

# ctl VM CMD MNT: write a command; prints nothing, returns write's status.
ctl() { echo "$2" >"$3/ctl/$1/control"; }
