#!/usr/bin/env bash
# SPEC §1 (delegation), §3, issue 18: browsing in a file manager. What GIO
# (the library GNOME Files asks) reports is what the filesystem will do:
# nothing offers delete, rename, trash or new folder; control is write-only;
# the dates of state and status move with each command; a broken VM says
# why in ctl/<vm>/errors, one line per file, naming it; -o uid/gid/umask
# hand the tree to another user. The replica never changes.
. "$(dirname "$0")/lib.sh"

R=$T/replica M=$T/mnt S=$T/state
chmod 711 "$T" # the delegated users must reach the mount points
mkdir -p "$R/vm1" "$R/broken" "$R/cut" "$S"
random_disk 16 "$T/vm1.raw" "$R/vm1/sys.vhdx" vhdx
# One VM, three causes: a VHDX cut in half; a child whose parent was not
# copied; a child whose parent was replaced by another image of that name.
qemu-img convert -q -f raw -O vhdx "$T/vm1.raw" "$R/broken/cut.vhdx"
truncate -s $(($(stat -c %s "$R/broken/cut.vhdx") / 2)) "$R/broken/cut.vhdx"
unpack_fixture ntfs-differential.vhdx "$R/broken"
unpack_fixture ntfs-differential.vhd "$R/broken"
random_disk 4 "$T/p.raw" "$R/broken/ntfs-parent.vhd" vpc -o subformat=fixed,force_size=on
# A VM whose only disk is truncated.
cp "$R/broken/cut.vhdx" "$R/cut/d.vhdx"
replica_before=$(replica_sums "$R")

rfs_mount "$R" "$M" --state="$S"
IMG=$M/vms/vm1/sys.img

# gio_attr PATH ATTRIBUTE: one attribute as GIO reports it.
gio_attr() { gio info -a "$2" "$1" | awk -v a="  $2: " 'index($0, a) == 1 {print substr($0, length(a) + 1)}'; }
# gio_time PATH: time::modified in nanoseconds, as GIO reports it.
gio_time() {
	local info
	info=$(gio info -a 'time::*' "$1")
	awk '$1 == "time::modified:" {s = $2} $1 == "time::modified-nsec:" {n = $2}
	     END {printf "%d%09d\n", s, n}' <<<"$info"
}
tree_of() { (cd "$1" && find . | LC_ALL=C sort); }

# --- what GIO says -------------------------------------------------------------
# (the mount point itself is its parent folder's to delete or rename)
NODES=(vms ctl vms/vm1 ctl/vm1 vms/vm1/sys.img ctl/vm1/control ctl/vm1/state ctl/vm1/status
	ctl/vm1/owner ctl/vm1/errors vms/broken ctl/broken)
for n in "${NODES[@]}"; do
	for a in can-delete can-rename can-trash; do
		check_eq "gio: $n: access::$a FALSE" FALSE "$(gio_attr "$M/$n" "access::$a")"
	done
done
for d in . vms ctl vms/vm1 ctl/vm1; do
	check_eq "folder $d is 0555" 555 "$(stat -c %a "$M/$d")"
	check_eq "gio: folder $d: can-write FALSE" FALSE "$(gio_attr "$M/$d" access::can-write)"
	check_eq "access(W_OK) on folder $d is EACCES" 1 "$(python3 -c "import os,sys; print(int(not os.access(sys.argv[1], os.W_OK)))" "$M/$d")"
done
check_eq "gio: control can-read FALSE (write-only)" FALSE "$(gio_attr "$M/ctl/vm1/control" access::can-read)"
check_eq "gio: control can-write TRUE for the owner" TRUE "$(gio_attr "$M/ctl/vm1/control" access::can-write)"
check_eq "control: open for reading is EACCES, as access(R_OK) says" EACCES "$(errno_of read "$M/ctl/vm1/control")"
for f in state status owner errors; do
	check_eq "gio: $f can-read TRUE" TRUE "$(gio_attr "$M/ctl/vm1/$f" access::can-read)"
	check_eq "gio: $f can-write FALSE" FALSE "$(gio_attr "$M/ctl/vm1/$f" access::can-write)"
	check_eq "$f: open for writing is EACCES, as access(W_OK) says" EACCES "$(errno_of open_w "$M/ctl/vm1/$f")"
	check_eq "$f is 0444" 444 "$(stat -c %a "$M/ctl/vm1/$f")"
done
check_eq "gio: disk can-read TRUE" TRUE "$(gio_attr "$IMG" access::can-read)"
check_eq "gio: disk can-write FALSE before failover" FALSE "$(gio_attr "$IMG" access::can-write)"
check_eq "errors of a healthy VM: empty, st_size 0" "0:" "$(stat -c %s "$M/ctl/vm1/errors"):$(cat "$M/ctl/vm1/errors")"

# --- remove, rename, mkdir, trash: refused, nothing changes -------------------------
before=$(tree_of "$M")
check "gio remove of a disk is refused" fails_with . gio remove "$IMG"
check "gio remove of a VM folder is refused" fails_with . gio remove "$M/vms/vm1"
check "gio remove of state is refused" fails_with . gio remove "$M/ctl/vm1/state"
check "gio trash of a disk is refused" fails_with . gio trash "$IMG"
check "gio rename of a disk is refused" fails_with . gio rename "$IMG" other.img
check "gio rename of a VM folder is refused" fails_with . gio rename "$M/vms/vm1" vm9
check "gio rename of control is refused" fails_with . gio rename "$M/ctl/vm1/control" c2
check "gio mkdir in vms/ is refused" fails_with . gio mkdir "$M/vms/new"
check "gio mkdir in a VM folder is refused" fails_with . gio mkdir "$M/vms/vm1/new"
check "gio copy into a VM folder is refused" fails_with . gio copy "$T/p.raw" "$M/vms/vm1/p.raw"
check_eq "the tree is unchanged" "$before" "$(tree_of "$M")"
check_eq "the disk still reads as the replica" "$(sha "$T/vm1.raw")" "$(sha "$IMG")"

# --- dates move with each command ------------------------------------------------------
t0=$(gio_time "$M/ctl/vm1/state") s0=$(gio_time "$M/ctl/vm1/status")
check_eq "state: mtime = ctime" "$(stat -c %.9Y "$M/ctl/vm1/state")" "$(stat -c %.9Z "$M/ctl/vm1/state")"
prev=$t0 prev_s=$s0
for cmd in failover revert failover revert; do
	ctl vm1 $cmd "$M"
	t=$(gio_time "$M/ctl/vm1/state") s=$(gio_time "$M/ctl/vm1/status")
	check "$cmd: time::modified of state moves ($prev -> $t)" test "$t" -gt "$prev"
	check "$cmd: time::modified of status moves ($prev_s -> $s)" test "$s" -gt "$prev_s"
	check_eq "$cmd: state: mtime = ctime" "$(stat -c %.9Y "$M/ctl/vm1/state")" "$(stat -c %.9Z "$M/ctl/vm1/state")"
	# right after the command, without waiting for any cache to expire
	if [ $cmd = failover ]; then
		check_eq "$cmd: the disk is 0600 at once" 600 "$(stat -c %a "$IMG")"
		check_eq "$cmd: gio: disk can-write TRUE" TRUE "$(gio_attr "$IMG" access::can-write)"
	else
		check_eq "$cmd: the disk is 0400 at once" 400 "$(stat -c %a "$IMG")"
	fi
	prev=$t prev_s=$s
done
t=$(gio_time "$M/ctl/vm1/state")
ctl vm1 revert "$M" 2>/dev/null || true # refused in state 3: the state does not change
check_eq "a refused command leaves the state's date alone" "$t" "$(gio_time "$M/ctl/vm1/state")"
check "... but the status records it (newer date)" test "$(gio_time "$M/ctl/vm1/status")" -gt "$prev_s"

# --- a broken VM says why ------------------------------------------------------------
errs=$(cat "$M/ctl/broken/errors")
echo "$errs" | sed 's/^/  broken\/errors: /'
check_eq "broken: one errors line per cause" 3 "$(grep -c . <<<"$errs")"
check_eq "broken: st_size of errors = length read" "$(printf '%s\n' "$errs" | wc -c)" "$(stat -c %s "$M/ctl/broken/errors")"
check "broken: the truncated file is named, with its size" \
	grep -Eq '^cut\.vhdx: truncated: the file ends at [0-9.]+ MiB' <<<"$errs"
check "broken: the child whose parent is missing, and the name looked for" \
	grep -Eq '^ntfs-differential\.vhdx: .*ntfs-parent\.vhdx is not found' <<<"$errs"
check "broken: the child whose parent was replaced, and that parent" \
	grep -Eq '^ntfs-differential\.vhd: parent identifier mismatch: ntfs-parent\.vhd ' <<<"$errs"
check "broken: no libvhdi wording" bash -c "! grep -q libvhdi_ <<<'$errs'"
check_eq "broken: state 8" "8 Critical" "$(cat "$M/ctl/broken/state")"
check_eq "broken: errors is 0444" 444 "$(stat -c %a "$M/ctl/broken/errors")"
while read -r line; do
	check "broken: the log has the same words (${line%%:*})" grep -qF -- "VM broken: $line" "$T/replicafs.log"
done <<<"$errs"
check_eq "cut: one line, naming d.vhdx" 1 "$(grep -c '^d\.vhdx: truncated' "$M/ctl/cut/errors")"
fault "a VM with a truncated disk, a child without its parent and a child of a replaced parent" \
	"state 8; \`ctl/<vm>/errors\` has one line per file, e.g. \`cut.vhdx: truncated: the file ends at 8 MiB, its block table points past that (block 0)\`, the same words in the log"
fault "a file manager (GIO) on the mount" \
	"can-delete/can-rename/can-trash FALSE everywhere; control can-read FALSE, can-write TRUE; \`gio remove/rename/mkdir/trash\` refused, nothing changes"
rfs_umount "$M"

# --- delegation: -o uid, gid -------------------------------------------------------------
U=4242 G=4343 OTHER=4244
as_user() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --clear-groups "$@"; }
as_member() { setpriv --reuid="$OTHER" --regid="$OTHER" --groups="$G" "$@"; }
# errno_as UID OP PATH: errno_of run as user UID (the system python).
errno_as() { local u=$1; shift; as_user "$u" bash -c "PATH=/usr/bin:/bin; $(declare -f errno_of); errno_of $*"; }
rfs_mount "$R" "$M" --state="$S" -o allow_other,uid=$U,gid=$G
check_eq "after a remount: state's date is when it was stored (vm.state)" \
	"$(stat -c %.9Y "$S/vm1/vm.state")" "$(stat -c %.9Y "$M/ctl/vm1/state")"
check_eq "delegated: owner and group shown" "$U:$G" "$(stat -c %u:%g "$IMG")"
check_eq "delegated: disk 0400, control 0200, state 0444, folders 0555 (no umask)" "400 200 444 555" \
	"$(stat -c %a "$IMG" "$M/ctl/vm1/control" "$M/ctl/vm1/state" "$M/vms/vm1" | tr '\n' ' ' | sed 's/ $//')"
check_eq "delegated user: reads the disk" "$(sha "$T/vm1.raw")" "$(as_user $U sha256sum "$IMG" | awk '{print $1}')"
check_eq "delegated user: writing before failover is EROFS" EROFS "$(errno_as $U open_w "'$IMG'")"
check "delegated user: echo failover > control" as_user $U sh -c "echo failover > '$M/ctl/vm1/control'"
check_eq "delegated user: state 5" "5 Recovered" "$(cat "$M/ctl/vm1/state")"
check_eq "delegated: disk 0600 once failed over" 600 "$(stat -c %a "$IMG")"
head -c 65536 /dev/urandom >"$T/patch"
check "delegated user: writes the disk" as_user $U dd if="$T/patch" of="$IMG" bs=64k count=1 conv=notrunc,fsync status=none
check_eq "delegated user: reads its write back" "$(sha "$T/patch")" \
	"$(as_user $U dd if="$IMG" bs=64k count=1 status=none | sha256sum | awk '{print $1}')"
check "another user: lists the tree" as_user $OTHER ls "$M/vms/vm1" "$M/ctl/vm1"
check_eq "another user: reads state" "5 Recovered" "$(as_user $OTHER cat "$M/ctl/vm1/state")"
check "another user: echo revert > control fails with EACCES" \
	fails_with "Permission denied" as_user $OTHER sh -c "echo revert > '$M/ctl/vm1/control'"
check_eq "another user: status 32769" "32769 Access Denied" "$(cat "$M/ctl/vm1/status")"
check_eq "another user: state unchanged" "5 Recovered" "$(cat "$M/ctl/vm1/state")"
check_eq "another user: cannot read the disk" EACCES "$(errno_as $OTHER read "'$IMG'")"
check_eq "another user: cannot write the disk" EACCES "$(errno_as $OTHER open_w "'$IMG'")"
check "delegated user: echo revert > control" as_user $U sh -c "echo revert > '$M/ctl/vm1/control'"
check_eq "delegated user: state 3 again" "3 Replicating" "$(cat "$M/ctl/vm1/state")"
check_eq "after revert: the disk reads as the replica" "$(sha "$T/vm1.raw")" "$(sha "$IMG")"
check_eq "root still commands a delegated tree" OK "$(errno_of write "$M/ctl/vm1/control" failover)"
ctl vm1 revert "$M"
rfs_umount "$M"
fault "another user writes \`control\` of a tree delegated with \`-o uid=N\`" "open fails \`EACCES\`, status \`32769 Access Denied\`; user N fails over, writes and reverts"

# --- -o umask: group and other bits as on any file ------------------------------------------
rfs_mount "$R" "$M" --state="$S" -o allow_other,uid=$U,gid=$G,umask=027
check_eq "umask 027: folders 0550, disk 0440, control 0200, state 0440" "550 440 200 440" \
	"$(stat -c %a "$M/vms/vm1" "$IMG" "$M/ctl/vm1/control" "$M/ctl/vm1/state" | tr '\n' ' ' | sed 's/ $//')"
ctl vm1 failover "$M"
check_eq "umask 027: disk 0666 & ~027 = 0640 once failed over" 640 "$(stat -c %a "$IMG")"
check "group member: lists the VM folder (group r-x)" as_member ls "$M/vms/vm1"
check "group member: reads the disk (group r)" as_member dd if="$IMG" of=/dev/null bs=64k count=1 status=none
check "group member: cannot write the disk (group w masked)" \
	fails_with "Permission denied" as_member dd if=/dev/zero of="$IMG" bs=512 count=1 conv=notrunc status=none
check "group member: cannot command (control 0200)" \
	fails_with "Permission denied" as_member sh -c "echo revert > '$M/ctl/vm1/control'"
check_eq "group member: status 32769" "32769 Access Denied" "$(cat "$M/ctl/vm1/status")"
check "another user: cannot list the VM folder (other bits masked)" \
	fails_with "Permission denied" as_user $OTHER ls "$M/vms/vm1"
# Search (x) is checked at LOOKUP: a name the kernel holds already is not
# asked again (no default_permissions), so this one was never looked up.
check "another user: cannot look a file up by name either (no x)" \
	fails_with "Permission denied" as_user $OTHER stat "$M/ctl/cut/state"
ctl vm1 revert "$M"
check_eq "after revert: the disk reads as the replica" "$(sha "$T/vm1.raw")" "$(sha "$IMG")"
rfs_umount "$M"

# --- bad values are refused before anything is opened -------------------------------------
for o in "uid=-1" "uid=4294967295" "gid=x" "umask=8" "umask=1000" "--umask=" "--uid=1e3"; do
	case $o in --*) args=("$o") ;; *) args=(-o "$o") ;; esac
	rc=0; err=$("$REPLICAFS" "${args[@]}" "$R" "$M" 2>&1) || rc=$?
	check "bad value $o: exit 1" test "$rc" = 1
	check_eq "bad value $o: one line" 1 "$(grep -c . <<<"$err")"
	check "bad value $o: names the option ($err)" grep -q -- "${o%%=*}" <<<"$err"
	check "bad value $o: nothing mounted" bash -c "! grep -qF ' $M ' /proc/self/mounts"
done
fault "\`-o umask=8\`, \`-o uid=4294967295\`, \`--uid=1e3\`" "one line naming the option and its range, exit 1, nothing opened"

check_eq "replica files unchanged (sha256)" "$replica_before" "$(replica_sums "$R")"
finish
