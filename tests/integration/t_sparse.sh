#!/usr/bin/env bash
# SPEC §11, issue 14: sparse disks and discard.
#  1. SEEK_DATA/SEEK_HOLE on the .img of a dynamic VHD, a dynamic VHDX, a
#     fixed VHD written sparse, a VHD differencing chain and an empty 256 MiB
#     dynamic VHD match the layout the writers laid out (tests/mkvhd.py map:
#     an independent reader of the BAT, sector bitmaps and the files' own
#     holes); cp --sparse=always/auto copies are byte-identical and no bigger
#     than that layout; qemu-img map lists exactly those ranges as data.
#  2. After failover, scattered writes: the holes are the replica's minus
#     the overlay's clusters.
#  3. Discard: fallocate -p / -z on the .img, bounds, EROFS before failover;
#     a guest's mkfs.ext4 + files + rm + fstrim through a loop device frees
#     the overlay's space, the deleted files read zeros, e2fsck is clean,
#     and all of it survives kill -9 after fsync and a remount.
# The replica files never change.
. "$(dirname "$0")/lib.sh"

R=$T/replica M=$T/mnt MKVHD=$TOP/tests/mkvhd.py
mkdir -p "$R/vm1" "$R/vm2" "$R/vm3" "$R/vm4" "$R/vm5" "$T/guest"

# A 64 MiB raw disk with data at scattered places (and zeros elsewhere).
python3 - "$T/a.raw" <<'PY'
import os, sys
with open(sys.argv[1], 'wb') as f:
    f.truncate(64 << 20)
    for off, n in [(0, 4096), (5 << 20, 100000), ((20 << 20) + 512, 3000),
                   (33 << 20, 3 << 20), ((63 << 20) + 4096, 1 << 19)]:
        f.seek(off)
        f.write(os.urandom(n))
PY
qemu-img convert -q -f raw -O vpc -o subformat=dynamic,force_size=on "$T/a.raw" "$R/vm1/data.vhd"
qemu-img convert -q -f raw -O vhdx -o subformat=dynamic,block_size=1M "$T/a.raw" "$R/vm2/sys.vhdx"
qemu-img convert -q -f raw -O vpc -o subformat=dynamic,force_size=on "$T/a.raw" "$R/vm3/disk.vhd"
python3 "$MKVHD" diff "$R/vm3/disk.vhd" "$R/vm3/disk-1.avhd" --seed 14 --raw-out "$T/vm3.raw" >/dev/null
qemu-img create -q -f vpc -o subformat=dynamic "$R/vm4/empty.vhd" 256M
qemu-img convert -q -f raw -O vpc -o subformat=fixed,force_size=on -S 4k "$T/a.raw" "$R/vm5/fixed.vhd"
replica_before=$(replica_sums "$R")
SIZE=$((64 << 20))

# walk FILE: the data runs SEEK_DATA/SEEK_HOLE give, "START END" per line.
walk() {
	python3 - "$1" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
end, pos = os.fstat(fd).st_size, 0
while pos < end:
    try:
        data = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError:
        break
    hole = os.lseek(fd, data, os.SEEK_HOLE)
    print(data, hole)
    pos = hole
PY
}

# expected IMAGE: the allocated ranges of the chain whose tip is IMAGE.
expected() { python3 "$MKVHD" map "$1" "$SIZE"; }

# qemu_data IMG: the ranges `qemu-img map` reports as data, merged.
qemu_data() {
	qemu-img map -f raw --output=json "$1" | python3 -c '
import json, sys
runs = []
for e in json.load(sys.stdin):
    if e["data"]:
        if runs and runs[-1][1] == e["start"]:
            runs[-1][1] += e["length"]
        else:
            runs.append([e["start"], e["start"] + e["length"]])
for s, e in runs:
    print(s, e)'
}

# union_clusters RUNS C OFF:LEN...: RUNS (lines) plus each write rounded
# out to clusters of C bytes, merged.
union_clusters() {
	python3 - "$@" <<'PY'
import sys
runs = [tuple(map(int, l.split())) for l in sys.argv[1].splitlines() if l.strip()]
c = int(sys.argv[2])
for w in sys.argv[3:]:
    off, n = map(int, w.split(':'))
    runs.append((off // c * c, -(-(off + n) // c) * c))
runs.sort()
out = []
for s, e in runs:
    if out and s <= out[-1][1]:
        out[-1][1] = max(out[-1][1], e)
    else:
        out.append([s, e])
for s, e in out:
    print(s, e)
PY
}

# total RUNS: the bytes of the runs, rounded out to 4 KiB blocks.
total() { awk '{ s = int($1 / 4096) * 4096; e = int(($2 + 4095) / 4096) * 4096; t += e - s } END { print t + 0 }' <<<"$1"; }

# exact RUNS: the bytes of the runs.
exact() { awk '{ t += $2 - $1 } END { print t + 0 }' <<<"$1"; }

# allocated FILE: its st_blocks in bytes.
allocated() { echo $(($(stat -c %b "$1") * 512)); }

rfs_mount "$R" "$M"

# --- 1. holes of each kind of image ------------------------------------------
for d in vm1/data.vhd:vm1/data vm2/sys.vhdx:vm2/sys vm3/disk-1.avhd:vm3/disk vm5/fixed.vhd:vm5/fixed; do
	img=$M/vms/${d#*:}.img want=$(expected "$R/${d%%:*}")
	check "$(basename "${d%%:*}") has data and holes (writer's map: $(wc -l <<<"$want") runs)" \
		test -n "$want" -a "$want" != "0 $SIZE"
	check_eq "$(basename "${d%%:*}"): SEEK_DATA/SEEK_HOLE walk = the writer's map" "$want" "$(walk "$img")"
	check_eq "$(basename "${d%%:*}"): qemu-img map data = the writer's map" "$want" "$(qemu_data "$img")"
	rm -f "$T/copy"
	cp --sparse=always "$img" "$T/copy"
	check "$(basename "${d%%:*}"): cp --sparse=always is byte-identical" cmp -s "$img" "$T/copy"
	check "$(basename "${d%%:*}"): its copy holds <= $(total "$want") bytes ($(allocated "$T/copy"))" \
		test "$(allocated "$T/copy")" -le "$(total "$want")"
	rm -f "$T/copy"
	cp --sparse=auto "$img" "$T/copy"
	check "$(basename "${d%%:*}"): cp --sparse=auto is byte-identical" cmp -s "$img" "$T/copy"
	check "$(basename "${d%%:*}"): the sparse=auto copy holds <= $(total "$want") bytes ($(allocated "$T/copy"))" \
		test "$(allocated "$T/copy")" -le "$(total "$want")"
	check "$(basename "${d%%:*}"): st_blocks of the .img covers its data" \
		test "$(allocated "$img")" -ge "$(exact "$want")" -a "$(allocated "$img")" -lt "$SIZE"
done
check_eq "data.img reads as the raw disk" "$(sha "$T/a.raw")" "$(sha "$M/vms/vm1/data.img")"
check_eq "the chain reads as mkvhd.py merged it" "$(sha "$T/vm3.raw")" "$(sha "$M/vms/vm3/disk.img")"

EMPTY=$M/vms/vm4/empty.img
check_eq "empty 256 MiB dynamic VHD: no data at all" "" "$(walk "$EMPTY")"
check "SEEK_DATA at 0 of the empty disk is ENXIO" python3 -c '
import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
try:
    os.lseek(fd, 0, os.SEEK_DATA); sys.exit(1)
except OSError as e:
    sys.exit(0 if e.errno == errno.ENXIO else 1)' "$EMPTY"
check_eq "SEEK_HOLE at 4096 of the empty disk is 4096" 4096 \
	"$(python3 -c 'import os, sys; print(os.lseek(os.open(sys.argv[1], os.O_RDONLY), 4096, os.SEEK_HOLE))' "$EMPTY")"
rm -f "$T/copy"
cp --sparse=auto "$EMPTY" "$T/copy"
check_eq "cp --sparse=auto of the empty disk allocates nothing" 0 "$(allocated "$T/copy")"
check "... and is byte-identical" cmp -s "$EMPTY" "$T/copy"
rm -f "$T/copy"
check_eq "qemu-img map of the empty disk: no data" "" "$(qemu_data "$EMPTY")"

# --- 2. an overlay with scattered writes -------------------------------------
IMG=$M/vms/vm1/data.img
check "failover vm1" ctl vm1 failover "$M"
OV=$(overlays_of "$R/.replicafs" vm1)
C=$(python3 -c 'import struct, sys; print(struct.unpack_from("<I", open(sys.argv[1], "rb").read(20), 16)[0])' "$OV")
writes="4096:8192 $((9 << 20)):1 $((12 << 20)):65536 $(((40 << 20) + 100)):10000 $((SIZE - 512)):512"
python3 - "$IMG" $writes <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
for w in sys.argv[2:]:
    off, n = map(int, w.split(':'))
    os.pwrite(fd, os.urandom(n) or b'x', off)
os.fsync(fd)
PY
want=$(union_clusters "$(expected "$R/vm1/data.vhd")" "$C" $writes)
check_eq "overlay + replica: walk = replica map + written clusters (cluster $C)" "$want" "$(walk "$IMG")"
check_eq "qemu-img map agrees" "$want" "$(qemu_data "$IMG")"
rm -f "$T/copy"
cp --sparse=auto "$IMG" "$T/copy"
check "cp --sparse=auto of the written disk is byte-identical" cmp -s "$IMG" "$T/copy"
rm -f "$T/copy"

# --- 3a. fallocate on the .img -------------------------------------------------
check "fallocate -p before failover: read-only (vm2)" \
	fails_with "Read-only file system" fallocate -p -o 0 -l 4096 "$M/vms/vm2/sys.img"
before=$(allocated "$OV")
fallocate -p -o $((12 << 20)) -l 65536 "$IMG"
check "fallocate -p of written clusters: they read zeros" \
	cmp -s -n 65536 <(dd if="$IMG" bs=64k skip=$((12 << 4)) count=1 status=none) /dev/zero
check "... and the overlay gives their space back ($before -> $(allocated "$OV"))" \
	test "$(allocated "$OV")" -lt "$before"
fallocate -p -o $(((5 << 20) + 1000)) -l 50000 "$IMG"
check "fallocate -p of an unaligned range over replica data: reads zeros" \
	cmp -s -n 50000 <(tail -c +$(((5 << 20) + 1001)) "$IMG") /dev/zero
check "... the bytes around it are the replica's" \
	cmp -s -n 1000 <(tail -c +$(((5 << 20) + 1)) "$IMG") <(tail -c +$(((5 << 20) + 1)) "$T/a.raw")
fallocate -z -o $((33 << 20)) -l $((1 << 20)) "$IMG"
check "fallocate -z (ZERO_RANGE) reads zeros" \
	cmp -s -n $((1 << 20)) <(tail -c +$(((33 << 20) + 1)) "$IMG") /dev/zero
check "a discarded range is a hole for SEEK_DATA" python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
sys.exit(0 if os.lseek(fd, 33 << 20, os.SEEK_HOLE) == 33 << 20 else 1)' "$IMG"
check "fallocate -p past the end: EINVAL" fails_with "Invalid argument" fallocate -p -o "$SIZE" -l 4096 "$IMG"
check "fallocate (allocate) is not supported" fails_with "not supported" fallocate -o 0 -l 4096 "$IMG"

# --- 3b. a guest's fstrim through a loop device ------------------------------
IMG2=$M/vms/vm2/sys.img OV2=
check "failover vm2" ctl vm2 failover "$M"
OV2=$(overlays_of "$R/.replicafs" vm2)
loop=$(losetup -f --show "$IMG2")
check "the loop device offers discard" test "$(cat /sys/block/"${loop#/dev/}"/queue/discard_max_bytes)" -gt 0
check "mkfs.ext4 through the loop device" mkfs.ext4 -q -F -b 4096 -E nodiscard "$loop"
mount "$loop" "$T/guest"
head -c 24M /dev/urandom >"$T/guest/doomed"
head -c 1M /dev/urandom >"$T/guest/keep"
keep_sum=$(sha "$T/guest/keep")
sync -f "$T/guest"
# where the doomed file lies on the guest's disk (4 KiB blocks)
extents=$(filefrag -e -b4096 "$T/guest/doomed" | awk -F'[:. ]+' '/^ *[0-9]+:/ {print $5, $6}')
check "the doomed file has extents ($(wc -l <<<"$extents"))" test -n "$extents"
full=$(allocated "$OV2")
rm "$T/guest/doomed"
sync -f "$T/guest" # commit the journal: blocks freed in an open transaction are not trimmed
trimmed=$(fstrim -v "$T/guest" 2>&1) || true
check "fstrim of the guest succeeds ($trimmed)" grep -q "trimmed" <<<"$trimmed"
umount "$T/guest"
python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDWR); os.fsync(fd)' "$IMG2"
after=$(allocated "$OV2")
check "the overlay's st_blocks dropped by >= 20 MiB ($full -> $after)" test $((full - after)) -ge $((20 << 20))
check "e2fsck -fn is clean after fstrim" e2fsck -fn "$loop"
losetup -d "$loop"

# deleted_zero IMG: every block of the deleted file reads zeros.
deleted_zero() {
	local s e
	while read -r s e; do
		cmp -s -n $(((e - s + 1) * 4096)) <(dd if="$1" bs=4096 skip="$s" count=$((e - s + 1)) status=none) \
			/dev/zero || return 1
	done <<<"$extents"
}
check "the deleted file's blocks read zeros" deleted_zero "$IMG2"

# --- 3c. kill -9 after the fsync'd discard, remount ----------------------------
check "kill -9 of the daemon" rfs_kill9 "$M"
rfs_mount "$R" "$M"
check_eq "state 5 after the remount" "5 Recovered" "$(cat "$M/ctl/vm2/state")"
check "the deleted file's blocks still read zeros" deleted_zero "$IMG2"
check_eq "the overlay's space stays given back" "$after" "$(allocated "$OV2")"
loop=$(losetup -f --show -r "$IMG2")
check "e2fsck -fn clean after kill -9 and remount" e2fsck -fn "$loop"
mount -o ro "$loop" "$T/guest"
check_eq "the kept file reads back" "$keep_sum" "$(sha "$T/guest/keep")"
umount "$T/guest"
losetup -d "$loop"
check "vm1's discarded range still reads zeros" \
	cmp -s -n 65536 <(dd if="$M/vms/vm1/data.img" bs=64k skip=$((12 << 4)) count=1 status=none) /dev/zero

rfs_umount "$M"
check_eq "the replica files never changed" "$replica_before" "$(replica_sums "$R")"
fault "\`kill -9\` of the daemon after an fsync'd discard (guest fstrim)" "after remount the discarded ranges read zeros, the overlay keeps its space given back, e2fsck -fn is clean"
finish
