#!/usr/bin/env bash
# scripts/screenshot.sh [BUILD_DIR [OUT_DIR]]: what GNOME Files shows on a
# replicafs mount (issue 18), as pictures. Not run in CI (it needs an X
# server and the GNOME stack): run it as root on a desktop-less machine with
#   apt-get install --no-install-recommends xvfb nautilus x11-apps xdotool dbus-x11 netpbm
# It mounts a demo store (a healthy VM and one with a truncated disk),
# starts Xvfb and nautilus, and saves in OUT_DIR (default ./screenshots):
#   vm-folder.png    vms/demo-vm: the disk, "Raw disk image"
#   disk-menu.png    the context menu of the disk (no Delete, Rename, Cut, ...)
#   ctl-folder.png   ctl/demo-vm after a failover: Modified shows when
#   broken-ctl.png   ctl/broken: its errors file, not empty (why its disk is not served)
# Known: in a bare container (no desktop session), nautilus 43 may stay on
# "Loading..." for any FUSE mount (seen with replicafs before issue 18 too);
# the pictures are then of empty windows. On a desktop it lists at once.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
out=$(realpath -m "${2:-screenshots}")
rfs=$build/replicafs
for tool in Xvfb nautilus xwd xdotool dbus-run-session xwdtopnm pnmtopng qemu-img; do
	command -v "$tool" >/dev/null || { echo "screenshot.sh: $tool is missing (see the header)" >&2; exit 1; }
done
[ -x "$rfs" ] || { echo "screenshot.sh: $rfs is missing: build first" >&2; exit 1; }

w=$(mktemp -d /tmp/replicafs-shot.XXXXXX)
xpid= npid=
cleanup() {
	set +e
	[ -n "$npid" ] && kill "$npid" 2>/dev/null && wait "$npid" 2>/dev/null
	[ -n "$xpid" ] && kill "$xpid" 2>/dev/null && wait "$xpid" 2>/dev/null
	# the session services D-Bus started for nautilus (gvfsd, tracker, ...):
	# ours are those with our private XDG_RUNTIME_DIR
	for p in $(pgrep -u "$(id -u)"); do
		{ tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null | grep -qxF "XDG_RUNTIME_DIR=$w/run" && kill "$p"
	done
	mountpoint -q "$w/mnt" && fusermount3 -u "$w/mnt"
	rm -rf "$w"
}
trap cleanup EXIT

# wait_for SECONDS COMMAND...: poll COMMAND until it succeeds, with a deadline.
wait_for() {
	local end=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $end ] || { echo "screenshot.sh: timed out waiting for: $*" >&2; return 1; }
		sleep 0.2
	done
}

# A store: demo-vm (a 64 MiB VHDX), broken (a VHDX cut in half).
mkdir -p "$w/replica/demo-vm" "$w/replica/broken" "$w/mnt" "$out"
head -c 64M /dev/urandom >"$w/disk.raw"
qemu-img convert -q -f raw -O vhdx "$w/disk.raw" "$w/replica/demo-vm/system.vhdx"
qemu-img convert -q -f raw -O vhdx "$w/disk.raw" "$w/replica/broken/data.vhdx"
truncate -s $(($(stat -c %s "$w/replica/broken/data.vhdx") / 2)) "$w/replica/broken/data.vhdx"
"$rfs" "$w/replica" "$w/mnt" 2>/dev/null

export DISPLAY=:77 XDG_RUNTIME_DIR=$w/run NO_AT_BRIDGE=1 GTK_A11Y=none
mkdir -m 700 "$w/run"
Xvfb "$DISPLAY" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
xpid=$!
wait_for 20 xdotool getdisplaygeometry

# shot NAME: the whole screen as OUT_DIR/NAME.png.
shot() { xwd -root -silent | xwdtopnm 2>/dev/null | pnmtopng >"$out/$1.png"; echo "saved $out/$1.png"; }
# browse PATH: a nautilus window on PATH, in front.
browse() {
	if [ -n "$npid" ]; then kill "$npid" 2>/dev/null; wait "$npid" 2>/dev/null || true; fi
	dbus-run-session -- nautilus --new-window "$1" >/dev/null 2>&1 &
	npid=$!
	wait_for 30 xdotool search --onlyvisible --class org.gnome.Nautilus
	win=$(xdotool search --onlyvisible --class org.gnome.Nautilus | tail -1)
	xdotool windowsize "$win" 1200 720 windowmove "$win" 40 40 windowactivate --sync "$win" 2>/dev/null || true
	# the listing is read asynchronously: wait until nautilus has read the folder
	wait_for 20 bash -c "ls '$1' >/dev/null"
	sleep 3 # rendering only: nothing to poll for (not a test)
}

browse "$w/mnt/vms/demo-vm"
shot vm-folder
xdotool key --clearmodifiers ctrl+a # select the disk
sleep 0.5
xdotool key --clearmodifiers shift+F10 # its context menu
sleep 1
shot disk-menu
xdotool key Escape

echo failover >"$w/mnt/ctl/demo-vm/control"
browse "$w/mnt/ctl/demo-vm"
shot ctl-folder

browse "$w/mnt/ctl/broken"
shot broken-ctl
echo "errors of the broken VM: $(cat "$w/mnt/ctl/broken/errors")"
echo revert >"$w/mnt/ctl/demo-vm/control"
