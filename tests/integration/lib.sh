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
	[ -n "${RFS_KEEP:-}" ] || rm -rf "$T"
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

# job_done VM MNT: the VM's job (SPEC §10) has ended (JobState not 4).
job_done() { local s; s=$(sed -n 's/^JobState: //p' "$2/ctl/$1/job") && [ -n "$s" ] && [ "$s" != 4 ]; }
# commit_wait VM MNT: commit (a job), wait (bounded) for its end; succeeds
# when the job completed (JobState 7).
commit_wait() {
	ctl "$1" commit "$2" && wait_until 120 job_done "$1" "$2" &&
		[ "$(sed -n 's/^JobState: //p' "$2/ctl/$1/job")" = 7 ]
}

# raw_write FILE [trunc|append]: write all of stdin to FILE in ONE write(2)
# and print what happened: "OK", "SHORT <n>", the errno name of the failed
# write ("EBUSY", ...) or "open:<ERRNO>" when open(2) itself failed.
# Always returns 0: the caller checks the printed word.
raw_write() {
	python3 -c '
import errno, os, sys
mode = sys.argv[2] if len(sys.argv) > 2 else ""
flags = os.O_WRONLY | {"": 0, "trunc": os.O_TRUNC, "append": os.O_APPEND}[mode]
data = sys.stdin.buffer.read()
try:
    fd = os.open(sys.argv[1], flags)
except OSError as e:
    print("open:" + errno.errorcode.get(e.errno, str(e.errno)))
    sys.exit(0)
try:
    n = os.write(fd, data)
    print("OK" if n == len(data) else "SHORT %d" % n)
except OSError as e:
    print("EOPNOTSUPP" if e.errno == errno.EOPNOTSUPP else errno.errorcode.get(e.errno, str(e.errno)))
try:
    os.close(fd)
except OSError:
    pass
' "$@"
}

# ctl_raw VM MNT [trunc|append]: raw_write stdin to ctl/VM/control.
ctl_raw() { raw_write "$2/ctl/$1/control" "${3:-}"; }

# ctl_sizes_ok VM MNT: st_size of state and status equals what a read returns.
ctl_sizes_ok() {
	local f
	for f in state status; do
		[ "$(stat -c %s "$2/ctl/$1/$f")" = "$(wc -c <"$2/ctl/$1/$f")" ] || return 1
	done
}

# overlays_of STATE_DIR VM: the overlay files a VM has in its state folder.
overlays_of() { find "$1/$2" -maxdepth 1 -name '*.overlay' 2>/dev/null | sort; }

# --- helpers added for t_read.sh / t_broken.sh ------------------------------

# part_loop IMG [N]: attach partition N (default 1) of IMG read-only as a
# loop device (partition nodes do not appear on every machine, so use
# partx's offset and size); print the device name.
part_loop() {
	local start sectors
	read -r start sectors < <(partx -g -n "${2:-1}" -o START,SECTORS "$1")
	[ -n "$sectors" ] || { echo "no partition ${2:-1} in $1" >&2; return 1; }
	losetup -f --show -r -o $((start * 512)) --sizelimit $((sectors * 512)) "$1"
}

# fails_with PATTERN COMMAND...: COMMAND fails and its stderr matches the
# extended regular expression PATTERN (e.g. "Operation not permitted").
fails_with() {
	local pat=$1 err rc=0; shift
	err=$("$@" 2>&1 >/dev/null) || rc=$?
	[ "$rc" -ne 0 ] && grep -Eq -- "$pat" <<<"$err" && return 0
	echo "  '$*' returned $rc: $err" >&2
	return 1
}

# errno_of OP PATH [ARG]: do one system call on PATH with Python and print
# the errno's name, or OK. OP: stat, read (whole file), open_w, mkdir, unlink,
# rmdir, create, rename (to ARG), write (ARG, one write(2), no O_TRUNC).
errno_of() {
	python3 - "$@" <<'PY'
import errno, os, sys
op, path, arg = sys.argv[1], sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 else None)
try:
    if op == 'stat': os.stat(path)
    elif op == 'read':
        with open(path, 'rb') as f:
            while f.read(1 << 20): pass
    elif op == 'open_w': os.close(os.open(path, os.O_WRONLY))
    elif op == 'mkdir': os.mkdir(path)
    elif op == 'unlink': os.unlink(path)
    elif op == 'rmdir': os.rmdir(path)
    elif op == 'create': os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    elif op == 'rename': os.rename(path, arg)
    elif op == 'write':
        fd = os.open(path, os.O_WRONLY)
        try: os.write(fd, arg.encode())
        finally: os.close(fd)
    else: sys.exit('errno_of: unknown op ' + op)
    print('OK')
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
PY
}

# preads_match IMG RAW [N]: N (default 300) reads at random, unaligned
# offsets and lengths (some across the end) give the bytes of RAW.
preads_match() {
	python3 - "$1" "$2" "${3:-300}" <<'PY'
import os, random, sys
img, raw, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
fi, fr = os.open(img, os.O_RDONLY), os.open(raw, os.O_RDONLY)
size = os.fstat(fr).st_size
rng = random.Random(size)
bad = 0
for i in range(n):
    ln = rng.choice([1, 511, 512, 4095, 4096, 65537, 1 << 20, rng.randrange(1, 3 << 20)])
    off = rng.randrange(0, size) if i % 10 else max(0, size - rng.randrange(1, 8192))
    if os.pread(fi, ln, off) != os.pread(fr, ln, off):
        bad += 1
        print('mismatch at offset %d length %d' % (off, ln), file=sys.stderr)
if os.pread(fi, 4096, size) != b'':
    bad += 1
    print('read at the end is not empty', file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}

# --- helpers for the tools in tests/tools (exerciser, crash writer) --------

# rfs_tool NAME: the path of a tests/tools program built by CMake.
rfs_tool() {
	: "${RFS_BUILD:?RFS_BUILD must point at the build folder (tests/tools programs)}"
	[ -x "$RFS_BUILD/tests/$1" ] || { echo "FAIL: $RFS_BUILD/tests/$1 is not built" >&2; return 1; }
	echo "$RFS_BUILD/tests/$1"
}

# rfs_helper_script: write $T/helpers.sh and print its path. "bash
# $T/helpers.sh rfs_umount MNT" (or rfs_mount ...) runs lib.sh's helper of
# that name, so a tool's system() (/bin/sh: exported bash functions do not
# survive it) unmounts and remounts exactly as the scripts do.
rfs_helper_script() {
	{
		printf 'T=%q\nREPLICAFS=%q\n' "$T" "$REPLICAFS"
		declare -f rfs_mount rfs_umount rfs_pid wait_exit
		echo '"$@"'
	} >"$T/helpers.sh"
	echo "$T/helpers.sh"
}

# rfs_kill9 MNT: kill -9 the daemon serving MNT, wait until it is gone,
# and detach the dead mount (lazily: a dead FUSE mount cannot be unmounted
# normally while the kernel still references it).
rfs_kill9() {
	local pid
	pid=$(rfs_pid "$1") || true
	[ -n "$pid" ] || { echo "no daemon serves $1" >&2; return 1; }
	kill -9 "$pid"
	wait_exit "$pid" || { echo "daemon $pid survived kill -9" >&2; return 1; }
	fusermount3 -u -z "$1" 2>/dev/null || umount -l "$1"
}

# A random 48-bit seed (printed by the tests so a failure can be replayed).
rfs_seed() { od -An -N6 -tu8 /dev/urandom | tr -d ' '; }

# --- ThreadSanitizer (build-tsan, -DRFS_TSAN=ON) ---------------------------
# Like ASan above: a race report goes to $T/sanitizer.<pid>, which
# rfs_cleanup turns into a failure; halt_on_error stops the daemon at the
# first one (the mount then fails too). replicafs forks (fuse_daemonize)
# before it starts any thread, so TSan's fork-after-threads limits do not
# apply.
export TSAN_OPTIONS="log_path=$T/sanitizer:halt_on_error=1:second_deadlock_stack=1"

# --- fault table (docs/FAULTS.md) ---------------------------------------------
# fault FAULT WHAT_THE_USER_SEES: record a fault or bad input this test
# injected and what the user saw, right after the checks that prove it. It is
# recorded only while every check so far has passed; scripts/faults.sh builds
# docs/FAULTS.md from the records, and CI fails if that file is out of date.
RFS_FAULT_FILE=${RFS_BUILD:+$RFS_BUILD/faults/$(basename "$0" .sh).tsv}
if [ -n "$RFS_FAULT_FILE" ]; then mkdir -p "${RFS_FAULT_FILE%/*}"; : >"$RFS_FAULT_FILE"; fi
fault() {
	[ -n "$RFS_FAULT_FILE" ] && [ "$NFAIL" -eq 0 ] || return 0
	printf '%s\t%s\t%s\n' "$(basename "$0" .sh)" "$1" "$2" >>"$RFS_FAULT_FILE"
}

# random_disk MIB RAW IMAGE QEMU_IMG_OUTPUT_ARGS...: MIB MiB of random data
# in RAW (the expected content), converted to IMAGE with
# `qemu-img convert -O ...`, e.g. random_disk 64 "$T/a.raw" "$R/vm/a.vhdx" vhdx
random_disk() {
	local mib=$1 raw=$2 image=$3; shift 3
	head -c "${mib}M" /dev/urandom >"$raw"
	qemu-img convert -q -f raw -O "$@" "$raw" "$image"
}

# --- polling a condition with a deadline (t_living.sh, t_upgrade.sh) --------
# The store is alive (SPEC §2): what the tree shows changes on its own,
# within a bound. Tests never sleep for it: they poll the condition they
# expect, with a deadline. Poll intervals are not synchronisation.

# rfs_now_ms: wall-clock milliseconds.
rfs_now_ms() {
	local t=${EPOCHREALTIME:-}
	[ -n "$t" ] || t=$(date +%s.%6N)
	echo $(( ${t%.*} * 1000 + 10#${t#*.} / 1000 ))
}

# wait_until SECONDS COMMAND...: run COMMAND every 0.1 s until it succeeds
# (return 0) or SECONDS have passed since the first try (return 1, after
# one last try at or past the deadline). WAITED is set to the milliseconds
# it took (or waited in vain), so a check can say "after 1.3 s".
WAITED=0
wait_until() {
	local secs=$1 start now; shift
	start=$(rfs_now_ms)
	while :; do
		now=$(rfs_now_ms)
		if "$@"; then WAITED=$((now - start)); return 0; fi
		if [ $((now - start)) -ge $((secs * 1000)) ]; then WAITED=$((now - start)); return 1; fi
		sleep 0.1
	done
}

# stays_true SECONDS COMMAND...: COMMAND keeps succeeding, run every 0.2 s,
# for SECONDS (first run at once, last run at or past SECONDS). Return 1 at
# the first failure (STAYED = milliseconds until then). For "nothing
# changes" promises that only hold if a change that the daemon must notice
# within a bound (SPEC §2: 5 s) does not show in that time; the window is
# the bound, not a sleep to let something happen.
STAYED=0
stays_true() {
	local secs=$1 start now; shift
	start=$(rfs_now_ms)
	while :; do
		now=$(rfs_now_ms)
		if ! "$@"; then STAYED=$((now - start)); return 1; fi
		if [ $((now - start)) -ge $((secs * 1000)) ]; then STAYED=$((now - start)); return 0; fi
		sleep 0.2
	done
}

# ms_s MS: "1.234 s".
ms_s() { printf '%d.%03d s' $(($1 / 1000)) $(($1 % 1000)); }

# rfs_nodes MNT: the daemon's live node count (statfs f_files).
rfs_nodes() { stat -f -c %c "$1"; }

# rfs_forget: make the kernel forget every unused inode and dentry (it then
# sends FUSE FORGETs, asynchronously).
rfs_forget() { sync; echo 2 >/proc/sys/vm/drop_caches; }

# nodes_are MNT N: after rfs_forget, the node count is N (poll it with
# wait_until: the FORGETs arrive asynchronously).
nodes_are() { rfs_forget; [ "$(rfs_nodes "$1")" = "$2" ]; }

# settled_nodes MNT: the node count once the kernel has forgotten what it
# does not use: rfs_forget until three reads 0.2 s apart agree (at most
# 10 s; then the last value). Prints the count.
settled_nodes() {
	local a b c start
	start=$(rfs_now_ms)
	rfs_forget; a=$(rfs_nodes "$1"); sleep 0.2
	rfs_forget; b=$(rfs_nodes "$1"); sleep 0.2
	while :; do
		rfs_forget; c=$(rfs_nodes "$1")
		{ [ "$a" = "$b" ] && [ "$b" = "$c" ]; } && break
		[ $(($(rfs_now_ms) - start)) -lt 10000 ] || break
		a=$b b=$c
		sleep 0.2
	done
	echo "$c"
}

# same_bytes [--drop] FILE RAW: FILE (a path, or fd:N for a descriptor the
# shell holds open, e.g. after "exec 3<IMG") has exactly RAW's size and
# bytes, read with pread (a descriptor's offset is not moved). --drop first
# drops FILE's cached pages (posix_fadvise DONTNEED), so the bytes come from
# the daemon, not from the kernel's page cache. Says where it differs.
same_bytes() {
	python3 - "$@" <<'PY'
import os, sys
args = sys.argv[1:]
drop = args[0] == '--drop'
if drop:
    args = args[1:]
src, raw = args
try:
    fd = int(src[3:]) if src.startswith('fd:') else os.open(src, os.O_RDONLY)
    size = os.fstat(fd).st_size
except OSError as e:
    sys.exit('%s: %s' % (src, e.strerror))
fr = os.open(raw, os.O_RDONLY)
want = os.fstat(fr).st_size
if size != want:
    sys.exit('%s: size %d, expected %d' % (src, size, want))
if drop:
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
off = 0
while off < want:
    n = min(1 << 20, want - off)
    try:
        got = os.pread(fd, n, off)
    except OSError as e:
        sys.exit('%s: read at %d: %s' % (src, off, e.strerror))
    exp = os.pread(fr, n, off)
    if got != exp:
        i = next((i for i in range(min(len(got), len(exp))) if got[i] != exp[i]), min(len(got), len(exp)))
        sys.exit('%s differs from %s at offset %d' % (src, raw, off + i))
    off += n
PY
}

# --- a replica folder that changes under the mount ---------------------------
# Tests that change the replica folder $R while it is mounted make every
# change through these helpers, which make the same change in a shadow
# folder $SH that no daemon sees; shadow_same then proves that the daemon
# changed no byte of any replica file (the replica_sums promise, SPEC §7,
# for a folder that is not constant). Set R, SH and S (a staging folder
# holding prepared VM folders) first.

# put_vm NAME: copy the prepared VM folder $S/NAME in (cp -r, not atomic:
# the daemon may see it half copied).
put_vm() { cp -r "$S/$1" "$R/" && cp -r "$S/$1" "$SH/"; }
# drop_vm NAME: remove the VM folder.
drop_vm() { rm -rf "${R:?}/$1" "${SH:?}/$1"; }
# away_vm NAME / back_vm NAME: move the VM folder out of the replica folder
# (to $T/away) and back, with rename(2).
away_vm() { mkdir -p "$T/away" "$T/shaway" && mv "$R/$1" "$T/away/" && mv "$SH/$1" "$T/shaway/"; }
back_vm() { mv "$T/away/$1" "$R/" && mv "$T/shaway/$1" "$SH/"; }
# put_file VM NAME SRC: add SRC as VM/NAME, atomically (written as NAME.part,
# a name the daemon ignores, then renamed).
put_file() {
	cp "$3" "$R/$1/$2.part" && cp "$3" "$SH/$1/$2" && mv "$R/$1/$2.part" "$R/$1/$2"
}
# new_point VM PARENT CHILD SEED RAW_OUT: a new recovery point: a VHD
# differencing file CHILD over PARENT (the chain's tip) written by
# tests/mkvhd.py (new random content in about 70% of its blocks), added
# atomically like put_file. RAW_OUT: the whole disk at the new point.
new_point() {
	python3 "$TOP/tests/mkvhd.py" diff "$R/$1/$2" "$R/$1/$3.part" --seed "$4" --raw-out "$5" >/dev/null &&
		cp "$R/$1/$3.part" "$SH/$1/$3" && mv "$R/$1/$3.part" "$R/$1/$3"
}
# shadow_same DESC: the replica folder's files have the shadow's bytes.
shadow_same() {
	check_eq "$1: the replica files' bytes never changed (sha256 of every file = a shadow copy changed the same way)" \
		"$(replica_sums "$SH")" "$(replica_sums "$R")"
}
