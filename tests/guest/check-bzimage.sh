#!/bin/sh
# Checks the boot-protocol fields of bzimage-guest, independently of
# mkbzimage: usage: check-bzimage.sh BZIMAGE PVH-ELF
set -eu
bz=$1
elf=$2
fails=0

u() { # u OFFSET SIZE: unsigned little-endian integer at OFFSET
	od -An -j "$1" -N "$2" -t "u$2" --endian=little "$bz" | tr -d ' '
}
expect() { # expect NAME ACTUAL WANT
	if [ "$2" = "$3" ]; then
		echo "ok   $1 = $2"
	else
		echo "FAIL $1 = $2, want $3"
		fails=$((fails + 1))
	fi
}
hex() { printf '%d' "$1"; }

setup_sects=$(u $((0x1f1)) 1)
payload_off=$(((setup_sects + 1) * 512))
size=$(wc -c <"$bz")
expect boot_flag "$(u $((0x1fe)) 2)" "$(hex 0xaa55)"
expect header "$(dd if="$bz" bs=1 skip=$((0x202)) count=4 2>/dev/null)" HdrS
expect version "$(u $((0x206)) 2)" "$(hex 0x020f)"
expect setup_sects "$setup_sects" 1
expect loadflags.LOADED_HIGH "$(($(u $((0x211)) 1) & 1))" 1
expect code32_start "$(u $((0x214)) 4)" "$(hex 0x100000)"
expect kernel_alignment "$(u $((0x230)) 4)" "$(hex 0x100000)"
expect relocatable_kernel "$(u $((0x234)) 1)" 0
expect xloadflags.XLF_KERNEL_64 "$(($(u $((0x236)) 2) & 1))" 1
expect cmdline_size "$(u $((0x238)) 4)" 4095
expect initrd_addr_max "$(u $((0x22c)) 4)" "$(hex 0x7fffffff)"
expect pref_address "$(u $((0x258)) 8)" "$(hex 0x100000)"
expect syssize "$(u $((0x1f4)) 4)" $(((size - payload_off) / 16))

# init_size covers the ELF's memory image (text, data, bss, stacks).
memsz=$(readelf -lW "$elf" | awk '$1 == "LOAD" { print $6 }')
init_size=$(u $((0x260)) 4)
if [ "$init_size" -ge "$((memsz))" ]; then
	echo "ok   init_size = $init_size >= ELF memsz $((memsz))"
else
	echo "FAIL init_size = $init_size < ELF memsz $((memsz))"
	fails=$((fails + 1))
fi

# The payload is the ELF's flat image: the 64-bit entry at payload + 0x200.
entry64=$(nm "$elf" | awk '$3 == "bz_entry64" { print $1 }')
expect bz_entry64 "$((0x$entry64))" "$(hex 0x100200)"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
objcopy -O binary "$elf" "$tmp"
flat=$(wc -c <"$tmp")
if tail -c +$((payload_off + 1)) "$bz" | head -c "$flat" | cmp -s - "$tmp"; then
	echo "ok   payload = objcopy -O binary of the ELF ($flat bytes)"
else
	echo "FAIL payload differs from objcopy -O binary of the ELF"
	fails=$((fails + 1))
fi

# kernel_info (2.15) at payload + kernel_info_offset starts with "LToP".
ki=$(u $((0x268)) 4)
expect kernel_info "$(dd if="$bz" bs=1 skip=$((payload_off + ki)) count=4 2>/dev/null)" LToP

[ "$fails" -eq 0 ] && echo "bzimage-guest: all header checks passed" || exit 1
