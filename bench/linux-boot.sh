#!/usr/bin/env bash
# Linux boot benchmark: Debian's cloud kernel + ember's busybox initramfs
# (make linux-guest), time until the guest's init runs and until it has
# powered off, for ember's software CPU (--accel soft) and for QEMU's TCG
# (-accel tcg,thread=multi -cpu max, pure software too) booting the same
# vmlinux (PVH), same command line, 2 vCPUs, 512 MiB. One run each.
#   bench/linux-boot.sh            results also go to $BUILD/bench/linux-boot.txt
# Output: one "ember: init_s=.. exit_s=.. status=.. kernel_init_s=.." line and
# one "qemu (tcg): ..." line (init_s: exec to "ember-init: init running",
# exit_s: exec to exit after power-off, kernel_init_s: the kernel's clock at
# "Run /init"), then the table metric | ember | qemu-tcg | ember/peer.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
LIN=$BUILD/linux
TIMEOUT=${TIMEOUT:-2400}
MARK="ember-init: init running"
out=$BUILD/bench/linux-boot.txt
mkdir -p "$BUILD/bench"
[ -f "$LIN/vmlinux" ] && [ -f "$LIN/initramfs.cpio" ] && [ -f "$LIN/cmdline" ] ||
	{ echo "linux-boot: run 'make linux-guest' first" >&2; exit 1; }
# The command line tests/linux uses (tests/linux/cmdline); ember adds what the host needs.
CMDLINE=${LINUX_CMDLINE:-$(cat "$LIN/cmdline")}

# Runs a monitor; prints "init_s=… exit_s=… status=… kernel_init_s=…" (init_s empty if never).
measure() {
	local name=$1 log=$BUILD/bench/linux-boot-$1.log
	shift
	local t0 init="" line status
	t0=$(date +%s.%N)
	set +e
	{
		timeout -k 10 "$TIMEOUT" "$@" </dev/null 2>"$log.err"
		echo "__status=$?"
	} | while IFS= read -r line; do
		printf '%s\n' "$line" >>"$log"
		if [ -z "$init" ] && [[ $line == *"$MARK"* ]]; then
			init=$(date +%s.%N)
			echo "__init=$init"
		fi
		[[ $line == __status=* ]] && echo "$line"
	done >"$log.marks"
	set -e
	local end init_t
	end=$(date +%s.%N)
	status=$(sed -n 's/^__status=//p' "$log.marks")
	init_t=$(sed -n 's/^__init=//p' "$log.marks")
	# The kernel's own clock when it starts /init ("Run /init as init process").
	local kinit
	kinit=$(sed -n 's/^\[ *\([0-9.]*\)\] Run \/init as init process.*/\1/p' "$log" | head -1)
	awk -v t0="$t0" -v i="$init_t" -v e="$end" -v s="$status" -v k="$kinit" 'BEGIN {
		printf "init_s=%s exit_s=%.1f status=%s kernel_init_s=%s\n",
			(i == "" ? "" : sprintf("%.1f", i - t0)), e - t0, s, k }'
}

# The value of key $1 in a "k=v k=v" line (exactly that key: init_s is not kernel_init_s).
field() { awk -v k="$1" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' <<<"$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "n/a" }'; }

rm -f "$BUILD"/bench/linux-boot-*.log*
common=(-m 512 -smp 2 -nographic -nodefaults -no-user-config -serial stdio -no-reboot
	-kernel "$LIN/vmlinux" -initrd "$LIN/initramfs.cpio" -append "$CMDLINE")

{
	echo "linux boot: $(cat "$LIN/kernel-release" 2>/dev/null) vmlinux (PVH), 2 vCPUs, 512 MiB"
	echo "command line: $CMDLINE"
	echo "host: $(nproc) CPUs, $(uname -r); one run each"
} | tee "$out"

e=$(measure ember "$BUILD/ember" run --accel soft --kernel "$LIN/vmlinux" --initrd "$LIN/initramfs.cpio" \
	--cpus 2 --memory 512 --cmdline "$CMDLINE")
echo "ember:       $e" | tee -a "$out"

qt=$(measure qemu-tcg qemu-system-x86_64 -M q35 -accel tcg,thread=multi -cpu max "${common[@]}")
echo "qemu (tcg):  $qt" | tee -a "$out"
peer=$qt peer_name="qemu-tcg"

printf "%-14s %10s %10s %12s\n" metric ember "$peer_name" "ember/peer" | tee -a "$out"
for m in init_s exit_s kernel_init_s; do
	ev=$(field $m "$e")
	pv=$(field $m "$peer")
	printf "%-14s %10s %10s %12s\n" "$m" "${ev:-n/a}" "${pv:-n/a}" "$(ratio "$ev" "$pv")" | tee -a "$out"
done
