#!/usr/bin/env bash
# The FUSE floor (issue 17): how fast a file system that does nothing but
# one pread(2) per request serves a disk (scripts/floor/floorfs.c, modelled
# on libfuse's example/hello_ll.c), beside replicafs, xmount and vhdimount, measured
# as ../shared/bench/bench.sh --hot measures: the files in the page cache,
# O_DIRECT on the FUSE file (one request per I/O), fio psync QD1, random
# reads time-based, interleaved repetitions, medians.
#   sudo scripts/floor.sh [path/to/replicafs]      (RFS_FLOOR_REPS=3, RFS_FLOOR_MIB=256, RFS_FLOOR_SECS=5)
# Prints one table: each system's median and its ratio to floorfs (libfuse's
# multi-threaded loop, the default of every daemon here).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
reps=${RFS_FLOOR_REPS:-3} mib=${RFS_FLOOR_MIB:-256} secs=${RFS_FLOOR_SECS:-5}

if (($#)); then
	bin=$1
else
	bash "$top/scripts/setup.sh" "$top/build-release" -DCMAKE_BUILD_TYPE=Release -DRFS_TESTS=OFF >/dev/null
	bin=$top/build-release/replicafs
fi
for t in fio qemu-img gcc pkg-config; do
	command -v "$t" >/dev/null || { echo "floor: $t is missing" >&2; exit 2; }
done

W=$(mktemp -d /var/tmp/rfs-floor.XXXXXX)
MNTS=()
cleanup() {
	for m in "${MNTS[@]}"; do fusermount3 -u "$m" 2>/dev/null || true; done
	rm -rf "$W"
}
trap cleanup EXIT

gcc -O2 -Wall -o "$W/floorfs" "$top/scripts/floor/floorfs.c" $(pkg-config fuse3 --cflags --libs)
mkdir -p "$W/r/vm1" "$W/rv/vm1"
head -c "$((mib << 20))" /dev/urandom >"$W/disk.raw"
qemu-img convert -q -f raw -O vhdx "$W/disk.raw" "$W/r/vm1/disk.vhdx"
qemu-img convert -q -f raw -O vpc -o subformat=dynamic,force_size=on "$W/disk.raw" "$W/rv/vm1/disk.vhd"
qemu-img convert -q -f raw -O vpc -o subformat=fixed,force_size=on "$W/disk.raw" "$W/fixed.vhd"

# mount_sys NAME: mount it, print the file fio reads.
mount_sys() {
	local m=$W/m-$1
	mkdir -p "$m"
	MNTS+=("$m")
	case $1 in
	floorfs) "$W/floorfs" "$W/disk.raw" "$m"; echo "$m/disk.img" ;;
	floorfs-s) "$W/floorfs" "$W/disk.raw" "$m" -s; echo "$m/disk.img" ;;
	replicafs) rm -rf "$W/st1"; mkdir "$W/st1"; "$bin" --state="$W/st1" "$W/r" "$m"; echo "$m/vms/vm1/disk.img" ;;
	replicafs-vhd) rm -rf "$W/st2"; mkdir "$W/st2"; "$bin" --state="$W/st2" "$W/rv" "$m"; echo "$m/vms/vm1/disk.img" ;;
	replicafs-s-poll) rm -rf "$W/st3"; mkdir "$W/st3"; "$bin" -s --poll=32 --state="$W/st3" "$W/r" "$m"; echo "$m/vms/vm1/disk.img" ;;
	vhdimount) vhdimount "$W/r/vm1/disk.vhdx" "$m" >/dev/null; echo "$m/vhdi1" ;;
	xmount) xmount --in raw "$W/fixed.vhd" --out raw --sizelimit "$((mib << 20))" --cache "$W/xm.cache" "$m" >/dev/null
		echo "$m/fixed.dd" ;;
	esac
}
umount_sys() { fusermount3 -u "$W/m-$1"; rm -f "$W/xm.cache"; }

# fio_job FILE METRIC: the job's IOPS (random) or MiB/s (seq-read).
fio_job() {
	local f=$1 common=(--ioengine=psync --direct=1 --invalidate=0 --randrepeat=1 --output-format=terse --terse-version=3)
	case $2 in
	rand-read-4k) fio --name=j --filename="$f" --rw=randread --bs=4k --time_based --runtime="$secs" "${common[@]}" |
		awk -F';' '{print $8}' ;;
	rand-read-4k-j4) fio --name=j --filename="$f" --rw=randread --bs=4k --time_based --runtime="$secs" --numjobs=4 \
		--size="$((mib / 4))M" --offset_increment="$((mib / 4))M" --group_reporting "${common[@]}" | awk -F';' '{print $8}' ;;
	seq-read) fio --name=j --filename="$f" --rw=read --bs=1M --loops=4 "${common[@]}" | awk -F';' '{printf "%.0f\n", $7 / 1024}' ;;
	esac
}

systems=(floorfs floorfs-s replicafs replicafs-vhd replicafs-s-poll)
command -v xmount >/dev/null && systems+=(xmount)
command -v vhdimount >/dev/null && systems+=(vhdimount)
metrics=(rand-read-4k rand-read-4k-j4 seq-read)
declare -A vals
for ((rep = 0; rep < reps; rep++)); do
	n=${#systems[@]}
	for ((k = 0; k < n; k++)); do
		s=${systems[$(((k + rep) % n))]}
		cat "$W/disk.raw" "$W/r/vm1/disk.vhdx" "$W/rv/vm1/disk.vhd" "$W/fixed.vhd" >/dev/null
		f=$(mount_sys "$s")
		for m in "${metrics[@]}"; do
			v=$(fio_job "$f" "$m")
			vals[$s,$m]="${vals[$s,$m]:-} $v"
			echo "floor: rep $((rep + 1)) $s $m $v" >&2
		done
		umount_sys "$s"
	done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
printf '%-18s' system; for m in "${metrics[@]}"; do printf '%22s' "$m"; done; echo
for s in "${systems[@]}"; do
	printf '%-18s' "$s"
	for m in "${metrics[@]}"; do
		v=$(median <<<"${vals[$s,$m]}") base=$(median <<<"${vals[floorfs,$m]}")
		printf '%14s (%5.2fx)' "$v" "$(awk -v a="$v" -v b="$base" 'BEGIN {print b ? a / b : 0}')"
	done
	echo
done
echo "(ratios to floorfs; rand-read in IOPS, seq-read in MiB/s; ${mib} MiB image, ${reps} reps, files cached)"
