#!/usr/bin/env bash
# Extracts the uncompressed vmlinux (an ELF with a Xen PVH entry note) from
# a bzImage, so ember can boot it through PVH and the guest skips its own
# decompressor: on hosts where KVM emulates CPL 0 code at ~1 us an
# instruction, that is minutes of boot time.
#   tests/linux/extract-vmlinux.sh BZIMAGE OUT
set -euo pipefail

in=${1:?usage: extract-vmlinux.sh BZIMAGE OUT}
out=${2:?usage: extract-vmlinux.sh BZIMAGE OUT}

die() {
	echo "extract-vmlinux: $in: $*" >&2
	exit 1
}

# Little-endian unsigned integer of $2 bytes at offset $1.
le() {
	od -An -tu"$2" -j "$1" -N "$2" "$in" | tr -d ' '
}

[ "$(od -An -c -j 0x202 -N 4 "$in" | tr -d ' ')" = HdrS ] || die "not a bzImage (no HdrS)"
setup=$(le $((0x1f1)) 1)
[ "$setup" -eq 0 ] && setup=4
payload_off=$(le $((0x248)) 4)
payload_len=$(le $((0x24c)) 4)
start=$(((setup + 1) * 512 + payload_off))
magic=$(od -An -tx1 -j "$start" -N 6 "$in" | tr -d ' \n')

case $magic in
1f8b*) tool="gzip -dc" ;;
fd377a585a00) tool="xz -dc" ;;
28b52ffd*) tool="zstd -dcq" ;;
02214c18*) tool="lz4 -dc" ;;
425a68*) tool="bzip2 -dc" ;;
5d0000*) tool="xz -dc --format=lzma" ;;
894c5a4f*) tool="lzop -dc" ;;
*) die "unknown payload compression (magic $magic)" ;;
esac

# The payload ends with its 4-byte uncompressed size, which some tools call
# trailing garbage: their status is not trusted, the result's ELF magic is.
tail -c +$((start + 1)) "$in" | head -c "$payload_len" | $tool >"$out.tmp" 2>/dev/null || true
[ "$(od -An -c -N 4 "$out.tmp" | tr -d ' ')" = '177ELF' ] || die "payload (${tool%% *}) did not decompress to an ELF file"
if command -v readelf >/dev/null && ! readelf -n "$out.tmp" | grep -q 'Unknown note type: (0x00000012)\|XEN_ELFNOTE_PHYS32_ENTRY'; then
	die "vmlinux has no PVH entry note (kernel built without CONFIG_PVH)"
fi
mv "$out.tmp" "$out"
