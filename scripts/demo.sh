#!/usr/bin/env bash
# The replicafs story on a built-in demo replica (run as root):
# mount the replica store, fail the VM over, write into its disk through a
# loop device, revert, print the status, show the disk is the replica again.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/scripts/setup.sh" "$top/build" >/dev/null
rfs=$top/build/replicafs

w=$(mktemp -d /tmp/replicafs-demo.XXXXXX)
cleanup() {
	set +e
	mountpoint -q "$w/guest" && umount "$w/guest"
	[ -n "${loop:-}" ] && losetup -d "$loop" 2>/dev/null
	mountpoint -q "$w/mnt" && fusermount3 -u "$w/mnt"
	rm -rf "$w"
}
trap cleanup EXIT
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; eval "$@"; }

# 1. A replica store: one VM whose 64 MiB VHDX disk holds an MBR partition
#    with an ext4 file system and a file, as a replica server would keep it.
mkdir -p "$w/replica/demo-vm" "$w/files" "$w/mnt" "$w/guest"
echo "written on the primary" >"$w/files/hello.txt"
truncate -s 64M "$w/disk.raw"
echo 'start=2048, type=83' | sfdisk -q "$w/disk.raw"
mkfs.ext4 -q -L demo -d "$w/files" "$w/part.raw" 63M
dd if="$w/part.raw" of="$w/disk.raw" bs=1M seek=1 conv=notrunc status=none
qemu-img convert -O vhdx "$w/disk.raw" "$w/replica/demo-vm/system.vhdx"
replica_sum=$(sha256sum <"$w/replica/demo-vm/system.vhdx")

# 2. Mount it: every disk is a raw image, every VM has control files.
run "$rfs" "$w/replica" "$w/mnt"
run ls -l "$w/mnt/vms/demo-vm" "$w/mnt/ctl/demo-vm"
run cat "$w/mnt/ctl/demo-vm/state"
img=$w/mnt/vms/demo-vm/system.img
before=$(sha256sum <"$img")

# 3. Fail over: the disk becomes writable, writes go to the overlay.
run "echo failover > $w/mnt/ctl/demo-vm/control"
run cat "$w/mnt/ctl/demo-vm/status" "$w/mnt/ctl/demo-vm/state"
read -r start sectors < <(partx -g -o START,SECTORS "$img" | head -1)
say losetup -f --show -o $((start * 512)) --sizelimit $((sectors * 512)) "$img"
loop=$(losetup -f --show -o $((start * 512)) --sizelimit $((sectors * 512)) "$img"); echo "$loop"
run mount "$loop" "$w/guest"
run "echo 'written on the replica after failover' > $w/guest/failover.txt"
run ls "$w/guest"
run umount "$w/guest"
run losetup -d "$loop"; loop=
run ls -l "$img"

# 4. Revert: the overlay is discarded, the disk reads as the replica again.
run "echo revert > $w/mnt/ctl/demo-vm/control"
run cat "$w/mnt/ctl/demo-vm/status" "$w/mnt/ctl/demo-vm/state"
after=$(sha256sum <"$img")
say "sha256 of system.img before failover and after revert"
echo "before: $before"; echo "after:  $after"
[ "$before" = "$after" ] && echo "the disk reads exactly as the replica again"
[ "$replica_sum" = "$(sha256sum <"$w/replica/demo-vm/system.vhdx")" ] && echo "the replica file was never written"
run fusermount3 -u "$w/mnt"
