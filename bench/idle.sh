#!/usr/bin/env bash
# Idle benchmark: the test guest idling (action=idle: CPL 0, LAPIC timer
# periodic at 250 Hz, sti; hlt until SECONDS of ticks) under ember --accel
# soft and QEMU TCG (microvm, -accel tcg -cpu max), 1 vCPU, 128 MiB, both
# pinned to one host CPU. The monitor's host CPU time (user + system, all
# threads, /proc/PID/stat) between the guest's "guest: idle start" and
# "guest: idle done" lines, per second of wall time (bench/cpubench_idle.c).
#   bench/idle.sh [RUNS] [SECONDS]     (defaults 3 and 10; medians of RUNS)
# Output (also in $BUILD/bench/idle.txt):
#   metric | qemu tcg | ember | ember/qemu
#   cpu_ms_per_s  host CPU ms per wall second while idle
#   wall_s        wall time of the idle phase (SECONDS if the ticks come at 250 Hz)
#   ticks         timer interrupts the guest counted (250 x SECONDS)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
SECS=${2:-10}
HZ=${IDLE_HZ:-250}
BUILD=${BUILD:-build}
GUEST=$BUILD/guest/pvh-guest.elf
PIN=${PIN:-0}
B=$BUILD/bench
out=$B/idle.txt
mkdir -p "$B"
[ -f "$GUEST" ] || { echo "idle: run 'make guests' first" >&2; exit 1; }
cc -std=c17 -O2 -Wall -Wextra -Werror -o "$B/cpubench_idle" bench/cpubench_idle.c

args="action=idle idle=$SECS idle-hz=$HZ"
ember=(taskset -c "$PIN" "$BUILD/ember" run --accel soft --kernel "$GUEST" --memory 128 --cpus 1
       --cmdline "$args")
qemu=(taskset -c "$PIN" qemu-system-x86_64 -M microvm,acpi=on,rtc=on -accel tcg -cpu max
      -m 128 -smp 1 -nographic -nodefaults -no-user-config -serial stdio -kernel "$GUEST"
      -append "$args")

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
median() { sort -g | awk 'NF { v[++n] = $1 } END { if (n) print (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# measure NAME: RUNS runs; prints "cpu_ms_per_s=.. wall_s=.. ticks=.." (medians), empty if none worked.
measure() {
	local -n cmd=$1
	local r line ok=0 cpu="" wall="" ticks=""
	for ((r = 0; r < RUNS; r++)); do
		if line=$(timeout $((SECS * 4 + 120)) "$B/cpubench_idle" "guest: idle start" "guest: idle done" \
				-- "${cmd[@]}" 2>"$B/idle-$1.log" </dev/null); then
			cpu+="$(field cpu_ms_per_s "$line")"$'\n'
			wall+="$(field wall_s "$line")"$'\n'
			ticks+="$(sed -n 's/^guest: idle done ticks=\([0-9]*\).*/\1/p' "$B/idle-$1.log")"$'\n'
			ok=1
		fi
	done
	[ $ok = 1 ] || return 0
	echo "cpu_ms_per_s=$(median <<<"$cpu") wall_s=$(median <<<"$wall") ticks=$(median <<<"$ticks")"
}

echo "idle benchmark: $RUNS runs each, medians; $SECS s at $HZ Hz, 1 vCPU, 128 MiB, pinned to CPU $PIN" | tee "$out"
q=$(measure qemu)
e=$(measure ember)
[ -n "$q" ] || echo "qemu: the idle guest did not finish (see $B/idle-qemu.log)" | tee -a "$out"
[ -n "$e" ] || echo "ember: the idle guest did not finish (see $B/idle-ember.log)" | tee -a "$out"
printf "%-14s %10s %10s %11s\n" metric "qemu tcg" ember ember/qemu | tee -a "$out"
for m in cpu_ms_per_s wall_s ticks; do
	qv=$(field $m "$q") ev=$(field $m "$e")
	printf "%-14s %10s %10s %11s\n" "$m" "${qv:-n/a}" "${ev:-n/a}" "$(ratio "$ev" "$qv")" | tee -a "$out"
done
