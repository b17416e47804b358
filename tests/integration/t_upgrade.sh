#!/usr/bin/env bash
# "A store left failed over by the previous release mounts with every
# overlay intact" (SPEC §1 "Overlays and state persist", §2 "The store is
# alive", §9: a failed-over disk stays on its point).
#
# The previous release (ee8302e) keeps per VM, in STATE/<vm>/vm.state,
# format 1 (ctl/savedstate.c at ee8302e):
#     replicafs-vm-state 1
#     state <3|5|6>
#     status <code>
#     crc <zlib CRC-32 of the lines above, newlines included, %08x>
# and no record of a recovery point (it had none). Here: vm1 (a VHD chain,
# point 1) is failed over and written, vm2 is failed over, written and
# committed, vm3 is left alone; unmounted; the store is then as the previous
# release leaves it, and the current binary mounts it: states 5 / 6 / 3, the
# written data reads back, the overlays are there; newer points arriving
# (mounted and between mounts) move neither vm1 nor vm2 off what they read;
# revert takes vm1 to the newest point. The replica files never change.
#
# By default the first mount is made by the current binary and vm.state is
# then rewritten in format 1 (what the previous release wrote: this tests the
# state file, not an older overlay layout). With RFS_UPGRADE_BUILD=1 the
# previous release is built from git (git archive of RFS_UPGRADE_REV,
# default ee8302e, into the test's temporary folder; about a minute) and
# makes the first mount itself; the file it wrote is checked to be exactly
# the format-1 text this test writes otherwise.
. "$(dirname "$0")/lib.sh"

REV=${RFS_UPGRADE_REV:-ee8302e}
LIVE=${RFS_LIVE_DEADLINE:-5}
HOLD=$((LIVE + 1))
R=$T/replica M=$T/mnt S=$T/stage SH=$T/shadow ST=$T/replica/.replicafs
mkdir -p "$R" "$S"/{vm1,vm2,vm3} "$SH"

random_disk 16 "$T/u0.raw" "$S/vm1/u.vhd" vpc -o subformat=dynamic,force_size=on
python3 "$TOP/tests/mkvhd.py" diff "$S/vm1/u.vhd" "$S/vm1/u-1.avhd" --seed 41 --raw-out "$T/u1.raw" >/dev/null
random_disk 8 "$T/w0.raw" "$S/vm2/w.vhd" vpc -o subformat=dynamic,force_size=on
random_disk 4 "$T/v3.raw" "$S/vm3/sys.vhdx" vhdx
for vm in vm1 vm2 vm3; do put_vm "$vm"; done

# format1 STATE STATUS: vm.state as the previous release writes it.
format1() {
	python3 - "$1" "$2" <<'PY'
import sys, zlib
body = 'replicafs-vm-state 1\nstate %s\nstatus %s\n' % (sys.argv[1], sys.argv[2])
sys.stdout.write(body + 'crc %08x\n' % zlib.crc32(body.encode()))
PY
}
state_of() { cat "$M/ctl/$1/state" 2>/dev/null || echo "(no ctl/$1/state)"; }
state_is() { [ "$(state_of "$1")" = "$2" ]; }
same() { same_bytes "$@" 2>"$T/same.err"; }
last_why() { [ ! -s "$T/same.err" ] || echo "  last comparison: $(cat "$T/same.err")"; }
# patched RAW MARKER OFF OUT: OUT = RAW with MARKER written at byte OFF.
patched() {
	cp "$1" "$4"
	dd if="$2" of="$4" bs=64K seek="$3" oflag=seek_bytes conv=notrunc status=none
}

# prev_mount / prev_umount: lib.sh's rfs_mount / rfs_umount with the binary
# that makes the first mount.
prev_mount() { local REPLICAFS=$PREV; rfs_mount "$@"; }
prev_umount() { local REPLICAFS=$PREV; rfs_umount "$@"; }

# --- the previous release ------------------------------------------------------------
PREV=$REPLICAFS
if [ "${RFS_UPGRADE_BUILD:-0}" = 1 ]; then
	git -C "$TOP" rev-parse --verify -q "$REV^{commit}" >/dev/null ||
		{ echo "FAIL: RFS_UPGRADE_BUILD=1 needs the git history: $REV is not a commit of $TOP"; exit 1; }
	mkdir -p "$T/prev-src"
	git -C "$TOP" archive "$REV" | tar -x -C "$T/prev-src"
	if cmake -S "$T/prev-src" -B "$T/prev-build" -DRFS_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$T/prev-build.log" 2>&1 &&
		cmake --build "$T/prev-build" -j2 --target replicafs >>"$T/prev-build.log" 2>&1; then
		PREV=$T/prev-build/replicafs
	else
		cat "$T/prev-build.log"
	fi
	check "the previous release ($REV) builds from git" test "$PREV" = "$T/prev-build/replicafs"
	[ "$PREV" != "$REPLICAFS" ] || { finish; exit 1; }
	echo "previous release: $("$PREV" --version 2>&1 | head -1)"
fi

# --- the store as the previous release leaves it ------------------------------------------
head -c 192K /dev/urandom >"$T/m1"
head -c 128K /dev/urandom >"$T/m2"
OFF1=$((3 * 1024 * 1024 + 512)) OFF2=$((2 * 1024 * 1024))
patched "$T/u1.raw" "$T/m1" "$OFF1" "$T/u1m.raw"
patched "$T/w0.raw" "$T/m2" "$OFF2" "$T/w0m.raw"
prev_mount "$R" "$M"
check "first mount: vm1/u.img reads point 1 (mkvhd's model of u-1.avhd)" same_bytes "$M/vms/vm1/u.img" "$T/u1.raw"
check "first mount: failover vm1" ctl vm1 failover "$M"
dd if="$T/m1" of="$M/vms/vm1/u.img" bs=64K seek="$OFF1" oflag=seek_bytes conv=notrunc,fsync status=none
check "first mount: failover vm2" ctl vm2 failover "$M"
dd if="$T/m2" of="$M/vms/vm2/w.img" bs=64K seek="$OFF2" oflag=seek_bytes conv=notrunc,fsync status=none
check "first mount: commit vm2" ctl vm2 commit "$M"
if wait_until 60 state_is vm2 "6 Committed"; then pass "first mount: vm2 is 6 Committed"
else fail "first mount: vm2 is not committed: $(state_of vm2)"; fi
check "first mount: vm1 reads point 1 + its synced write" same_bytes "$M/vms/vm1/u.img" "$T/u1m.raw"
check "first mount: vm2 reads its replica + its synced write" same_bytes "$M/vms/vm2/w.img" "$T/w0m.raw"
check "first mount: unmounts" prev_umount "$M"

declare -A WANT=([vm1]="$(format1 5 0)" [vm2]="$(format1 6 0)")
for vm in vm1 vm2; do
	if [ "$PREV" != "$REPLICAFS" ]; then
		check_eq "the previous release wrote $vm/vm.state in format 1, exactly as this test writes it" \
			"${WANT[$vm]}" "$(cat "$ST/$vm/vm.state")"
	else
		printf '%s\n' "${WANT[$vm]}" >"$ST/$vm/vm.state.tmp"
		mv "$ST/$vm/vm.state.tmp" "$ST/$vm/vm.state"
		echo "  $vm/vm.state rewritten in format 1; the state folder holds: $(ls "$ST/$vm" | tr '\n' ' ')"
	fi
done
check "vm1 has an overlay in the state folder" test -n "$(overlays_of "$ST" vm1)"
check "vm2 has an overlay in the state folder" test -n "$(overlays_of "$ST" vm2)"
ov1=$(overlays_of "$ST" vm1) ov2=$(overlays_of "$ST" vm2)

# --- the current binary mounts it ---------------------------------------------------------------
rfs_mount "$R" "$M"
PID=$(rfs_pid "$M")
check_eq "upgrade: vm1 is 5 Recovered" "5 Recovered" "$(state_of vm1)"
check_eq "upgrade: vm1's status survives" "0 Completed with No Error" "$(cat "$M/ctl/vm1/status" 2>/dev/null)"
check_eq "upgrade: vm2 is 6 Committed" "6 Committed" "$(state_of vm2)"
check_eq "upgrade: vm3 is 3 Replicating" "3 Replicating" "$(state_of vm3)"
check "upgrade: vm1/u.img reads point 1 + the synced write" same_bytes "$M/vms/vm1/u.img" "$T/u1m.raw"
check "upgrade: vm2/w.img reads its replica + the synced write" same_bytes "$M/vms/vm2/w.img" "$T/w0m.raw"
check "upgrade: vm3/sys.img reads exactly" same_bytes "$M/vms/vm3/sys.img" "$T/v3.raw"
check_eq "upgrade: vm1/u.img is writable (0600)" 600 "$(stat -c %a "$M/vms/vm1/u.img")"
check_eq "upgrade: the overlay files of vm1 are still there" "$ov1" "$(overlays_of "$ST" vm1)"
check_eq "upgrade: the overlay files of vm2 are still there" "$ov2" "$(overlays_of "$ST" vm2)"

# --- newer points arrive ---------------------------------------------------------------------------
new_point vm1 u-1.avhd u-2.avhd 42 "$T/u2.raw"
new_point vm2 w.vhd w-1.avhd 43 "$T/w1.raw"
check "(setup) point 2 of vm1 differs from point 1" bash -c "! cmp -s '$T/u1.raw' '$T/u2.raw'"
: >"$T/same.err"
if stays_true "$HOLD" eval 'same --drop "$M/vms/vm1/u.img" "$T/u1m.raw" && same --drop "$M/vms/vm2/w.img" "$T/w0m.raw"'; then
	pass "a newer point arrives (u-2.avhd, w-1.avhd): for ${HOLD} s vm1 reads point 1 + write, vm2 its replica + write"
else
	fail "a newer point arrives: after $(ms_s "$STAYED") a disk no longer reads what it was failed over to"; last_why
fi
check_eq "vm1 still 5 Recovered" "5 Recovered" "$(state_of vm1)"
check_eq "vm2 still 6 Committed" "6 Committed" "$(state_of vm2)"
check "unmounts" rfs_umount "$M"

rfs_mount "$R" "$M"
PID=$(rfs_pid "$M")
check_eq "remount with newer points: vm1 still 5 Recovered" "5 Recovered" "$(state_of vm1)"
check "remount with newer points: vm1/u.img reads point 1 + the synced write" same_bytes "$M/vms/vm1/u.img" "$T/u1m.raw"
check_eq "remount with newer points: vm2 still 6 Committed" "6 Committed" "$(state_of vm2)"
check "remount with newer points: vm2/w.img reads its replica + the synced write" same_bytes "$M/vms/vm2/w.img" "$T/w0m.raw"
check "revert vm1" ctl vm1 revert "$M"
check_eq "vm1 is 3 Replicating after revert" "3 Replicating" "$(state_of vm1)"
check "after revert vm1/u.img reads the newest point (u-2.avhd) exactly" same_bytes "$M/vms/vm1/u.img" "$T/u2.raw"
check "the daemon is alive" alive "$PID"
check "unmounts cleanly" rfs_umount "$M"
shadow_same "upgrade"
fault "a store left failed over and committed by the previous release (\`vm.state\` format 1, no recovery point recorded)" \
	"mounts in state 5 / 6 with every synced write; newer points do not move the VMs; \`revert\` goes to the newest point"
finish
