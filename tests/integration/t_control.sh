#!/usr/bin/env bash
# SPEC §3, §5, §6: bad input and concurrency on the control files.
# Random bytes, writes at and beyond the 4 KiB limit, 1 MiB and 8 MiB writes,
# then storms of concurrent writers (separate processes, xargs -P) with a mix
# of valid and invalid commands, to one VM and to several at once, with
# readers of state/status alongside. Checked: the daemon stays up, every
# write gets success or the errno its command calls for, status agrees with
# the errno, the final state is consistent with the successes counted
# (failover and revert must alternate), VMs do not block each other, and an
# .img held open on one VM does not affect another VM's revert.
. "$(dirname "$0")/lib.sh"

R=$T/replica M=$T/mnt S=$T/state P=$T/payloads
mkdir -p "$P" "$T/res"
VMS="vm1 vm2 vm3 vm4"
for vm in $VMS; do
	mkdir -p "$R/$vm"
	random_disk 2 "$T/$vm.raw" "$R/$vm/disk.vhd" vpc -o subformat=dynamic,force_size=on
done
replica_before=$(replica_sums "$R")

OK0="0 Completed with No Error"
ST3="3 Replicating" ST5="5 Recovered"
# Every line status may hold (SPEC §6), and the errno of each code.
cat >"$T/status.lines" <<'EOF'
0 Completed with No Error
4096 Method Parameters Checked - Job Started
32768 Failed
32769 Access Denied
32770 Not Supported
32771 Status is unknown
32772 Timeout
32773 Invalid parameter
32774 System is in use
32775 Invalid state for this operation
32776 Incorrect data type
32777 System is not available
32778 Out of memory
32779 File not found
EOF
declare -A ERRNO_OF=([0]=OK [4096]=OK [32768]="EIO ENOSPC" [32769]=EACCES [32770]=EOPNOTSUPP
	[32771]=EIO [32772]=ETIMEDOUT [32773]=EINVAL [32774]=EBUSY [32775]=EPERM [32776]=EINVAL
	[32777]=ENODEV [32778]=ENOMEM [32779]=ENOENT)

status_of() { cat "$M/ctl/$1/status"; }
state_of() { cat "$M/ctl/$1/state"; }
valid_status() { grep -qxF -f "$T/status.lines" <<<"$1"; }
daemon_up() { local pid; pid=$(rfs_pid "$M") && [ -n "$pid" ] && alive "$pid"; }
# agrees RESULT STATUS: the write's result is the errno of the status's code.
agrees() { valid_status "$2" && [[ " ${ERRNO_OF[${2%% *}]} " == *" $1 "* ]]; }

# single VM FILE DESC: one write of FILE; the daemon is up, status is a valid
# line whose errno is what the write got, and nothing moved.
single() {
	local vm=$1 f=$2 d=$3 state got st
	state=$(state_of "$vm")
	got=$(ctl_raw "$vm" "$M" <"$f")
	st=$(status_of "$vm")
	check "$d: write got '$got', status '$st': they agree" agrees "$got" "$st"
	check "$d: daemon still up" daemon_up
	check_eq "$d: state unchanged" "$state" "$(state_of "$vm")"
	check "$d: st_size of state/status = length read" ctl_sizes_ok "$vm" "$M"
}

rfs_mount "$R" "$M" --state="$S"

# --- garbage ------------------------------------------------------------------
for i in 1 2 3 4 5 6 7 8; do
	head -c 4096 /dev/urandom >"$P/garbage"
	single vm1 "$P/garbage" "4096 random bytes #$i"
done
head -c 4096 /dev/urandom >"$P/garbage"
rc=0; err=$(cat "$P/garbage" 2>&1 >"$M/ctl/vm1/control") || rc=$?
check "random bytes through the shell fail ($err)" test "$rc" -ne 0
check "... and status agrees" agrees EINVAL "$(status_of vm1)"
{ printf 'failover '; head -c 2000 /dev/urandom; } >"$P/verbgarbage"
single vm1 "$P/verbgarbage" "failover + random bytes"
check_eq "failover + random bytes: not a failover" "$ST3" "$(state_of vm1)"
head -c 3000 /dev/urandom | base64 -w0 >"$P/b64"
check_eq "4000 characters of base64: 32770 (text, unknown verb)" "EOPNOTSUPP" "$(ctl_raw vm1 "$M" <"$P/b64")"
check_eq "... status" "32770 Not Supported" "$(status_of vm1)"
printf '\xed\xa0\x80\n' >"$P/surrogate"
check_eq "a UTF-16 surrogate in UTF-8 is not text" "EINVAL" "$(ctl_raw vm1 "$M" <"$P/surrogate")"
check_eq "... status" "32776 Incorrect data type" "$(status_of vm1)"
printf 'r\xc3\xa9vert\n' >"$P/accent"
check_eq "valid UTF-8, unknown verb (révert)" "EOPNOTSUPP" "$(ctl_raw vm1 "$M" <"$P/accent")"

# --- the 4 KiB limit and huge writes ------------------------------------------
{ printf 'failover'; head -c $((4096 - 8)) /dev/zero | tr '\0' ' '; } >"$P/at4k"
{ printf 'failover'; head -c $((4097 - 8)) /dev/zero | tr '\0' ' '; } >"$P/over4k"
check_eq "failover padded with spaces to 4097 bytes: EINVAL" "EINVAL" "$(ctl_raw vm1 "$M" <"$P/over4k")"
check_eq "... status 32776" "32776 Incorrect data type" "$(status_of vm1)"
check_eq "... state 3" "$ST3" "$(state_of vm1)"
check_eq "failover padded with spaces to exactly 4096 bytes: accepted" "OK" "$(ctl_raw vm1 "$M" <"$P/at4k")"
check_eq "... status 0" "$OK0" "$(status_of vm1)"
check_eq "... state 5" "$ST5" "$(state_of vm1)"
head -c 1M /dev/urandom >"$T/pat"
dd if="$T/pat" of="$M/vms/vm1/disk.img" bs=1M count=1 conv=notrunc,fsync status=none
pat=$(sha "$T/pat")
for size in 1M 8M; do
	head -c "$size" /dev/zero | tr '\0' a >"$P/huge"
	check_eq "$size of 'a' in one write(2): EINVAL" "EINVAL" "$(ctl_raw vm1 "$M" <"$P/huge")"
	check_eq "$size of 'a': status 32776" "32776 Incorrect data type" "$(status_of vm1)"
	{ printf 'revert'; head -c "$size" /dev/zero | tr '\0' ' '; } >"$P/huge"
	check_eq "revert + $size of spaces in one write(2): EINVAL" "EINVAL" "$(ctl_raw vm1 "$M" <"$P/huge")"
	check_eq "revert + $size of spaces: not reverted" "$ST5" "$(state_of vm1)"
	head -c "$size" /dev/urandom >"$P/huge"
	single vm1 "$P/huge" "$size of random bytes"
	rc=0; err=$(dd if="$P/huge" of="$M/ctl/vm1/control" bs="$size" count=1 2>&1) || rc=$?
	check "$size of random bytes by dd bs=$size fails" test "$rc" -ne 0
	check "... daemon still up" daemon_up
done
check_eq "huge writes: overlay data intact" "$pat" "$(head -c 1M "$M/vms/vm1/disk.img" | sha256sum | awk '{print $1}')"
check_eq "huge writes: state still 5" "$ST5" "$(state_of vm1)"

# --- one fd, several commands: one command per write(2) ----------------------
exec 4>"$M/ctl/vm1/control"
rc=0; { echo revert >&4 && echo failover >&4 && echo revert >&4; } || rc=$?
exec 4>&-
check "revert, failover, revert through one open fd" test "$rc" -eq 0
check_eq "... state 3" "$ST3" "$(state_of vm1)"
check_eq "... no overlay left" "" "$(overlays_of "$S" vm1)"

# --- the tree's control files cannot be misused -----------------------------
check "control cannot be read" bash -c "! cat '$M/ctl/vm1/control' 2>/dev/null"
check "status cannot be written" bash -c "! echo revert 2>/dev/null >'$M/ctl/vm1/status'"
check "state cannot be written" bash -c "! echo 5 2>/dev/null >'$M/ctl/vm1/state'"
check "control cannot be removed" bash -c "! rm -f '$M/ctl/vm1/control' 2>/dev/null"
check "no new file next to control" bash -c "! echo failover 2>/dev/null >'$M/ctl/vm1/control2'"
check "daemon still up after misuse" daemon_up
check_eq "state unchanged after misuse" "$ST3" "$(state_of vm1)"

# --- a read through one open file is one consistent line ---------------------
# cat reads until EOF: if the content changes between its read(2)s, the
# pieces must not be glued together ("3 Re" + "covered\n" of another state).
torn() {
	python3 - "$M/ctl/$1/$2" "$M/ctl/$1/control" "$3" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
a = os.read(fd, 4)
c = os.open(sys.argv[2], os.O_WRONLY)
try:
    os.write(c, sys.argv[3].encode())
except OSError:
    pass
os.close(c)
rest = b""
while True:
    b = os.read(fd, 4096)
    if not b:
        break
    rest += b
print(repr(a + rest))
PY
}
for f in state status; do
	ctl_raw vm1 "$M" <<<"reboot" >/dev/null # status "32770 Not Supported", state 3
	before="$(cat "$M/ctl/vm1/$f")"
	got=$(torn vm1 "$f" "failover")
	after="$(cat "$M/ctl/vm1/$f")"
	check "$f read in pieces across a failover is one whole line (got $got)" \
		test "$got" = "$(python3 -c 'import sys; print(repr((sys.argv[1] + "\n").encode()))' "$before")" -o \
		"$got" = "$(python3 -c 'import sys; print(repr((sys.argv[1] + "\n").encode()))' "$after")"
	echo revert >"$M/ctl/vm1/control"
done

# --- concurrent writers ------------------------------------------------------
printf 'failover\n' >"$P/failover"
printf 'InitiateFailover' >"$P/initiate"
printf 'revert\n' >"$P/revert"
printf '  REVERTFAILOVER \r\n' >"$P/revertfailover"
printf 'reboot\n' >"$P/reboot"
printf 'revert now\n' >"$P/revertnow"
printf 'fail\0over\n' >"$P/nul"
printf '\xff\xfe' >"$P/badutf8"
printf '\n' >"$P/empty"
head -c 5000 /dev/zero | tr '\0' a >"$P/long"
head -c 4096 /dev/urandom >"$P/garbage"
# What each kind of write may get: it depends on the order only for the verbs.
declare -A MAY=([failover]="OK EPERM" [initiate]="OK EPERM" [revert]="OK EPERM"
	[revertfailover]="OK EPERM" [reboot]=EOPNOTSUPP [revertnow]=EINVAL [nul]=EINVAL
	[badutf8]=EINVAL [empty]=EOPNOTSUPP [long]=EINVAL [garbage]="EINVAL EOPNOTSUPP")
KINDS="failover initiate revert revertfailover reboot revertnow nul badutf8 empty long garbage"

# One job: "N VM KIND" -> $T/res/N holds "VM KIND RESULT". KIND "read" reads
# state and status 50 times and reports any line that is not a valid one.
cat >"$T/job.sh" <<EOF
set -u
$(declare -f raw_write)
n=\$1 vm=\$2 kind=\$3
if [ "\$kind" = read ]; then
	r=ok
	for i in \$(seq 50); do
		s=\$(cat "$M/ctl/\$vm/state") t=\$(cat "$M/ctl/\$vm/status")
		case "\$s" in "$ST3"|"$ST5") ;; *) r="bad-state:\$s" ;; esac
		grep -qxF -f "$T/status.lines" <<<"\$t" || r="bad-status:\$t"
	done
	echo "\$vm read \$(printf %q "\$r")" >"$T/res/\$n"
else
	echo "\$vm \$kind \$(raw_write "$M/ctl/\$vm/control" <"$P/\$kind")" >"$T/res/\$n"
fi
EOF

# storm NAME VMS...: 50 writers (a mix, each kind several times) + 8 readers
# spread over VMS, all at once; then check every result and each VM.
storm() {
	local name=$1 n=0 k vm res bad=0 badr=0 line v kind r nvm
	shift
	rm -f "$T/res"/*
	nvm=$#
	local vms=("$@")
	: >"$T/jobs"
	for ((i = 0; i < 50; i++)); do
		set -- $KINDS
		k=$(( (i * 7) % $# + 1 ))
		echo "$i ${vms[$((i % nvm))]} ${!k}" >>"$T/jobs"
	done
	for ((i = 50; i < 58; i++)); do echo "$i ${vms[$((i % nvm))]} read" >>"$T/jobs"; done
	# Each VM has a status before: the readers must never see it empty or torn.
	for vm in "${vms[@]}"; do ctl_raw "$vm" "$M" <"$P/reboot" >/dev/null; done
	xargs -P 58 -L 1 bash "$T/job.sh" <"$T/jobs"
	check_eq "$name: every job reported" "58" "$(ls "$T/res" | wc -l)"
	check "$name: daemon still up" daemon_up
	while read -r v kind r; do
		if [ "$kind" = read ]; then
			[ "$r" = ok ] || { badr=$((badr + 1)); echo "  $v read: $r"; }
		elif [[ " ${MAY[$kind]} " != *" $r "* ]]; then
			bad=$((bad + 1)); echo "  $v $kind got $r, may get: ${MAY[$kind]}"
		fi
	done < <(cat "$T/res"/*)
	check_eq "$name: every write got success or its documented errno" 0 "$bad"
	check_eq "$name: every cat of state/status during the storm gave one valid line" 0 "$badr"
	for vm in "${vms[@]}"; do
		local f rv st
		f=$(cat "$T/res"/* | awk -v v="$vm" '$1 == v && ($2 == "failover" || $2 == "initiate") && $3 == "OK"' | wc -l)
		rv=$(cat "$T/res"/* | awk -v v="$vm" '$1 == v && ($2 == "revert" || $2 == "revertfailover") && $3 == "OK"' | wc -l)
		st=$(state_of "$vm")
		# From state 3, successful failovers and reverts alternate.
		if [ "$st" = "$ST3" ]; then
			check_eq "$name: $vm state 3 after $f failovers, $rv reverts succeeded" "$f" "$rv"
			check_eq "$name: $vm in state 3 has no overlay" "" "$(overlays_of "$S" "$vm")"
			check_eq "$name: $vm .img read-only" "400" "$(stat -c %a "$M/vms/$vm/disk.img")"
		elif [ "$st" = "$ST5" ]; then
			check_eq "$name: $vm state 5 after $f failovers, $rv reverts succeeded" "$((rv + 1))" "$f"
			check "$name: $vm in state 5 has its overlay" test -n "$(overlays_of "$S" "$vm")"
			check_eq "$name: $vm .img writable" "600" "$(stat -c %a "$M/vms/$vm/disk.img")"
		else
			fail "$name: $vm final state '$st' is neither 3 nor 5"
		fi
		check "$name: $vm status is a valid line ($(status_of "$vm"))" valid_status "$(status_of "$vm")"
		check "$name: $vm st_size of state/status = length read" ctl_sizes_ok "$vm" "$M"
	done
}

storm "one VM" vm1
echo revert >"$M/ctl/vm1/control" 2>/dev/null || true
check_eq "after the storm, revert leaves state 3" "$ST3" "$(state_of vm1)"
check "after the storm, vm1 .img is the replica" test "$(sha "$M/vms/vm1/disk.img")" = "$(sha "$T/vm1.raw")"
storm "four VMs" vm1 vm2 vm3 vm4
for vm in $VMS; do echo revert >"$M/ctl/$vm/control" 2>/dev/null || true; done
storm "one VM again" vm2

# --- VMs do not block each other ---------------------------------------------
for vm in $VMS; do echo revert >"$M/ctl/$vm/control" 2>/dev/null || true; done
echo failover >"$M/ctl/vm1/control"
dd if="$T/pat" of="$M/vms/vm1/disk.img" bs=1M count=1 conv=notrunc,fsync status=none
exec 3<"$M/vms/vm1/disk.img"
# vm1's revert waits for its .img to be closed, and is refused; meanwhile
# vm2 and vm3 run whole cycles, each command succeeding.
echo revert | ctl_raw vm1 "$M" >"$T/vm1.revert" &
bg=$!
# Cycles run until vm1's revert has returned (at least one, at most 40);
# how many ran is reported, not asserted (that would be a timing check).
cycles=0 vm2bad=0
while [ "$cycles" -eq 0 ] || { alive "$bg" && [ "$cycles" -lt 40 ]; }; do
	for vm in vm2 vm3; do
		[ "$(echo failover | ctl_raw "$vm" "$M")" = OK ] || vm2bad=$((vm2bad + 1))
		echo "$vm $cycles" | dd of="$M/vms/$vm/disk.img" conv=notrunc status=none
		[ "$(echo revert | ctl_raw "$vm" "$M")" = OK ] || vm2bad=$((vm2bad + 1))
	done
	cycles=$((cycles + 1))
done
wait "$bg"
check_eq "vm2/vm3: every failover and revert succeeded while vm1 was busy" 0 "$vm2bad"
echo "info: $cycles vm2+vm3 cycles ran while vm1's revert was pending"
check_eq "vm1: revert with its .img open is EBUSY" "EBUSY" "$(cat "$T/vm1.revert")"
check_eq "vm1: status 32774" "32774 System is in use" "$(status_of vm1)"
check_eq "vm1: state still 5" "$ST5" "$(state_of vm1)"
check_eq "vm2: state 3, its reverts done" "$ST3" "$(state_of vm2)"
check_eq "vm2: .img is its replica again" "$(sha "$T/vm2.raw")" "$(sha "$M/vms/vm2/disk.img")"
check_eq "vm1: overlay data intact" "$pat" "$(head -c 1M "$M/vms/vm1/disk.img" | sha256sum | awk '{print $1}')"
# An .img of vm1 held open does not affect a revert of vm2.
check_eq "vm2: failover while vm1's .img is open" "OK" "$(echo failover | ctl_raw vm2 "$M")"
exec 5<"$M/vms/vm2/disk.img"
check_eq "vm2: revert refused while vm2's own .img is open" "EBUSY" "$(echo revert | ctl_raw vm2 "$M")"
exec 5<&-
check_eq "vm2: revert with only vm1's .img open" "OK" "$(echo revert | ctl_raw vm2 "$M")"
check_eq "vm2: status 0" "$OK0" "$(status_of vm2)"
exec 3<&-
check_eq "vm1: revert once its .img is closed" "OK" "$(echo revert | ctl_raw vm1 "$M")"
check_eq "vm1: state 3" "$ST3" "$(state_of vm1)"
check "daemon still up at the end" daemon_up

rfs_umount "$M"
check_eq "replica files never changed" "$replica_before" "$(replica_sums "$R")"

# What this test proved, for docs/FAULTS.md (recorded only if every check passed).
fault "4 KiB of random bytes written to \`control\`" "a documented errno and matching status; state unchanged; daemon up"
fault "1 MiB and 8 MiB writes to \`control\`" "write fails \`EINVAL\` (32776), overlay data intact"
fault "50 processes writing valid and invalid commands at once" "each write succeeds or gets its documented errno; final state consistent with the successes; status never a torn line"
fault "reading \`control\`, writing \`status\`/\`state\`, \`rm control\`" "refused (\`EACCES\`/\`EPERM\`); daemon up"

finish
