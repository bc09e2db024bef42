#!/usr/bin/env bash
# Linux boot benchmark: Debian's cloud kernel + ember's busybox initramfs
# (make linux-guest), time until the guest's init runs and until it has
# powered off, for ember and for QEMU booting the same vmlinux (PVH), same
# command line, 2 vCPUs, 512 MiB. One run each: on hosts where KVM emulates
# CPL 0 (HOST-KVM.md) a boot takes minutes. QEMU with KVM is tried first;
# where it cannot boot the kernel, that is recorded with its last message,
# and QEMU's TCG (pure software) is measured as the peer instead.
#   bench/linux-boot.sh            results also go to $BUILD/bench/linux-boot.txt
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

e=$(measure ember "$BUILD/ember" run --kernel "$LIN/vmlinux" --initrd "$LIN/initramfs.cpio" \
	--cpus 2 --memory 512 --cmdline "$CMDLINE")
echo "ember:       $e" | tee -a "$out"

# -cpu host aborts on this kind of host (MSR 0x10a): a named model instead.
# QEMU stops the VM but keeps running after a KVM internal error: a shorter limit.
qk=$(TIMEOUT=${QEMU_KVM_TIMEOUT:-300} measure qemu-kvm qemu-system-x86_64 -M q35 -accel kvm \
	-cpu qemu64,+popcnt,+sse4.2 "${common[@]}")
echo "qemu (kvm):  $qk" | tee -a "$out"
peer=$qk peer_name="qemu-kvm"
if [ -z "$(field init_s "$qk")" ]; then
	errlog=$BUILD/bench/linux-boot-qemu-kvm.log.err
	why=$(grep -m1 'KVM internal error' "$errlog" 2>/dev/null ||
		grep -v '^\s*$' "$errlog" 2>/dev/null | tail -1 || true)
	grep -q 'emulation failure' "$errlog" 2>/dev/null && why="$why (emulation failure)"
	echo "qemu (kvm):  cannot boot this kernel here: ${why:-no init within ${TIMEOUT}s}" | tee -a "$out"
	qt=$(measure qemu-tcg qemu-system-x86_64 -M q35 -accel tcg,thread=multi -cpu max "${common[@]}")
	echo "qemu (tcg):  $qt" | tee -a "$out"
	peer=$qt peer_name="qemu-tcg"
fi

printf "%-14s %10s %10s %12s\n" metric ember "$peer_name" "ember/peer" | tee -a "$out"
for m in init_s exit_s kernel_init_s; do
	ev=$(field $m "$e")
	pv=$(field $m "$peer")
	printf "%-14s %10s %10s %12s\n" "$m" "${ev:-n/a}" "${pv:-n/a}" "$(ratio "$ev" "$pv")" | tee -a "$out"
done
