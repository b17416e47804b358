#!/usr/bin/env bash
# SPEC §1 and §12, as an admin meets them: logs that reach a file when no
# syslog daemon listens (one line per command, after it ran, naming the open
# file behind a 32774), the mistakes an admin makes (wrong folder level, a
# typo in --state, a read-only replica, a mountpoint already mounted), each
# caught with its exact message, and option values refused by their bounds.

# No syslog here: on a machine where one listens on /dev/log, run the whole
# test in a private mount namespace where /dev/log is not a socket.
if [ -z "${RFS_ADMIN_NO_SYSLOG:-}" ] &&
	python3 -c 'import socket; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).connect("/dev/log")' 2>/dev/null; then
	export RFS_ADMIN_NO_SYSLOG=1
	exec unshare -m --propagation private bash -c 'mount --bind /dev/null /dev/log && exec bash "$0"' "$0"
fi
. "$(dirname "$0")/lib.sh"

R=$T/replica M=$T/mnt
mkdir -p "$R/vm1" "$M"
random_disk 2 "$T/sys.raw" "$R/vm1/sys.vhdx" vhdx
before=$(replica_sums "$R")

# --- logs without syslog (SPEC §12) -------------------------------------------
check "no syslog daemon listens on /dev/log here" \
	bash -c "! python3 -c 'import socket; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).connect(\"/dev/log\")' 2>/dev/null"
err=$("$REPLICAFS" "$R" "$M" 2>&1) # daemonised, no --log
check_eq "daemonised mount without --log: nothing on stderr" "" "$err"
LOG=$R/.replicafs/replicafs.log
check "daemonised without syslog: the log is STATE/replicafs.log" grep -q "INFO: mounted on $M (pid " "$LOG"
ctl vm1 failover "$M"
exec 3<"$M/vms/vm1/sys.img"
check_eq "revert with a disk open: EBUSY" EBUSY "$(echo revert | ctl_raw vm1 "$M")"
check_eq "revert with a disk open: status 32774" "32774 System is in use" "$(cat "$M/ctl/vm1/status")"
exec 3<&-
check "revert once the disk is closed" ctl vm1 revert "$M"
# One line per command, after it ran, with its code; the 32774 names the file.
check_eq "failover: logged once, with its code and states" 1 \
	"$(grep -c "INFO: vm1: failover: 0 Completed with No Error (state 3 -> 5)$" "$LOG")"
check_eq "refused revert: logged once, naming the open file" 1 \
	"$(grep -c "WARNING: vm1: revert: 32774 System is in use (state 5 -> 5): vms/vm1/sys.img is open$" "$LOG")"
check_eq "revert: logged once" 1 "$(grep -c "INFO: vm1: revert: 0 Completed with No Error (state 5 -> 3)$" "$LOG")"
check_eq "three commands, three lines" 3 "$(grep -c "vm1: \(failover\|revert\)" "$LOG")"
echo bogus >"$M/ctl/vm1/control" 2>/dev/null || true
check "an unknown command is logged as written, with its code" \
	grep -qE "WARNING: vm1: \"bogus\": [0-9]+ .* \(state 3 -> 3\)$" "$LOG"
rfs_umount "$M"
check "unmount logged in the same file" grep -q "INFO: unmounted $M$" "$LOG"

# --- the wrong folder level (SPEC §1) -----------------------------------------
# One VM's folder given as REPLICA_DIR: mounts, warns naming the folder and
# its parent, and makes no .replicafs among the VM's disk files.
rc=0; err=$("$REPLICAFS" --log="$T/vmdir.log" "$R/vm1" "$M" 2>&1) || rc=$?
check_eq "one VM's folder: mounts (exit 0)" 0 "$rc"
check_eq "one VM's folder: the warning" \
	"replicafs: warning: $R/vm1: no VM found; it holds disk files itself, so it looks like one VM's folder: mount the folder above it ($R) instead (no state folder made, not followed)" "$err"
check "one VM's folder: mounted, no VM shown" bash -c "grep -qF ' $M ' /proc/self/mounts && [ -z \"\$(ls '$M/vms')\" ]"
check "one VM's folder: df works" bash -c "df '$M' >/dev/null"
check "one VM's folder: no .replicafs made inside it" test ! -e "$R/vm1/.replicafs"
rfs_umount "$M"
# An empty folder: mounts, warns (the store is followed: VMs copied in appear).
mkdir -p "$T/empty"
rc=0; err=$("$REPLICAFS" --log="$T/empty.log" "$T/empty" "$M" 2>&1) || rc=$?
check_eq "no VM: mounts (exit 0)" 0 "$rc"
check_eq "no VM: the warning" \
	"replicafs: warning: $T/empty: no VM found (a VM is a folder of .vhdx/.vhd files in REPLICA_DIR); new VM folders appear without a remount" "$err"
check "no VM: the warning is in the log too" grep -q "WARNING: $T/empty: no VM found" "$T/empty.log"
rfs_umount "$M"

# --- --state: made one level only (a typo makes no fresh tree) -----------------
rc=0; err=$("$REPLICAFS" --log="$T/typo.log" --state="$T/sttae/st" "$R" "$M" 2>&1) || rc=$?
check_eq "--state under a missing folder: exit 1" 1 "$rc"
check_eq "--state under a missing folder: the message" \
	"replicafs: $T/sttae/st: its parent folder does not exist (--state makes the last folder only)" "$err"
check "--state under a missing folder: nothing made, nothing mounted" \
	bash -c "[ ! -e '$T/sttae' ] && ! grep -qF ' $M ' /proc/self/mounts"
mkdir -p "$T/st"
rfs_mount "$R" "$M" --state="$T/st/new"
check "--state in an existing folder: made" test -d "$T/st/new"
rfs_umount "$M"

# --- a read-only replica: the default state folder cannot be made -------------
mkdir -p "$T/ro-src/vm1" "$T/ro"
cp "$R/vm1/sys.vhdx" "$T/ro-src/vm1/"
mount --bind "$T/ro-src" "$T/ro"
mount -o remount,bind,ro "$T/ro"
rc=0; err=$("$REPLICAFS" --log="$T/ro.log" "$T/ro" "$M" 2>&1) || rc=$?
check_eq "read-only replica: exit 1" 1 "$rc"
check_eq "read-only replica: says to use --state" \
	"replicafs: $T/ro/.replicafs: cannot create the state folder: Read-only file system (give a writable one with --state=DIR)" "$err"
rfs_mount "$T/ro" "$M" --state="$T/st/ro"
check "read-only replica with --state: serves the disk" cmp -s "$M/vms/vm1/sys.img" "$T/sys.raw"
rfs_umount "$M"
umount "$T/ro"

# --- a mountpoint already mounted --------------------------------------------
rfs_mount "$R" "$M"
rc=0; err=$("$REPLICAFS" --log="$T/twice.log" "$R" "$M" 2>&1) || rc=$?
check_eq "mountpoint already mounted: exit 1" 1 "$rc"
check_eq "mountpoint already mounted: the message" \
	"replicafs: $M: already a mount point (unmount it first, or choose another folder)" "$err"
check "mountpoint already mounted: the first mount still serves" cmp -s "$M/vms/vm1/sys.img" "$T/sys.raw"
rfs_umount "$M"

# --- option bounds, refused before anything is opened ---------------------------
bound() { # bound EXPECTED_MESSAGE ARGS...
	local want=$1 rc=0 got; shift
	got=$("$REPLICAFS" --state="$T/never" "$@" "$R" "$M" 2>&1) || rc=$?
	check_eq "$* refused: exit 1" 1 "$rc"
	check_eq "$* refused: the message" "$want" "$got"
}
bound "replicafs: --handles=0: out of range (1..1024)" --handles=0
bound "replicafs: --handles=99999999: out of range (1..1024)" --handles=99999999
bound "replicafs: -o handles=0: out of range (1..1024)" -o handles=0
bound "replicafs: -o handles=1025: out of range (1..1024)" -o handles=1025
bound "replicafs: --bogus: unknown option" --bogus
check "bad options: no state folder made" test ! -e "$T/never"
rfs_mount "$R" "$M" --handles=1024 -o handles=1
check "handles at its bounds (1, 1024): accepted" test -f "$M/vms/vm1/sys.img"
rfs_umount "$M"

check_eq "the replica never changed" "$before" "$(replica_sums "$R")"

fault "REPLICA_DIR is one VM's folder, or holds no VM" "mounts; a warning on stderr names the folder (and its parent when it holds disk files itself); no .replicafs is made among a VM's disks"
fault "--state under a missing folder (a typo)" "one line naming the path, exit 1; no folder tree is made"
fault "read-only replica without --state" "one line: the state folder cannot be created, give one with --state=DIR; exit 1"
fault "MOUNTPOINT already a mount" "one line: already a mount point, exit 1; the first mount keeps serving"
fault "daemonised with no syslog listening and no --log" "messages go to STATE/replicafs.log; each command is one line after it ran, a 32774 names the open file"
finish
