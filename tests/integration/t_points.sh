#!/usr/bin/env bash
# SPEC §2 "Recovery points", §9, issue 12: a VM with two disks and 4-level
# chains, VHDX (vmx) and VHD (vmv), written by tests/mkvhd.py chain with the
# expected sha256 of every level; a VM whose chains differ in depth (vmm).
# Every point of points/ reads exactly; ctl/<vm>/points lists them; failover
# to an older point, write, remount, a new point arriving: still that point
# plus the write; revert: the newest. A test VM over an older point while
# the VM is failed over to the newest: each reads its own data; it survives
# a remount; stop-test (32774 under a loop device) leaves the VM's overlay
# untouched. Bad input: a clear code, nothing changed. The replica's bytes
# never change.
. "$(dirname "$0")/lib.sh"

R=$T/replica M=$T/mnt MKVHD=$TOP/tests/mkvhd.py
EPOCH=1767225600 # 2026-01-01T00:00:00Z: level k of vmx has mtime EPOCH + k h
mkdir -p "$R/vmx" "$R/vmv" "$R/vmm"
python3 "$MKVHD" chain "$R/vmx" --format vhdx --seed 11 --time $EPOCH >"$T/vmx.sums"
python3 "$MKVHD" chain "$R/vmv" --format vhd --seed 12 --time $((EPOCH + 86400)) >"$T/vmv.sums"
python3 "$MKVHD" chain "$R/vmm" --format vhdx --disks a --levels 4 --seed 13 --time $EPOCH >"$T/vmm.sums"
python3 "$MKVHD" chain "$R/vmm" --format vhd --disks b --levels 2 --seed 14 --time $EPOCH >>"$T/vmm.sums"
touch -d "@$((EPOCH + 3 * 3600))" "$R"/vmm/{a-2.avhdx,a-3.avhdx,b.vhd,b-1.avhd} # two points, one time
replica_before=$(replica_sums "$R")
want() { awk -F'\t' -v f="$2" '$1 == f {print $2}' "$T/$1.sums"; }
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

# The writer's images, checked by libvhdi itself before anything trusts them.
for f in sys-3.avhdx data-2.avhdx; do
	check_eq "mkvhd: libvhdi reads $f as the writer's model" "$(want vmx $f)" \
		"$(python3 "$MKVHD" libvhdi-sha256 "$R/vmx/$f")"
done
check "mkvhd: vhdiinfo sees sys-1.avhdx as VHDX differencing" \
	bash -c "vhdiinfo '$R/vmx/sys-1.avhdx' | grep -q 'Differential'"
check_eq "mkvhd: qemu-img reads the VHDX base as the writer's model" "$(want vmx sys.vhdx)" \
	"$(qemu-img convert -O raw "$R/vmx/sys.vhdx" "$T/base.raw" && sha "$T/base.raw")"

rfs_mount "$R" "$M"

# --- ctl/<vm>/points and points/ ---------------------------------------------
expect_list() { # VM NLEVELS FIRST_TIME SUFFIX...: the list mkvhd's times give
	local vm=$1 n=$2 t0=$3 k
	for ((k = n - 1; k >= 0; k--)); do
		local files=() d
		for d in "${@:4}"; do
			if [ "$k" = 0 ]; then files+=("$d"); else files+=("${d%%.*}-$k.a${d#*.}"); fi
		done
		printf '%s\t%s\n' "$(iso $((t0 + 3600 * k)))" "$(IFS=,; echo "${files[*]}")"
	done
}
check_eq "ctl/vmx/points: 4 points newest first, files at each level" \
	"$(expect_list vmx 4 $EPOCH data.vhdx sys.vhdx)" "$(cat "$M/ctl/vmx/points")"
check_eq "ctl/vmv/points (VHD chains)" \
	"$(expect_list vmv 4 $((EPOCH + 86400)) data.vhd sys.vhd)" "$(cat "$M/ctl/vmv/points")"
check_eq "ctl/vmx/points: mode 0444, st_size = its length" "444 $(wc -c <"$M/ctl/vmx/points")" \
	"$(stat -c '%a %s' "$M/ctl/vmx/points")"
# vmm: a has 4 levels, b 2: matched from the tip, 2 points; both levels'
# files have the same mtime: the later point gets ".1".
check_eq "ctl/vmm/points: levels matched from the tip, only where every disk has one; a collision gets .1" \
	"$(printf '%s.1\ta-3.avhdx,b-1.avhd\n%s\ta-2.avhdx,b.vhd\n' "$(iso $((EPOCH + 3 * 3600)))" \
		"$(iso $((EPOCH + 3 * 3600)))")" "$(cat "$M/ctl/vmm/points")"
check_eq "points/vmm/<point>.1 reads the tip of both disks" "$(want vmm a-3.avhdx) $(want vmm b-1.avhd)" \
	"$(sha "$M/points/vmm/$(iso $((EPOCH + 3 * 3600))).1/a.img") $(sha "$M/points/vmm/latest/b.img")"

points_read_exactly() { # VM FORMAT: every point of every disk, and latest
	local vm=$1 k p d f ok=0 n=0
	for ((k = 0; k < 4; k++)); do
		p=$(sed -n "$((4 - k))p" "$M/ctl/$vm/points" | cut -f1)
		for d in sys data; do
			if [ "$k" = 0 ]; then f=$d.$2; else f=$d-$k.a$2; fi
			n=$((n + 1))
			[ "$(sha "$M/points/$vm/$p/$d.img")" = "$(want "$vm" "$f")" ] && ok=$((ok + 1))
		done
	done
	for d in sys data; do
		n=$((n + 1))
		[ "$(sha "$M/points/$vm/latest/$d.img")" = "$(want "$vm" "$d-3.a$2")" ] && ok=$((ok + 1))
	done
	echo "$ok/$n"
}
check_eq "points/vmx: every point of both disks and latest read exactly (sha256 of each level)" \
	"10/10" "$(points_read_exactly vmx vhdx)"
check_eq "points/vmv: the same for VHD chains" "10/10" "$(points_read_exactly vmv vhd)"
P0=$(iso $EPOCH) P1=$(iso $((EPOCH + 3600))) P3=$(iso $((EPOCH + 3 * 3600)))
check_eq "points/vmx lists the points and latest" "$P0 $P1 $(iso $((EPOCH + 7200))) $P3 latest" \
	"$(ls "$M/points/vmx" | tr '\n' ' ' | sed 's/ $//')"
check_eq "a point's disk: mode 0400, size = the virtual size" "400 8388608" \
	"$(stat -c '%a %s' "$M/points/vmx/$P1/sys.img")"
check_eq "a point's disk refuses writing (EROFS)" "EROFS" "$(errno_of open_w "$M/points/vmx/$P1/sys.img")"
check_eq "a point's folder cannot be changed" "EPERM" "$(errno_of mkdir "$M/points/vmx/$P1/x")"
check_eq "vms/vmx reads the newest point" "$(want vmx sys-3.avhdx)" "$(sha "$M/vms/vmx/sys.img")"

# --- failover to the second-oldest point, write, remount --------------------
check_eq "failover to an unknown point: 32773" "EINVAL 32773 Invalid parameter" \
	"$(echo "failover 2020-01-01T00:00:00Z" | ctl_raw vmx "$M") $(cat "$M/ctl/vmx/status")"
check_eq "failover to a name with '/': 32773" "EINVAL" "$(echo "failover $P1/sys.img" | ctl_raw vmx "$M")"
check_eq "failover to a name with '..': 32773" "EINVAL" "$(echo "failover ../vmv" | ctl_raw vmx "$M")"
check_eq "failover with two points: 32773" "EINVAL" "$(echo "failover $P0 $P1" | ctl_raw vmx "$M")"
check_eq "... and nothing changed: state 3, no overlay" "3 Replicating|" \
	"$(cat "$M/ctl/vmx/state")|$(overlays_of "$R/.replicafs" vmx)"
check_eq "failover $P1 (second-oldest)" "OK" "$(echo "InitiateFailover $P1" | ctl_raw vmx "$M")"
check_eq "state 5, status 0" "5 Recovered|0 Completed with No Error" \
	"$(cat "$M/ctl/vmx/state")|$(cat "$M/ctl/vmx/status")"
check_eq "vms/vmx/sys.img reads point $P1" "$(want vmx sys-1.avhdx)" "$(sha "$M/vms/vmx/sys.img")"
check_eq "vms/vmx/data.img reads point $P1" "$(want vmx data-1.avhdx)" "$(sha "$M/vms/vmx/data.img")"
check "vm.state records the point (tips sys-1.avhdx, data-1.avhdx)" \
	bash -c "grep -q '^tip sys/sys-1.avhdx ' '$R/.replicafs/vmx/vm.state' && grep -q '^tip data/data-1.avhdx ' '$R/.replicafs/vmx/vm.state'"
check_eq "a second failover: 32775" "EPERM" "$(echo "failover $P0" | ctl_raw vmx "$M")"
cp "$M/points/vmx/$P1/sys.img" "$T/p1.raw"
head -c 8192 /dev/urandom >"$T/patch"
dd if="$T/patch" of="$T/p1.raw" bs=4096 seek=3 conv=notrunc status=none
dd if="$T/patch" of="$M/vms/vmx/sys.img" bs=4096 seek=3 conv=notrunc,fsync status=none
check_eq "the write lands over the point" "$(sha "$T/p1.raw")" "$(sha "$M/vms/vmx/sys.img")"
check_eq "points/ still reads the point itself, not the overlay" "$(want vmx sys-1.avhdx)" \
	"$(sha "$M/points/vmx/$P1/sys.img")"

rfs_umount "$M"
rfs_mount "$R" "$M"
check_eq "after remount: state 5" "5 Recovered" "$(cat "$M/ctl/vmx/state")"
check_eq "after remount: still the point plus the write" "$(sha "$T/p1.raw")" "$(sha "$M/vms/vmx/sys.img")"
check_eq "after remount: data.img still at the point" "$(want vmx data-1.avhdx)" "$(sha "$M/vms/vmx/data.img")"

# --- a new point arrives: listed within 5 s, the failed-over VM stays -------
P4=$(iso $((EPOCH + 4 * 3600)))
for d in sys data; do
	# written beside its parent under a name the daemon ignores, then renamed
	python3 "$MKVHD" vhdx-diff "$R/vmx/$d-3.avhdx" "$R/vmx/$d-4.avhdx.part" --seed 4${#d} |
		awk '{print $2}' >"$T/$d-4.sum"
	touch -d "@$((EPOCH + 4 * 3600))" "$R/vmx/$d-4.avhdx.part"
done
mv "$R/vmx/data-4.avhdx.part" "$R/vmx/data-4.avhdx" && mv "$R/vmx/sys-4.avhdx.part" "$R/vmx/sys-4.avhdx"
replica_before=$(replica_sums "$R")
printf 'data-4.avhdx\t%s\nsys-4.avhdx\t%s\n' "$(cat "$T/data-4.sum")" "$(cat "$T/sys-4.sum")" >>"$T/vmx.sums"
check "a new point is listed within 5 s" wait_until 5 bash -c "head -1 '$M/ctl/vmx/points' | grep -q '^$P4	data-4.avhdx,sys-4.avhdx\$'"
check_eq "... and readable under points/" "$(want vmx sys-4.avhdx)" "$(sha "$M/points/vmx/$P4/sys.img")"
check_eq "latest is the new point" "$(want vmx data-4.avhdx)" "$(sha "$M/points/vmx/latest/data.img")"
check_eq "the failed-over VM stays on its point plus the write" "$(sha "$T/p1.raw")" "$(sha "$M/vms/vmx/sys.img")"
rfs_umount "$M"
rfs_mount "$R" "$M"
check_eq "after a remount with a newer point: still the point plus the write" "$(sha "$T/p1.raw")" \
	"$(sha "$M/vms/vmx/sys.img")"

# --- revert: the newest point -----------------------------------------------
check_eq "revert" "OK" "$(echo revert | ctl_raw vmx "$M")"
check_eq "after revert: state 3, sys.img reads the newest point" "3 Replicating $(want vmx sys-4.avhdx)" \
	"$(cat "$M/ctl/vmx/state") $(sha "$M/vms/vmx/sys.img")"
check_eq "after revert: data.img reads the newest point" "$(want vmx data-4.avhdx)" "$(sha "$M/vms/vmx/data.img")"
check_eq "failover latest" "OK" "$(echo "failover latest" | ctl_raw vmv "$M")"
check_eq "vmv reads its newest point" "$(want vmv sys-3.avhd)" "$(sha "$M/vms/vmv/sys.img")"
check_eq "points/ of a failed-over VM still read exactly" "10/10" "$(points_read_exactly vmv vhd)"
check_eq "revert vmv" "OK" "$(echo revert | ctl_raw vmv "$M")"

# --- test failover: an older point while the VM itself is failed over ------
TV="vmx - Test"
check_eq "failover vmx (newest point)" "OK" "$(echo failover | ctl_raw vmx "$M")"
dd if="$T/patch" of="$M/vms/vmx/data.img" bs=4096 seek=1 conv=notrunc,fsync status=none
cp "$M/points/vmx/latest/data.img" "$T/vm-data.raw"
dd if="$T/patch" of="$T/vm-data.raw" bs=4096 seek=1 conv=notrunc status=none
vm_overlay=$(sha256sum "$R/.replicafs/vmx/"*.overlay)
check_eq "test with an unknown point: 32773" "EINVAL" "$(echo "test 1999-01-01T00:00:00Z" | ctl_raw vmx "$M")"
check_eq "test $P1 (TestReplicaSystem) while vmx is failed over" "OK" \
	"$(echo "TestReplicaSystem $P1" | ctl_raw vmx "$M")"
check_eq "vmx keeps its state and status 0" "5 Recovered|0 Completed with No Error" \
	"$(cat "$M/ctl/vmx/state")|$(cat "$M/ctl/vmx/status")"
check_eq "the test VM is under vms/ and ctl/" "data.img sys.img|control errors job owner points state status" \
	"$(ls "$M/vms/$TV" | tr '\n' ' ' | sed 's/ $//')|$(ls "$M/ctl/$TV" | tr '\n' ' ' | sed 's/ $//')"
check_eq "the test VM is in state 5, its disks writable (0600)" "5 Recovered 600" \
	"$(cat "$M/ctl/$TV/state") $(stat -c %a "$M/vms/$TV/sys.img")"
check "it has its own state folder with its overlays" test -f "$R/.replicafs/$TV/sys.overlay"
check_eq "the test VM reads point $P1" "$(want vmx sys-1.avhdx) $(want vmx data-1.avhdx)" \
	"$(sha "$M/vms/$TV/sys.img") $(sha "$M/vms/$TV/data.img")"
check_eq "a second test: 32775" "EPERM 32775 Invalid state for this operation" \
	"$(echo test | ctl_raw vmx "$M") $(cat "$M/ctl/vmx/status")"
check_eq "failover written to the test VM: 32775" "EPERM" "$(echo failover | ctl_raw "$TV" "$M")"
head -c 12288 /dev/urandom >"$T/tpatch"
cp "$M/points/vmx/$P1/data.img" "$T/test-data.raw"
dd if="$T/tpatch" of="$T/test-data.raw" bs=4096 seek=1 conv=notrunc status=none
dd if="$T/tpatch" of="$M/vms/$TV/data.img" bs=4096 seek=1 conv=notrunc,fsync status=none
check_eq "the test VM reads its point plus its own write" "$(sha "$T/test-data.raw")" "$(sha "$M/vms/$TV/data.img")"
check_eq "vmx reads its point plus its own write, not the test VM's" "$(sha "$T/vm-data.raw")" \
	"$(sha "$M/vms/vmx/data.img")"

rfs_umount "$M"
rfs_mount "$R" "$M"
check_eq "after remount: the test VM is back, state 5, with its write" "5 Recovered $(sha "$T/test-data.raw")" \
	"$(cat "$M/ctl/$TV/state") $(sha "$M/vms/$TV/data.img")"
check_eq "after remount: vmx still its own" "5 Recovered $(sha "$T/vm-data.raw")" \
	"$(cat "$M/ctl/vmx/state") $(sha "$M/vms/vmx/data.img")"

# vmx itself is reverted and failed over again while its test VM runs
check_eq "vmx reverts while its test VM runs" "OK 3 Replicating" \
	"$(echo revert | ctl_raw vmx "$M") $(cat "$M/ctl/vmx/state")"
check_eq "... the test VM keeps its data" "$(sha "$T/test-data.raw")" "$(sha "$M/vms/$TV/data.img")"
check_eq "vmx fails over again" "OK" "$(echo failover | ctl_raw vmx "$M")"
dd if="$T/patch" of="$M/vms/vmx/data.img" bs=4096 seek=1 conv=notrunc,fsync status=none
vm_overlay=$(sha256sum "$R/.replicafs/vmx/"*.overlay)

# a loop device on a test disk: stop-test is 32774, nothing changes
loop=$(losetup -f --show "$M/vms/$TV/sys.img")
check_eq "stop-test while a loop device holds a test disk: 32774" "EBUSY 32774 System is in use" \
	"$(echo stop-test | ctl_raw vmx "$M") $(cat "$M/ctl/vmx/status")"
check_eq "... the test VM is still there with its data" "$(sha "$T/test-data.raw")" "$(sha "$M/vms/$TV/data.img")"
losetup -d "$loop"
check_eq "revert written to the test VM removes it" "OK" "$(echo revert | ctl_raw "$TV" "$M")"
check "its folders leave the tree" wait_until 2 bash -c "! ls '$M/vms' '$M/ctl' | grep -q Test"
check "its state folder is gone" test ! -e "$R/.replicafs/$TV"
check_eq "vmx's overlay is untouched" "$vm_overlay" "$(sha256sum "$R/.replicafs/vmx/"*.overlay)"
check_eq "vmx still reads its write" "$(sha "$T/vm-data.raw")" "$(sha "$M/vms/vmx/data.img")"
check_eq "stop-test without a test VM: 32775" "EPERM" "$(echo DestroySystem | ctl_raw vmx "$M")"
check_eq "test latest from state 5, then stop-test" "OK OK" \
	"$(echo test | ctl_raw vmx "$M") $(echo stop-test | ctl_raw vmx "$M")"
check_eq "revert vmx" "OK" "$(echo revert | ctl_raw vmx "$M")"

check_eq "the replica's bytes never changed" "$replica_before" "$(replica_sums "$R")"
rfs_umount "$M"

# What this test proved, for docs/FAULTS.md (recorded only if every check passed).
fault "\`failover POINT\` with an unknown point, a name with \`/\` or \`..\`, or two points" "write fails \`EINVAL\`, status \`32773 Invalid parameter\`, state 3, no overlay made"
fault "\`test\` while a test VM exists, \`stop-test\` without one" "write fails \`EPERM\`, status \`32775\`; nothing changes"
fault "\`stop-test\` while a loop device holds a test VM's disk" "write fails \`EBUSY\`, status \`32774\`; the test VM and its data stay; works after \`losetup -d\`"
fault "a new recovery point arrives while a VM is failed over to an older one" "listed under \`points/\` within 5 s; the VM stays on its point, across remounts, until \`revert\`"
finish
