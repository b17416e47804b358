#!/usr/bin/env bash
# SPEC §8, issue 11: one owner per VM. Two daemons mount one store with one
# state folder, each on its own mount point ($M and $M3):
#  1. the repro: failover on $M is 0; failover and revert on $M3 are
#     refused (EBUSY, 32774); `owner` names $M's daemon on both mounts
#     ("<host> <pid>", pid checked with rfs_pid); $M3 shows $M's state and
#     lists no .img; a write fsync'd through $M survives unmounting both and
#     mounting again.
#  2. kill -9 of the owner during parallel fsync'd writes (the crash writer,
#     as in t_crash.sh, kills it itself after a random journal record): the
#     standby serves the VM within 5 s ("owner" names it and the .img is
#     there), in state 5, and every acknowledged write reads back through
#     it. The killed daemon, mounted again, stays a standby.
#  3. a race: `failover` written to both daemons at the same instant (two
#     writers blocked on one pipe, released by closing it), N rounds with a
#     revert on the owner in between: exactly one 0 (the owner's), the other
#     32774; a watcher polling the state folder never sees two overlays; a
#     write made after each failover reads back, the previous round's reads
#     as the replica again.
#  4. unmount of the owner hands the VM over: the standby owns it within
#     5 s with its state, status and data; the old owner mounted again stays a
#     standby (owner file names the new owner, no .img) for 6 s (stays_true:
#     three rescans).
#  5. a second mount on a mount point already mounted fails with exit 1 and
#     "already a mount point"; the first mount keeps serving.
# Every part proves the replica files' bytes never change. Nothing sleeps to
# synchronise: a hand-over is polled with a deadline (wait_until). On any
# failure the end of the daemons' shared log (--log) is printed.
#   RFS_OWNER_RACES=N   rounds of part 3 (default 100)
#   RFS_OWNER_SEED=S    replays part 2's writer
. "$(dirname "$0")/lib.sh"

CW=$(rfs_tool rfs_crashwriter)
RACES=${RFS_OWNER_RACES:-100}
SEED=${RFS_OWNER_SEED:-$(rfs_seed)}
R=$T/replica ST=$T/state M=$T/mnt M3=$T/m3 VM=vmw
HOST=$(hostname)
mkdir -p "$R/$VM"
random_disk 64 "$T/$VM.raw" "$R/$VM/sys.vhdx" vhdx -o subformat=dynamic
replica_before=$(replica_sums "$R")
IMG=$M/vms/$VM/sys.img IMG3=$M3/vms/$VM/sys.img
LOG=$T/replicafs.log

# Both daemons: the same store, the same state folder.
mount_on() { rfs_mount "$R" "$1" --state="$ST"; }
owner_of() { cat "$1/ctl/$VM/owner"; }
# owner_is MNT PID: MNT's owner file says "<host> PID\n" exactly.
owner_is() { [ "$(owner_of "$1" 2>/dev/null)" = "$HOST $2" ] && [ "$(wc -c <"$1/ctl/$VM/owner")" = $((${#HOST} + ${#2} + 2)) ]; }
has_img() { [ -e "$1/vms/$VM/sys.img" ]; }
no_img() { [ -z "$(ls -A "$1/vms/$VM")" ] && ! [ -e "$1/vms/$VM/sys.img" ]; }
# serves MNT PID: the daemon PID on MNT owns the VM and serves its disk.
serves() { owner_is "$1" "$2" && has_img "$1"; }
# standby MNT OWNER_PID: MNT shows OWNER_PID as the owner and no disk.
standby() { owner_is "$1" "$2" && no_img "$1"; }
noverlays() { overlays_of "$ST" "$VM" | wc -l; }
state_of() { cat "$1/ctl/$VM/state"; }
status_of() { cat "$1/ctl/$VM/status"; }
replica_same() { check_eq "$1: the replica files' bytes never changed" "$replica_before" "$(replica_sums "$R")"; }
# put AT FILE MNT: FILE's bytes at offset AT of MNT's disk, fsync'd.
put() { dd if="$2" of="$3/vms/$VM/sys.img" bs=4096 seek=$(($1 / 4096)) conv=notrunc,fsync status=none; }
# got AT LEN MNT: sha256 of LEN bytes at AT (4 KiB multiples) of MNT's disk.
got() { dd if="$3/vms/$VM/sys.img" bs=4096 skip=$(($1 / 4096)) count=$(($2 / 4096)) status=none | sha256sum | awk '{print $1}'; }
raw_at() { dd if="$T/$VM.raw" bs=4096 skip=$(($1 / 4096)) count=$(($2 / 4096)) status=none | sha256sum | awk '{print $1}'; }
keepme() { dd if="$1/vms/$VM/sys.img" bs=1 skip=20480 count=6 status=none; }
ctl_sizes_owner_ok() { [ "$(stat -c %s "$1/ctl/$VM/owner")" = "$(wc -c <"$1/ctl/$VM/owner")" ]; }

# --- 1. the repro -------------------------------------------------------------
echo "--- 1. two daemons, one store"
mount_on "$M"
mount_on "$M3"
PA=$(rfs_pid "$M") PB=$(rfs_pid "$M3")
echo "daemons: $M pid $PA, $M3 pid $PB, host $HOST"
check "two distinct daemons" test -n "$PA" -a -n "$PB" -a "$PA" != "$PB"
check_eq "owner on $M names itself" "$HOST $PA" "$(owner_of "$M")"
check_eq "owner on $M3 names $M's daemon" "$HOST $PA" "$(owner_of "$M3")"
check "owner file: st_size = its content, one line" ctl_sizes_owner_ok "$M3"
check ".img served on $M" has_img "$M"
check "no .img listed on $M3" no_img "$M3"
check_eq "state 3 on both" "3 Replicating/3 Replicating" "$(state_of "$M")/$(state_of "$M3")"

check "failover on $M -> 0" ctl "$VM" failover "$M"
check_eq "status on $M" "0 Completed with No Error" "$(status_of "$M")"
check_eq "failover on $M3 fails EBUSY" "EBUSY" "$(echo failover | ctl_raw "$VM" "$M3")"
check_eq "status on $M3: 32774" "32774 System is in use" "$(status_of "$M3")"
check_eq "owner on $M3 still names $M's daemon" "$HOST $PA" "$(owner_of "$M3")"
check_eq "owner on $M still names itself" "$HOST $PA" "$(owner_of "$M")"
check_eq "revert on $M3 fails EBUSY" "EBUSY" "$(echo revert | ctl_raw "$VM" "$M3")"
check_eq "status on $M3 after revert: 32774" "32774 System is in use" "$(status_of "$M3")"
check_eq "$M still 5 Recovered" "5 Recovered" "$(state_of "$M")"
check_eq "$M's state shown on $M3" "5 Recovered" "$(state_of "$M3")"
check_eq "status on $M unaffected by $M3's refusals" "0 Completed with No Error" "$(status_of "$M")"
check "no .img listed on $M3 after the failover" no_img "$M3"
check_eq "one overlay in the state folder" 1 "$(noverlays)"
printf KEEPME | dd of="$IMG" bs=1 seek=20480 conv=notrunc,fsync status=none
check_eq "KEEPME at 20480 reads back on $M" KEEPME "$(keepme "$M")"
check "unmount $M3" rfs_umount "$M3"
check "unmount $M" rfs_umount "$M"
mount_on "$M"
mount_on "$M3"
PA=$(rfs_pid "$M") PB=$(rfs_pid "$M3")
check "after remount: $M owns the VM" serves "$M" "$PA"
check "after remount: $M3 shows $M's daemon as owner, no .img" standby "$M3" "$PA"
check_eq "after remount: state 5 on $M" "5 Recovered" "$(state_of "$M")"
check_eq "after remount: state 5 on $M3" "5 Recovered" "$(state_of "$M3")"
check_eq "after remount: KEEPME reads back" KEEPME "$(keepme "$M")"
check_eq "after remount: one overlay" 1 "$(noverlays)"
replica_same "part 1"
fault "two daemons mount one store" "one owns each VM; the other shows its state and \`owner\` (\`<host> <pid>\`), lists no \`.img\`, refuses every command: write fails \`EBUSY\`, status \`32774 System is in use\`"

# --- 2. kill -9 of the owner while writing ---------------------------------------
echo "--- 2. kill -9 of the owner during parallel fsync'd writes: seed $SEED (replay: RFS_OWNER_SEED=$SEED)"
cp "$IMG" "$T/base"
kill_after=$((5 + RANDOM % 80))
echo "kill -9 of $PA after journal record $kill_after"
rc=0
"$CW" write --img "$IMG" --journal "$T/journal" --seed "$SEED" --threads 4 \
	--kill-pid "$PA" --kill-after "$kill_after" || rc=$?
t_kill=$(rfs_now_ms) # the kill is done: every writer saw it
check "writers stopped only by the kill" test "$rc" -eq 0
check "the owner died" wait_exit "$PA"
fusermount3 -u -z "$M" 2>/dev/null || umount -l "$M"
if wait_until 5 serves "$M3" "$PB"; then
	pass "the standby $M3 serves the VM $(ms_s "$WAITED") after the owner's death was seen ($(ms_s $(($(rfs_now_ms) - t_kill))) after the writers stopped; owner names pid $PB, .img there)"
else
	fail "the standby $M3 does not serve the VM $(ms_s "$WAITED") after the owner's death: owner '$(owner_of "$M3")', vms/$VM: '$(ls -A "$M3/vms/$VM")'"
fi
check_eq "state on the new owner" "5 Recovered" "$(state_of "$M3")"
check_eq "status on the new owner: the old owner's" "0 Completed with No Error" "$(status_of "$M3")"
check_eq ".img mode 0600 on the new owner" 600 "$(stat -c %a "$IMG3" 2>&1)"
rc=0
"$CW" verify --img "$IMG3" --journal "$T/journal" --seed "$SEED" --threads 4 --base "$T/base" \
	>"$T/verify.out" 2>&1 || rc=$?
cat "$T/verify.out"
check "every acknowledged write reads back through the new owner" test "$rc" -eq 0
check_eq "one overlay" 1 "$(noverlays)"
mount_on "$M"
PA=$(rfs_pid "$M")
check "the killed owner's mount point, mounted again, is a standby (owner: $PB, no .img)" standby "$M" "$PB"
check "the new owner still serves" serves "$M3" "$PB"
check_eq "state shown on the standby" "5 Recovered" "$(state_of "$M")"
replica_same "part 2"
fault "owner killed (\`kill -9\`) while writing" "a daemon that has the store mounted takes the VM over within 5 s, in state \`5 Recovered\`, with every synced write"

# --- 3. failover written to both daemons at the same instant -----------------------
echo "--- 3. $RACES racing failovers (owner $M3 pid $PB, standby $M pid $PA)"
# race CTL1 CTL2: write "failover" to both, at once; prints the two results
# (OK or the errno name). Each writer opens its control file, says it is
# ready, and blocks reading one pipe; closing the pipe wakes both. A third
# word says whether the two write(2) calls overlapped in time.
race() {
	python3 - "$@" <<'PY'
import errno, os, sys, time
go_r, go_w = os.pipe()
rd_r, rd_w = os.pipe()
res = []
kids = []
for path in sys.argv[1:3]:
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(go_w); os.close(rd_r); os.close(out_r)
        fd = os.open(path, os.O_WRONLY)
        os.write(rd_w, b'r')
        os.read(go_r, 1)  # EOF when the parent closes go_w
        t0 = time.monotonic_ns()
        try:
            os.write(fd, b'failover\n')
            r = 'OK'
        except OSError as e:
            r = errno.errorcode.get(e.errno, str(e.errno))
        os.write(out_w, ('%s %d %d' % (r, t0, time.monotonic_ns())).encode())
        os._exit(0)
    os.close(out_w)
    kids.append((pid, out_r))
os.close(go_r); os.close(rd_w)
ready = b''
while len(ready) < 2:
    b = os.read(rd_r, 2)
    if not b:
        sys.exit('a writer died before the start')
    ready += b
os.close(go_w)  # go
span = []
for pid, out_r in kids:
    r = os.read(out_r, 128).decode().split() or ['DIED', '0', '0']
    res.append(r[0])
    span.append((int(r[1]), int(r[2])))
    os.waitpid(pid, 0)
overlap = span[0][0] < span[1][1] and span[1][0] < span[0][1]
print(' '.join(res), 'overlap' if overlap else 'apart')
PY
}
# Watch the state folder for the whole part: the most *.overlay files ever
# seen at once (polling: a check, not synchronisation).
python3 - "$ST/$VM" "$T/watch.stop" >"$T/watch.out" <<'PY' &
import os, sys, time
d, stop = sys.argv[1], sys.argv[2]
most = samples = 0
while not os.path.exists(stop) and os.path.isdir(os.path.dirname(stop)):
    try:
        n = sum(1 for f in os.listdir(d) if f.endswith('.overlay'))
    except OSError:
        n = 0
    most = max(most, n); samples += 1
    time.sleep(0.002)
print(most, samples)
PY
WATCH=$!
check "revert on the owner before the races" ctl "$VM" revert "$M3"
head -c 4096 /dev/urandom >"$T/chunk"
chunk=$(sha "$T/chunk")
declare -A OUT=()
RBAD=0 OVERLAP=0 prev=
for i in $(seq 1 "$RACES"); do
	bad=0
	r1= r2= how=
	read -r r1 r2 how < <(race "$M3/ctl/$VM/control" "$M/ctl/$VM/control") || true
	res="$r1 $r2"
	[ "$how" != overlap ] || OVERLAP=$((OVERLAP + 1))
	OUT["$res"]=$((${OUT["$res"]:-0} + 1))
	[ "$res" = "OK EBUSY" ] || { fail "race $i: owner/standby failover: expected 'OK EBUSY', got '$res'"; bad=1; }
	st=$(status_of "$M3")/$(status_of "$M") || true
	[ "$st" = "0 Completed with No Error/32774 System is in use" ] ||
		{ fail "race $i: owner/standby status: '$st'"; bad=1; }
	st=$(state_of "$M3")/$(state_of "$M") || true
	[ "$st" = "5 Recovered/5 Recovered" ] || { fail "race $i: owner/standby state: '$st'"; bad=1; }
	n=$(noverlays)
	[ "$n" = 1 ] || { fail "race $i: $n overlays after the failover"; bad=1; }
	at=$(((i % 16) * 4 * 1048576 + 1048576))
	if [ -n "$prev" ] && [ "$(got "$prev" 4096 "$M3")" != "$(raw_at "$prev" 4096)" ]; then
		fail "race $i: the previous round's write at $prev is still there after revert + failover"; bad=1
	fi
	if ! put "$at" "$T/chunk" "$M3" || [ "$(got "$at" 4096 "$M3")" != "$chunk" ]; then
		fail "race $i: the write at $at after the failover does not read back"; bad=1
	fi
	prev=$at
	standby "$M" "$PB" || { fail "race $i: $M is not a standby of $PB: owner '$(owner_of "$M")', vms: '$(ls -A "$M/vms/$VM")'"; bad=1; }
	r=$(echo revert | ctl_raw "$VM" "$M3")
	[ "$r" = OK ] || { fail "race $i: revert on the owner: $r"; bad=1; }
	n=$(noverlays)
	[ "$n" = 0 ] || { fail "race $i: $n overlays after the revert"; bad=1; }
	RBAD=$((RBAD + bad))
	[ "$RBAD" -lt 5 ] || { fail "race: stopping after 5 bad rounds"; break; }
done
touch "$T/watch.stop"
wait "$WATCH"
most=none samples=0
read -r most samples <"$T/watch.out" || true
for k in "${!OUT[@]}"; do echo "race outcome (owner standby): '$k' ${OUT[$k]} times"; done
check_eq "races: every round gave the owner 0 and the standby 32774" "$RACES" "${OUT["OK EBUSY"]:-0}"
check_eq "races: no bad round" 0 "$RBAD"
# the two writes really were in the daemons at the same time (their
# write(2) calls overlapped in time) in some rounds: the test did race
check "races: the two writes overlapped in time in $OVERLAP of $RACES rounds" test "$OVERLAP" -gt 0
check_eq "races: the state folder never held two overlays ($samples samples)" 1 "$most"
replica_same "part 3"
fault "\`failover\` written to two daemons of one store at the same instant" "the owner's succeeds (\`0\`), the other's is refused with \`32774\`; never two overlays"

# --- 4. unmount of the owner hands the VM over ---------------------------------------
echo "--- 4. unmount of the owner $M3 (pid $PB)"
check "failover on the owner" ctl "$VM" failover "$M3"
head -c 65536 /dev/urandom >"$T/handover"
handover=$(sha "$T/handover")
put 8388608 "$T/handover" "$M3"
check "unmount the owner $M3" rfs_umount "$M3"
if wait_until 5 serves "$M" "$PA"; then
	pass "the standby $M serves the VM $(ms_s "$WAITED") after the owner's daemon exited"
else
	fail "the standby $M does not serve the VM $(ms_s "$WAITED") after the owner's unmount: owner '$(owner_of "$M")', vms/$VM: '$(ls -A "$M/vms/$VM")'"
fi
check_eq "state kept" "5 Recovered" "$(state_of "$M")"
check_eq "status: the old owner's (its failover), not the standby's own refusals" \
	"0 Completed with No Error" "$(status_of "$M")"
check_eq "the old owner's synced write reads back" "$handover" "$(got 8388608 65536 "$M")"
check_eq "one overlay" 1 "$(noverlays)"
mount_on "$M3"
PB=$(rfs_pid "$M3")
check "the old owner, mounted again, is a standby (owner: $PA, no .img)" standby "$M3" "$PA"
check_eq "a command on it is refused" "EBUSY" "$(echo revert | ctl_raw "$VM" "$M3")"
both_stay() { standby "$M3" "$PA" && serves "$M" "$PA"; }
if stays_true 6 both_stay; then
	pass "it does not take the VM back ($(ms_s "$STAYED") watched)"
else
	fail "after $(ms_s "$STAYED"): $M3 owner '$(owner_of "$M3")' vms '$(ls -A "$M3/vms/$VM")'; $M owner '$(owner_of "$M")'"
fi
check_eq "state on both" "5 Recovered/5 Recovered" "$(state_of "$M")/$(state_of "$M3")"
replica_same "part 4"
fault "owner unmounted while another daemon has the store mounted" "the other takes the VM over within 5 s with its state and synced writes; the old owner, mounted again, does not take it back"

# --- 5. a second mount on a mount point ---------------------------------------------
echo "--- 5. a second daemon on a mount point already mounted"
for mp in "$M" "$M3"; do
	rc=0
	out=$("$REPLICAFS" --log="$LOG" --state="$ST" "$R" "$mp" 2>&1) || rc=$?
	check_eq "mount on $mp again: exit 1" 1 "$rc"
	check "... says 'already a mount point' ($out)" grep -q "already a mount point" <<<"$out"
	check_eq "... one daemon on $mp" 1 "$(pgrep -fc "^$REPLICAFS .*$mp\$")"
done
check_eq "the daemon on $M is the same" "$PA" "$(rfs_pid "$M")"
check "$M still serves the VM" serves "$M" "$PA"
check "$M3 still a standby" standby "$M3" "$PA"
check_eq "the data still reads back on $M" "$handover" "$(got 8388608 65536 "$M")"
put 12582912 "$T/chunk" "$M"
check_eq "a new write on $M reads back" "$chunk" "$(got 12582912 4096 "$M")"
check "unmount $M3" rfs_umount "$M3"
check "unmount $M" rfs_umount "$M"
replica_same "part 5"
fault "a second daemon mounted on a mount point that is already a mount" "refused: exit status 1, \`already a mount point\`; the first mount keeps serving"

if [ "$NFAIL" -gt 0 ]; then
	echo "--- daemon log (last 150 lines)"
	tail -n 150 "$LOG"
fi
finish
