#!/usr/bin/env bash
# Issue 17, the leader (fs/transport.c): one worker reads /dev/fuse, polls
# it before it sleeps, serves small reads and writes itself (reads tried
# from the page cache alone), hands anything that may wait to another
# worker, and a deputy takes the role from a leader stuck in a request.
#  - 4 fio jobs (writes of 4-60 KiB, kept by the leader, and of 64 KiB-1 MiB,
#    handed on) verify every block they wrote, with the default options and
#    with -o poll=0 (libfuse's own loop), and the bytes survive a remount;
#  - 4 readers of a cold image (the image's pages dropped: reads miss and
#    are handed on) read exactly the raw disk, in parallel;
#  - a write stuck in the leader (its state folder frozen with fsfreeze, so
#    the overlay's pwrite waits where no hook sees it): reads of another VM,
#    a listing and a status read all finish while it waits, the debug log
#    says another worker took the role, and after the thaw the write
#    finishes and reads back;
#  - the two modes: random reads that miss the page cache turn the mount
#    cold (the debug log says every worker reads /dev/fuse) and read
#    exactly, in parallel too, and while the pages are dropped and read
#    back every 20 ms (the mount switching as they read); reads that hit again turn it hot
#    (the log says one leader reads it), and a leader takes requests
#    again: a 4 KiB write stuck in it is taken over as above;
#  - -o max_idle_threads=1: a leader whose worker libfuse ends gives the
#    role up, reads after bursts of parallel load are all served;
#  - SIGTERM ends the daemon in each mode; the replica never changes.
. "$(dirname "$0")/lib.sh"

command -v fio >/dev/null || { echo "FAIL: fio is required"; exit 1; }
command -v fsfreeze >/dev/null || { echo "FAIL: fsfreeze (util-linux) is required"; exit 1; }
command -v fincore >/dev/null || { echo "FAIL: fincore (util-linux-extra) is required"; exit 1; }

R=$T/replica M=$T/mnt S=$T/statefs
SIZE=$((32 << 20))
mkdir -p "$R/a" "$R/b" "$S"
head -c "$SIZE" /dev/urandom >"$T/a.raw"
qemu-img convert -q -f raw -O vhdx -o subformat=dynamic "$T/a.raw" "$R/a/d.vhdx"
head -c "$SIZE" /dev/urandom >"$T/b.raw"
qemu-img convert -q -f raw -O vpc -o subformat=fixed,force_size=on "$T/b.raw" "$R/b/d.vhd"
replica_before=$(replica_sums "$R")

# The state folder on its own small ext4, so that it can be frozen. The
# EXIT trap thaws it first: a frozen file system would hold the daemon.
truncate -s 256M "$T/state.ext4"
mkfs.ext4 -q -F "$T/state.ext4"
mount -o loop "$T/state.ext4" "$S"
trap 'rc=$?; set +e; fsfreeze -u "$S" 2>/dev/null; (exit $rc); rfs_cleanup' EXIT

# fio job: 4 jobs on 4 quarters of the disk, writes of mixed sizes, each
# block verified after its job wrote it.
fio_job() { # fio_job IMG SEED
	local q=$((SIZE / 4))
	cat <<EOF
[global]
filename=$1
ioengine=psync
rw=randwrite
size=$q
offset_increment=$q
verify=crc32c
verify_fatal=1
do_verify=1
randrepeat=1
randseed=$2
direct=1
[small]
numjobs=2
bsrange=4k-60k
offset=0
[large]
numjobs=2
bsrange=64k-1m
offset=$((2 * q))
EOF
}
fio_verifies() { # fio_verifies IMG SEED
	fio_job "$1" "$2" >"$T/job.fio"
	fio --output="$T/fio.out" "$T/job.fio" >/dev/null 2>&1 || { cat "$T/fio.out"; return 1; }
}

# reads_parallel IMG RAW: 4 processes, each 150 reads of 4 KiB-1 MiB at
# random offsets of its quarter, compared with RAW.
reads_parallel() {
	python3 - "$1" "$2" <<'PY'
import os, random, sys
img, raw = sys.argv[1], sys.argv[2]
size = os.path.getsize(raw)
pids = []
for k in range(4):
    pid = os.fork()
    if pid == 0:
        fi, fr = os.open(img, os.O_RDONLY), os.open(raw, os.O_RDONLY)
        rng, q, bad = random.Random(k), size // 4, 0
        for i in range(150):
            ln = rng.choice([4096, 8192, 65536, 131072, 1 << 20, rng.randrange(1, 1 << 20)])
            off = k * q + rng.randrange(0, q - ln)
            if os.pread(fi, ln, off) != os.pread(fr, ln, off):
                bad += 1
                print('mismatch at %d length %d' % (off, ln), file=sys.stderr)
        os._exit(1 if bad else 0)
    pids.append(pid)
sys.exit(1 if any(os.waitpid(p, 0)[1] for p in pids) else 0)
PY
}

# drop_pages FILE...: the page cache forgets FILE's pages (clean ones), so
# that the daemon's next reads of it wait for the disk. posix_fadvise from
# one CPU can leave pages that another CPU's LRU batch still holds (half
# of a file just read, once), so it runs on every CPU; only if fincore
# still finds pages does the whole page cache go (drop_caches, which
# tests running beside this one would feel).
drop_pages() {
	local cpu f
	for cpu in $(seq 0 $(($(nproc) - 1))); do
		taskset -c "$cpu" python3 - "$@" <<'PY'
import os, sys
for f in sys.argv[1:]:
    fd = os.open(f, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
PY
	done
	for f in "$@"; do
		[ "$(fincore -b -n -o RES "$f")" -eq 0 ] || { echo 1 >/proc/sys/vm/drop_caches; return; }
	done
}

# direct_reads IMG RAW N [SAME]: N reads of 4 KiB with O_DIRECT (each one a
# request to the daemon) at random block offsets, or all at block SAME,
# compared with RAW.
direct_reads() {
	python3 - "$@" <<'PY'
import mmap, os, random, sys
img, raw, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
same = int(sys.argv[4]) if len(sys.argv) > 4 else None
fi, fr = os.open(img, os.O_RDONLY | os.O_DIRECT), os.open(raw, os.O_RDONLY)
blocks, rng, buf, bad = os.fstat(fr).st_size // 4096, random.Random(n), mmap.mmap(-1, 4096), 0
for i in range(n):
    off = 4096 * (same if same is not None else rng.randrange(blocks))
    if os.preadv(fi, [buf], off) != 4096 or buf[:] != os.pread(fr, 4096, off):
        bad += 1
        print('mismatch at %d' % off, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}

# in_time SECONDS FUNCTION ARGS...: a shell function under timeout(1), so
# that a daemon that stops serving fails the check instead of hanging it.
in_time() { local secs=$1; shift; timeout "$secs" bash -c "$(declare -f "$1"); \"\$@\"" _ "$@"; }

# --- the default (the leader, polling) and -o poll=0 --------------------------
for mode in default poll0; do
	opts=(--state="$S/st")
	[ "$mode" = poll0 ] && opts+=(-o poll=0)
	check "$mode: mount" rfs_mount "$R" "$M" "${opts[@]}"
	[ "$mode" = default ] && ctl a failover "$M"
	check_eq "$mode: a is failed over" "5 Recovered" "$(cat "$M/ctl/a/state")"
	check "$mode: 4 fio jobs (4 KiB-1 MiB writes) verify what they wrote" fio_verifies "$M/vms/a/d.img" "$RANDOM"
	drop_pages "$R/b/d.vhd"
	check "$mode: 4 parallel readers of a cold fixed VHD read it exactly" in_time 120 reads_parallel "$M/vms/b/d.img" "$T/b.raw"
	pid=$(rfs_pid "$M")
	kill -TERM "$pid"
	check "$mode: SIGTERM ends the daemon" wait_exit "$pid"
done
check "the fio blocks verify again after the remount" rfs_mount "$R" "$M" --state="$S/st"
sed -i 's/^do_verify=1/verify_only=1/' "$T/job.fio"
check "(verify_only of the last job)" fio --output="$T/fio.out" "$T/job.fio"
check "unmount" rfs_umount "$M"

# --- a request stuck in the leader: the others go on --------------------------
# Foreground with -d: the daemon's debug messages go to its log.
: >"$T/replicafs.log"
"$REPLICAFS" -d --log="$T/replicafs.log" --state="$S/st" "$R" "$M" >"$T/debug.out" 2>&1 &
check "mount in the foreground with -d" wait_until 10 test -e "$M/vms/b/d.img"
head -c 65536 /dev/urandom >"$T/w.bin"
# The cluster is in the overlay already (a whole 64 KiB written): the 4 KiB
# write below is a plain pwrite of the overlay, and the replica is cached.
check "a: 64 KiB written at 1 MiB" dd if="$T/w.bin" of="$M/vms/a/d.img" bs=64k seek=16 \
	oflag=direct conv=notrunc status=none
cat "$R/a/d.vhdx" "$R/b/d.vhd" >/dev/null
head -c 4096 /dev/urandom >"$T/w4.bin"
fsfreeze -f "$S"
dd if="$T/w4.bin" of="$M/vms/a/d.img" bs=4k seek=257 oflag=direct conv=notrunc status=none &
writer=$!
in_fuse_wait() { grep -q request_wait_answer "/proc/$writer/stack" 2>/dev/null; }
check "the 4 KiB write waits in the daemon (state folder frozen)" wait_until 10 in_fuse_wait
check "200 reads of b finish meanwhile" timeout 30 dd if="$M/vms/b/d.img" of=/dev/null bs=4k count=200 \
	iflag=direct status=none
check "a listing and a status read finish meanwhile" timeout 30 bash -c "ls '$M/vms/a' >/dev/null && cat '$M/ctl/b/state' >/dev/null"
check "b reads exactly meanwhile" in_time 60 preads_match "$M/vms/b/d.img" "$T/b.raw" 50
check "the write still waits" alive "$writer"
check "the debug log: another worker took the role" grep -q "transport: a request held the reader" "$T/replicafs.log"
fsfreeze -u "$S"
check "after the thaw the write finishes" wait "$writer"
check "and reads back" cmp -s "$T/w4.bin" <(dd if="$M/vms/a/d.img" bs=4k skip=257 count=1 iflag=direct status=none)
check "unmount" rfs_umount "$M"

# --- the two modes: cold (every worker reads /dev/fuse), hot (one leader) ------
"$REPLICAFS" -d --log="$T/modes.log" --state="$S/st" "$R" "$M" >"$T/debug2.out" 2>&1 &
check "modes: mount in the foreground with -d" wait_until 10 test -e "$M/vms/b/d.img"
mode_log() { grep -o "reads wait for the disk\|reads come from the page cache" "$T/modes.log" | tail -n 1; }
drop_pages "$R/b/d.vhd"
check "modes: 300 random 4 KiB reads of b, cold, exact" in_time 60 direct_reads "$M/vms/b/d.img" "$T/b.raw" 300
check_eq "modes: the debug log says the mount went cold" "reads wait for the disk" "$(mode_log)"
drop_pages "$R/b/d.vhd"
check "modes: cold, 4 parallel readers read b exactly" in_time 120 reads_parallel "$M/vms/b/d.img" "$T/b.raw"
# Switches under load: 4 readers while b's pages are dropped, then read
# back into the cache, every 20 ms, so the mount goes cold and hot again
# as they read (the debug log counts the switches).
dropper() { while :; do drop_pages "$R/b/d.vhd"; sleep 0.02; cat "$R/b/d.vhd" >/dev/null; sleep 0.02; done; }
dropper &
dropper_pid=$!
check "modes: 4 readers of b, its pages dropped and read back every 20 ms: exact" in_time 120 reads_parallel "$M/vms/b/d.img" "$T/b.raw"
check "modes: then 600 random 4 KiB reads of b, the same meanwhile: exact" in_time 120 direct_reads "$M/vms/b/d.img" "$T/b.raw" 600
kill "$dropper_pid"; wait "$dropper_pid" 2>/dev/null || true
echo "modes: $(grep -c "transport: reads" "$T/modes.log") switches so far"
check "modes: 300 reads of one cached block of b, exact" in_time 60 direct_reads "$M/vms/b/d.img" "$T/b.raw" 300 7
check_eq "modes: the debug log says the mount went hot" "reads come from the page cache" "$(mode_log)"
cat "$R/a/d.vhdx" "$R/b/d.vhd" >/dev/null
fsfreeze -f "$S"
dd if="$T/w4.bin" of="$M/vms/a/d.img" bs=4k seek=300 oflag=direct conv=notrunc status=none &
writer=$!
check "modes: a 4 KiB write waits in the daemon (state folder frozen)" wait_until 10 in_fuse_wait
check "modes: 200 reads of b finish meanwhile" timeout 30 dd if="$M/vms/b/d.img" of=/dev/null bs=4k count=200 \
	iflag=direct status=none
check "modes: the debug log: another worker took the role" grep -q "transport: a request held the reader" "$T/modes.log"
fsfreeze -u "$S"
check "modes: after the thaw the write finishes" wait "$writer"
check "modes: unmount" rfs_umount "$M"

# --- -o max_idle_threads=1: ended workers give the role up ---------------------
check "mount -o max_idle_threads=1" rfs_mount "$R" "$M" --state="$S/st" -o max_idle_threads=1
bursts_ok() {
	local i
	for i in 1 2 3 4 5; do
		in_time 60 reads_parallel "$M/vms/b/d.img" "$T/b.raw" || return 1
		# one reader after the burst: libfuse ends the idle workers
		in_time 60 preads_match "$M/vms/b/d.img" "$T/b.raw" 20 || return 1
	done
}
check "5 bursts of 4 readers, each followed by one reader: all exact" bursts_ok
pid=$(rfs_pid "$M")
kill -TERM "$pid"
check "SIGTERM ends the daemon" wait_exit "$pid"

check_eq "the replica files never changed" "$replica_before" "$(replica_sums "$R")"
finish
