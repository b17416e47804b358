#!/usr/bin/env bash
# Install what replicafs needs on Debian 12 (as root) and build it.
#   scripts/setup.sh [BUILD_DIR] [extra cmake args...]
# Default build dir: build/ (RelWithDebInfo).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
shift || true

PKGS=(build-essential cmake pkg-config libfuse3-dev fuse3 libvhdi-dev libvhdi-utils libblkid-dev
      libcmocka-dev qemu-utils ntfs-3g e2fsprogs dosfstools fdisk fio xz-utils util-linux util-linux-extra mount less
      libglib2.0-bin shared-mime-info groff-base valgrind cppcheck clang libclang-rt-14-dev python3 procps psmisc
      debhelper dpkg-dev lintian)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "setup: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q "${missing[@]}"
fi
[ -e /dev/fuse ] || modprobe fuse 2>/dev/null || true

cmake -S "$top" -B "$build" "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
