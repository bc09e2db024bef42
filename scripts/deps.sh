#!/usr/bin/env bash
# Installs the Debian packages ember builds and tests with, when missing.
# Called by `make` (through build/.deps) and by .ci/run; idempotent.
set -euo pipefail

PKGS=(
	build-essential pkg-config
	libcriterion-dev   # unit and VM tests
	acpica-tools       # iasl: checks ember's ACPI tables in the unit tests
	clang lld          # test guests are freestanding; fuzz targets (libFuzzer)
	qemu-system-x86    # the peer in bench/
	hyperfine          # bench/ timing
	fio                # bench/virtio.sh: the host's own block I/O, the peer
	cpio kmod lz4      # tests/linux: initramfs (cpio, depmod), vmlinux out of the bzImage
	liburing-dev       # virtio-blk I/O
)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
