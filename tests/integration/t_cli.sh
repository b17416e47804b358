#!/usr/bin/env bash
# SPEC §1: the command line. --help/--version exit 0; bad paths give one line
# naming the path, exit 1 and mount nothing; the daemon returns once the mount
# is ready and leaves no process behind after fusermount3 -u.
. "$(dirname "$0")/lib.sh"

out=$("$REPLICAFS" --help); check "--help exits 0" true
check "--help shows usage" grep -q "usage: .*REPLICA_DIR MOUNTPOINT" <<<"$out"
check "--help lists FUSE options" grep -q -- "-o clone_fd" <<<"$out"
check "--help names the partition files" grep -qF "vms/<vm>/<disk>-part<N>.img" <<<"$out"
check "--help ends with libfuse's option help" bash -c "sed -n '/^FUSE options:/,\$p' | grep -q -- '-o allow_other'" <<<"$out"
# Each option once: ours in both spellings (fs/options.c), -h/-V only in
# libfuse's list (they were in both).
for opt in --state=DIR "-o state=DIR" --log=FILE "-o log=FILE" --handles=N "-o handles=N" \
	--rescan=SECONDS "-o rescan=SECONDS" -h --help -V --version -d -f -s; do
	check_eq "--help lists $opt once" 1 "$(grep -cE -- "^ +(.* )?$opt( |$)" <<<"$out")"
done
check "--help gives --handles' range and default" grep -qF "(default 8, 1..1024)" <<<"$out"
check "--help gives --rescan's range and default" grep -qF "(default 2, 1..3600)" <<<"$out"
out=$("$REPLICAFS" --version); check "--version names the program" grep -q "^replicafs [0-9]" <<<"$out"
check "--version names libfuse's and libvhdi's versions" grep -qE "FUSE library [0-9.]+, libvhdi [0-9]+$" <<<"$out"

# The manual page (docs/replicafs.1): its option list is what the option
# table generates (cmake --build BUILD --target man), it renders without a
# warning, carries the program's version, and documents every option --help
# lists, in every spelling.
man1=$TOP/docs/replicafs.1
gen=$(dirname "$REPLICAFS")/replicafs-man-options
cp "$man1" "$T/replicafs.1"
check "man page generator runs" "$gen" "$T/replicafs.1"
check "man page's option list is the generator's (run: cmake --build BUILD --target man)" cmp "$man1" "$T/replicafs.1"
check "man page holds the generated list" grep -qF -- "$("$gen" | head -3)" "$man1"
check_eq "man page renders without warnings" "" "$(groff -t -man -Tutf8 -ww -rLL=78n -z "$man1" 2>&1)"
page=$(groff -t -man -Tutf8 -P-cbou -rLL=78n "$man1" 2>/dev/null)
check "man page shows $(head -1 <<<"$out")" grep -qF "$(head -1 <<<"$out")" <<<"$page"
while read -r opt; do
	check "man page documents $opt" grep -qE -- "(^| )$opt([ =,]|$)" <<<"$page"
done < <("$REPLICAFS" --help | sed -n '/^replicafs options:/,/^Commands:/p' | cut -c5-26 |
	grep -E '^-' | sed 's/ *$//'; printf '%s\n' -h --help -V --version -f -d "-o debug" -s -o)

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

# --state elsewhere, created if missing (its parent exists); -o ro passes through.
mkdir -p "$T/st"
rfs_mount "$T/replica" "$T/mnt" --state="$T/st/deep" -o ro
check "--state created" test -d "$T/st/deep"
check "-o ro reaches the mount" bash -c "grep -F ' $T/mnt ' /proc/self/mounts | grep -q '[ ,]ro[ ,]'"
rfs_umount "$T/mnt"

# The mount point may lie inside REPLICA_DIR: it is not a VM, and the daemon
# never looks into it (before: its first rescan stat'ed its own mount before
# serving it, and the daemon and every reader hung). Timeouts turn a hang
# into a failure.
mkdir -p "$T/replica/mnt-in"
check "mount point inside the replica folder: mounted" timeout 20 "$REPLICAFS" --log="$T/in.log" \
	"$T/replica" "$T/replica/mnt-in"
check_eq "mount point inside the replica folder: not a VM" "vm1" "$(timeout 10 ls "$T/replica/mnt-in/vms" | tr '\n' ' ' | sed 's/ $//')"
mkdir "$T/replica/vm2" && cp "$T/replica/vm1/d.vhdx" "$T/replica/vm2/"
check "mount point inside the replica folder: a new VM appears, the mount point still no VM" \
	wait_until 10 bash -c "[ \"\$(timeout 10 ls '$T/replica/mnt-in/vms' | tr '\n' ' ')\" = 'vm1 vm2 ' ]"
check "mount point inside the replica folder: the disk reads" timeout 20 cmp -s "$T/replica/mnt-in/vms/vm2/d.img" "$T/r.raw"
timeout 20 bash -c "$(declare -f rfs_umount rfs_pid wait_exit); REPLICAFS='$REPLICAFS' rfs_umount '$T/replica/mnt-in'"
rm -rf "$T/replica/vm2" "$T/replica/mnt-in"

# Every option of ours in both spellings: --name=VALUE and -o name=VALUE.
for spelling in long mount; do
	rm -rf "$T/st-$spelling"
	if [ $spelling = long ]; then
		opts=(--handles=2 --rescan=10 --state="$T/st-$spelling" --log="$T/$spelling.log"
			--uid=4242 --gid=4343 --umask=022)
	else
		opts=(-o handles=2 -o rescan=10,state="$T/st-$spelling",log="$T/$spelling.log"
			-o uid=4242,gid=4343,umask=022)
	fi
	"$REPLICAFS" "${opts[@]}" "$T/replica" "$T/mnt"
	check "$spelling options: mounted" cmp -s "$T/mnt/vms/vm1/d.img" "$T/r.raw"
	check_eq "$spelling options: uid, gid and umask shown" "4242:4343 444 200 555" \
		"$(stat -c %u:%g "$T/mnt/vms/vm1/d.img") $(stat -c %a "$T/mnt/vms/vm1/d.img" "$T/mnt/ctl/vm1/control" "$T/mnt/vms" | tr '\n' ' ' | sed 's/ $//')"
	check "$spelling options: log where asked" grep -q "mounted on $T/mnt" "$T/$spelling.log"
	ctl vm1 failover "$T/mnt"
	check "$spelling options: state where asked" test -f "$T/st-$spelling/vm1/vm.state"
	ctl vm1 revert "$T/mnt"
	rfs_umount "$T/mnt"
done
# As mount(8) starts it for an /etc/fstab line (type fuse.replicafs):
# mount.fuse3 runs "replicafs REPLICA MNT -o OPTIONS" from the PATH.
rm -rf "$T/st-fstab"
PATH=$(dirname "$REPLICAFS"):$PATH mount.fuse3 "$T/replica" "$T/mnt" -t replicafs \
	-o ro,handles=4,rescan=60,state="$T/st-fstab",log="$T/fstab.log",umask=027
check "fstab line: mounted" cmp -s "$T/mnt/vms/vm1/d.img" "$T/r.raw"
check_eq "fstab line: umask=027 shown" 440 "$(stat -c %a "$T/mnt/vms/vm1/d.img")"
check "fstab line: ro reaches the mount" bash -c "grep -F ' $T/mnt ' /proc/self/mounts | grep -q '[ ,]ro[ ,]'"
check "fstab line: state and log where asked" test -d "$T/st-fstab" -a -s "$T/fstab.log"
pid=$(pgrep -f "^replicafs .*$T/mnt" | head -1)
fusermount3 -u "$T/mnt"
[ -z "$pid" ] || wait_exit "$pid"

# Bad options and values: one line naming the option, exit 1, before
# anything is opened: no mount, no state folder, no log file.
mkdir -p "$T/fresh/vm1"
cp "$T/replica/vm1/d.vhdx" "$T/fresh/vm1/"
bad_option() { # bad_option NAME_IN_MESSAGE ARGS...
	local name=$1; shift
	expect_error "$*" "$name" --state="$T/bad-state" --log="$T/bad.log" "$@" "$T/fresh" "$T/mnt"
}
bad_option --handles=0 --handles=0
bad_option --handles=99999999 --handles=99999999
bad_option --handles=abc --handles=abc
bad_option --handles --handles
bad_option "-o handles=0" -o handles=0
bad_option "-o handles=2000" -o ro,handles=2000
bad_option --rescan=0 --rescan=0
bad_option --rescan=3601 --rescan=3601
bad_option "-o rescan=0" -o rescan=0
bad_option --state= --state=
bad_option "-o log=" -o log=
bad_option --bogus --bogus
bad_option "-o bogus=1" -o bogus=1
bad_option "-o bogus" -o ro,bogus,allow_other
bad_option "-x" -x
err=$("$REPLICAFS" --handles=99999999 "$T/fresh" "$T/mnt" 2>&1) || true
check "--handles out of range gives the range ($err)" grep -qF "(1..1024)" <<<"$err"
err=$("$REPLICAFS" -o bogus=1 "$T/fresh" "$T/mnt" 2>&1) || true
check_eq "unknown mount option: the whole message" "replicafs: -o bogus=1: unknown option" "$err"
expect_error "an argument too many" "$T/extra" "$T/fresh" "$T/mnt" "$T/extra"
check "nothing mounted after bad options" bash -c "! grep -qF ' $T/' /proc/self/mounts"
check "no state folder after bad options" test ! -e "$T/bad-state" -a ! -e "$T/fresh/.replicafs"
check "no log file after bad options" test ! -e "$T/bad.log"

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
