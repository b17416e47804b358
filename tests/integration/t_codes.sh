#!/usr/bin/env bash
# SPEC §3, §5, §6: every result code that §6 gives a situation for is
# reachable through real writes to ctl/<vm>/control, and each refusal is
# checked three ways: the write(2) fails with the table's errno (one write
# by python, the errno name compared; then once more through the shell,
# whose error text is compared), status reads exactly "<code> <name>", and
# nothing changed (state, and the overlay's data where there is one).
# Plus: aliases, case, white space, > and >>; status empty before the first
# command and surviving remounts; st_size of state/status = their length;
# cat, less and cp read them.
. "$(dirname "$0")/lib.sh"

R=$T/replica M=$T/mnt S=$T/state
mkdir -p "$R/vm1" "$R/vm2" "$R/gone" "$R/never" "$R/bad" "$R/orphan" "$S"
random_disk 8 "$T/vm1.raw" "$R/vm1/sys.vhd" vpc -o subformat=dynamic,force_size=on
random_disk 4 "$T/vm2.raw" "$R/vm2/data.vhdx" vhdx
random_disk 1 "$T/small.raw" "$R/gone/disk.vhd" vpc -o subformat=dynamic,force_size=on
cp "$R/gone/disk.vhd" "$T/gone-disk.vhd"
qemu-img convert -q -f raw -O vpc -o subformat=dynamic,force_size=on "$T/small.raw" "$R/never/disk.vhd"
head -c 1M /dev/urandom >"$R/bad/junk.vhdx"                  # not an image: state 8
unpack_fixture ntfs-differential.vhd "$R/orphan"             # its parent is missing: state 8
# The state folder on its own small file system, to run it out of space.
mount -t tmpfs -o size=16M,mode=0700 rfs-codes-state "$S"
chmod 711 "$T" # other users must reach the mount point (allow_other section)

IMG=$M/vms/vm1/sys.img
IMG2=$M/vms/vm2/data.img
OK0="0 Completed with No Error"
ST3="3 Replicating" ST5="5 Recovered" ST6="6 Committed" ST8="8 Critical"
declare -A STRERR=(
	[EIO]="Input/output error" [ENOSPC]="No space left on device"
	[EACCES]="Permission denied" [EOPNOTSUPP]="Operation not supported"
	[EINVAL]="Invalid argument" [EBUSY]="Device or resource busy"
	[EPERM]="Operation not permitted" [ENODEV]="No such device"
	[ENOENT]="No such file or directory"
)

status_of() { cat "$M/ctl/$1/status"; }
state_of() { cat "$M/ctl/$1/state"; }
head1m() { head -c 1M "$1" | sha256sum | awk '{print $1}'; }
# payload FMT: the bytes of printf FMT into $T/payload.
payload() { printf "$1" >"$T/payload"; }

# The known pattern written into a VM's overlay (PAT[vm] = sha of the first
# MiB of its .img); checked after every refused command of that VM.
declare -A PAT=()
declare -A IMGOF=([vm1]=$IMG [vm2]=$IMG2)
intact() {
	if [ -n "${PAT[$1]:-}" ]; then
		check_eq "$2: overlay data intact" "${PAT[$1]}" "$(head1m "${IMGOF[$1]}")"
	fi
}

# shell_says RC ERRTEXT ERRNO: the shell-level write failed with ERRNO's text.
shell_says() { [ "$1" -ne 0 ] && grep -qF "${STRERR[$3]}" <<<"$2"; }
# last_line TEXT: the error line of a tool's output (dd prints its counts too).
last_line() { grep -v 'records\|copied' <<<"$1" | tail -1; }

# refused VM ERRNO STATUS STATE DESC [trunc|append]: $T/payload sent as one
# write(2) is refused with ERRNO, status is STATUS, state still STATE, the
# overlay pattern intact; then the same bytes through the shell (cat >) are
# refused the same way (a refused command changed nothing, so it still is).
refused() {
	local vm=$1 e=$2 st=$3 state=$4 d=$5 mode=${6:-} got err rc=0
	got=$(ctl_raw "$vm" "$M" "$mode" <"$T/payload")
	check_eq "$d: write(2) fails with $e" "$e" "$got"
	check_eq "$d: status" "$st" "$(status_of "$vm")"
	check_eq "$d: state unchanged" "$state" "$(state_of "$vm")"
	check "$d: st_size of state/status = length read" ctl_sizes_ok "$vm" "$M"
	intact "$vm" "$d"
	err=$(cat "$T/payload" 2>&1 >"$M/ctl/$vm/control") || rc=$?
	check "$d: via the shell: '${STRERR[$e]}' ($err)" shell_says "$rc" "$err" "$e"
	check_eq "$d: via the shell: status" "$st" "$(status_of "$vm")"
	check_eq "$d: via the shell: state unchanged" "$state" "$(state_of "$vm")"
	intact "$vm" "$d (shell)"
}

# accepted VM STATE DESC [trunc|append]: $T/payload as one write(2) succeeds
# (returns its byte count), status 0, state STATE.
accepted() {
	local vm=$1 state=$2 d=$3 mode=${4:-}
	check_eq "$d: write(2) succeeds" "OK" "$(ctl_raw "$vm" "$M" "$mode" <"$T/payload")"
	check_eq "$d: status" "$OK0" "$(status_of "$vm")"
	check_eq "$d: state" "$state" "$(state_of "$vm")"
	check "$d: st_size of state/status = length read" ctl_sizes_ok "$vm" "$M"
}

rfs_mount "$R" "$M" --state="$S" -o allow_other

# accepted_job VM DESC: $T/payload (a commit) as one write(2) succeeds at
# once with status 4096; the job then ends: status 0, state 6 (SPEC §10).
accepted_job() {
	local vm=$1 d=$2
	check_eq "$d: write(2) succeeds" "OK" "$(ctl_raw "$vm" "$M" <"$T/payload")"
	local st; st=$(status_of "$vm")
	# 4096 until the job ends (a small disk's job may already have ended)
	check "$d: status at once: 4096 or the job's 0 ($st)" \
		test "$st" = "4096 Method Parameters Checked - Job Started" -o "$st" = "$OK0"
	check "$d: the job ends" wait_until 120 job_done "$vm" "$M"
	check_eq "$d: status once done" "$OK0" "$(status_of "$vm")"
	check_eq "$d: state" "$ST6" "$(state_of "$vm")"
	check "$d: st_size of state/status = length read" ctl_sizes_ok "$vm" "$M"
}

# --- before the first command ---------------------------------------------
for vm in vm1 vm2 gone never; do
	check_eq "$vm: status empty before the first command" "" "$(status_of "$vm")"
	check_eq "$vm: status st_size 0 before the first command" "0" "$(stat -c %s "$M/ctl/$vm/status")"
	check_eq "$vm: state 3" "$ST3" "$(state_of "$vm")"
	check "$vm: st_size of state/status = length read" ctl_sizes_ok "$vm" "$M"
done
for vm in bad orphan; do
	check_eq "$vm: state 8" "$ST8" "$(state_of "$vm")"
	check_eq "$vm: no .img for a broken disk" "" "$(ls "$M/vms/$vm")"
done
cp "$M/ctl/vm1/status" "$T/status.copy"
check_eq "cp of an empty status is empty" "0" "$(stat -c %s "$T/status.copy")"
check_eq "less reads state" "$ST3" "$(less "$M/ctl/vm1/state")"

# --- 0: verbs, aliases, case, white space, > and >> --------------------------
rc=0; err=$(echo failover 2>&1 >"$M/ctl/vm1/control") || rc=$?
check "echo failover > control succeeds ($err)" test "$rc" -eq 0 -a -z "$err"
check_eq "failover: status" "$OK0" "$(status_of vm1)"
check_eq "failover: state 5" "$ST5" "$(state_of vm1)"
check "failover: st_size of state/status = length read" ctl_sizes_ok vm1 "$M"
check_eq "failover: .img writable (0600)" "600" "$(stat -c %a "$IMG")"
check_eq "failover: vm2 untouched" "$ST3" "$(state_of vm2)"
rc=0; err=$(printf '  ReVeRt \r\n' 2>&1 >>"$M/ctl/vm1/control") || rc=$?
check "printf '  ReVeRt \\r\\n' >> control succeeds ($err)" test "$rc" -eq 0 -a -z "$err"
check_eq "ReVeRt: status" "$OK0" "$(status_of vm1)"
check_eq "ReVeRt: state 3" "$ST3" "$(state_of vm1)"
check_eq "ReVeRt: .img read-only again (0400)" "400" "$(stat -c %a "$IMG")"
payload 'iNiTiAtEfAiLoVeR'
accepted vm1 "$ST5" "InitiateFailover mixed case, no newline, O_TRUNC" trunc
payload '\t REVERTFAILOVER \n\n'
accepted vm1 "$ST3" "RevertFailover upper case, tabs, newlines, O_APPEND" append
payload 'Failover\n'
accepted vm1 "$ST5" "Failover"
check "no overlay byte from before: .img is the replica" test "$(sha "$IMG")" = "$(sha "$T/vm1.raw")"
cp "$M/ctl/vm1/status" "$T/status.copy"
check_eq "cp copies status" "$OK0" "$(cat "$T/status.copy")"
check_eq "less reads status" "$OK0" "$(less "$M/ctl/vm1/status")"
check_eq "less reads state" "$ST5" "$(less "$M/ctl/vm1/state")"

head -c 1M /dev/urandom >"$T/pat1"
dd if="$T/pat1" of="$IMG" bs=1M count=1 conv=notrunc,fsync status=none
PAT[vm1]=$(sha "$T/pat1")
check_eq "pattern written to the overlay reads back" "${PAT[vm1]}" "$(head1m "$IMG")"

# --- refusals from state 5 (overlay holds the pattern) -----------------------
payload 'failover\n';         refused vm1 EPERM "32775 Invalid state for this operation" "$ST5" "second failover"
payload '  initiatefailover'; refused vm1 EPERM "32775 Invalid state for this operation" "$ST5" "second InitiateFailover"
payload 'reboot\n';           refused vm1 EOPNOTSUPP "32770 Not Supported" "$ST5" "unknown verb reboot"
payload 'ModifyReplicationSettings\n'; refused vm1 EOPNOTSUPP "32770 Not Supported" "$ST5" "ModifyReplicationSettings"
payload '\n';                 refused vm1 EOPNOTSUPP "32770 Not Supported" "$ST5" "empty command (a lone newline)"
payload ' \t \r\n';           refused vm1 EOPNOTSUPP "32770 Not Supported" "$ST5" "white space only"
payload 'revert now\n';       refused vm1 EINVAL "32773 Invalid parameter" "$ST5" "revert now"
payload 'failover --force\n'; refused vm1 EINVAL "32773 Invalid parameter" "$ST5" "failover --force"
payload 'RevertFailover 1\n'; refused vm1 EINVAL "32773 Invalid parameter" "$ST5" "RevertFailover with an argument"
payload 'revert\0\n';         refused vm1 EINVAL "32776 Incorrect data type" "$ST5" "revert + NUL byte"
payload '\xff\xfe';           refused vm1 EINVAL "32776 Incorrect data type" "$ST5" "invalid UTF-8"
payload 'rev\xc3\x28ert\n';   refused vm1 EINVAL "32776 Incorrect data type" "$ST5" "truncated UTF-8 sequence"
head -c 5000 /dev/zero | tr '\0' a >"$T/payload"
refused vm1 EINVAL "32776 Incorrect data type" "$ST5" "5000 bytes of 'a'"
{ printf 'revert'; head -c 5000 /dev/zero | tr '\0' ' '; } >"$T/payload"
refused vm1 EINVAL "32776 Incorrect data type" "$ST5" "revert padded to 5006 bytes with spaces"
# An empty write(2) never reaches the daemon: the kernel returns 0. Nothing changes.
printf 'reboot\n' >"$T/payload"; ctl_raw vm1 "$M" <"$T/payload" >/dev/null
: >"$T/payload"
check_eq "empty write(2) returns 0" "OK" "$(ctl_raw vm1 "$M" <"$T/payload")"
check_eq "empty write(2): status still that of the last command" "32770 Not Supported" "$(status_of vm1)"
check_eq "empty write(2): state unchanged" "$ST5" "$(state_of vm1)"

# 32774: an .img of the VM is open.
exec 3<"$IMG"
payload 'revert\n'; refused vm1 EBUSY "32774 System is in use" "$ST5" "revert while the .img is open"
payload 'RevertFailover'; refused vm1 EBUSY "32774 System is in use" "$ST5" "RevertFailover while the .img is open" append
exec 3<&-

# --- 32769: another user (allow_other) ---------------------------------------
nob() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
nob ls -R "$M" >"$T/nob.ls"
check "uid 65534 lists the tree (ctl/vm1/control)" grep -qx control "$T/nob.ls"
check "uid 65534 lists the tree (vms/vm1/sys.img)" grep -qx sys.img "$T/nob.ls"
check_eq "uid 65534 reads state" "$ST5" "$(nob cat "$M/ctl/vm1/state")"
check_eq "uid 65534 reads status" "$(status_of vm1)" "$(nob cat "$M/ctl/vm1/status")"
rc=0; err=$(nob sh -c "echo revert > '$M/ctl/vm1/control'" 2>&1) || rc=$?
check "uid 65534: echo revert > control fails with EACCES ($err)" shell_says "$rc" "$err" EACCES
check_eq "uid 65534: status 32769" "32769 Access Denied" "$(status_of vm1)"
check_eq "uid 65534: state unchanged" "$ST5" "$(state_of vm1)"
check "uid 65534: st_size of state/status = length read" ctl_sizes_ok vm1 "$M"
intact vm1 "uid 65534 revert"
printf 'reboot' | ctl_raw vm1 "$M" >/dev/null # status 32770 in between
rc=0; err=$(nob sh -c "printf commit >> '$M/ctl/vm1/control'" 2>&1) || rc=$?
check "uid 65534: printf commit >> control fails with EACCES ($err)" shell_says "$rc" "$err" EACCES
check_eq "uid 65534 commit: status 32769" "32769 Access Denied" "$(status_of vm1)"
check_eq "uid 65534 commit: state unchanged" "$ST5" "$(state_of vm1)"
rc=0; err=$(nob cat "$IMG" 2>&1 >/dev/null) || rc=$?
check "uid 65534: reading the .img fails with EACCES ($err)" shell_says "$rc" "$err" EACCES
rc=0; err=$(nob dd if=/dev/zero of="$IMG" bs=512 count=1 conv=notrunc 2>&1) || rc=$?
check "uid 65534: writing the .img fails with EACCES ($(last_line "$err"))" shell_says "$rc" "$err" EACCES
intact vm1 "uid 65534 .img write"
check_eq "uid 65534: status still 32769" "32769 Access Denied" "$(status_of vm1)"
# For precision: the errno of the refused open (the system python: the
# test's python3 may live where uid 65534 cannot read).
check_eq "uid 65534: open(control) is EACCES" "open:EACCES" \
	"$(echo revert | nob bash -c "PATH=/usr/bin:/bin; $(declare -f raw_write); raw_write '$M/ctl/vm1/control'")"

# --- 32768 / ENOSPC: overlay writes that do not fit ----------------------------
avail=$(df --output=avail -B1 "$S" | tail -1)
head -c $((avail - 2 * 1024 * 1024)) /dev/zero >"$S/filler"
head -c 6M /dev/urandom >"$T/big"
rc=0; err=$(dd if="$T/big" of="$IMG" bs=1M seek=1 conv=notrunc,fsync 2>&1) || rc=$?
check "6 MiB into a state folder with 2 MiB free: dd fails ENOSPC ($(last_line "$err"))" shell_says "$rc" "$err" ENOSPC
intact vm1 "after ENOSPC on the .img"
check_eq "after ENOSPC on the .img: state 5" "$ST5" "$(state_of vm1)"
rm "$S/filler"
rc=0; err=$(dd if="$T/big" of="$IMG" bs=1M seek=1 conv=notrunc,fsync 2>&1) || rc=$?
check "after freeing space the same write succeeds" test "$rc" -eq 0
check_eq "... and reads back" "$(sha "$T/big")" \
	"$(dd if="$IMG" bs=1M skip=1 count=6 status=none | sha256sum | awk '{print $1}')"
intact vm1 "after the write continued"

# --- revert, then refusals from state 3 --------------------------------------
payload 'revert\n'; accepted vm1 "$ST3" "revert with the .img closed"
PAT[vm1]=
check_eq "revert: no overlay file left" "" "$(overlays_of "$S" vm1)"
check "revert: .img is the replica again" test "$(sha "$IMG")" = "$(sha "$T/vm1.raw")"
payload 'revert\n';         refused vm1 EPERM "32775 Invalid state for this operation" "$ST3" "revert when not failed over"
payload 'RevertFailover\n'; refused vm1 EPERM "32775 Invalid state for this operation" "$ST3" "RevertFailover when not failed over"
payload 'commit\n';         refused vm1 EPERM "32775 Invalid state for this operation" "$ST3" "commit when not failed over"
payload 'CommitFailover';   refused vm1 EPERM "32775 Invalid state for this operation" "$ST3" "CommitFailover when not failed over"

# --- 32768 / ENOSPC: the state folder is full at failover -------------------
head -c 64M /dev/zero >"$S/filler" 2>/dev/null || true
check_eq "state folder full" "0" "$(df --output=avail -B1 "$S" | tail -1 | tr -d ' ')"
payload 'failover\n'; refused vm1 ENOSPC "32768 Failed" "$ST3" "failover with the state folder full"
check_eq "failed failover left no overlay" "" "$(overlays_of "$S" vm1)"
check_eq "failed failover: .img still read-only" "400" "$(stat -c %a "$IMG")"
rm "$S/filler"
payload 'failover\n'; accepted vm1 "$ST5" "failover once space is freed"
check "failover made an overlay" test -n "$(overlays_of "$S" vm1)"
payload 'revert\n'; accepted vm1 "$ST3" "and revert"

# --- commit (vm2) -----------------------------------------------------------
rc=0; err=$(echo FAILOVER 2>&1 >>"$M/ctl/vm2/control") || rc=$?
check "echo FAILOVER >> control succeeds ($err)" test "$rc" -eq 0 -a -z "$err"
check_eq "vm2 state 5" "$ST5" "$(state_of vm2)"
head -c 1M /dev/urandom >"$T/pat2"
dd if="$T/pat2" of="$IMG2" bs=1M count=1 conv=notrunc,fsync status=none
PAT[vm2]=$(sha "$T/pat2")
payload '\r\n  CommitFailover\t\n'; accepted_job vm2 "CommitFailover with CR, tabs"
intact vm2 "commit"
payload 'revert\n';   refused vm2 EPERM "32775 Invalid state for this operation" "$ST6" "revert after commit"
payload 'commit\n';   refused vm2 EPERM "32775 Invalid state for this operation" "$ST6" "second commit"
payload 'failover\n'; refused vm2 EPERM "32775 Invalid state for this operation" "$ST6" "failover after commit"
payload 'commit please\n'; refused vm2 EINVAL "32773 Invalid parameter" "$ST6" "commit with an argument"
# and the plain verb "commit" on vm1
payload 'failover'; accepted vm1 "$ST5" "failover (vm1)"
payload 'COMMIT\n'; accepted_job vm1 "COMMIT"
check_eq "committed .img stays writable (0600)" "600" "$(stat -c %a "$IMG")"

# --- 32777: VMs in state 8 ---------------------------------------------------
for vm in bad orphan; do
	payload 'failover\n';       refused "$vm" ENODEV "32777 System is not available" "$ST8" "$vm: failover in state 8"
	payload 'commit\n';         refused "$vm" ENODEV "32777 System is not available" "$ST8" "$vm: commit in state 8"
	payload 'revert\n';         refused "$vm" ENODEV "32777 System is not available" "$ST8" "$vm: revert in state 8 without an overlay"
	check_eq "$vm: no overlay made" "" "$(overlays_of "$S" "$vm")"
done

# --- 32779: the replica disk is gone ---------------------------------------
rm "$R/gone/disk.vhd"
payload 'failover\n'; refused gone ENOENT "32779 File not found" "$ST3" "failover after the replica disk was deleted"
check_eq "deleted replica: no overlay created" "" "$(overlays_of "$S" gone)"
# the living store (SPEC §2): the disk leaves the tree, and comes back
check "deleted replica: the .img leaves within 5 s" wait_until 5 test ! -e "$M/vms/gone/disk.img"
cp "$T/gone-disk.vhd" "$R/gone/disk.vhd"
mode_is() { [ "$(stat -c %a "$1" 2>/dev/null)" = "$2" ]; }
check "restored replica: the .img is back within 5 s, read-only" wait_until 5 mode_is "$M/vms/gone/disk.img" 400

# --- persistence across a remount -------------------------------------------
declare -A before=()
for vm in vm1 vm2 gone never bad orphan; do before[$vm]="$(state_of "$vm")|$(status_of "$vm")"; done
rfs_umount "$M"
rfs_mount "$R" "$M" --state="$S" -o allow_other
for vm in vm1 vm2 gone bad orphan; do
	check_eq "$vm: state and status survive remount" "${before[$vm]}" "$(state_of "$vm")|$(status_of "$vm")"
	check "$vm: after remount st_size of state/status = length read" ctl_sizes_ok "$vm" "$M"
done
check_eq "never: status still empty after remount" "$ST3|" "$(state_of never)|$(status_of never)"
intact vm2 "remount"

# --- 32771: the saved state cannot be read ------------------------------------
rfs_umount "$M"
printf 'garbage\x01\x02 not a state file\n' >"$S/vm1/vm.state"
garbage=$(sha "$S/vm1/vm.state")
rfs_mount "$R" "$M" --state="$S" -o allow_other
check_eq "corrupt vm.state: state 8" "$ST8" "$(state_of vm1)"
check "corrupt vm.state: st_size of state/status = length read" ctl_sizes_ok vm1 "$M"
check_eq "corrupt vm.state: other VMs unaffected" "$ST6" "$(state_of vm2)"
payload 'failover\n'; refused vm1 EIO "32771 Status is unknown" "$ST8" "failover with vm.state unreadable"
payload 'revert\n';   refused vm1 EIO "32771 Status is unknown" "$ST8" "revert with vm.state unreadable"
payload 'Commit\n';   refused vm1 EIO "32771 Status is unknown" "$ST8" "commit with vm.state unreadable"
check_eq "refused commands left vm.state as it was" "$garbage" "$(sha "$S/vm1/vm.state")"

rfs_umount "$M"
umount "$S"

# What this test proved, for docs/FAULTS.md (recorded only if every check passed).
fault "\`failover\` with the state folder full" "write fails \`ENOSPC\`, status \`32768 Failed\`, state stays 3, no overlay left; works once space is freed"
fault "writes into a full overlay (state folder full)" "\`dd\`: No space left on device; earlier data intact; writing continues once space is freed"
fault "another user writes \`control\` (\`-o allow_other\`)" "open fails \`EACCES\`, status \`32769 Access Denied\`; listing and reading state/status still work"
fault "unknown command (\`reboot\`, \`ModifyReplicationSettings\`, whitespace only)" "write fails \`EOPNOTSUPP\`, status \`32770 Not Supported\`, nothing changes"
fault "saved state \`vm.state\` corrupted between mounts" "state 8, every command fails \`EIO\` with \`32771 Status is unknown\`; the file is left as found"
fault "known command with arguments (\`revert now\`)" "write fails \`EINVAL\`, status \`32773 Invalid parameter\`"
fault "\`revert\` while an \`.img\` is open" "write fails \`EBUSY\`, status \`32774 System is in use\`, overlay intact; works after closing"
fault "command from the wrong state (second failover, revert after commit)" "write fails \`EPERM\`, status \`32775 Invalid state for this operation\`"
fault "NUL byte, invalid UTF-8, or more than 4 KiB in one write" "write fails \`EINVAL\`, status \`32776 Incorrect data type\`"
fault "replica disk deleted, then \`failover\`" "write fails \`ENOENT\`, status \`32779 File not found\`, state stays 3"

finish
