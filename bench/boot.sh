#!/usr/bin/env bash
# Boot benchmark: ember vs QEMU (microvm, KVM) booting the same PVH test guest,
# measured side by side in one run. Reports medians and ember/QEMU ratios.
#   bench/boot.sh [RUNS]       (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-20}
BUILD=${BUILD:-build}
GUEST=$BUILD/guest/pvh-guest.elf
MARK="guest: hello"
mkdir -p "$BUILD/bench"
cc -O2 -Wall -Wextra -Werror -o "$BUILD/bench/bootbench" bench/bootbench.c

# The guest powers off as soon as it has reported; both monitors exit 0 then.
ember=(taskset -c 0 "$BUILD/ember" run --kernel "$GUEST" --memory 128 --cpus 1
       --cmdline "action=poweroff")
# -cpu host aborts on this kind of host (MSR 0x10a); qemu64 boots the guest.
qemu=(taskset -c 0 qemu-system-x86_64 -M microvm,acpi=on,rtc=on -accel kvm -cpu qemu64
      -m 128 -smp 1 -nographic -nodefaults -no-user-config -serial stdio
      -kernel "$GUEST" -append "action=poweroff")

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

echo "boot benchmark: $RUNS runs each, medians; same guest ($GUEST), 1 vCPU, 128 MiB"
e=$("$BUILD/bench/bootbench" "$RUNS" "$MARK" -- "${ember[@]}" 2>/dev/null </dev/null)
if q=$("$BUILD/bench/bootbench" "$RUNS" "$MARK" -- "${qemu[@]}" 2>/dev/null </dev/null); then :; else
	q=""
	echo "qemu: could not boot the guest here; ratios omitted"
fi
printf "%-26s %12s %12s %10s\n" metric ember qemu ember/qemu
for m in first_line_ms exit_ms cpu_ms rss_kib; do
	ev=$(field $m "$e"); qv=$( [ -n "$q" ] && field $m "$q" || echo "")
	printf "%-26s %12s %12s %10s\n" "$m" "$ev" "${qv:-n/a}" "$( [ -n "$qv" ] && ratio "$ev" "$qv" || echo n/a)"
done
