#!/usr/bin/env bash
# Folds an EMBER_PROFILE sample file (src/vmm/profile.h) into functions.
#   scripts/profile-report.sh VMLINUX-WITH-SYMBOLS PROFILE.vcpuN [TOP]
# VMLINUX must carry a symbol table (Debian's linux-image-*-dbg package has
# one; the vmlinux inside a bzImage does not). Prints "samples % function".
set -euo pipefail
vmlinux=${1:?usage: profile-report.sh VMLINUX PROFILE [TOP]}
prof=${2:?usage: profile-report.sh VMLINUX PROFILE [TOP]}
top=${3:-40}
command -v nm >/dev/null || { echo "profile-report: nm not found (binutils)" >&2; exit 1; }

# Symbols and samples in one address-sorted stream; each sample is charged
# to the last symbol at or below it (hex addresses of equal width sort right).
{
	nm -n "$vmlinux" | awk '$2 ~ /^[tTwW]$/ { printf "%16s S %s\n", $1, $3 }'
	awk '!/^#/ { sub(/^0x/, "", $2); printf "%16s P %s\n", $2, $1 }' "$prof"
} | LC_ALL=C sort -k1,1 -k2,2r | awk -v top="$top" '
	$2 == "S" { fn = $3; next }
	{ n[fn == "" ? "?" : fn] += $3; total += $3 }
	END {
		for (f in n) printf "%d %.1f%% %s\n", n[f], 100 * n[f] / total, f
	}' | sort -rn | head -n "$top"
