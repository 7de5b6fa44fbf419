#!/usr/bin/env sh
# A tour of jumpwire on a real (virtual) board: start a local exporter for a
# QEMU board, flash the board's disk image through the storage driver, power
# the board on, watch it boot on its serial console, log in, and reach the
# HTTP service inside it. In a terminal it then leaves you in a shell wired to
# the same exporter, with the board still running. `make demo` runs this after
# `make image`.
#
# Each run has its own state directory and ports: tours run side by side.
set -eu
image=${BOARD_IMAGE:?set BOARD_IMAGE to the directory make image built}
template=${1:-examples/qemu-board.yaml}
for f in vmlinuz initrd.img disk.img.gz; do
	[ -f "$image/$f" ] || { echo "tour: $image/$f is missing: run make image" >&2; exit 1; }
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/jumpwire-board.XXXXXX")
# Only this run's own directory is removed, once its exporter is gone.
trap 'rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM
sed -e "s|BOARD_DIR|$dir|g" -e "s|BOARD_IMAGE|$image|g" "$template" >"$dir/exporter.yaml"

export TOUR_IMAGE="$image" TOUR_DIR="$dir"
if [ -t 0 ] && [ -t 1 ]; then export TOUR_INTERACTIVE=1; fi
jw shell -c "$dir/exporter.yaml" -- sh -eu -c '
if [ -t 1 ]; then b=$(printf "\033[1m"); n=$(printf "\033[0m"); else b=; n=; fi
step() { printf "\n%s\$ %s%s\n" "$b" "$*" "$n"; "$@"; }
say() { printf "\n%s# %s%s\n" "$b" "$*" "$n"; }
step jw tree
say "Flash the board image (gzip; the driver decompresses it) onto the board disk"
step jw flash board.flasher "$TOUR_IMAGE/disk.img.gz"
step jw host disk-sha256
step jw board.power on
say "The board boots on its serial console (this ends after 4 quiet seconds)"
step sh -c "jw pipe --idle 4s board.console </dev/null"
say "Log in as root and look around"
step sh -c "(printf \"root\\r\"; sleep 1; printf \"cat /etc/motd; uname -sr; ip -4 addr show eth0 | grep inet\\r\"; sleep 1) | jw pipe --idle 2s board.console | tail -n 6"
say "The HTTP service inside the board, through the exporter"
step sh -c "printf \"GET / HTTP/1.0\\r\\n\\r\\n\" | jw pipe board.web"
step jw board.power status
if [ -n "${TOUR_INTERACTIVE:-}" ]; then
	printf "\nNow a shell wired to the exporter, with the board running. Try:\n"
	printf "  jw board console             the serial console (leave with Ctrl-B three times)\n"
	printf "  jw forward tcp 8080 board.web, then open http://127.0.0.1:8080/\n"
	printf "  jw board.power off / on, jw flash board.flasher %s/disk.img.gz\n" "$TOUR_IMAGE"
	printf "Leave with exit (the board powers off).\n"
	exec "${SHELL:-sh}" -i
fi
'
