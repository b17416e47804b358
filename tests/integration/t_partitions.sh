#!/usr/bin/env bash
# SPEC §3, §11 (issue 14, partitions): a disk with an MBR (extended and
# logical partitions too) or a GPT also shows each partition as
# <disk>-part<N>.img: the partition's bytes only, the disk's mode, writes in
# the disk's overlay at the partition's offset. The Windows NTFS fixtures'
# partition files mount with ntfs-3g directly; tables made with sfdisk show
# the exact files; after failover mkfs.ext4 and writes on a partition file
# read back through the whole disk; a table rewritten after failover changes
# the files once the writer closed; revert brings the replica's table back;
# bad tables (past the end, overlapping, corrupt GPT) serve the disk and
# not the bad partitions, with a log line each. The replica never changes.
. "$(dirname "$0")/lib.sh"

R=$T/replica M=$T/mnt S=$T/state
MiB=$((1 << 20))

# --- the Windows fixtures --------------------------------------------------------
df_vm() { # VM FIXTURE [CHILD]
	unpack_fixture "$2" "$R/$1"
	[ -z "${3:-}" ] || unpack_fixture "$3" "$R/$1"
}
df_vm df-vhd-fixed ntfs-fixed.vhd
df_vm df-vhd-dynamic ntfs-dynamic.vhd
df_vm df-vhdx-fixed ntfs-fixed.vhdx
df_vm df-vhdx-dynamic ntfs-dynamic.vhdx
df_vm df-vhd-chain ntfs-parent.vhd ntfs-differential.vhd
df_vm df-vhdx-chain ntfs-parent.vhdx ntfs-differential.vhdx

# --- tables made with sfdisk ------------------------------------------------------
# made VM FILE SIZE_MIB QEMU-ARGS... < sfdisk script: random bytes, the table
# on them, converted; the raw disk stays in $T/VM.raw.
made() {
	local vm=$1 file=$2 mib=$3 raw=$T/$1.raw; shift 3
	mkdir -p "$R/$vm"
	head -c $((mib * MiB)) /dev/urandom >"$raw"
	sfdisk -q --no-reread --no-tell-kernel "$raw" >/dev/null
	qemu-img convert -q -f raw "$@" "$raw" "$R/$vm/$file"
}
# MBR: 1 primary, 2 extended holding 5 and 6, 3 primary after it.
MBR='label: dos
start=2048, size=16384, type=83
start=20480, size=81920, type=5
start=22528, size=20480, type=83
start=45056, size=30720, type=7
start=104448, size=8192, type=c
'
made mbr-vhdx sys.vhdx 64 -O vhdx <<<"$MBR"
made mbr-vhd sys.vhd 64 -O vpc -o subformat=dynamic,force_size=on <<<"$MBR"
GPT='label: gpt
start=2048, size=20480
start=22528, size=40960
start=100000, size=2048
'
made gpt-vhd sys.vhd 64 -O vpc -o subformat=fixed,force_size=on <<<"$GPT"

# Bad tables. Past the end: 2 ends at 80 MiB of a 64 MiB disk (the table
# was made for 96 MiB, the disk cut to 64 before conversion).
mkdir -p "$R/bad-end" "$R/bad-overlap" "$R/bad-gpt"
head -c $((96 * MiB)) /dev/urandom >"$T/bad-end.raw"
printf 'label: dos\nstart=2048, size=20480\nstart=40960, size=122880\n' |
	sfdisk -q --no-reread --no-tell-kernel "$T/bad-end.raw" >/dev/null
truncate -s 64M "$T/bad-end.raw"
qemu-img convert -q -f raw -O vhdx "$T/bad-end.raw" "$R/bad-end/sys.vhdx"
# Overlapping: 1 and 2 share 1 MiB (sfdisk refuses that: written with
# Python into a table sfdisk made), 3 is fine.
head -c $((64 * MiB)) /dev/urandom >"$T/bad-overlap.raw"
printf 'label: dos\nstart=2048, size=20480\nstart=24576, size=20480\nstart=61440, size=20480\n' |
	sfdisk -q --no-reread --no-tell-kernel "$T/bad-overlap.raw" >/dev/null
python3 - "$T/bad-overlap.raw" <<'PY'
import struct, sys
with open(sys.argv[1], 'r+b') as f:
    f.seek(446 + 16 + 8)                 # entry 2: start LBA
    f.write(struct.pack('<I', 20480))    # 10 MiB: inside partition 1
PY
qemu-img convert -q -f raw -O vhdx "$T/bad-overlap.raw" "$R/bad-overlap/sys.vhdx"
# Corrupt GPT: both headers' first-usable-LBA changed (CRC no longer matches).
head -c $((64 * MiB)) /dev/urandom >"$T/bad-gpt.raw"
sfdisk -q --no-reread --no-tell-kernel "$T/bad-gpt.raw" <<<"$GPT" >/dev/null
printf 'Z' | dd of="$T/bad-gpt.raw" bs=1 seek=$((512 + 40)) conv=notrunc status=none
printf 'Z' | dd of="$T/bad-gpt.raw" bs=1 seek=$((64 * MiB - 512 + 40)) conv=notrunc status=none
qemu-img convert -q -f raw -O vhdx "$T/bad-gpt.raw" "$R/bad-gpt/sys.vhdx"
# A GPT made for 96 MiB on a 64 MiB disk: the primary header's usable area
# passes the end, the backup header is cut off.
mkdir -p "$R/bad-gpt-end"
head -c $((96 * MiB)) /dev/urandom >"$T/bad-gpt-end.raw"
sfdisk -q --no-reread --no-tell-kernel "$T/bad-gpt-end.raw" <<<"$GPT" >/dev/null
truncate -s 64M "$T/bad-gpt-end.raw"
qemu-img convert -q -f raw -O vhdx "$T/bad-gpt-end.raw" "$R/bad-gpt-end/sys.vhdx"

replica_before=$(replica_sums "$R")
rfs_mount "$R" "$M" --state="$S"
check "daemon runs" test -n "$(rfs_pid "$M")"

# parts_of IMG: "N START SIZE" (bytes) per partition as partx reads IMG.
parts_of() { partx -g -b -o NR,START,SECTORS "$1" | awk '{print $1, $2 * 512, $3 * 512}'; }
# same_bytes PART IMG START SIZE: the partition file is the disk's bytes there.
same_bytes() {
	cmp -s "$1" <(dd if="$2" bs=64k iflag=skip_bytes,count_bytes skip="$3" count="$4" status=none)
}
listing() { ls "$1" | tr '\n' ' ' | sed 's/ $//'; }

# --- fixtures: partition 1 mounts with ntfs-3g directly ----------------------------
for vm in df-vhd-fixed df-vhd-dynamic df-vhdx-fixed df-vhdx-dynamic df-vhd-chain df-vhdx-chain; do
	img=$(ls "$M/vms/$vm/"*.img | grep -v -- -part)
	part=${img%.img}-part1.img
	read -r n start size < <(parts_of "$img")
	check_eq "$vm: the disk and its one partition" "$(basename "$img" .img)-part1.img $(basename "$img")" "$(listing "$M/vms/$vm")"
	check_eq "$vm: part1 size is the partition's ($size)" "$size" "$(stat -c %s "$part")"
	check_eq "$vm: part1 mode 0400 before failover" 400 "$(stat -c %a "$part")"
	check "$vm: part1 is the disk's bytes at $start" same_bytes "$part" "$img" "$start" "$size"
	mkdir -p "$T/ntfs-$vm"
	if [ "$vm" = df-vhd-chain ] || [ "$vm" = df-vhdx-chain ] || [ "$vm" = df-vhd-fixed ]; then
		# ntfs-3g on the file itself
		check "$vm: ntfs-3g -o ro mounts part1 directly" ntfs-3g -o ro "$part" "$T/ntfs-$vm"
	else
		loop=$(losetup -f --show -r "$part")
		check "$vm: ntfs-3g -o ro mounts part1 through a loop device" ntfs-3g -o ro "$loop" "$T/ntfs-$vm"
	fi
	check "$vm: passwords.txt is there" test -s "$T/ntfs-$vm/passwords.txt"
	umount "$T/ntfs-$vm"
done
for dev in $(losetup -n -O NAME,BACK-FILE | awk -v m="$M/" 'index($0, m) {print $1}'); do losetup -d "$dev"; done

# --- made tables: the expected files, exact bytes -----------------------------------
for vm in mbr-vhdx mbr-vhd gpt-vhd; do
	img=$M/vms/$vm/sys.img want="" wantls="" ok=1
	while read -r n start size; do
		[ "$vm" != gpt-vhd ] && [ "$n" = 2 ] && continue # the extended container
		wantls+="sys-part$n.img "
		p=$M/vms/$vm/sys-part$n.img
		[ "$(stat -c %s "$p" 2>/dev/null)" = "$size" ] || { echo "  $p: size $(stat -c %s "$p" 2>&1), want $size"; ok=0; }
		same_bytes "$p" "$T/$vm.raw" "$start" "$size" || { echo "  $p differs from the raw disk at $start"; ok=0; }
		same_bytes "$p" "$img" "$start" "$size" || { echo "  $p differs from sys.img at $start"; ok=0; }
	done < <(parts_of "$T/$vm.raw")
	check_eq "$vm: files" "${wantls}sys.img" "$(listing "$M/vms/$vm")"
	check "$vm: every partition file has its size and the raw disk's bytes" test $ok = 1
done
check_eq "mbr: logical partitions are 5 and 6, no file for the extended 2" \
	"sys-part1.img sys-part3.img sys-part5.img sys-part6.img sys.img" "$(listing "$M/vms/mbr-vhdx")"
check_eq "mbr: part5 is 10 MiB at 11 MiB" $((10 * MiB)) "$(stat -c %s "$M/vms/mbr-vhdx/sys-part5.img")"
check_eq "gpt: three files" "sys-part1.img sys-part2.img sys-part3.img sys.img" "$(listing "$M/vms/gpt-vhd")"

# --- bad tables: the disk is served, the bad partitions are not, the log says why --------
check_eq "bad-end: disk and part1 only" "sys-part1.img sys.img" "$(listing "$M/vms/bad-end")"
check "bad-end: the disk reads the raw bytes" cmp -s "$M/vms/bad-end/sys.img" "$T/bad-end.raw"
check "bad-end: the log says partition 2 ends past the disk's end" \
	grep -q "bad-end/sys: partition 2 not shown: it ends at byte $((40960 * 512 + 122880 * 512)), past the disk's end ($((64 * MiB)) bytes)" "$T/replicafs.log"
check_eq "bad-overlap: disk and part3 only" "sys-part3.img sys.img" "$(listing "$M/vms/bad-overlap")"
check "bad-overlap: the disk reads the raw bytes" cmp -s "$M/vms/bad-overlap/sys.img" "$T/bad-overlap.raw"
check "bad-overlap: the log says 1 overlaps 2" grep -q "bad-overlap/sys: partition 1 not shown: it overlaps partition 2" "$T/replicafs.log"
check "bad-overlap: the log says 2 overlaps 1" grep -q "bad-overlap/sys: partition 2 not shown: it overlaps partition 1" "$T/replicafs.log"
check_eq "bad-gpt: the disk only" "sys.img" "$(listing "$M/vms/bad-gpt")"
check "bad-gpt: the disk reads the raw bytes" cmp -s "$M/vms/bad-gpt/sys.img" "$T/bad-gpt.raw"
check "bad-gpt: the log says the GPT is not valid" grep -q "bad-gpt/sys: a GPT protective MBR but no valid GPT" "$T/replicafs.log"
check_eq "bad-gpt-end: the disk only" "sys.img" "$(listing "$M/vms/bad-gpt-end")"
check "bad-gpt-end: the disk reads the raw bytes" cmp -s "$M/vms/bad-gpt-end/sys.img" "$T/bad-gpt-end.raw"
check "bad-gpt-end: the log says the GPT is not valid" grep -q "bad-gpt-end/sys: a GPT protective MBR but no valid GPT" "$T/replicafs.log"
check_eq "each bad partition is logged once" 5 "$(grep -c "not shown\|no valid GPT" "$T/replicafs.log")"

# --- before failover: read-only ------------------------------------------------------
P=$M/vms/mbr-vhdx
check_eq "part5: open for writing before failover is EROFS" EROFS "$(errno_of open_w "$P/sys-part5.img")"

# --- after failover: mkfs.ext4 and writes on a partition file ------------------------------
check "failover mbr-vhdx" ctl mbr-vhdx failover "$M"
check_eq "part5: mode 0600 after failover" 600 "$(stat -c %a "$P/sys-part5.img")"
check_eq "the disk: mode 0600 after failover" 600 "$(stat -c %a "$P/sys.img")"
p5=$((22528 * 512)) s5=$((20480 * 512))
check "mkfs.ext4 on sys-part5.img" mkfs.ext4 -q -F "$P/sys-part5.img"
check "e2fsck -fn of sys-part5.img is clean" e2fsck -fn "$P/sys-part5.img"
head -c 70000 /dev/urandom >"$T/pattern"
check "a write inside part5 (at 5 MiB + 7)" dd if="$T/pattern" of="$P/sys-part5.img" bs=70000 seek=$((5 * MiB + 7)) \
	oflag=seek_bytes conv=notrunc,fsync status=none
check "the write reads back through the whole disk at the partition's offset (O_DIRECT)" \
	cmp -s "$T/pattern" <(dd if="$P/sys.img" bs=4096 iflag=direct,skip_bytes,count_bytes skip=$((p5 + 5 * MiB + 7)) count=70000 status=none)
loop=$(losetup -f --show -r -o $p5 --sizelimit $s5 "$P/sys.img")
check "e2fsck -fn of the whole disk at part5's offset (loop device) is clean" e2fsck -fn "$loop"
losetup -d "$loop"
check "part1 (not written) still reads the raw bytes" same_bytes "$P/sys-part1.img" "$T/mbr-vhdx.raw" $((2048 * 512)) $((16384 * 512))
check "the bytes after part5 did not change" same_bytes <(dd if="$P/sys.img" bs=64k iflag=skip_bytes,count_bytes skip=$((p5 + s5)) count=$MiB status=none) \
	"$T/mbr-vhdx.raw" $((p5 + s5)) $MiB

# writes at and across the partition's end: as at a disk's end
pwrite_at() { # FILE OFFSET LEN: prints the count written or the errno's name
	python3 - "$@" <<'PY'
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
try: print(os.pwrite(fd, b'x' * int(sys.argv[3]), int(sys.argv[2])))
except OSError as e: print(errno.errorcode[e.errno])
PY
}
check_eq "a write at part5's end: ENOSPC" ENOSPC "$(pwrite_at "$P/sys-part5.img" $s5 4096)"
check_eq "a write across part5's end is cut short" 1000 "$(pwrite_at "$P/sys-part5.img" $((s5 - 1000)) 4096)"
check "part6 (after 5) did not get the bytes" same_bytes "$P/sys-part6.img" "$T/mbr-vhdx.raw" $((45056 * 512)) $((30720 * 512))

# Discard and SEEK_DATA/SEEK_HOLE on a partition file stay in its window.
p6=$((45056 * 512)) s6=$((30720 * 512))
dd if=/dev/urandom of="$T/p6data" bs=$MiB count=2 status=none
check "part6: 2 MiB written at 1 MiB" dd if="$T/p6data" of="$P/sys-part6.img" bs=$MiB seek=1 conv=notrunc,fsync status=none
check "part6: fallocate -p of 1 MiB at 2 MiB" fallocate -p -o $((2 * MiB)) -l $MiB "$P/sys-part6.img"
check "the disk reads zeros at part6 + 2 MiB" cmp -n $MiB <(dd if="$P/sys.img" bs=64k iflag=skip_bytes,count_bytes skip=$((p6 + 2 * MiB)) count=$MiB status=none) /dev/zero
check "the disk keeps the first written MiB at part6 + 1 MiB" cmp -n $MiB \
	<(dd if="$P/sys.img" bs=64k iflag=skip_bytes,count_bytes skip=$((p6 + MiB)) count=$MiB status=none) "$T/p6data"
check_eq "part6: SEEK_DATA/SEEK_HOLE inside the window" "$((2 * MiB)) past ENXIO" "$(python3 - "$P/sys-part6.img" $s6 $MiB <<'PY'
import errno, os, sys
fd, size, mib = os.open(sys.argv[1], os.O_RDONLY), int(sys.argv[2]), int(sys.argv[3])
h = os.lseek(fd, mib, os.SEEK_HOLE)          # the written MiB is data, the discarded one a hole
try: d = 'past' if os.lseek(fd, 2 * mib, os.SEEK_DATA) >= 3 * mib else 'inside'
except OSError as x: d = 'past'
try: e = os.lseek(fd, size, os.SEEK_DATA)   # the window's end
except OSError as x: e = errno.errorcode[x.errno]
print(h, d, e)
PY
)"

# An open partition file is an open file of the disk: revert waits, then 32774.
exec 7<"$P/sys-part1.img"
check_eq "revert while a partition file is open: EBUSY" EBUSY "$(printf revert | ctl_raw mbr-vhdx "$M")"
check_eq "status 32774" "32774" "$(cut -d' ' -f1 "$M/ctl/mbr-vhdx/status")"
exec 7<&-

# --- the table rewritten after failover: the files follow once the writer closed ---------
check "sfdisk rewrites the table on sys.img (6 deleted, 3 grown, 4 added)" bash -c \
	"printf 'label: dos\nstart=2048, size=16384, type=83\nstart=20480, size=81920, type=5\nstart=22528, size=20480, type=83\nstart=104448, size=16384, type=83\nstart=122880, size=8192, type=83\n' |
	 sfdisk -q --no-reread --no-tell-kernel '$P/sys.img' >/dev/null"
now_is() { [ "$(listing "$P")" = "$1" ]; }
check "the files follow the new table (part4 new, part6 gone)" \
	wait_until 10 now_is "sys-part1.img sys-part3.img sys-part4.img sys-part5.img sys.img"
echo "  after $(ms_s "$WAITED")"
check_eq "part3 is its new size" $((16384 * 512)) "$(stat -c %s "$P/sys-part3.img")"
check_eq "part4 is its new size" $((8192 * 512)) "$(stat -c %s "$P/sys-part4.img")"
check "part5 still holds the ext4 made on it" e2fsck -fn "$P/sys-part5.img"
check "the log says nothing about mbr-vhdx's table" bash -c "! grep -q 'mbr-vhdx/sys: partition' '$T/replicafs.log'"

# --- revert: the replica's table again, read-only ----------------------------------------
check "revert mbr-vhdx" ctl mbr-vhdx revert "$M"
check "after revert: the replica's partitions" \
	wait_until 10 now_is "sys-part1.img sys-part3.img sys-part5.img sys-part6.img sys.img"
check_eq "part5: mode 0400 after revert" 400 "$(stat -c %a "$P/sys-part5.img")"
check "part5 reads the replica again" same_bytes "$P/sys-part5.img" "$T/mbr-vhdx.raw" $p5 $s5

# --- single-threaded (-s): the last writer closes while the disk is being read ---------
# (the pages of the disk's files are dropped by a thread of its own: the
# one worker stays free to answer the reads that dropping waits for)
rfs_umount "$M"
rfs_mount "$R" "$M" --state="$S" -s
Q=$M/vms/mbr-vhd
check "-s: failover mbr-vhd" ctl mbr-vhd failover "$M"
(for i in 1 2 3 4 5 6; do cat "$Q/sys.img" "$Q/sys-part6.img" >/dev/null; done) &
readers=$!
ok=1
for i in 1 2 3; do mkfs.ext4 -q -F "$Q/sys-part5.img" || ok=0; done
check "-s: mkfs.ext4 three times on part5 while the disk is read" test $ok = 1
check "-s: the readers finished" wait $readers
check "-s: e2fsck -fn of part5 is clean" e2fsck -fn "$Q/sys-part5.img"
check "-s: the whole disk at part5's offset holds the ext4 superblock magic (O_DIRECT)" test \
	"$(dd if="$Q/sys.img" bs=4096 iflag=direct,skip_bytes,count_bytes skip=$((p5 + 1024 + 56)) count=2 status=none | od -An -tx1 | tr -d ' ')" = 53ef
check "-s: revert mbr-vhd" ctl mbr-vhd revert "$M"

rfs_umount "$M"
check_eq "the replica folder never changed" "$replica_before" "$(replica_sums "$R")"
fault "MBR partition ending past the disk's end" "the disk is served, that partition has no \`-partN.img\`, one log line with its end and the disk's size"
fault "MBR partitions overlapping each other" "the disk is served, neither overlapping partition is shown, one log line each naming the other"
fault "GPT with both headers corrupt; GPT made for a bigger disk" "the disk is served, no partition file, one log line: protective MBR but no valid GPT"
fault "partition table rewritten through the \`.img\` after failover" "partition files follow the new table once the writer closed; revert brings the replica's back"
fault "write at / across a partition file's end" "\`ENOSPC\` at the end, short write across it; the next partition's bytes untouched"
finish
