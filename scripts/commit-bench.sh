#!/usr/bin/env bash
# Commit job speed (SPEC §10, issue 13). Not run by CI.
#   scripts/commit-bench.sh            builds release, prints three rows:
#   1. cp of a 1 GiB image's .img (through the mount) to the state folder's
#      file system                                          (the reference)
#   2. commit of that 1 GiB fully allocated disk            (target <= 1.5x row 1)
#   3. commit of a 127 GiB sparse disk holding 1 GiB        (target <= 2x row 2)
# Caches are dropped before each row; the work folder is on /var/tmp (the
# replica and state folder share its file system). RFS_BENCH_MIB=N changes
# the 1 GiB.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/scripts/setup.sh" "$top/build-release" -DCMAKE_BUILD_TYPE=Release -DRFS_TESTS=OFF >/dev/null
bin=$top/build-release/replicafs
mib=${RFS_BENCH_MIB:-1024}
w=$(mktemp -d /var/tmp/rfs-cbench.XXXXXX)
trap 'mountpoint -q "$w/mnt" && fusermount3 -u "$w/mnt"; rm -rf "$w"' EXIT
mkdir -p "$w/replica/dense" "$w/replica/sparse" "$w/mnt"

head -c "${mib}M" /dev/urandom >"$w/dense.raw"
qemu-img convert -q -f raw -O vhdx -o subformat=dynamic "$w/dense.raw" "$w/replica/dense/sys.vhdx"
# 127 GiB virtual, the same bytes in 8 pieces spread over it
truncate -s 127G "$w/sparse.raw"
piece=$((mib / 8))
for k in 0 1 2 3 4 5 6 7; do
	dd if="$w/dense.raw" of="$w/sparse.raw" bs=1M skip=$((k * piece)) seek=$((k * 16 * 1024)) \
		count="$piece" conv=notrunc status=none
done
qemu-img convert -q -f raw -O vhdx -o subformat=dynamic "$w/sparse.raw" "$w/replica/sparse/sys.vhdx"
rm -f "$w/dense.raw" "$w/sparse.raw"

now_ms() { date +%s%3N; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# commit_ms VM: failover, commit, wait for the job's end; prints ms
commit_ms() {
	local t0 st
	echo failover >"$w/mnt/ctl/$1/control"
	drop
	t0=$(now_ms)
	echo commit >"$w/mnt/ctl/$1/control"
	while st=$(sed -n 's/^JobState: //p' "$w/mnt/ctl/$1/job"); [ "$st" = 4 ]; do sleep 0.01; done
	[ "$st" = 7 ] || { echo "commit of $1 ended in JobState $st" >&2; cat "$w/mnt/ctl/$1/job" >&2; exit 1; }
	echo $(($(now_ms) - t0))
}

"$bin" "$w/replica" "$w/mnt"
drop
t0=$(now_ms)
cp "$w/mnt/vms/dense/sys.img" "$w/replica/.replicafs/copy.img"
sync -f "$w/replica/.replicafs/copy.img"
cp_ms=$(($(now_ms) - t0))
rm -f "$w/replica/.replicafs/copy.img"
dense_ms=$(commit_ms dense)
sparse_ms=$(commit_ms sparse)
fusermount3 -u "$w/mnt"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf '%-44s %8s ms\n' "cp of the ${mib} MiB .img (+ sync)" "$cp_ms"
printf '%-44s %8s ms  %sx cp (target 1.5x)\n' "commit, ${mib} MiB fully allocated" "$dense_ms" "$(ratio "$dense_ms" "$cp_ms")"
printf '%-44s %8s ms  %sx the dense commit (target 2x)\n' "commit, 127 GiB sparse holding ${mib} MiB" "$sparse_ms" \
	"$(ratio "$sparse_ms" "$dense_ms")"
