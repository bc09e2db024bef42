#!/usr/bin/env bash
# Fetches Debian's cloud kernel and busybox-static with apt-get download and
# unpacks them with dpkg -x under OUT (nothing is installed on the host).
#   tests/linux/fetch.sh OUT
# Leaves OUT/debs/*.deb, OUT/root/ (the unpacked packages) and
# OUT/kernel-release (e.g. 6.1.0-56-cloud-amd64).
set -euo pipefail

out=${1:?usage: fetch.sh OUT}
meta=${EMBER_LINUX_PACKAGE:-linux-image-cloud-amd64}

die() {
	echo "linux-guest: $*" >&2
	exit 1
}

mkdir -p "$out/debs"
rm -rf "$out/root" "$out/debs"/*.deb

# The meta package depends on one versioned image: linux-image-<release>.
versioned() { apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
pkg=$(versioned)
if [ -z "$pkg" ] && [ "$(id -u)" -eq 0 ]; then
	# A fresh machine may have no package lists yet.
	apt-get update -qq >&2 || true
	pkg=$(versioned)
fi
if [ -z "$pkg" ]; then
	die "apt-cache: $meta names no versioned linux-image package (is the package list current? try apt-get update)"
fi
release=${pkg#linux-image-}

# apt-get download works as any user; as root it warns that _apt cannot
# write here, which is harmless.
(cd "$out/debs" && apt-get download -q "$pkg" busybox-static 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2) ||
	die "apt-get download $pkg busybox-static failed"

for deb in "$out"/debs/*.deb; do
	dpkg -x "$deb" "$out/root" || die "dpkg -x $deb failed"
done
# Only boot/, lib/modules/ and bin/busybox are used. The root Makefile
# includes every *.d under the build directory as a dependency file, so
# directories such as etc/kernel/postinst.d must not stay.
find "$out/root" -depth -name '*.d' -exec rm -rf {} +
[ -f "$out/root/boot/vmlinuz-$release" ] || die "$pkg holds no boot/vmlinuz-$release"
[ -x "$out/root/bin/busybox" ] || die "busybox-static holds no bin/busybox"
echo "$release" >"$out/kernel-release"
echo "linux-guest: fetched $pkg and busybox-static into $out/root" >&2
