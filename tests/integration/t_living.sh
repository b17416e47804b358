#!/usr/bin/env bash
# SPEC §2 "The store is alive", §3, §4, §9: the replica folder changes while
# it is mounted, and the tree follows without a remount:
#   A. VM folders copied in appear within 5 s and read exactly; a new disk
#      in a VM appears; removed, a VM leaves, but only once none of its
#      disks is open (one held open with exec 3<: it stays, its descriptor
#      reads on; closed: it leaves); the live node count (statfs f_files)
#      returns to its start once the kernel forgot the nodes.
#   B. a VM whose file was caught half-copied is "8 Critical" without .img,
#      and becomes "3 Replicating" and reads exactly once the copy completes.
#   C. a new recovery point (a VHD differencing file at the chain's tip)
#      does not change a disk under an open file, nor while any other disk
#      of the VM is open (checked byte for byte, page cache dropped); closed,
#      the disk reads the new point within 5 s.
#   D. a failed-over VM stays on its point while newer points arrive, over a
#      remount too (old point + the synced marker); revert goes to the
#      newest point. E. a failed-over VM whose folder disappears stays and
#      keeps serving old point + its writes.
#   F. `ls -R` loops and a reader run while a VM folder is added and removed
#      200 times: the daemon stays up, a readable disk reads exactly, and
#      the node count returns to its start.
# Every part proves the replica files never change (shadow_same, lib.sh).
# Nothing sleeps to synchronise: conditions are polled with a deadline
# (wait_until), and "nothing changes" is watched for the 5 s bound plus one
# second (stays_true). A part stops at its first failed requirement (the
# rest depends on it); the others still run.
#   RFS_LIVE_DEADLINE=S  the appearance bound (5, SPEC §2)
#   RFS_LIVE_CYCLES=N    add/remove cycles of part F (200)
. "$(dirname "$0")/lib.sh"

LIVE=${RFS_LIVE_DEADLINE:-5}
HOLD=$((LIVE + 1))
CYCLES=${RFS_LIVE_CYCLES:-200}
R=$T/replica M=$T/mnt S=$T/stage SH=$T/shadow
mkdir -p "$R" "$S" "$SH"

# Background loops of part F stop when $T/stop exists (or $T is gone), and
# are killed on any exit; held descriptors are closed before the unmount.
BG=""
trap 'rc=$?; set +e; touch "$T/stop" 2>/dev/null; exec 3<&- 4<&-; [ -z "$BG" ] || kill $BG 2>/dev/null; wait 2>/dev/null; (exit $rc); rfs_cleanup' EXIT

# --- the prepared VMs --------------------------------------------------------
mkdir -p "$S"/{keep,vma,vmb,vmc,vmf,vmz,vs}
random_disk 8 "$T/keep.raw" "$S/keep/sys.vhdx" vhdx
random_disk 16 "$T/vma.raw" "$S/vma/sys.vhdx" vhdx -o subformat=dynamic
random_disk 4 "$T/vma-data.raw" "$T/vma-data.vhd" vpc -o subformat=dynamic,force_size=on
random_disk 8 "$T/vmb.raw" "$S/vmb/sys.vhd" vpc -o subformat=dynamic,force_size=on
random_disk 16 "$T/vmh.raw" "$T/vmh.vhdx" vhdx -o subformat=dynamic
# vmc: a VHD chain disk.vhd <- disk-1.avhd (point 1) and a second disk
random_disk 16 "$T/c0.raw" "$S/vmc/disk.vhd" vpc -o subformat=dynamic,force_size=on
python3 "$TOP/tests/mkvhd.py" diff "$S/vmc/disk.vhd" "$S/vmc/disk-1.avhd" --seed 21 --raw-out "$T/c1.raw" >/dev/null
random_disk 4 "$T/c-data.raw" "$S/vmc/data.vhdx" vhdx
# vmf: a VHD chain f.vhd <- f-1.avhd (point 1), failed over in part D
random_disk 16 "$T/f0.raw" "$S/vmf/f.vhd" vpc -o subformat=dynamic,force_size=on
python3 "$TOP/tests/mkvhd.py" diff "$S/vmf/f.vhd" "$S/vmf/f-1.avhd" --seed 31 --raw-out "$T/f1.raw" >/dev/null
random_disk 4 "$T/vmz.raw" "$S/vmz/z.vhdx" vhdx
# vs: the VM that part F adds and removes
random_disk 4 "$T/vs.raw" "$S/vs/sys.vhdx" vhdx -o subformat=dynamic
for vm in keep vmc vmf vmz; do put_vm "$vm"; done
check "setup: the replica folder and its shadow start equal" \
	test "$(replica_sums "$R")" = "$(replica_sums "$SH")"

# --- helpers -------------------------------------------------------------------
state_of() { cat "$M/ctl/$1/state" 2>/dev/null || echo "(no ctl/$1/state)"; }
state_is() { [ "$(state_of "$1")" = "$2" ]; }
# listed DIR NAME: NAME is in DIR's listing (readdir, not a lookup).
listed() { ls -1 "$1" 2>/dev/null | grep -qxF -- "$2"; }
# shown VM DISK...: VM is in vms/ and ctl/, in state 3, with these .img files.
shown() {
	local vm=$1 d; shift
	listed "$M/vms" "$vm" && listed "$M/ctl" "$vm" && state_is "$vm" "3 Replicating" || return 1
	for d in "$@"; do listed "$M/vms/$vm" "$d.img" && [ -f "$M/vms/$vm/$d.img" ] || return 1; done
}
# gone VM: neither listed nor found under vms/ or ctl/.
gone() {
	! listed "$M/vms" "$1" && ! listed "$M/ctl" "$1" && [ ! -e "$M/vms/$1" ] && [ ! -e "$M/ctl/$1" ]
}
# still_there VM: listed under vms/ and ctl/ (whatever its state).
still_there() { listed "$M/vms" "$1" && listed "$M/ctl" "$1"; }
# need DESC COMMAND...: a check the rest of the part depends on; on failure
# the caller returns (need ... || return 0).
need() {
	local d=$1; shift
	if "$@"; then pass "$d"; return 0; fi
	fail "$d"; echo "  (the rest of this part depends on it: skipped)"; return 1
}
# within need|check SECS DESC COMMAND...: COMMAND becomes true within SECS.
# holds need|check SECS DESC COMMAND...: COMMAND stays true for SECS.
# Conditions compare with "same" (same_bytes, quiet): on failure the last
# comparison's message is printed, not every miss of the poll.
same() { same_bytes "$@" 2>"$T/same.err"; }
last_why() { [ ! -s "$T/same.err" ] || echo "  last comparison: $(cat "$T/same.err")"; }
within() {
	local kind=$1 secs=$2 d=$3; shift 3
	: >"$T/same.err"
	if wait_until "$secs" "$@"; then pass "$d (after $(ms_s "$WAITED"))"; return 0; fi
	fail "$d: not so after $(ms_s "$WAITED")"; last_why
	[ "$kind" = check ] && return 0
	echo "  (the rest of this part depends on it: skipped)"; return 1
}
holds() {
	local kind=$1 secs=$2 d=$3; shift 3
	: >"$T/same.err"
	if stays_true "$secs" "$@"; then pass "$d"; return 0; fi
	fail "$d: false after $(ms_s "$STAYED")"; last_why
	[ "$kind" = check ] && return 0
	echo "  (the rest of this part depends on it: skipped)"; return 1
}

rfs_mount "$R" "$M"
PID=$(rfs_pid "$M")
check "setup: the daemon runs" test -n "$PID"
check "setup: keep, vmc, vmf, vmz are shown at mount" shown keep sys
check "setup: keep/sys.img reads exactly" same_bytes "$M/vms/keep/sys.img" "$T/keep.raw"
check "setup: vmc/disk.img reads point 1 (mkvhd's model of disk-1.avhd)" same_bytes "$M/vms/vmc/disk.img" "$T/c1.raw"
check "setup: vmc/data.img reads exactly" same_bytes "$M/vms/vmc/data.img" "$T/c-data.raw"
check "setup: vmf/f.img reads point 1" same_bytes "$M/vms/vmf/f.img" "$T/f1.raw"
check "setup: node count (statfs f_files, stat -f -c %c) is a number > 0" \
	test "$(rfs_nodes "$M")" -gt 0

# --- A. a VM folder copied in appears; removed, it leaves when closed ------------
part_a() {
	local start
	echo "--- A: new VMs and disks appear; a removed VM leaves once none of its disks is open"
	start=$(settled_nodes "$M")
	echo "  node count before: $start"
	put_vm vma
	put_vm vmb
	within need "$LIVE" "A: VM folders copied in (vma, vmb) appear in vms/ and ctl/ (state 3, disk shown) within ${LIVE} s, no remount" \
		eval 'shown vma sys && shown vmb sys' || return 0
	check "A: vma/sys.img reads exactly as its raw reference (cmp)" cmp "$M/vms/vma/sys.img" "$T/vma.raw"
	check_eq "A: vma/sys.img sha256" "$(sha "$T/vma.raw")" "$(sha "$M/vms/vma/sys.img")"
	check "A: vmb/sys.img (a dynamic VHD) reads exactly" same_bytes "$M/vms/vmb/sys.img" "$T/vmb.raw"
	check_eq "A: vma/sys.img is read-only (0400) like every replica disk" 400 "$(stat -c %a "$M/vms/vma/sys.img")"

	put_file vma data.vhd "$T/vma-data.vhd"
	within check "$LIVE" "A: a disk file added to vma (data.vhd) appears as vms/vma/data.img within ${LIVE} s" shown vma sys data
	check "A: vma/data.img reads exactly" same_bytes "$M/vms/vma/data.img" "$T/vma-data.raw"
	check "A: vma/sys.img still reads exactly" same_bytes "$M/vms/vma/sys.img" "$T/vma.raw"

	exec 3<"$M/vms/vma/sys.img"
	drop_vm vma
	drop_vm vmb
	# vmb (nothing open) leaving shows that the daemon has seen both removals
	within need "$LIVE" "A: vmb, removed with none of its disks open, leaves vms/ and ctl/ within ${LIVE} s" gone vmb ||
		{ exec 3<&-; return 0; }
	check "A: vma, removed while its sys.img is held open (exec 3<), is still listed in vms/ and ctl/" still_there vma
	check "A: ... and the held descriptor still reads sys.img exactly (pread, page cache dropped)" \
		same_bytes --drop fd:3 "$T/vma.raw"
	holds check "$HOLD" "A: ... vma stays listed for ${HOLD} s while sys.img is open" still_there vma
	exec 3<&-
	within check "$LIVE" "A: vma leaves vms/ and ctl/ within ${LIVE} s once sys.img is closed" gone vma
	within check 10 "A: node count back to $start once the kernel forgot the nodes (drop_caches)" nodes_are "$M" "$start"
	echo "  node count now: $(rfs_nodes "$M")"
	check "A: the daemon is alive" alive "$PID"
	shadow_same "A"
	fault "a VM folder copied into the mounted replica folder, later removed while one of its disks is open" \
		"it appears within 5 s and reads exactly; removed, it stays while the disk is open (the open file reads on), and leaves once it is closed"
}

# --- B. a VM caught half-copied becomes healthy once the copy completes -----------
part_b() {
	local size half
	echo "--- B: a VM caught half-copied is state 8, then healthy once the copy completes"
	size=$(stat -c %s "$T/vmh.vhdx")
	half=$((size / 2))
	mkdir "$R/vmh" "$SH/vmh"
	head -c "$half" "$T/vmh.vhdx" >"$R/vmh/sys.vhdx"
	head -c "$half" "$T/vmh.vhdx" >"$SH/vmh/sys.vhdx"
	within need "$LIVE" "B: vmh with the first half of its dynamic VHDX ($half of $size bytes) shows ctl/vmh/state \"8 Critical\" within ${LIVE} s" \
		state_is vmh "8 Critical" || return 0
	check "B: ... and vms/vmh/sys.img is absent" test ! -e "$M/vms/vmh/sys.img"
	tail -c +$((half + 1)) "$T/vmh.vhdx" >>"$R/vmh/sys.vhdx"
	tail -c +$((half + 1)) "$T/vmh.vhdx" >>"$SH/vmh/sys.vhdx"
	check "B: (setup) the copy is complete" cmp -s "$T/vmh.vhdx" "$R/vmh/sys.vhdx"
	within need "$LIVE" "B: once the copy completes, vmh is \"3 Replicating\" with sys.img within ${LIVE} s (a rescan re-probes the changed file)" \
		shown vmh sys || return 0
	check "B: vmh/sys.img reads exactly" same_bytes "$M/vms/vmh/sys.img" "$T/vmh.raw"
	check "B: the daemon is alive" alive "$PID"
	shadow_same "B"
	fault "a VM's disk file seen half-copied (replication still writing it)" \
		"state \`8 Critical\`, no \`.img\`; once the copy completes: state \`3 Replicating\` within 5 s, reads exactly, no remount"
}

# --- C. a new recovery point never changes a disk under an open file ----------------
part_c() {
	local img=$M/vms/vmc/disk.img
	echo "--- C: a new recovery point moves a disk only once none of the VM's disks is open"
	exec 4<"$img"
	check "C: (setup) the descriptor held on vmc/disk.img reads point 1" same_bytes fd:4 "$T/c1.raw"
	new_point vmc disk-1.avhd disk-2.avhd 22 "$T/c2.raw"
	check "C: (setup) point 2 (disk-2.avhd) differs from point 1" bash -c "! cmp -s '$T/c1.raw' '$T/c2.raw'"
	holds check "$HOLD" "C: while disk.img is open, the held descriptor keeps reading point 1 byte for byte (every 0.2 s for ${HOLD} s, page cache dropped)" \
		same --drop fd:4 "$T/c1.raw"
	check "C: ... and a new open of disk.img (page cache dropped) also reads point 1" same_bytes --drop "$img" "$T/c1.raw"
	exec 4<&-
	within need "$LIVE" "C: closed, vmc/disk.img reads point 2 (mkvhd's model of disk-2.avhd) within ${LIVE} s" \
		same "$img" "$T/c2.raw" || return 0
	check_eq "C: vmc still 3 Replicating" "3 Replicating" "$(state_of vmc)"
	check "C: vmc/data.img still reads exactly" same_bytes "$M/vms/vmc/data.img" "$T/c-data.raw"

	exec 4<"$M/vms/vmc/data.img"
	new_point vmc disk-2.avhd disk-3.avhd 23 "$T/c3.raw"
	check "C: (setup) point 3 (disk-3.avhd) differs from point 2" bash -c "! cmp -s '$T/c2.raw' '$T/c3.raw'"
	holds check "$HOLD" "C: while the VM's other disk (data.img) is open, disk.img (new opens, page cache dropped) keeps reading point 2 for ${HOLD} s" \
		same --drop "$img" "$T/c2.raw"
	check "C: ... and the open data.img reads exactly" same_bytes --drop fd:4 "$T/c-data.raw"
	exec 4<&-
	within check "$LIVE" "C: once data.img is closed, disk.img reads point 3 within ${LIVE} s" same "$img" "$T/c3.raw"
	check "C: the daemon is alive" alive "$PID"
	shadow_same "C"
	fault "a new recovery point (differencing file at the chain's tip) arrives while a disk of the VM is open" \
		"the open disk keeps reading the old point byte for byte; once every disk of the VM is closed the disk reads the new point within 5 s"
}

# --- D. a failed-over VM keeps its point; E. it stays when its folder goes -----------
part_d() {
	local img=$M/vms/vmf/f.img off=$((5 * 1024 * 1024 + 512))
	echo "--- D: a failed-over VM stays on its point (new points, remount); revert goes to the newest"
	need "D: failover vmf" ctl vmf failover "$M" || return 0
	check_eq "D: vmf is 5 Recovered" "5 Recovered" "$(state_of vmf)"
	head -c 192K /dev/urandom >"$T/marker"
	dd if="$T/marker" of="$img" bs=64K seek="$off" oflag=seek_bytes conv=notrunc,fsync status=none
	cp "$T/f1.raw" "$T/f1m.raw"
	dd if="$T/marker" of="$T/f1m.raw" bs=64K seek="$off" oflag=seek_bytes conv=notrunc status=none
	check "D: f.img reads point 1 + the marker (written with fsync)" same_bytes "$img" "$T/f1m.raw"

	new_point vmf f-1.avhd f-2.avhd 32 "$T/f2.raw"
	cp "$T/f2.raw" "$T/f2m.raw"
	dd if="$T/marker" of="$T/f2m.raw" bs=64K seek="$off" oflag=seek_bytes conv=notrunc status=none
	check "D: (setup) point 2 + marker differs from point 1 + marker" bash -c "! cmp -s '$T/f1m.raw' '$T/f2m.raw'"
	holds check "$HOLD" "D: a newer point (f-2.avhd) arrives: f.img (closed; new opens, page cache dropped) keeps reading point 1 + marker for ${HOLD} s" \
		same --drop "$img" "$T/f1m.raw"
	check_eq "D: vmf still 5 Recovered" "5 Recovered" "$(state_of vmf)"

	need "D: unmount" rfs_umount "$M" || return 0
	new_point vmf f-2.avhd f-3.avhd 33 "$T/f3.raw"   # and one more while unmounted
	rfs_mount "$R" "$M"
	PID=$(rfs_pid "$M")
	check_eq "D: after a remount (points 2 and 3 on disk) vmf is still 5 Recovered" "5 Recovered" "$(state_of vmf)"
	check "D: after the remount f.img reads point 1 + marker" same_bytes "$img" "$T/f1m.raw"
	need "D: revert vmf" ctl vmf revert "$M" || return 0
	check_eq "D: vmf is 3 Replicating after revert" "3 Replicating" "$(state_of vmf)"
	check "D: after revert f.img reads the newest point (point 3, f-3.avhd) exactly" same_bytes "$img" "$T/f3.raw"
	shadow_same "D"
	fault "new recovery points arrive while a VM is failed over (mounted, and between mounts)" \
		"the failed-over disks stay on their point with every synced write; \`revert\` goes to the newest point"

	echo "--- E: a failed-over VM whose folder disappears stays and keeps serving"
	need "E: failover vmf again (at point 3)" ctl vmf failover "$M" || return 0
	dd if="$T/marker" of="$img" bs=64K seek=1M oflag=seek_bytes conv=notrunc,fsync status=none
	cp "$T/f3.raw" "$T/f3m.raw"
	dd if="$T/marker" of="$T/f3m.raw" bs=64K seek=1M oflag=seek_bytes conv=notrunc status=none
	check "E: f.img reads point 3 + the new marker" same_bytes "$img" "$T/f3m.raw"
	away_vm vmf
	away_vm vmz
	# vmz (no overlay) leaving shows that the daemon has seen both folders go
	within need "$LIVE" "E: vmz, whose folder was moved out, leaves within ${LIVE} s" gone vmz || { back_vm vmf; return 0; }
	check "E: vmf (failed over), whose folder was moved out too, is still listed" still_there vmf
	check_eq "E: ... still 5 Recovered" "5 Recovered" "$(state_of vmf)"
	check "E: ... and f.img (a new open, page cache dropped) reads point 3 + marker from the files it opened" \
		same_bytes --drop "$img" "$T/f3m.raw"
	holds check "$HOLD" "E: ... vmf stays listed for ${HOLD} s" still_there vmf
	back_vm vmf
	back_vm vmz
	within check "$LIVE" "E: vmz, moved back, appears again within ${LIVE} s" shown vmz z
	need "E: revert vmf (its folder is back)" ctl vmf revert "$M" || return 0
	within check "$LIVE" "E: after revert vmf is 3 Replicating and f.img reads point 3 exactly" \
		eval 'state_is vmf "3 Replicating" && same "$img" "$T/f3.raw"'
	check "D/E: the daemon is alive" alive "$PID"
	shadow_same "E"
	fault "the folder of a failed-over VM disappears from the replica folder" \
		"the VM stays, in state 5, and reads its point plus its writes; other VMs whose folder goes leave the tree"
}

# --- F. ls -R and a reader while a VM folder comes and goes 200 times --------------
cat >"$T/reader.py" <<'PY'
# reader IMG STATE RAW STOP: until STOP exists, read IMG whole whenever it can
# be opened (not there: ENOENT); once open, every read must succeed and the
# whole must equal RAW; every read of STATE must be a state a copied or moved
# VM can have (8 while caught half-copied). Prints the counts; exit 1 at the
# first error, wrong byte or wrong state. While a file "pause" exists next to
# STOP, it opens nothing.
import errno, os, sys, time
img, state, raw, stop = sys.argv[1:]
want = open(raw, 'rb').read()
ok = refused = states = 0
pause = os.path.join(os.path.dirname(stop), 'pause')
while not os.path.exists(stop) and os.path.isdir(os.path.dirname(stop)):
    if os.path.exists(pause):
        time.sleep(0.01)
        continue
    try:
        with open(state, 'rb') as f:
            s = f.read()
        if s not in (b'3 Replicating\n', b'8 Critical\n'):
            sys.exit('reader: %s reads %r' % (state, s))
        states += 1
    except OSError as e:
        if e.errno not in (errno.ENOENT, errno.EIO, errno.ESTALE):
            sys.exit('reader: %s: %s' % (state, e))
    try:
        fd = os.open(img, os.O_RDONLY)
    except OSError as e:
        if e.errno not in (errno.ENOENT, errno.EIO, errno.ESTALE):
            sys.exit('reader: open %s: %s' % (img, e))
        refused += 1
        time.sleep(0.005)   # not there now: do not spin on lookups
        continue
    try:
        size = os.fstat(fd).st_size
        if size != len(want):
            sys.exit('reader: %s has size %d, expected %d' % (img, size, len(want)))
        got = b''
        while len(got) < size:
            chunk = os.pread(fd, min(1 << 20, size - len(got)), len(got))
            if not chunk:
                sys.exit('reader: %s ends at %d of %d' % (img, len(got), size))
            got += chunk
        if got != want:
            i = next(i for i in range(size) if got[i] != want[i])
            sys.exit('reader: %s differs from %s at offset %d' % (img, raw, i))
        ok += 1
    except OSError as e:
        # once open, a disk reads on even if its VM's folder went (SPEC §2)
        sys.exit('reader: read %s after a successful open: %s' % (img, e))
    finally:
        os.close(fd)
print('exact whole reads %d, refused %d, state reads %d' % (ok, refused, states))
PY

# lister N: ls -R the mount until $T/stop; errors other than "No such file
# or directory" (an entry that left during the walk) are failures.
lister() {
	local n=0 bad
	while [ ! -e "$T/stop" ] && [ -d "$T" ]; do
		ls -R "$M" >/dev/null 2>"$T/ls-$1.err" || true
		bad=$(grep -v 'No such file or directory' "$T/ls-$1.err" || true)
		[ -z "$bad" ] || { echo "FAIL: ls -R: $bad"; return 1; }
		n=$((n + 1))
	done
	echo "ls -R runs: $n"
}

part_f() {
	local start i pids=() names=() outs=() rc seen=0 waited=0 left_late=0 k
	echo "--- F: ls -R and a reader while vs is added and removed $CYCLES times"
	rm -f "$T/stop" "$T/pause"
	local stage_sums
	stage_sums=$(replica_sums "$S/vs")
	start=$(settled_nodes "$M")
	echo "  node count before: $start"
	mv "$S/vs" "$R/vs"
	within need "$LIVE" "F: vs (moved in) appears within ${LIVE} s" shown vs sys || { mv "$R/vs" "$S/vs"; return 0; }
	check "F: vs/sys.img reads exactly" same_bytes "$M/vms/vs/sys.img" "$T/vs.raw"
	mv "$R/vs" "$S/vs"
	within need "$LIVE" "F: vs (moved out) leaves within ${LIVE} s" gone vs || return 0

	for k in 1 2; do
		lister "$k" >"$T/lister-$k.out" 2>&1 &
		pids+=($!) names+=("ls -R loop $k") outs+=("$T/lister-$k.out"); BG="$BG $!"
	done
	python3 "$T/reader.py" "$M/vms/vs/sys.img" "$M/ctl/vs/state" "$T/vs.raw" "$T/stop" >"$T/reader.out" 2>&1 &
	pids+=($!) names+=("reader of vs/sys.img") outs+=("$T/reader.out"); BG="$BG $!"

	rc=0
	for ((i = 1; i <= CYCLES; i++)); do
		if ((i % 5 == 0)); then
			cp -r "$S/vs" "$R/vs" || { rc=1; break; }   # a real copy: may be seen half-copied
		else
			mv "$S/vs" "$R/vs" || { rc=1; break; }
		fi
		# every 10th cycle (a cp one, then a mv one) waits for vs to show and to go
		if ((i % 20 == 0 || i % 20 == 11)); then
			waited=$((waited + 1))
			wait_until "$LIVE" shown vs sys && seen=$((seen + 1))
		fi
		# ... and the reader pauses then, so that no disk of vs stays open
		if ((i % 20 == 0 || i % 20 == 11)); then touch "$T/pause"; fi
		if ((i % 5 == 0)); then rm -rf "${R:?}/vs"; else mv "$R/vs" "$S/vs"; fi || { rc=1; break; }
		if ((i % 20 == 0 || i % 20 == 11)); then
			wait_until "$LIVE" gone vs || { echo "  cycle $i: vs did not leave within ${LIVE} s"; left_late=$((left_late + 1)); }
			rm -f "$T/pause"
		fi
		alive "$PID" || { echo "  the daemon died in cycle $i"; rc=1; break; }
	done
	check "F: $CYCLES add/remove cycles of the vs folder done (mv, every 5th cp -r/rm -rf)" test "$rc" -eq 0
	check_eq "F: in the $waited cycles that wait for it, vs appeared within ${LIVE} s" "$waited" "$seen"
	check_eq "F: ... and left within ${LIVE} s once moved or removed (no disk open)" 0 "$left_late"
	touch "$T/stop"
	for i in "${!pids[@]}"; do
		rc=0; wait "${pids[$i]}" || rc=$?
		check "F: ${names[$i]}: no error, no wrong byte or state ($(tail -1 "${outs[$i]}"))" test "$rc" -eq 0
	done
	BG=""
	check "F: the daemon is alive after the cycles" alive "$PID"
	check "F: the mount still answers" mountpoint -q "$M"
	within check "$LIVE" "F: vs (out of the folder at the end) is gone" gone vs
	mv "$S/vs" "$R/vs"
	within check "$LIVE" "F: vs moved in once more appears" shown vs sys
	check "F: ... and reads exactly" same_bytes "$M/vms/vs/sys.img" "$T/vs.raw"
	mv "$R/vs" "$S/vs"
	within check "$LIVE" "F: ... and leaves again" gone vs
	within check 10 "F: node count back to $start once the kernel forgot the nodes (drop_caches)" nodes_are "$M" "$start"
	echo "  node count now: $(rfs_nodes "$M")"
	check_eq "F: the staged vs files never changed" "$stage_sums" "$(replica_sums "$S/vs")"
	shadow_same "F"
	fault "$CYCLES add/remove cycles of a VM folder while \`ls -R\` loops and a reader run" \
		"no crash; a disk that can be opened reads exactly, otherwise \`ENOENT\`; the node count returns to its start"
}

part_a
part_b
part_c
part_d
part_f

echo "--- the end"
check "the daemon is alive" alive "$PID"
check_eq "keep (never touched) is still 3 Replicating" "3 Replicating" "$(state_of keep)"
check "keep/sys.img still reads exactly" same_bytes "$M/vms/keep/sys.img" "$T/keep.raw"
check "unmounts cleanly" rfs_umount "$M"
shadow_same "the end"
finish
