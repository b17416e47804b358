#!/usr/bin/env bash
# The Debian package, as an admin uses it (as root, on Debian 12):
#   1. build it with dpkg-buildpackage from a copy of the tree (the checkout
#      stays as it was), check it with lintian;
#   2. apt-get install ./replicafs_*.deb (its dependencies resolve);
#   3. mount a demo store through an /etc/fstab line (state= given) with
#      `mount MOUNTPOINT`, and once more with `mount -t fuse.replicafs`:
#      mount.fuse3 finds /usr/bin/replicafs on the PATH; a failover, a write
#      and a revert with their status, the log in STATE/replicafs.log when no
#      syslog listens; umount; the replica's bytes never changed;
#   4. systemd-analyze verify on the unit template (where systemd is);
#   5. the fstab line goes, apt-get purge replicafs.
# Prints "ok:"/"FAIL:" lines and "N passed, N failed"; exit 1 on a failure.
#   scripts/package-test.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "FAIL: package-test.sh needs root (apt-get, mount)"; exit 1; }

T=$(mktemp -d /tmp/rfs-pkg.XXXXXX)
MARK="# replicafs package-test $T"
NPASS=0 NFAIL=0
pass() { echo "ok: $*"; NPASS=$((NPASS + 1)); }
fail() { echo "FAIL: $*"; NFAIL=$((NFAIL + 1)); }
check() { local d=$1; shift; if "$@"; then pass "$d"; else fail "$d"; fi; }
check_eq() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected '$2', got '$3'"; fi; }
# The PATH mount(8) gives mount.fuse3: no build folder in it.
sys() { env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

cleanup() {
	local rc=$?
	set +e
	grep -qF " $T/mnt " /proc/self/mounts && umount "$T/mnt"
	if grep -qF "$T" /etc/fstab; then
		grep -vF "$T" /etc/fstab >"$T/fstab" && cat "$T/fstab" >/etc/fstab
	fi
	dpkg-query -W -f='${Status}' replicafs 2>/dev/null | grep -q 'install ok' &&
		DEBIAN_FRONTEND=noninteractive apt-get purge -y -q replicafs >/dev/null
	rm -rf "$T"
	exit "$rc"
}
trap cleanup EXIT

# wait_gone PID: poll (deadline 30 s) until the daemon has exited.
wait_gone() {
	local i
	for ((i = 0; i < 300; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		[ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" = Z ] && return 0
		sleep 0.1
	done
	return 1
}

# --- 1. build ---------------------------------------------------------------
mkdir -p "$T/src"
tar -C "$top" --exclude='./build*' --exclude=./.git --exclude=./obj-\* -cf - . | tar -C "$T/src" -xf -
if (cd "$T/src" && dpkg-buildpackage -b -us -uc) >"$T/build.log" 2>&1; then
	pass "dpkg-buildpackage -b builds the package"
else
	tail -30 "$T/build.log"; fail "dpkg-buildpackage -b builds the package"; exit 1
fi
deb=$(ls "$T"/replicafs_*.deb)
check "built with the distribution's hardening flags (-D_FORTIFY_SOURCE, -z now)" \
	bash -c "grep -q -- '-D_FORTIFY_SOURCE=2' '$T/build.log' && grep -q -- '-z,now' '$T/build.log'"
if command -v lintian >/dev/null; then
	lint=$(lintian --fail-on error,warning "$T"/replicafs_*.changes 2>&1 | grep -v '^running with root privileges' || true)
	check_eq "lintian: no error, no warning" "" "$lint"
fi
dpkg-deb -c "$deb" >"$T/contents"
for f in usr/bin/replicafs usr/share/man/man1/replicafs.1.gz lib/systemd/system/replicafs@.service \
	usr/share/doc/replicafs/examples/replicafs.conf; do
	check "the package holds /$f" grep -q " \./$f\$" "$T/contents"
done

# --- 2. install ---------------------------------------------------------------
if (cd "$T" && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "./$(basename "$deb")") >"$T/apt.log" 2>&1; then
	pass "apt-get install ./replicafs_*.deb"
else
	tail -20 "$T/apt.log"; fail "apt-get install ./replicafs_*.deb"; exit 1
fi
check "installed: /usr/bin/replicafs runs" bash -c "/usr/bin/replicafs --version | grep -q '^replicafs '"
check "installed: the man page is found" test -f /usr/share/man/man1/replicafs.1.gz

# --- 3. mount through /etc/fstab ----------------------------------------------
R=$T/replica M=$T/mnt S=$T/state
mkdir -p "$R/vm1" "$M"
head -c 4M /dev/urandom >"$T/sys.raw"
qemu-img convert -q -f raw -O vhdx "$T/sys.raw" "$R/vm1/sys.vhdx"
before=$(sha256sum "$R/vm1/sys.vhdx")
# The line (and the comment before it) hold $T: cleanup removes them by it.
printf '%s\n%s %s fuse.replicafs state=%s,noauto 0 0\n' "$MARK" "$R" "$M" "$S" >>/etc/fstab
sys mount "$M"
check "mount MOUNTPOINT: mounted as fuse.replicafs" bash -c "grep -qE '^replicafs:$R $M fuse\.replicafs ' /proc/self/mounts"
check "mount MOUNTPOINT: state= made the state folder" test -d "$S/vm1"
check "the disk reads as the raw image" cmp -s "$M/vms/vm1/sys.img" "$T/sys.raw"
pid=$(pgrep -f "^replicafs $R $M" | head -1)
check "the daemon is /usr/bin/replicafs" bash -c "[ -n '$pid' ] && [ \"\$(readlink /proc/$pid/exe)\" = /usr/bin/replicafs ]"
echo failover >"$M/ctl/vm1/control"
check_eq "failover: status" "0 Completed with No Error" "$(cat "$M/ctl/vm1/status")"
check_eq "failover: state 5 (Failed over)" 5 "$(cut -d' ' -f1 "$M/ctl/vm1/state")"
dd if=/dev/zero of="$M/vms/vm1/sys.img" bs=64k count=4 seek=3 conv=notrunc,fsync status=none
check "write: lands on the disk" bash -c "! cmp -s '$M/vms/vm1/sys.img' '$T/sys.raw'"
echo revert >"$M/ctl/vm1/control"
check_eq "revert: status" "0 Completed with No Error" "$(cat "$M/ctl/vm1/status")"
check_eq "revert: state 3 (Replicating)" 3 "$(cut -d' ' -f1 "$M/ctl/vm1/state")"
check "revert: the disk is the replica again" cmp -s "$M/vms/vm1/sys.img" "$T/sys.raw"
if ! python3 -c 'import socket; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).connect("/dev/log")' 2>/dev/null; then
	check "no syslog: the commands are in STATE/replicafs.log" \
		grep -q "INFO: vm1: revert: 0 Completed with No Error (state 5 -> 3)" "$S/replicafs.log"
fi
umount "$M"
check "umount: unmounted" bash -c "! grep -qF ' $M ' /proc/self/mounts"
check "umount: the daemon exits" wait_gone "$pid"

# The same without fstab: mount -t fuse.replicafs (mount.fuse3 runs
# replicafs from the PATH, /usr/bin).
sys mount -t fuse.replicafs -o "state=$S" "$R" "$M"
check "mount -t fuse.replicafs: serves the disk" cmp -s "$M/vms/vm1/sys.img" "$T/sys.raw"
pid=$(pgrep -f "^replicafs $R $M" | head -1)
umount "$M"
check "mount -t fuse.replicafs: umount, the daemon exits" wait_gone "$pid"
check_eq "the replica never changed" "$before" "$(sha256sum "$R/vm1/sys.vhdx")"

# --- 4. the systemd unit ----------------------------------------------------------
if command -v systemd-analyze >/dev/null; then
	# A template is verified through an instance; its EnvironmentFile must exist.
	mkdir -p /etc/replicafs
	inst=$(systemd-escape -p "$M")
	printf 'REPLICA_DIR=%s\nOPTIONS=--state=%s\n' "$R" "$S" >"/etc/replicafs/$inst.conf"
	cp /lib/systemd/system/replicafs@.service "$T/replicafs@$inst.service"
	manopt=() # Documentation=man:replicafs(1) is checked with man(1) where it is
	command -v man >/dev/null || manopt=(--man=no)
	out=$(systemd-analyze verify "${manopt[@]}" "$T/replicafs@$inst.service" 2>&1 || true)
	rm -f "/etc/replicafs/$inst.conf"
	check_eq "systemd-analyze verify replicafs@.service: nothing to say" "" "$out"
fi

# --- 5. remove --------------------------------------------------------------------
grep -vF "$T" /etc/fstab >"$T/fstab" && cat "$T/fstab" >/etc/fstab
check "the fstab line is gone" bash -c "! grep -qF '$T' /etc/fstab"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q replicafs >"$T/apt.log" 2>&1
check "apt-get purge replicafs: the program is gone" test ! -e /usr/bin/replicafs
check "apt-get purge replicafs: the unit is gone" test ! -e /lib/systemd/system/replicafs@.service

echo "$NPASS passed, $NFAIL failed"
[ "$NFAIL" -eq 0 ]
