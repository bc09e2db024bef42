#!/usr/bin/env bash
# Builds ember's Linux test initramfs from the unpacked packages fetch.sh left:
# busybox, the modules virtio_pci, virtio_blk, virtio_net and the virtio vsock
# transport with everything they depend on, and tests/linux/init.
#   tests/linux/mkinitramfs.sh DIR OUT.cpio   (DIR: fetch.sh's OUT)
# The archive is not compressed: on hosts where KVM emulates CPL 0 the
# kernel's own gunzip of it would cost about a minute of boot.
set -euo pipefail

dir=${1:?usage: mkinitramfs.sh DIR OUT}
out=${2:?usage: mkinitramfs.sh DIR OUT}
here=$(cd "$(dirname "$0")" && pwd)
release=$(cat "$dir/kernel-release")
root=$dir/root
mods=$root/lib/modules/$release
stage=$dir/initramfs
wanted="virtio_pci virtio_blk virtio_net vmw_vsock_virtio_transport"

die() {
	echo "mkinitramfs: $*" >&2
	exit 1
}

PATH=$PATH:/sbin:/usr/sbin
command -v depmod >/dev/null || die "depmod not found (Debian package kmod)"
command -v cpio >/dev/null || die "cpio not found (Debian package cpio)"

# The package ships no modules.dep (its postinst makes it): make one here.
depmod -b "$root" "$release" || die "depmod -b $root $release failed"

rm -rf "$stage"
mkdir -p "$stage"/{bin,sbin,proc,sys,dev,tmp,etc,root} "$stage/lib/modules/$release"
cp "$root/bin/busybox" "$stage/bin/busybox"
install -m 0755 "$here/init" "$stage/init"

# Each wanted module and, transitively, what modules.dep says it needs.
declare -A seen=()
queue=()
for m in $wanted; do
	path=$(awk -F: -v m="/${m}.ko" 'index($1, m) && substr($1, length($1) - length(m) + 1) == m {print $1; exit}' "$mods/modules.dep")
	[ -n "$path" ] || die "module $m is not in $release (built in, or renamed?)"
	queue+=("$path")
done
while [ ${#queue[@]} -gt 0 ]; do
	path=${queue[0]}
	queue=("${queue[@]:1}")
	[ -n "${seen[$path]:-}" ] && continue
	seen[$path]=1
	mkdir -p "$stage/lib/modules/$release/$(dirname "$path")"
	cp "$mods/$path" "$stage/lib/modules/$release/$path"
	for dep in $(awk -F: -v p="$path" '$1 == p {print $2}' "$mods/modules.dep"); do
		queue+=("$dep")
	done
done
cp "$mods/modules.builtin" "$mods/modules.order" "$stage/lib/modules/$release/"
[ -f "$mods/modules.builtin.modinfo" ] && cp "$mods/modules.builtin.modinfo" "$stage/lib/modules/$release/"
depmod -b "$stage" "$release" || die "depmod of the initramfs modules failed"

# Sorted names and fixed times: the same inputs give the same archive.
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible) \
	>"$out.tmp"
mv "$out.tmp" "$out"
echo "mkinitramfs: $out: busybox, ${#seen[@]} modules, init" >&2
