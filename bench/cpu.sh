#!/usr/bin/env bash
# CPU benchmark: the test guest's CPU-bound loops (action=bench-cpu, loops in
# bench/cpubench_kernels.h: int = integer arithmetic, copy = 8-byte word
# copy, chase = dependent loads over 1 MiB) under ember --accel soft and
# QEMU TCG (microvm, -accel tcg -cpu max), and the same C loop natively on
# the host (bench/cpubench.c). All measured in this run, pinned to one CPU.
#   bench/cpu.sh [RUNS]          (default 5; medians of RUNS)
# Environment: KERNELS ("int copy chase"), CPLS ("3 0": 0 runs the loop in
# the guest's int3 system call), ITERS_<kernel> (native and QEMU) and
# EMBER_ITERS_<kernel> (ember, which is slower: fewer iterations), PIN (0).
#
# Guest time = median exec->exit of RUNS runs with N iterations minus the
# median of RUNS null runs (same kernel, 0 iterations: same boot and setup),
# the two alternating; the same with the monitor's CPU time (user + system,
# from wait4), which on a loaded host is the steadier figure. Native: the
# same differences inside one process (cpubench). Every peer's checksum is
# checked against the native one first. Output, for wall time and for CPU
# time, one row per loop and CPL in ns per iteration:
#   loop cpl | native | qemu tcg | ember | ember/native | ember/qemu | Minsn/s native qemu ember
# (n/a: that peer could not run it; FAIL: a wrong checksum; Minsn/s is an
# estimate: the loop's instructions in the guest's disassembly x iterations
# / time), then the null runs' exit time, monitor CPU time and peak RSS
# (128 MiB guest, 1 vCPU) for QEMU and ember. A copy goes to $BUILD/bench/cpu.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
BUILD=${BUILD:-build}
GUEST=$BUILD/guest/pvh-guest.elf
PIN=${PIN:-0}
KERNELS=${KERNELS:-int copy chase}
CPLS=${CPLS:-3 0}
: "${ITERS_int:=200000000}" "${ITERS_copy:=200000000}" "${ITERS_chase:=50000000}"
: "${EMBER_ITERS_int:=20000000}" "${EMBER_ITERS_copy:=20000000}" "${EMBER_ITERS_chase:=10000000}"
MARK="guest: hello"
B=$BUILD/bench
out=$B/cpu.txt
mkdir -p "$B"
[ -f "$GUEST" ] || { echo "cpu: run 'make guests' first" >&2; exit 1; }
cc -O2 -Wall -Wextra -Werror -o "$B/bootbench" bench/bootbench.c
# The loops with the guest's code generation flags (tests/guest/guest.mk), the driver normally.
cc -std=c17 -O2 -ffreestanding -mno-red-zone -mgeneral-regs-only -mno-sse -mno-mmx \
	-fno-stack-protector -fcf-protection=none -fno-tree-loop-distribute-patterns \
	-fno-strict-aliasing -Wall -Wextra -Werror -c -o "$B/cpubench_kernels.o" bench/cpubench_kernels.c
cc -std=c17 -O2 -Wall -Wextra -Werror -o "$B/cpubench" bench/cpubench.c "$B/cpubench_kernels.o"

ember_cmd() { echo taskset -c "$PIN" "$BUILD/ember" run --accel soft --kernel "$GUEST" --memory 128 --cpus 1 --cmdline; }
qemu_cmd() {
	echo taskset -c "$PIN" qemu-system-x86_64 -M microvm,acpi=on,rtc=on -accel tcg -cpu max \
		-m 128 -smp 1 -nographic -nodefaults -no-user-config -serial stdio -kernel "$GUEST" -append
}
# run PEER CMDLINE: one run, the guest's output on stdout.
run() { local c; read -ra c <<<"$("$1"_cmd)"; timeout 600 "${c[@]}" "$2" </dev/null 2>/dev/null; }
# bench1 PEER CMDLINE: bootbench's line for one run, empty on failure.
bench1() { local c; read -ra c <<<"$("$1"_cmd)"; "$B/bootbench" 1 "$MARK" -- "${c[@]}" "$2" 2>/dev/null </dev/null || true; }
field() { sed -n "s/.*$1=\([0-9a-fx.]*\).*/\1/p" <<<"$2"; }
calc() { awk "BEGIN { $1 }" 2>/dev/null; }
ratio() { calc "a = \"$1\" + 0; b = \"$2\" + 0; if (a > 0 && b > 0) printf \"%.2f\", a / b; else print \"n/a\""; }
# Instructions in the hot loop of function $1 (from the backward jump's target to the jump).
loop_insns() {
	objdump -d --no-show-raw-insn "$GUEST" | awk -v f="<$1>:" '
		function hex(s,  v, i) { v = 0; for (i = 1; i <= length(s); i++)
			v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1; return v }
		$2 == f { p = 1; next } p && NF == 0 { p = 0 }
		p && $1 ~ /:$/ { a = hex(substr($1, 1, length($1) - 1)); addr[n++] = a
			if ($2 ~ /^j/ && $3 ~ /^[0-9a-f]+$/ && hex($3) < a) { t = hex($3); j = a } }
		END { c = 0; for (i = 0; i < n; i++) if (addr[i] >= t && addr[i] <= j) c++; print c }'
}

peers="qemu"
if run ember "action=poweroff" | grep -q "$MARK"; then peers="qemu ember"; else
	echo "ember: --accel soft does not boot the test guest here; ember columns n/a"; fi

{
	echo "cpu benchmark: medians of $RUNS, pinned to CPU $PIN, $(nproc) CPUs, $(uname -r); guest $GUEST (1 vCPU, 128 MiB)"
	echo "iterations: native and qemu $(for k in $KERNELS; do v=ITERS_$k; printf '%s=%s ' "$k" "${!v}"; done)| ember $(for k in $KERNELS; do v=EMBER_ITERS_$k; printf '%s=%s ' "$k" "${!v}"; done)"
} | tee "$out"

declare -A ns ips nullrun loopinfo
# medians of the values of key $1 in the lines of $2
medf() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2" | sort -g |
	awk 'NF { v[++n] = $1 } END { if (n) print (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2) }'; }
# per_iter NS_DIFF_MS ITERS -> ns per iteration, n/a unless positive
per_iter() { calc "d = \"$1\" + 0; if (d > 0) printf \"%.3f\", d * 1e6 / $2; else print \"n/a\""; }
for k in $KERNELS; do
	vi=ITERS_$k ve=EMBER_ITERS_$k
	ipi=$(loop_insns "cpubench_${k}_loop")
	loopinfo[$k]=$ipi
	nat=$(taskset -c "$PIN" "$B/cpubench" "$k" "${!vi}" "$RUNS")
	ns[wall,$k,native]=$(per_iter "$(field native_ms "$nat")" "${!vi}")
	ns[cpu,$k,native]=$(per_iter "$(field native_cpu_ms "$nat")" "${!vi}")
	for cpl in $CPLS; do
		for p in $peers; do
			n=${!vi}
			[ "$p" = ember ] && n=${!ve}
			want=$(field result "$("$B/cpubench" "$k" "$n" 1)")
			args="action=bench-cpu bench-cpu=$k bench-cpl=$cpl bench-iters"
			got=$(run "$p" "$args=$n" | sed -n "s/^guest: bench cpu done cpl=$cpl result=\(0x[0-9a-f]*\).*/\1/p")
			if [ "$got" != "$want" ]; then
				echo "$p $k cpl=$cpl: result '${got:-none}', native $want" | tee -a "$out"
				ns[wall,$k$cpl,$p]=$([ -n "$got" ] && echo FAIL || echo n/a)
				ns[cpu,$k$cpl,$p]=${ns[wall,$k$cpl,$p]}
				continue
			fi
			# Null and full runs alternate, so load changes on the host hit both alike.
			null="" full=""
			for ((r = 0; r < RUNS; r++)); do
				null+=$(bench1 "$p" "$args=0")$'\n'
				full+=$(bench1 "$p" "$args=$n")$'\n'
			done
			[ "$k$cpl" = int3 ] && nullrun[$p]=$null
			for m in wall:exit_ms cpu:cpu_ms; do
				ns[${m%%:*},$k$cpl,$p]=$(per_iter "$(calc "print $(medf "${m#*:}" "$full") - $(medf "${m#*:}" "$null")")" "$n")
			done
		done
	done
done 2>&1

mips() { calc "v = \"$2\" + 0; if (v > 0) printf \"%.0f\", $1 * 1e3 / v; else print \"n/a\""; }
{
	for t in wall cpu; do
		echo
		if [ $t = wall ]; then echo "ns per iteration, wall time (exec to exit; lower is better)"
		else echo "ns per iteration, CPU time of the monitor (user + system; native: the process's)"; fi
		printf "%-8s %9s %9s %9s %12s %10s | %-s\n" "loop cpl" native "qemu tcg" ember ember/native ember/qemu \
			"Minsn/s native qemu ember (estimate)"
		for k in $KERNELS; do for cpl in $CPLS; do
			nv=${ns[$t,$k,native]} q=${ns[$t,$k$cpl,qemu]:-n/a} e=${ns[$t,$k$cpl,ember]:-n/a}
			printf "%-8s %9s %9s %9s %12s %10s | %7s %5s %5s\n" "$k $cpl" "$nv" "$q" "$e" \
				"$(ratio "$e" "$nv")" "$(ratio "$e" "$q")" "$(mips "${loopinfo[$k]}" "$nv")" \
				"$(mips "${loopinfo[$k]}" "$q")" "$(mips "${loopinfo[$k]}" "$e")"
		done; done
	done
	echo
	echo "instructions per iteration in the guest's loops (objdump): $(for k in $KERNELS; do printf '%s=%s ' "$k" "${loopinfo[$k]}"; done)"
	echo
	echo "null run (int, 0 iterations, CPL 3; medians): boot to power-off, 128 MiB, 1 vCPU"
	printf "%-22s %10s %10s %11s\n" metric "qemu tcg" ember ember/qemu
	for m in exit_ms cpu_ms rss_kib; do
		q=$(medf $m "${nullrun[qemu]:-}") e=$(medf $m "${nullrun[ember]:-}")
		printf "%-22s %10s %10s %11s\n" "$m" "${q:-n/a}" "${e:-n/a}" "$(ratio "$e" "$q")"
	done
} | tee -a "$out"
