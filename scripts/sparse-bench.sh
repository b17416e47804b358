#!/usr/bin/env bash
# Sparse disks (SPEC §11, issue 14): what SEEK_DATA/SEEK_HOLE save, beside
# vhdimount (libvhdi-utils), which reports no holes. Not run in CI.
#   scripts/sparse-bench.sh        builds release (scripts/setup.sh) unless
#                                  RFS_BIN points at a replicafs binary
# Rows:
#  1. cp of an empty 127 GiB dynamic VHD (qemu-img create -f vpc -o
#     subformat=dynamic, as Hyper-V's default disk): replicafs with
#     --sparse=auto (it follows the holes) against vhdimount with
#     --sparse=always (--sparse=auto would write 127 GiB of zeros there:
#     vhdimount reports the file as fully allocated); a copy through
#     vhdimount that takes longer than RFS_SPARSE_TIMEOUT (600 s) is stopped
#     and its rate extrapolated.
#  2. qemu-img convert -O qcow2 of a 1 GiB dynamic VHDX that is half data
#     (64 MiB of random data every 128 MiB), from each mount.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${RFS_BIN:-}
if [ -z "$bin" ]; then
	bash "$top/scripts/setup.sh" "$top/build-release" -DCMAKE_BUILD_TYPE=Release -DRFS_TESTS=OFF >/dev/null
	bin=$top/build-release/replicafs
fi
limit=${RFS_SPARSE_TIMEOUT:-600}
w=$(mktemp -d /var/tmp/rfs-sparse.XXXXXX)
cleanup() {
	for m in "$w/mnt" "$w/vhdi"; do mountpoint -q "$m" && fusermount3 -u "$m"; done
	rm -rf "$w"
}
trap cleanup EXIT
mkdir -p "$w/replica/vm1" "$w/replica/vm2" "$w/mnt" "$w/vhdi"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
kib() { du -k "$1" | awk '{print $1}'; }
row() { printf '%-58s %10s s  %12s KiB on disk  %s\n' "$1" "$2" "$3" "${4:-}"; }

# --- 1. the empty 127 GiB dynamic VHD ---------------------------------------
qemu-img create -q -f vpc -o subformat=dynamic "$w/replica/vm1/disk.vhd" 127G
"$bin" "$w/replica" "$w/mnt"
img=$w/mnt/vms/vm1/disk.img
size=$(stat -c %s "$img")
echo "disk: $(basename "$img"), $size bytes, $(kib "$w/replica/vm1/disk.vhd") KiB of VHD"
sync; echo 3 >/proc/sys/vm/drop_caches
t0=$(now)
cp --sparse=auto "$img" "$w/copy"
t1=$(now)
row "replicafs: cp --sparse=auto of the 127 GiB empty VHD" "$(secs "$t0" "$t1")" "$(kib "$w/copy")"
cmp -s -n $((64 << 20)) "$img" "$w/copy" || echo "WARNING: the copy differs"
rm -f "$w/copy"

vhdimount "$w/replica/vm1/disk.vhd" "$w/vhdi" >/dev/null
sync; echo 3 >/proc/sys/vm/drop_caches
t0=$(now)
rc=0
timeout "$limit" cp --sparse=always "$w/vhdi/vhdi1" "$w/copy" || rc=$?
t1=$(now)
if [ "$rc" = 124 ]; then
	done_bytes=$(stat -c %s "$w/copy")
	row "vhdimount: cp --sparse=always (stopped at ${limit} s)" "$(secs "$t0" "$t1")" "$(kib "$w/copy")" \
		"$((done_bytes >> 20)) MiB copied; whole disk at that rate: $(awk -v s="$(secs "$t0" "$t1")" \
		-v d="$done_bytes" -v n="$size" 'BEGIN { printf "%.0f s", d ? s * n / d : 0 }')"
else
	row "vhdimount: cp --sparse=always of the same VHD" "$(secs "$t0" "$t1")" "$(kib "$w/copy")"
fi
rm -f "$w/copy"
fusermount3 -u "$w/vhdi"

# --- 2. qemu-img convert of a 1 GiB disk that is half data ------------------
python3 - "$w/half.raw" <<'PY'
import os, sys
with open(sys.argv[1], 'wb') as f:
    f.truncate(1 << 30)
    for k in range(0, 1 << 30, 128 << 20):
        f.seek(k)
        f.write(os.urandom(64 << 20))
PY
qemu-img convert -q -f raw -O vhdx -o subformat=dynamic "$w/half.raw" "$w/replica/vm2/half.vhdx"
rm -f "$w/half.raw"
fusermount3 -u "$w/mnt"
"$bin" "$w/replica" "$w/mnt"
vhdimount "$w/replica/vm2/half.vhdx" "$w/vhdi" >/dev/null
for src in "$w/mnt/vms/vm2/half.img:replicafs" "$w/vhdi/vhdi1:vhdimount"; do
	sync; echo 3 >/proc/sys/vm/drop_caches
	t0=$(now)
	qemu-img convert -f raw -O qcow2 "${src%:*}" "$w/out.qcow2"
	t1=$(now)
	row "${src##*:}: qemu-img convert -O qcow2, 1 GiB half data" "$(secs "$t0" "$t1")" "$(kib "$w/out.qcow2")"
	rm -f "$w/out.qcow2"
done
