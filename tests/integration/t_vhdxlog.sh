#!/usr/bin/env bash
# SPEC §2: a VHDX whose log was never replayed is read with the log applied
# in memory, exactly as qemu's repair of a copy reads it (qemu-img check -r
# all replays the log, then convert -O raw), the replica file untouched; a
# log that cannot be replayed is refused (state 8, the reason in the log);
# a differencing VHDX block in state ZERO reads zeros, not the parent.
# Images: tests/mkvhd.py vhdx-log over a qemu-made dynamic VHDX (BAT
# updates, a zero descriptor, data sectors, a torn last entry, an entry
# wrapping round the end of the log).
. "$(dirname "$0")/lib.sh"

R=$T/replica M=$T/mnt LOG=$T/replicafs.log
MKVHD=$TOP/tests/mkvhd.py
mkdir -p "$R"/{dirty,wrapped,badcrc,pastfile,emptylog,diffzero,diffok}

qemu-img create -q -f vhdx -o block_size=1M "$T/x.vhdx" 12M
qemu-io -f vhdx -c 'write -P 0x11 0 2M' -c 'write -P 0x22 5M 1M' "$T/x.vhdx" >/dev/null
python3 "$MKVHD" vhdx-log "$T/x.vhdx" "$R/dirty/d.vhdx" --case torn
python3 "$MKVHD" vhdx-log "$T/x.vhdx" "$R/wrapped/d.vhdx" --case wrapped
python3 "$MKVHD" vhdx-log "$T/x.vhdx" "$R/badcrc/d.vhdx" --case badcrc
python3 "$MKVHD" vhdx-log "$T/x.vhdx" "$R/pastfile/d.vhdx" --case pastfile
cp "$T/x.vhdx" "$R/emptylog/d.vhdx" && python3 "$MKVHD" vhdx-dirty-log "$R/emptylog/d.vhdx"
# qemu's replay of a copy: the bytes to expect
for vm in dirty wrapped; do
	cp "$R/$vm/d.vhdx" "$T/$vm-q.vhdx"
	qemu-img check -q -r all "$T/$vm-q.vhdx"
	qemu-img convert -q -f vhdx -O raw "$T/$vm-q.vhdx" "$T/$vm.raw"
done
# A differencing VHDX whose second block (2-4 MiB) is patched to ZERO (2),
# beside the same chain unpatched.
for vm in diffzero diffok; do
	unpack_fixture ntfs-differential.vhdx "$R/$vm"
	unpack_fixture ntfs-parent.vhdx "$R/$vm"
done
python3 - "$R/diffzero/ntfs-differential.vhdx" <<'PY'
import struct, sys, uuid
f = open(sys.argv[1], 'r+b'); d = f.read()
rt = d[196608:262144]
regs = {str(uuid.UUID(bytes_le=rt[16+32*i:32+32*i])): struct.unpack_from('<QI', rt, 32+32*i)
        for i in range(struct.unpack_from('<I', rt, 8)[0])}
bat = regs['2dc27766-f623-4200-9d64-115e9bfd4a08'][0]
v = struct.unpack_from('<Q', d, bat + 8)[0]
f.seek(bat + 8); f.write(struct.pack('<Q', v & ~7 | 2))
PY
before=$(replica_sums "$R")

rfs_mount "$R" "$M"
pid=$(rfs_pid "$M")
check "daemon runs" test -n "$pid"

# --- dirty logs that replay ---------------------------------------------------
for vm in dirty wrapped; do
	check_eq "$vm: state 3" "3 Replicating" "$(cat "$M/ctl/$vm/state")"
	check_eq "$vm: d.img = qemu's replay of a copy" "$(sha "$T/$vm.raw")" "$(sha "$M/vms/$vm/d.img")"
	check "$vm: reads at random offsets match" preads_match "$M/vms/$vm/d.img" "$T/$vm.raw" 200
	check "$vm: the log says the log was replayed" grep -q "$vm/d.vhdx: VHDX log replayed in memory (3 entries" "$LOG"
done
check "the stale file differs from the replay (the test is live)" \
	bash -c "[ \"\$(qemu-img convert -f vhdx -O raw '$T/x.vhdx' /dev/stdout | sha256sum)\" != \"\$(sha256sum <'$T/dirty.raw')\" ]"

# --- logs that cannot be replayed ---------------------------------------------
declare -A WHY=([badcrc]="no valid sequence of log entries" [emptylog]="no valid sequence of log entries"
	[pastfile]="flushed at .* \\(truncated\\?\\)")
for vm in badcrc emptylog pastfile; do
	check_eq "$vm: state 8 Critical" "8 Critical" "$(cat "$M/ctl/$vm/state")"
	check_eq "$vm: d.img absent" ENOENT "$(errno_of stat "$M/vms/$vm/d.img")"
	line=$(grep -F -- "VM $vm: d.vhdx:" "$LOG" | grep -E -- "ERROR" | head -1 || true)
	check "$vm: the log names the file and says why (${line##*ERROR: })" grep -Eq -- "${WHY[$vm]}" <<<"$line"
done

# --- differencing VHDX, a block in state ZERO -----------------------------------------
img=$M/vms/diffzero/ntfs-parent.img ok=$M/vms/diffok/ntfs-parent.img
[ -e "$img" ] || img=$(ls "$M"/vms/diffzero/*.img) ok=$(ls "$M"/vms/diffok/*.img)
check_eq "diffzero: state 3" "3 Replicating" "$(cat "$M/ctl/diffzero/state")"
check_eq "diffok: the unpatched chain reads its MANIFEST sum" "$(manifest_sha ntfs-differential.vhdx)" "$(sha "$ok")"
check_eq "diffzero: 2-4 MiB reads zeros" "$(head -c 2M /dev/zero | sha256sum)" \
	"$(dd if="$img" bs=1M skip=2 count=2 status=none | sha256sum)"
check "diffzero: ... where the chain unpatched does not" \
	bash -c "[ \"\$(dd if='$ok' bs=1M skip=2 count=2 status=none | sha256sum)\" != \"\$(head -c 2M /dev/zero | sha256sum)\" ]"
check_eq "diffzero: 0-2 MiB as the chain unpatched" "$(head -c 2M "$ok" | sha256sum)" "$(head -c 2M "$img" | sha256sum)"
check_eq "diffzero: 4 MiB on as the chain unpatched" "$(tail -c +4194305 "$ok" | sha256sum)" "$(tail -c +4194305 "$img" | sha256sum)"

rfs_umount "$M"
check "no daemon left" bash -c "$(declare -f alive); ! alive $pid"
check_eq "the replica files are unchanged (sha256)" "$before" "$(replica_sums "$R")"

fault "VHDX whose log was never replayed (host crashed): BAT updates, zero descriptor, data sectors, a torn last entry, an entry wrapping round the log" "state 3; the \`.img\` reads as Windows (and qemu's repair) would after replaying the log, replayed in memory; the replica file unchanged; log: \`VHDX log replayed in memory (N entries, sequence A-B)\`"
fault "VHDX log set but with no valid entry sequence (bad checksum, corrupt, wrong sequence numbers, empty)" "state 8, log: \`VHDX log cannot be replayed: no valid sequence of log entries\`"
fault "VHDX log flushed past the end of the file (file truncated since)" "state 8, log: \`VHDX log says the file was flushed at N bytes, it has M (truncated?)\`"
fault "differencing VHDX block in state ZERO/UNMAPPED/UNDEFINED" "reads zeros, not the parent (libvhdi would read the parent)"

finish
