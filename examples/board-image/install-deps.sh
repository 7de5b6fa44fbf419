#!/usr/bin/env sh
# Install, with apt-get, what the demo board needs and is missing: qemu to run
# it, cpio and e2fsprogs to build its image. Uses sudo when not root.
set -eu
need=
command -v qemu-system-x86_64 >/dev/null || need="$need qemu-system-x86"
command -v cpio >/dev/null || need="$need cpio"
command -v mke2fs >/dev/null || need="$need e2fsprogs"
[ -z "$need" ] && exit 0
if ! command -v apt-get >/dev/null; then
	echo "board: please install$need (no apt-get here)" >&2
	exit 1
fi
sudo=
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null || { echo "board: as root, run: apt-get install$need" >&2; exit 1; }
	sudo=sudo
fi
echo "board: installing$need with apt-get"
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
