#!/usr/bin/env bash
# Folds an EMBER_PROFILE sample file (src/vmm/profile.h) into functions.
#   scripts/profile-report.sh VMLINUX-WITH-SYMBOLS PROFILE.vcpuN [TOP] [SECTION]
# SECTION: "total" (default), or a slice's heading as the file has it,
# e.g. "slice 120-140 s"; "list" prints the headings.
# VMLINUX must carry a symbol table (Debian's linux-image-*-dbg package has
# one; the vmlinux inside a bzImage does not). Prints "samples % function".
set -euo pipefail
vmlinux=${1:?usage: profile-report.sh VMLINUX PROFILE [TOP]}
prof=${2:?usage: profile-report.sh VMLINUX PROFILE [TOP]}
top=${3:-40}
section=${4:-total}
if [ "$section" = list ]; then
	sed -n 's/^# \([^:]*\):.*/\1/p' "$prof"
	exit 0
fi
command -v nm >/dev/null || { echo "profile-report: nm not found (binutils)" >&2; exit 1; }

# Symbols and samples in one address-sorted stream; each sample is charged
# to the last symbol at or below it (hex addresses of equal width sort right).
{
	nm -n "$vmlinux" | awk '$2 ~ /^[tTwW]$/ { a = $1; while (length(a) < 16) a = "0" a; print a " S " $3 }'
	awk -v want="$section" '/^# / { sub(/^# /, ""); sub(/:.*/, ""); in_it = ($0 == want); next }
		in_it { a = $2; sub(/^0x/, "", a); while (length(a) < 16) a = "0" a; print a " P " $1 }' "$prof"
} | LC_ALL=C sort -k1,1 -k2,2r | awk -v top="$top" '
	$2 == "S" { fn = $3; next }
	{ n[fn == "" ? "?" : fn] += $3; total += $3 }
	END {
		for (f in n) printf "%d %.1f%% %s\n", n[f], 100 * n[f] / total, f
	}' | sort -rn | head -n "$top"
