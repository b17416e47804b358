#!/usr/bin/env bash
# SPEC §1: the command line. --help/--version exit 0; bad paths give one line
# naming the path, exit 1 and mount nothing; the daemon returns once the mount
# is ready and leaves no process behind after fusermount3 -u.
. "$(dirname "$0")/lib.sh"

out=$("$REPLICAFS" --help); check "--help exits 0" true
check "--help shows usage" grep -q "usage: .*REPLICA_DIR MOUNTPOINT" <<<"$out"
check "--help lists --state" grep -q -- "--state=DIR" <<<"$out"
check "--help lists FUSE options" grep -q -- "-o clone_fd" <<<"$out"
out=$("$REPLICAFS" --version); check "--version names the program" grep -q "^replicafs [0-9]" <<<"$out"
check "--version names libfuse's and libvhdi's versions" grep -qE "FUSE library [0-9.]+, libvhdi [0-9]+$" <<<"$out"

# The manual page (docs/replicafs.1): renders without a warning, carries the
# program's version, and documents every option --help lists.
man1=$TOP/docs/replicafs.1
check_eq "man page renders without warnings" "" "$(groff -t -man -Tutf8 -ww -rLL=78n -z "$man1" 2>&1)"
page=$(groff -t -man -Tutf8 -P-cbou -rLL=78n "$man1" 2>/dev/null)
check "man page shows $(head -1 <<<"$out")" grep -qF "$(head -1 <<<"$out")" <<<"$page"
for opt in $("$REPLICAFS" --help | sed -n '/^replicafs options:/,/^Commands:/p' |
	grep -oE -- '(^| )--?[a-zA-Z][a-zA-Z-]*' | sort -u) -f -d -s -o; do
	check "man page documents $opt" grep -qE -- "(^| )$opt([ =,]|$)" <<<"$page"
done

mkdir -p "$T/replica/vm1" "$T/mnt" "$T/full"
random_disk 1 "$T/r.raw" "$T/replica/vm1/d.vhdx" vhdx
touch "$T/full/x"

# expect_error DESCRIPTION PATH ARGS...: exit 1, one line on stderr naming PATH.
expect_error() {
	local d=$1 path=$2 rc=0 err; shift 2
	err=$("$REPLICAFS" "$@" 2>&1 >/dev/null) || rc=$?
	check_eq "$d: exit status" 1 "$rc"
	check_eq "$d: one line" 1 "$(printf '%s\n' "$err" | wc -l)"
	check "$d: names $path ($err)" grep -qF -- "$path" <<<"$err"
}
expect_error "missing replica" "$T/nope" "$T/nope" "$T/mnt"
expect_error "replica is a file" "$T/full/x" "$T/full/x" "$T/mnt"
expect_error "missing mountpoint" "$T/nomnt" "$T/replica" "$T/nomnt"
expect_error "non-empty mountpoint" "$T/full" "$T/replica" "$T/full"
expect_error "mountpoint is a file" "$T/full/x" "$T/replica" "$T/full/x"
check "nothing mounted after errors" bash -c "! grep -qF ' $T/' /proc/self/mounts"
rc=0; "$REPLICAFS" "$T/replica" 2>/dev/null || rc=$?
check_eq "no mountpoint: exit 1" 1 "$rc"

# Mount; the tree is there as soon as the command returns.
rfs_mount "$T/replica" "$T/mnt"
check "mounted when the command returns" test -f "$T/mnt/vms/vm1/d.img"
check "default state folder created" test -d "$T/replica/.replicafs"
check "state folder is not a VM" bash -c "! ls '$T/mnt/vms' | grep -q replicafs"
pid=$(rfs_pid "$T/mnt")
check "daemon runs" test -n "$pid"
rfs_umount "$T/mnt"
check "no process left after fusermount3 -u" bash -c "$(declare -f alive); ! alive $pid"

# --state elsewhere, created if missing; -o ro passes through.
rfs_mount "$T/replica" "$T/mnt" --state="$T/st/deep" -o ro
check "--state created" test -d "$T/st/deep"
check "-o ro reaches the mount" bash -c "grep -F ' $T/mnt ' /proc/self/mounts | grep -q '[ ,]ro[ ,]'"
rfs_umount "$T/mnt"

# -f stays in the foreground, single-threaded (-s) or with the default
# multithreaded loop; either serves reads, exits 0 after the unmount, and
# writes nothing but its log (libfuse 3.14.0 warned on stderr about its own
# default max_idle_threads).
qemu-img convert -q -O raw "$T/replica/vm1/d.vhdx" "$T/d.raw"
foreground() { # foreground NAME OPTIONS...
	local name=$1 rc=0 fgpid; shift
	"$REPLICAFS" -f "$@" --log="$T/$name.log" "$T/replica" "$T/mnt" 2>"$T/$name.err" &
	fgpid=$!
	# Readiness: the daemon logs "mounted on" once mounted; tail -F
	# follows the log by inotify, so this waits for the event.
	check "$name daemon reports the mount" timeout 20 grep -q -m1 "mounted on" <(tail -F -n +1 "$T/$name.log" 2>/dev/null)
	check "$name daemon serves" cmp -s "$T/mnt/vms/vm1/d.img" "$T/d.raw"
	fusermount3 -u "$T/mnt"
	wait "$fgpid" || rc=$?
	check_eq "$name daemon exits 0 after unmount" 0 "$rc"
	check_eq "$name daemon: nothing on stderr" "" "$(cat "$T/$name.err")"
}
foreground "foreground -s" -s
foreground "foreground multithreaded"

# What this test proved, for docs/FAULTS.md (recorded only if every check passed).
fault "REPLICA_DIR missing or not a folder; MOUNTPOINT missing, a file, or not empty" "one line naming the path and the reason, exit status 1, nothing mounted"

finish
