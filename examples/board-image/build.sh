#!/usr/bin/env sh
# Build the demo board's image from Debian packages only: a kernel from
# linux-image-*-cloud-amd64 and busybox-static. Into DIR (default
# ~/.cache/jumpwire/board) it writes:
#   vmlinuz      the kernel (the board's "boot ROM" loads it)
#   initrd.img   a tiny initramfs: loads the virtio modules, mounts /dev/vda
#   disk.img     an ext4 root file system (busybox, a login on ttyS0, an HTTP
#                service on port 80): what the tour flashes onto the board
#   disk.img.gz  the same, compressed
# Nothing is built as root; packages are fetched with apt-get download.
set -eu
dir=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/jumpwire/board}
stamp="$dir/.built-v2"
if [ -f "$stamp" ] && [ -f "$dir/disk.img.gz" ]; then
	echo "board image: up to date in $dir"
	exit 0
fi
say() { printf '%s\n' "board image: $*"; }
for tool in apt-get apt-cache dpkg-deb cpio gzip mke2fs; do
	command -v "$tool" >/dev/null || { echo "board image: $tool is missing (apt-get install cpio e2fsprogs)" >&2; exit 1; }
done

mkdir -p "$dir"
work=$(mktemp -d "$dir/.build-XXXXXX")
trap 'rm -rf "$work"' EXIT

kernel_package() { apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
kpkg=$(kernel_package)
if [ -z "$kpkg" ]; then
	# A fresh system has no package lists yet.
	if [ "$(id -u)" = 0 ]; then
		apt-get update -qq
	elif command -v sudo >/dev/null; then
		sudo apt-get update -qq
	fi
	kpkg=$(kernel_package)
fi
if [ -z "$kpkg" ]; then
	echo "board image: apt knows no linux-image-cloud-amd64; run apt-get update" >&2
	exit 1
fi
say "[1/4] downloading $kpkg and busybox-static (about 28 MB; the first build takes a minute)"
(cd "$work" && apt-get download "$kpkg" busybox-static 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
ls "$work"/linux-image-*.deb "$work"/busybox-static_*.deb >/dev/null

say "[2/4] unpacking"
dpkg-deb -x "$work"/linux-image-*.deb "$work/kernel"
dpkg-deb -x "$work"/busybox-static_*.deb "$work/busybox"
bb="$work/busybox/bin/busybox"
cp "$work"/kernel/boot/vmlinuz-* "$work/vmlinuz"
kmods=$(echo "$work"/kernel/lib/modules/*/kernel)

say "[3/4] initramfs"
ir="$work/initramfs"
mkdir -p "$ir/bin" "$ir/lib/modules" "$ir/proc" "$ir/sys" "$ir/dev" "$ir/newroot"
cp "$bb" "$ir/bin/busybox"
modules="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk failover net_failover virtio_net"
for m in $modules; do
	f=$(find "$kmods" -name "$m.ko" | head -n 1)
	[ -n "$f" ] || { echo "board image: module $m.ko is not in $kpkg" >&2; exit 1; }
	cp "$f" "$ir/lib/modules/"
done
cat >"$ir/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $modules; do insmod /lib/modules/\$m.ko; done
i=0
while [ ! -b /dev/vda ] && [ \$i -lt 50 ]; do sleep 0.1; i=\$((i + 1)); done
if ! mount -t ext4 /dev/vda /newroot; then
	echo "init: no root file system on /dev/vda: flash the board's disk"
	exec sh
fi
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
INIT
chmod 755 "$ir/init"
(cd "$ir" && find . | cpio -o -H newc --quiet | gzip -9) >"$work/initrd.img"

say "[4/4] root file system"
rf="$work/rootfs"
mkdir -p "$rf/bin" "$rf/sbin" "$rf/etc/init.d" "$rf/proc" "$rf/sys" "$rf/dev" "$rf/tmp" "$rf/root" "$rf/www" "$rf/var/log"
cp "$bb" "$rf/bin/busybox"
for applet in $("$bb" --list); do
	[ "$applet" = busybox ] || ln -sf busybox "$rf/bin/$applet"
done
ln -sf ../bin/busybox "$rf/sbin/init"
cat >"$rf/etc/inittab" <<'TAB'
::sysinit:/etc/init.d/rcS
ttyS0::respawn:/bin/getty -L 0 ttyS0 vt100
::ctrlaltdel:/bin/reboot
::shutdown:/bin/umount -a -r
TAB
cat >"$rf/etc/init.d/rcS" <<'RCS'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp
hostname -F /etc/hostname
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
httpd -p 80 -h /www
echo "board: up; HTTP on port 80"
RCS
chmod 755 "$rf/etc/init.d/rcS"
echo board >"$rf/etc/hostname"
echo 'root::0:0:root:/root:/bin/sh' >"$rf/etc/passwd"
echo 'root:x:0:' >"$rf/etc/group"
printf 'Welcome to the jumpwire demo board (busybox on Debian'"'"'s %s).\n' "$kpkg" >"$rf/etc/motd"
echo 'export PS1="root@\\h:\\w# "' >"$rf/etc/profile"
printf '<h1>Hello from the jumpwire demo board</h1>\n' >"$rf/www/index.html"
mke2fs -q -t ext4 -L board -E root_owner=0:0 -d "$rf" "$work/disk.img" 32M >/dev/null
gzip -9 -k "$work/disk.img"

mv "$work/vmlinuz" "$work/initrd.img" "$work/disk.img" "$work/disk.img.gz" "$dir/"
echo "$kpkg" >"$stamp"
say "done: $dir/{vmlinuz,initrd.img,disk.img,disk.img.gz}"
