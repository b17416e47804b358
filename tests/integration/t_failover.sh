#!/usr/bin/env bash
# SPEC §3-7, issue 3: the failover cycle with real clients.
# failover -> mkfs.ext4 through a loop device -> mount, write, unmount ->
# e2fsck clean -> remount replicafs -> files still there -> revert -> the
# .img is the replica again; the replica files never change. Plus: revert
# while a loop device holds the disk, the page cache after revert, modes,
# truncate, persistence of status and state, kill -9 after fsync.
. "$(dirname "$0")/lib.sh"

R=$T/replica M=$T/mnt
mkdir -p "$R/vm1" "$R/vm2" "$T/guest"
random_disk 64 "$T/vm1.raw" "$R/vm1/sys.vhdx" vhdx
random_disk 8 "$T/vm2.raw" "$R/vm2/data.vhd" vpc -o subformat=dynamic,force_size=on
replica_before=$(replica_sums "$R")
want=$(sha "$T/vm1.raw")
IMG=$M/vms/vm1/sys.img

rfs_mount "$R" "$M"
check_eq "status empty before the first command" "" "$(cat "$M/ctl/vm1/status")"
check_eq "state 3 Replicating" "3 Replicating" "$(cat "$M/ctl/vm1/state")"
check_eq ".img mode 0400 before failover" "400" "$(stat -c %a "$IMG")"
err=$(dd if=/dev/zero of="$IMG" bs=4k count=1 conv=notrunc 2>&1 || true)
check "open for write before failover says EROFS ($err)" grep -q "Read-only file system" <<<"$err"

# --- failover, mkfs, mount, write --------------------------------------
check "echo failover succeeds" ctl vm1 failover "$M"
check_eq "status after failover" "0 Completed with No Error" "$(cat "$M/ctl/vm1/status")"
check_eq "state 5 Recovered" "5 Recovered" "$(cat "$M/ctl/vm1/state")"
check_eq ".img mode 0600 after failover" "600" "$(stat -c %a "$IMG")"
check_eq "other VM untouched" "3 Replicating" "$(cat "$M/ctl/vm2/state")"
check_eq "failed-over disk still reads as the replica" "$want" "$(sha "$IMG")"
check "truncate to another size is EINVAL" bash -c "truncate -s 1M '$IMG' 2>&1 | grep -q 'Invalid argument'"

loop=$(losetup -f --show "$IMG")
check "mkfs.ext4 through a loop device" mkfs.ext4 -q -F "$loop"
mount "$loop" "$T/guest"
head -c 3M /dev/urandom >"$T/guest/blob"
echo "hello from the failover" >"$T/guest/hello.txt"
blob_sum=$(sha "$T/guest/blob")
umount "$T/guest"
check "e2fsck -fn is clean" e2fsck -fn "$loop"

# --- revert refused while the loop device holds the disk -----------------
rc=0; err=$(ctl vm1 revert "$M" 2>&1) || rc=$?
check "revert while a loop device holds the disk fails" test "$rc" -ne 0
check "... with EBUSY ($err)" grep -q "busy" <<<"$err"
check_eq "status 32774" "32774 System is in use" "$(cat "$M/ctl/vm1/status")"
check_eq "state still 5" "5 Recovered" "$(cat "$M/ctl/vm1/state")"
losetup -d "$loop"

# --- remount: files still there ------------------------------------------
rfs_umount "$M"
rfs_mount "$R" "$M"
check_eq "state survives remount" "5 Recovered" "$(cat "$M/ctl/vm1/state")"
check_eq "status survives remount" "32774 System is in use" "$(cat "$M/ctl/vm1/status")"
loop=$(losetup -f --show -r "$IMG")
check "e2fsck -fn clean after remount" e2fsck -fn "$loop"
mount -o ro "$loop" "$T/guest"
check_eq "file written before remount reads back" "$blob_sum" "$(sha "$T/guest/blob")"
check_eq "text file reads back" "hello from the failover" "$(cat "$T/guest/hello.txt")"
umount "$T/guest"
losetup -d "$loop"
check "st_blocks counts the overlay" test "$(stat -c %b "$IMG")" -gt 0

# --- revert ---------------------------------------------------------------
check "echo revert succeeds" ctl vm1 revert "$M"
check_eq "status after revert" "0 Completed with No Error" "$(cat "$M/ctl/vm1/status")"
check_eq "state 3 after revert" "3 Replicating" "$(cat "$M/ctl/vm1/state")"
check_eq ".img mode 0400 after revert" "400" "$(stat -c %a "$IMG")"
check_eq ".img equals the replica after revert" "$want" "$(sha "$IMG")"
check "overlay file gone" bash -c "! ls '$R/.replicafs/vm1/' | grep -q overlay"

# --- page cache: read, fail over, overwrite, close, revert, read ----------
first=$(head -c 65536 "$IMG" | sha256sum)
ctl vm1 failover "$M"
head -c 65536 /dev/zero | dd of="$IMG" bs=64k count=1 conv=notrunc status=none
check_eq "overwrite visible while failed over" "$(head -c 65536 /dev/zero | sha256sum)" "$(head -c 65536 "$IMG" | sha256sum)"
ctl vm1 revert "$M"
check_eq "after revert the page cache shows the replica" "$first" "$(head -c 65536 "$IMG" | sha256sum)"

# --- kill -9 after fsync --------------------------------------------------
ctl vm1 failover "$M"
head -c 1M /dev/urandom >"$T/chunk"
dd if="$T/chunk" of="$IMG" bs=1M seek=5 count=1 conv=notrunc,fsync status=none
pid=$(rfs_pid "$M")
kill -9 "$pid"
fusermount3 -u -z "$M" 2>/dev/null || umount -l "$M"
# Its owner lock (SPEC §8) goes with its last descriptor: once it has exited,
# the next daemon owns the VM from the start (a daemon started earlier takes
# it over at a rescan, t_owner).
wait_exit "$pid"
rfs_mount "$R" "$M"
check_eq "fsync'd data survives kill -9" "$(sha "$T/chunk")" "$(dd if="$IMG" bs=1M skip=5 count=1 status=none | sha256sum | awk '{print $1}')"
check_eq "state survives kill -9" "5 Recovered" "$(cat "$M/ctl/vm1/state")"
check_eq "status survives kill -9" "0 Completed with No Error" "$(cat "$M/ctl/vm1/status")"

# --- commit ---------------------------------------------------------------
check "commit (a job, waited for)" commit_wait vm1 "$M"
check_eq "state 6 Committed" "6 Committed" "$(cat "$M/ctl/vm1/state")"
rc=0; ctl vm1 revert "$M" 2>/dev/null || rc=$?
check "revert after commit refused" test "$rc" -ne 0
check_eq "status 32775" "32775 Invalid state for this operation" "$(cat "$M/ctl/vm1/status")"
check_eq "committed data still there" "$(sha "$T/chunk")" "$(dd if="$IMG" bs=1M skip=5 count=1 status=none | sha256sum | awk '{print $1}')"
rfs_umount "$M"

check_eq "replica files never changed" "$replica_before" "$(replica_sums "$R")"

# --- SPEC §7: an overlay is never applied to a different replica ----------
# vm2 fails over and is written; while unmounted its replica disk is
# replaced by another image of the same name (a new identity). The next
# mount must not apply the overlay: state 8; revert discards it and the new
# replica is served.
rfs_mount "$R" "$M"
ctl vm2 failover "$M"
head -c 4096 /dev/zero | dd of="$M/vms/vm2/data.img" bs=4k count=1 conv=notrunc,fsync status=none
rfs_umount "$M"
random_disk 8 "$T/vm2-new.raw" "$R/vm2/data.vhd" vpc -o subformat=dynamic,force_size=on
rfs_mount "$R" "$M"
check_eq "replica replaced under an overlay: state 8" "8 Critical" "$(cat "$M/ctl/vm2/state")"
check "the log says why" grep -q "VM vm2: data.vhd: replica replaced under an overlay: it is not the disk data.img was failed over on" "$T/replicafs.log"
check_eq "ctl/vm2/errors says it in the same words" 1 \
	"$(grep -c "^data.vhd: replica replaced under an overlay: .*revert discards the overlay\$" "$M/ctl/vm2/errors")"
err=$(dd if=/dev/zero of="$M/vms/vm2/data.img" bs=4k count=1 conv=notrunc 2>&1 || true)
check "its disk is not writable ($err)" grep -q "Read-only file system" <<<"$err"
check_eq "its disk reads as the new replica, not through the old overlay" "$(sha "$T/vm2-new.raw")" "$(sha "$M/vms/vm2/data.img")"
rc=0; ctl vm2 failover "$M" 2>/dev/null || rc=$?
check "failover refused in state 8" test "$rc" -ne 0
check "revert of the stale overlay is allowed" ctl vm2 revert "$M"
check_eq "state 3 after that revert" "3 Replicating" "$(cat "$M/ctl/vm2/state")"
check_eq "ctl/vm2/errors empty after that revert" "" "$(cat "$M/ctl/vm2/errors")"
check "no overlay left" bash -c "! ls '$R/.replicafs/vm2/' | grep -q overlay"
check_eq "the new replica reads exactly" "$(sha "$T/vm2-new.raw")" "$(sha "$M/vms/vm2/data.img")"
rfs_umount "$M"

# What this test proved, for docs/FAULTS.md (recorded only if every check passed).
fault "\`revert\` while a loop device holds the disk" "\`echo\`: Device or resource busy; status \`32774\`; after \`losetup -d\` revert succeeds"
fault "\`kill -9\` after \`dd ... conv=fsync\`" "the synced data reads back after remount"
fault "replica disk replaced by another image while failed over (between mounts)" "state \`8 Critical\`, the old overlay is not applied, the disk reads as the new replica read-only; \`revert\` discards the overlay, state 3"
fault "\`truncate\` of a failed-over \`.img\` to another size" "\`EINVAL\`; writing a replica disk before failover: \`EROFS\`"

finish
