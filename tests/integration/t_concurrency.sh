#!/usr/bin/env bash
# SPEC §3, §5, §7 under load: four VMs (VHDX and VHD, one a VHD
# differencing chain) on one mount, everything at once:
#   - two failed-over VMs take fio verify writers (4 jobs each: 2 buffered,
#     2 O_DIRECT, each on its own quarter of 3/4 of the disk) while reader
#     processes check the untouched last quarter against the replica;
#   - the two other VMs cycle failover -> write -> read back -> close ->
#     revert -> "reads as the replica" until the writers are done, then
#     failover -> write -> commit;
#   - a loop stats and reads every ctl file of every VM.
# Afterwards: every fio block verifies again after a remount (verify_only),
# the untouched ranges and the reverted VMs equal their replica, the
# committed writes are there, the daemon was alive throughout, the replica
# files never changed and no sanitizer report (ASan, UBSan or TSan: lib.sh
# points their log_path at $T/sanitizer) was written.
# Runs once multi-threaded and once with the daemon single-threaded (-s),
# each with a fresh state folder. Labelled "tsan" too (tests/CMakeLists.txt).
#   RFS_CONC_SECONDS=S     how long the writers keep going per run (20; a
#                          fio pass is never cut short)
#   RFS_CONC_MIN_CYCLES=N  revert cycles each command VM does at least (3)
. "$(dirname "$0")/lib.sh"

command -v fio >/dev/null || { echo "FAIL: fio is required"; exit 1; }
LOAD_SECONDS=${RFS_CONC_SECONDS:-20}
MIN_CYCLES=${RFS_CONC_MIN_CYCLES:-3}
MAX_CYCLES=200
R=$T/replica M=$T/mnt
mkdir -p "$R/vw1" "$R/vw2" "$R/vc1" "$R/vc2"

# writer VMs: vw1 VHDX dynamic 48 MiB, vw2 VHD dynamic 32 MiB
random_disk 48 "$T/vw1.raw" "$R/vw1/sys.vhdx" vhdx -o subformat=dynamic
random_disk 32 "$T/vw2.raw" "$R/vw2/data.vhd" vpc -o subformat=dynamic,force_size=on
# command VMs: vc1 VHDX dynamic 32 MiB, vc2 a VHD differencing chain 32 MiB
random_disk 32 "$T/vc1.raw" "$R/vc1/sys.vhdx" vhdx -o subformat=dynamic
random_disk 32 "$T/vc2-base.raw" "$R/vc2/disk.vhd" vpc -o subformat=dynamic,force_size=on
python3 "$TOP/tests/mkvhd.py" diff "$R/vc2/disk.vhd" "$R/vc2/disk-1.avhd" --seed 7 \
	--raw-out "$T/vc2.raw" >/dev/null
declare -A DISK=([vw1]=sys [vw2]=data [vc1]=sys [vc2]=disk)
replica_before=$(replica_sums "$R")
head -c 256K /dev/urandom >"$T/pattern"

# A helper for byte ranges: "same IMG RAW OFF LEN" (exit 0 when equal) and
# "readers IMG RAW OFF LEN STOPFILE" (random preads of the range, compared
# with RAW, until STOPFILE exists; prints the number of reads; exit 1 on the
# first mismatch or error).
cat >"$T/ranges.py" <<'PY'
import os, random, sys
op, img, raw, off, ln = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
fi, fr = os.open(img, os.O_RDONLY), os.open(raw, os.O_RDONLY)
if op == 'same':
    pos, end = off, off + ln
    while pos < end:
        n = min(1 << 20, end - pos)
        if os.pread(fi, n, pos) != os.pread(fr, n, pos):
            sys.exit('%s differs from %s in [%d, %d)' % (img, raw, pos, pos + n))
        pos += n
    sys.exit(0)
stop, rng, reads = sys.argv[6], random.Random(), 0
while not os.path.exists(stop) or reads < 20:
    n = rng.choice([512, 4096, 65536, 131072 + 17, rng.randrange(1, 1 << 20)])
    o = off + rng.randrange(0, ln - min(n, ln))
    n = min(n, off + ln - o)
    if os.pread(fi, n, o) != os.pread(fr, n, o):
        sys.exit('reader: %s differs from %s at %d+%d' % (img, raw, o, n))
    reads += 1
print(reads)
PY

# fio job file for a writer VM: 4 jobs on 4 quarters of [0, 3/4 size).
fio_job() { # fio_job IMG SIZE SEED
	local q=$(($2 * 3 / 4 / 4))
	cat <<EOF
[global]
filename=$1
ioengine=psync
rw=randwrite
bsrange=4k-64k
size=$q
offset_increment=$q
verify=crc32c
verify_fatal=1
do_verify=1
randrepeat=1
randseed=$3
[buffered]
numjobs=2
offset=0
[direct]
numjobs=2
direct=1
offset=$((2 * q))
EOF
}

# writer VM: fio passes (each a new seed: new offsets, sizes and data; each
# verifies what it wrote) for LOAD_SECONDS; $T/VM.fio is the last pass's job
# (for verify_only later). Prints "passes N"; exit 1 when a pass fails.
writer() {
	local vm=$1 size n=0 t0=$SECONDS
	size=$(stat -c %s "$T/$vm.raw")
	while [ "$n" -lt 1 ] || [ $((SECONDS - t0)) -lt "$LOAD_SECONDS" ]; do
		fio_job "$M/vms/$vm/${DISK[$vm]}.img" "$size" $((4242 + n)) >"$T/$vm.fio"
		fio --output="$T/fio-$vm.out" "$T/$vm.fio" >/dev/null 2>&1 ||
			{ echo "FAIL: fio pass $n on $vm:"; cat "$T/fio-$vm.out"; return 1; }
		n=$((n + 1))
	done
	echo "passes $n"
}

# cycle VM: failover/write/revert cycles until $T/stop (at least MIN_CYCLES),
# then failover/write/commit. Every .img open is closed before a command.
# Prints "cycles N" last; "FAIL: ..." lines and exit 1 on a problem.
cycle() {
	local vm=$1 img=$M/vms/$1/${DISK[$1]}.img n=0 off want st
	want=$(sha "$T/$vm.raw")
	while [ "$n" -lt "$MIN_CYCLES" ] || { [ ! -e "$T/stop" ] && [ "$n" -lt "$MAX_CYCLES" ]; }; do
		ctl "$vm" failover "$M" || { echo "FAIL: $vm cycle $n: failover: $(cat "$M/ctl/$vm/status")"; return 1; }
		st=$(cat "$M/ctl/$vm/state")
		[ "$st" = "5 Recovered" ] || { echo "FAIL: $vm cycle $n: state after failover: $st"; return 1; }
		off=$(( (RANDOM % 120) * 256 ))  # KiB, inside the 32 MiB disk
		dd if="$T/pattern" of="$img" bs=1K seek="$off" conv=notrunc,fsync status=none ||
			{ echo "FAIL: $vm cycle $n: write"; return 1; }
		cmp -s -n $((256 * 1024)) -i 0:$((off * 1024)) "$T/pattern" "$img" ||
			{ echo "FAIL: $vm cycle $n: the write does not read back"; return 1; }
		ctl "$vm" revert "$M" || { echo "FAIL: $vm cycle $n: revert: $(cat "$M/ctl/$vm/status")"; return 1; }
		st=$(cat "$M/ctl/$vm/state")
		[ "$st" = "3 Replicating" ] || { echo "FAIL: $vm cycle $n: state after revert: $st"; return 1; }
		[ "$(sha "$img")" = "$want" ] || { echo "FAIL: $vm cycle $n: not the replica after revert"; return 1; }
		n=$((n + 1))
	done
	ctl "$vm" failover "$M" || { echo "FAIL: $vm: last failover: $(cat "$M/ctl/$vm/status")"; return 1; }
	dd if="$T/pattern" of="$img" bs=1K seek=1024 conv=notrunc,fsync status=none || { echo "FAIL: $vm: last write"; return 1; }
	commit_wait "$vm" "$M" || { echo "FAIL: $vm: commit: $(cat "$M/ctl/$vm/status")"; return 1; }
	echo "cycles $n"
}

# ctl_poll: stat and read every ctl file until $T/stop; prints the count.
ctl_poll() {
	local n=0 f
	while [ ! -e "$T/stop" ]; do
		for f in "$M"/ctl/*/state "$M"/ctl/*/status; do
			stat -c %s "$f" >/dev/null && cat "$f" >/dev/null || { echo "FAIL: $f"; return 1; }
		done
		ls -l "$M"/vms/* >/dev/null || { echo "FAIL: ls"; return 1; }
		n=$((n + 1))
	done
	echo "$n"
}

# committed VM: its .img is the replica with the pattern at 1 MiB.
committed_ok() {
	local vm=$1 img=$M/vms/$1/${DISK[$1]}.img
	cmp -s -n $((256 * 1024)) -i 0:$((1024 * 1024)) "$T/pattern" "$img" &&
		python3 "$T/ranges.py" same "$img" "$T/$vm.raw" 0 $((1024 * 1024)) &&
		python3 "$T/ranges.py" same "$img" "$T/$vm.raw" $((1280 * 1024)) $((32 * 1024 * 1024 - 1280 * 1024))
}

TOTAL_CYCLES=0 TOTAL_PASSES=0
run() {
	local mode=$1 state=$T/state-$1 pid vm size rc pids=() names=() i; shift
	echo "--- run: ${mode}, daemon options: ${*:-none}"
	rm -f "$T/stop"
	rfs_mount "$R" "$M" --state="$state" "$@"
	pid=$(rfs_pid "$M")
	for vm in vw1 vw2; do
		check "$mode: failover $vm" ctl "$vm" failover "$M"
	done

	# readers of the untouched last quarter of the writer VMs
	for vm in vw1 vw2; do
		size=$(stat -c %s "$T/$vm.raw")
		for i in 1 2; do
			python3 "$T/ranges.py" readers "$M/vms/$vm/${DISK[$vm]}.img" "$T/$vm.raw" \
				$((size * 3 / 4)) $((size / 4)) "$T/stop" >"$T/rd-$vm-$i.out" 2>&1 &
			pids+=($!) names+=("reader $i of $vm")
		done
	done
	for vm in vc1 vc2; do
		cycle "$vm" >"$T/cy-$vm.out" 2>&1 &
		pids+=($!) names+=("command cycles on $vm")
	done
	ctl_poll >"$T/poll.out" 2>&1 &
	pids+=($!) names+=("ctl poller")

	# the writers, in the foreground; then stop the others
	local fpids=()
	for vm in vw1 vw2; do
		writer "$vm" >"$T/wr-$vm.out" 2>&1 &
		fpids+=($!)
	done
	i=0
	for vm in vw1 vw2; do
		rc=0; wait "${fpids[$i]}" || rc=$?
		check "$mode: fio writers with verify on $vm (4 jobs, $(tail -1 "$T/wr-$vm.out"))" test "$rc" -eq 0
		[ "$rc" -eq 0 ] || cat "$T/wr-$vm.out"
		i=$((i + 1))
	done
	touch "$T/stop"
	for i in "${!pids[@]}"; do
		rc=0; wait "${pids[$i]}" || rc=$?
		check "$mode: ${names[$i]}" test "$rc" -eq 0
	done
	for f in "$T"/rd-*.out "$T"/cy-*.out "$T"/poll.out; do
		echo "  $(basename "$f"): $(tail -1 "$f")"
		if grep -q FAIL "$f" || grep -q 'differs\|Error' "$f"; then cat "$f"; fi
	done
	for vm in vc1 vc2; do
		n=$(sed -n 's/^cycles //p' "$T/cy-$vm.out")
		TOTAL_CYCLES=$((TOTAL_CYCLES + ${n:-0}))
	done
	for vm in vw1 vw2; do
		n=$(sed -n 's/^passes //p' "$T/wr-$vm.out")
		TOTAL_PASSES=$((TOTAL_PASSES + ${n:-0}))
	done

	check "$mode: the daemon is alive after the load" alive "$pid"
	check "$mode: the mount still answers" mountpoint -q "$M"
	for vm in vc1 vc2; do
		check_eq "$mode: $vm committed" "6 Committed" "$(cat "$M/ctl/$vm/state")"
	done

	# remount: everything written is still there, exactly
	check "$mode: unmounts cleanly" rfs_umount "$M"
	rfs_mount "$R" "$M" --state="$state" "$@"
	for vm in vw1 vw2; do
		size=$(stat -c %s "$T/$vm.raw")
		rc=0; fio --verify_only --output="$T/fiov-$vm.out" "$T/$vm.fio" >/dev/null 2>&1 || rc=$?
		check "$mode: after remount every fio block of $vm verifies (verify_only)" test "$rc" -eq 0
		check "$mode: ... and the untouched quarter of $vm is the replica" \
			python3 "$T/ranges.py" same "$M/vms/$vm/${DISK[$vm]}.img" "$T/$vm.raw" $((size * 3 / 4)) $((size / 4))
		check_eq "$mode: $vm still failed over" "5 Recovered" "$(cat "$M/ctl/$vm/state")"
	done
	for vm in vc1 vc2; do
		check "$mode: $vm reads as its replica plus the committed write" committed_ok "$vm"
	done
	check "$mode: unmounts cleanly after the checks" rfs_umount "$M"
	check_eq "$mode: replica files unchanged" "$replica_before" "$(replica_sums "$R")"
}

start=$SECONDS
run multi-threaded
run single-threaded -s
echo "summary: $TOTAL_PASSES fio verify passes (4 jobs each) on vw1+vw2 while vc1+vc2 did $TOTAL_CYCLES failover/revert cycles, 2 runs, $((SECONDS - start)) s"
finish
