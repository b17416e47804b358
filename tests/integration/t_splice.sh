#!/usr/bin/env bash
# Issue 17, zero-copy reads: a read of 64 KiB or more whose bytes lie in one
# file (a fixed image, an allocated block of a dynamic VHDX, a differencing
# file or its parent, the overlay after failover, a partition's window) is
# answered by splice; anything else (zeros, a read across files or across
# the overlay's edge) by a copy. Both give exactly the disk's bytes:
#  - reads of many sizes and unaligned offsets on a fixed VHD, a dynamic
#    VHDX, a VHD differencing chain and a partition file equal the raw
#    disk, before and after failover writes (the model is the raw disk with
#    the writes applied);
#  - libfuse's debug log (-d) shows spliced replies with --splice=1 (the
#    default) and none with --splice=0, which gives the same bytes; with
#    splice the mount asks for reads of at most 512 KiB (-o max_read), so a
#    1 MiB read comes as two requests, both spliced;
#  - -s -o poll=32 (adaptive polling of /dev/fuse) reads the same bytes and
#    still stops on SIGTERM;
#  - the replica files never change.
. "$(dirname "$0")/lib.sh"

R=$T/replica M=$T/mnt MKVHD=$TOP/tests/mkvhd.py
mkdir -p "$R/fixed" "$R/dyn" "$R/chain" "$R/parts"
SIZE=$((24 << 20))

# Random data with a zero run in the middle (unallocated blocks, holes).
mkraw() {
	head -c "$SIZE" /dev/urandom >"$1"
	dd if=/dev/zero of="$1" bs=1M seek=10 count=3 conv=notrunc status=none
}
mkraw "$T/fixed.raw"
qemu-img convert -q -f raw -O vpc -o subformat=fixed,force_size=on "$T/fixed.raw" "$R/fixed/d.vhd"
mkraw "$T/dyn.raw"
qemu-img convert -q -f raw -O vhdx -o subformat=dynamic,block_size=1M "$T/dyn.raw" "$R/dyn/d.vhdx"
mkraw "$T/base.raw"
qemu-img convert -q -f raw -O vpc -o subformat=dynamic,force_size=on "$T/base.raw" "$R/chain/d.vhd"
python3 "$MKVHD" diff "$R/chain/d.vhd" "$R/chain/d-1.avhd" --seed 17 --raw-out "$T/chain.raw" >/dev/null
# One MBR partition from 1 MiB to 17 MiB.
mkraw "$T/parts.raw"
printf 'label: dos\nstart=2048, size=32768, type=83\n' | sfdisk -q "$T/parts.raw"
qemu-img convert -q -f raw -O vpc -o subformat=fixed,force_size=on "$T/parts.raw" "$R/parts/d.vhd"
dd if="$T/parts.raw" of="$T/part1.raw" bs=1M skip=1 count=16 status=none
replica_before=$(replica_sums "$R")

# reads_match IMG RAW SEED: reads of 64 KiB .. 1 MiB (and a few small ones)
# at random offsets, aligned and not, and across the end, give RAW's bytes.
reads_match() {
	python3 - "$1" "$2" "$3" <<'PY'
import os, random, sys
img, raw, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
fi, fr = os.open(img, os.O_RDONLY), os.open(raw, os.O_RDONLY)
size = os.fstat(fr).st_size
rng = random.Random(seed)
bad = 0
for i in range(120):
    ln = rng.choice([65536, 65537, 131072, 200000, 262144, 524288, 1000000, (1 << 20) - 20480,
                     1 << 20, 4096, rng.randrange(65536, 1 << 20)])
    off = rng.randrange(0, size) if i % 3 else rng.randrange(0, size // 65536) * 65536
    if i % 17 == 0:
        off = max(0, size - rng.randrange(1, ln))
    if os.pread(fi, ln, off) != os.pread(fr, ln, off):
        bad += 1
        print('%s: mismatch at offset %d length %d' % (img, off, ln), file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}

# write_both IMG RAW OFF LEN SEED: the same random bytes into the disk and the model.
write_both() {
	head -c "$4" /dev/urandom >"$T/w.bin"
	dd if="$T/w.bin" of="$1" bs=64k oflag=seek_bytes seek="$3" conv=notrunc,fsync status=none &&
		dd if="$T/w.bin" of="$2" bs=64k oflag=seek_bytes seek="$3" conv=notrunc status=none
}

# mount_debug LOG [options]: a foreground daemon with libfuse's debug log.
mount_debug() {
	local log=$1; shift
	mkdir -p "$M"
	"$REPLICAFS" -d --log="$T/replicafs.log" "$@" "$R" "$M" >"$log" 2>&1 &
	wait_until 10 test -e "$M/vms/parts/d-part1.img"
}
spliced() { grep -c '(splice)' "$1" || true; }

# --- splice on (the default) ------------------------------------------------
check "mount in the foreground with -d" mount_debug "$T/on.log" --state="$T/st"
for vm in fixed dyn chain; do
	raw=$T/$vm.raw
	[ "$vm" = chain ] && raw=$T/chain.raw
	check "$vm: reads of 64 KiB-1 MiB exact" reads_match "$M/vms/$vm/d.img" "$raw" 1
done
check "partition file: reads exact (the window's offset added)" reads_match "$M/vms/parts/d-part1.img" "$T/part1.raw" 2
n=$(spliced "$T/on.log")
check "replies were spliced ($n)" test "$n" -gt 100

# After failover: the overlay's clusters, the replica's, and reads across both.
cp "$T/dyn.raw" "$T/dyn-model.raw"
cp "$T/part1.raw" "$T/part1-model.raw"
ctl dyn failover "$M"; ctl parts failover "$M"
check_eq "dyn failed over" "5 Recovered" "$(cat "$M/ctl/dyn/state")"
check "dyn: 3 MiB written at 4 MiB" write_both "$M/vms/dyn/d.img" "$T/dyn-model.raw" $((4 << 20)) $((3 << 20))
check "dyn: 100000 bytes written at an odd offset" write_both "$M/vms/dyn/d.img" "$T/dyn-model.raw" 12345677 100000
check "dyn: 1 MiB written over the zero run" write_both "$M/vms/dyn/d.img" "$T/dyn-model.raw" $((11 << 20)) $((1 << 20))
before=$(spliced "$T/on.log")
check "dyn: four 256 KiB reads inside the written range exact" \
	cmp -s <(dd if="$M/vms/dyn/d.img" bs=256k skip=17 count=4 iflag=direct status=none) \
	<(dd if="$T/dyn-model.raw" bs=256k skip=17 count=4 status=none)
check_eq "the four were spliced from the overlay" 4 $(( $(spliced "$T/on.log") - before ))
check_eq "the mount asks for reads of at most 512 KiB (max_read)" max_read=524288 \
	"$(grep -F " $M " /proc/self/mountinfo | grep -o 'max_read=[0-9]*')"
before=$(spliced "$T/on.log")
check "dyn: a 1 MiB read inside the written range exact" \
	cmp -s <(dd if="$M/vms/dyn/d.img" bs=1M skip=4 count=1 iflag=direct status=none) \
	<(dd if="$T/dyn-model.raw" bs=1M skip=4 count=1 status=none)
check_eq "it came as two 512 KiB requests, both spliced" 2 $(( $(spliced "$T/on.log") - before ))
check "dyn: reads over overlay, replica and both exact" reads_match "$M/vms/dyn/d.img" "$T/dyn-model.raw" 3
check "partition: 512 KiB written into its window" write_both "$M/vms/parts/d-part1.img" "$T/part1-model.raw" $((2 << 20)) $((512 << 10))
check "partition: reads exact after the write" reads_match "$M/vms/parts/d-part1.img" "$T/part1-model.raw" 4
check "unmount" rfs_umount "$M"

# --- splice off: the same bytes, no spliced reply --------------------------------
check "mount again with --splice=0" mount_debug "$T/off.log" --state="$T/st" --splice=0
check "dyn: reads exact without splice" reads_match "$M/vms/dyn/d.img" "$T/dyn-model.raw" 5
check "fixed: reads exact without splice" reads_match "$M/vms/fixed/d.img" "$T/fixed.raw" 6
check "partition: reads exact without splice" reads_match "$M/vms/parts/d-part1.img" "$T/part1-model.raw" 7
check_eq "no reply spliced with --splice=0" 0 "$(spliced "$T/off.log")"
check_eq "and no max_read asked for" "" "$(grep -F " $M " /proc/self/mountinfo | grep -o 'max_read=[0-9]*' || true)"
ctl dyn revert "$M"; ctl parts revert "$M"
check_eq "revert: 0" "0 Completed with No Error" "$(cat "$M/ctl/dyn/status")"
check "dyn: the replica's bytes again" reads_match "$M/vms/dyn/d.img" "$T/dyn.raw" 8
check "unmount" rfs_umount "$M"

# --- -s with -o poll (fs/transport.c): same bytes, a signal still stops it --------
check "mount -s -o poll=32" rfs_mount "$R" "$M" --state="$T/st" -s -o poll=32
check "fixed: reads exact with polling" reads_match "$M/vms/fixed/d.img" "$T/fixed.raw" 9
check "chain: reads exact with polling" reads_match "$M/vms/chain/d.img" "$T/chain.raw" 10
pid=$(rfs_pid "$M")
kill -TERM "$pid"
check "SIGTERM while polling: the daemon exits" wait_exit "$pid"
check "and the mount is gone" bash -c "! grep -qF ' $M ' /proc/self/mountinfo"

check_eq "the replica files never changed" "$replica_before" "$(replica_sums "$R")"
finish
