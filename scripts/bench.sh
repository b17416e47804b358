#!/usr/bin/env bash
# Performance: build replicafs in release mode and measure it beside its peers.
#   scripts/bench.sh [bench.sh options...]   e.g. --quick, --reps 3
# With the team's harness (../shared/bench/bench.sh, or $RFS_BENCH) this runs
# it with --replicafs; without it, a reduced side-by-side run of our own
# (raw file vs replicafs, same fio jobs) is printed instead.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/scripts/setup.sh" "$top/build-release" -DCMAKE_BUILD_TYPE=Release -DRFS_TESTS=OFF >/dev/null
bin=$top/build-release/replicafs
harness=${RFS_BENCH:-$top/../shared/bench/bench.sh}
if [ -x "$harness" ]; then
	exec "$harness" --replicafs "$bin" --out "$top/build-release/bench-$(date +%Y%m%d-%H%M%S).tsv" "$@"
fi

echo "bench: $harness not found; running the project's reduced benchmark"
w=$(mktemp -d /var/tmp/rfs-bench.XXXXXX)
trap 'mountpoint -q "$w/mnt" && fusermount3 -u "$w/mnt"; rm -rf "$w"' EXIT
size=${RFS_BENCH_MIB:-512}
mkdir -p "$w/replica/vm1" "$w/mnt"
head -c "${size}M" /dev/urandom >"$w/disk.raw"
qemu-img convert -q -f raw -O vhdx "$w/disk.raw" "$w/replica/vm1/disk.vhdx"
job() { # job NAME FILE fio-args...
	local name=$1 file=$2; shift 2
	sync; echo 3 >/proc/sys/vm/drop_caches
	fio --name="$name" --filename="$file" --ioengine=psync --output-format=terse --terse-version=3 "$@" |
		awk -F';' '{printf "%-22s read %8.0f IOPS %8.1f MiB/s  write %8.0f IOPS %8.1f MiB/s\n", $3, $8, $7/1024, $49, $48/1024}'
}
for sys in raw replicafs; do
	if [ "$sys" = raw ]; then f=$w/disk.raw; d=0; else "$bin" "$w/replica" "$w/mnt"; f=$w/mnt/vms/vm1/disk.img; d=1; fi
	echo "== $sys"
	job seq-read "$f" --rw=read --bs=1M --direct=$d
	job rand-read-4k "$f" --rw=randread --bs=4k --io_size=$((size / 4))M --direct=$d
	if [ "$sys" = replicafs ]; then
		echo failover >"$w/mnt/ctl/vm1/control"
		job seq-write "$f" --rw=write --bs=1M --end_fsync=1 --direct=1
		echo revert >"$w/mnt/ctl/vm1/control"
		fusermount3 -u "$w/mnt"
	fi
done
