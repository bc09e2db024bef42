#!/usr/bin/env bash
# Runs kvm-unit-tests' x86 tests under QEMU TCG and under ember, side by side.
#
#   scripts/kvm-unit-tests.sh KUT_DIR [TEST_NAME_REGEX]
#
# KUT_DIR: a built kvm-unit-tests tree (./configure --arch=x86_64 && make):
# its x86/unittests.cfg and x86/*.flat are used; nothing of it is copied
# here. Every test of the cfg that needs no VMX, SVM, PMU or Hyper-V is run
# as kvm-unit-tests' x86/run runs it (-kernel x86/NAME.flat -smp N, the
# cfg's qemu_params/extra_params, test_args as -append), once with
#   qemu-system-x86_64 -accel tcg -nodefaults -device pc-testdev
#       -device isa-debug-exit,iobase=0xf4,iosize=0x4 -serial stdio ...
# and once with
#   build/ember run --test-dev --kernel ... --cmdline ... --cpus N --memory M
# each under a timeout, then prints a table (test | qemu | ember) and counts.
#
# Result of one run, as kvm-unit-tests' scripts/runtime.bash decides it:
# exit status 1 (isa-debug-exit with 0) is PASS, 77 SKIP, 124 a timeout,
# anything else FAIL; the "SUMMARY:" line is shown. ember also exits 1 when
# a vCPU crashes: that is a FAIL when stderr has its "vcpu N: ..." line.
# Tests the cfg marks accel = kvm, arch = i386 (on an x86_64 build) or group
# nodefault, and failed `check =` host conditions, are SKIP in both columns;
# tests whose QEMU options need KVM (-enable-kvm, -cpu host) are SKIP in the
# QEMU column. An exit status 1 without any guest output is a FAIL (QEMU
# exits 1 when it refuses its options).
#
# Environment:
#   EMBER=path          ember binary (default: build/ember next to this script)
#   EMBER_ARGS="..."    extra flags for ember run (e.g. --accel soft)
#   QEMU=path           QEMU binary (default qemu-system-x86_64)
#   TIMEOUT=secs        per-run timeout, overrides the cfg's (default: cfg or 90)
#   EMBER_TIMEOUT=secs  the same for the ember column only (default: as QEMU)
#   RUN_QEMU=0 / RUN_EMBER=0   leave a column out (shown as "-")
#   LOG_DIR=dir         where each run's output goes (default: a new /tmp dir)
set -u

here=$(cd "$(dirname "$0")/.." && pwd)
KUT_DIR=${1:-${KUT_DIR:-}}
FILTER=${2:-}
EMBER=${EMBER:-$here/build/ember}
EMBER_ARGS=${EMBER_ARGS:-}
QEMU=${QEMU:-qemu-system-x86_64}
RUN_QEMU=${RUN_QEMU:-1}
RUN_EMBER=${RUN_EMBER:-1}

if [ -z "$KUT_DIR" ] || [ ! -f "$KUT_DIR/x86/unittests.cfg" ]; then
	echo "usage: $0 KUT_DIR [TEST_NAME_REGEX]   (KUT_DIR: a built kvm-unit-tests tree)" >&2
	exit 2
fi
KUT_DIR=$(cd "$KUT_DIR" && pwd)
cfg=$KUT_DIR/x86/unittests.cfg
LOG_DIR=${LOG_DIR:-$(mktemp -d /tmp/kvm-unit-tests.XXXXXX)}
mkdir -p "$LOG_DIR"
if [ "$RUN_QEMU" = 1 ] && ! command -v "$QEMU" >/dev/null 2>&1; then
	echo "$0: $QEMU not found: QEMU column left out" >&2
	RUN_QEMU=0
fi
if [ "$RUN_EMBER" = 1 ] && [ ! -x "$EMBER" ]; then
	echo "$0: $EMBER not found or not executable: ember column left out" >&2
	RUN_EMBER=0
fi
qemu_pci_testdev=
if [ "$RUN_QEMU" = 1 ] && "$QEMU" -device help 2>&1 | grep -qF '"pci-testdev"'; then
	qemu_pci_testdev="-device pci-testdev"
fi
kut_arch=x86_64
if [ -f "$KUT_DIR/config.mak" ]; then
	a=$(sed -n 's/^ARCH=//p' "$KUT_DIR/config.mak" | head -n1)
	[ -n "$a" ] && kut_arch=$a
fi

# --- the cfg -----------------------------------------------------------------

# One test per line, fields separated by \x1f:
# name file smp params test_args arch groups accel timeout check
parse_cfg()
{
	awk -v US=$'\x1f' '
	function flush() {
		if (name != "")
			print name US file US smp US params US targs US arch US groups US accel US tmo US check
	}
	function val(line) { sub(/^[^=]*= */, "", line); return line }
	/^\[.*\]$/ { flush(); name = substr($0, 2, length($0) - 2)
		     file = ""; smp = "1"; params = ""; targs = ""; arch = ""; groups = ""
		     accel = ""; tmo = ""; check = ""; next }
	/^file *=/ { file = val($0); next }
	/^smp *=/ { smp = val($0); next }
	/^(extra_params|qemu_params) *=/ { params = val($0); next }
	/^test_args *=/ { targs = val($0); next }
	/^arch *=/ { arch = val($0); next }
	/^groups *=/ { groups = val($0); next }
	/^accel *=/ { accel = val($0); next }
	/^timeout *=/ { tmo = val($0); next }
	/^check *=/ { check = val($0); next }
	END { flush() }' "$cfg"
}

# Why a test is not run at all (both columns SKIP), or "" to run it.
skip_reason()
{
	local name=$1 file=$2 arch=$3 groups=$4 accel=$5 check=$6 c path want

	case " $groups " in
	*" vmx "* | *" svm "* | *" pmu "* | *" hyperv "*) echo "needs VMX/SVM/PMU/Hyper-V"; return ;;
	esac
	case "$file" in
	vmx* | svm* | pmu* | hyperv*) echo "needs VMX/SVM/PMU/Hyper-V"; return ;;
	esac
	case "$name" in
	*vmx* | *svm* | *pmu* | *hyperv*) echo "needs VMX/SVM/PMU/Hyper-V"; return ;;
	esac
	if [ -n "$arch" ] && [ "$arch" != "$kut_arch" ]; then
		echo "$arch only"; return
	fi
	case " $groups " in *" nodefault "*) echo "nodefault (manual) test"; return ;; esac
	if [ -n "$accel" ] && [ "$accel" != tcg ]; then
		echo "$accel only"; return
	fi
	for c in $check; do
		path=${c%%=*}
		want=${c#*=}
		if [ "$(cat "$path" 2>/dev/null)" != "$want" ]; then
			echo "check $path != $want"; return
		fi
	done
	if [ ! -f "$KUT_DIR/x86/$file" ]; then
		echo "x86/$file not built"; return
	fi
}

# The -append words of the test: test_args, or -append '...' inside extra_params.
append_args()
{
	local params=$1 targs=$2

	if [ -n "$targs" ]; then
		eval "set -- $targs"
		printf '%s' "$*"
		return
	fi
	if [[ $params =~ -append\ +(\'[^\']*\'|\"[^\"]*\"|[^\ ]+) ]]; then
		eval "set -- ${BASH_REMATCH[1]}"
		printf '%s' "$*"
	fi
}

# The QEMU options of the test, without -append.
qemu_opts()
{
	local params=$1

	params=$(sed -E "s/-append +('[^']*'|\"[^\"]*\"|[^ ]+)//" <<<"$params")
	printf '%s' "$params"
}

# -m of the options in MiB (QEMU's default 128 when absent).
memory_mib()
{
	local opts=$1 m

	if [[ $opts =~ (^|\ )-m\ +([0-9]+)([MmGg]?)( |$) ]]; then
		m=${BASH_REMATCH[2]}
		case "${BASH_REMATCH[3]}" in [Gg]) m=$((m * 1024)) ;; esac
		echo "$m"
	else
		echo 128
	fi
}

# --- running -----------------------------------------------------------------

# classify STATUS LOGFILE [ember]: prints "PASS|FAIL|SKIP<TAB>note".
classify()
{
	local status=$1 log=$2 is_ember=${3:-} summary note

	summary=$(tr -d '\r' <"$log.out" | grep -a '^SUMMARY: ' | tail -n1 | sed 's/^SUMMARY: //')
	note=$summary
	if [ "$status" -eq 1 ] && [ -n "$is_ember" ] &&
		grep -aqE 'vcpu [0-9]+: ' "$log.err" 2>/dev/null; then
		printf 'FAIL\t%s\n' "crash: $(grep -aE 'vcpu [0-9]+: ' "$log.err" | head -n1 | cut -c1-60)"
		return
	fi
	# QEMU (and ember) also exit 1 when they refuse to start: no guest output then.
	if [ "$status" -eq 1 ] && [ ! -s "$log.out" ]; then
		printf 'FAIL\t%s\n' "no guest output: $(head -n1 "$log.err" | cut -c1-70)"
		return
	fi
	case "$status" in
	1) printf 'PASS\t%s\n' "$note" ;;
	77) printf 'SKIP\t%s\n' "${note:-skipped by the test}" ;;
	124 | 137) printf 'FAIL\t%s\n' "timeout${note:+; $note}" ;;
	0) printf 'FAIL\t%s\n' "exit 0 without debug-exit${note:+; $note}" ;;
	*) printf 'FAIL\t%s\n' "status $status${note:+; $note}" ;;
	esac
}

# run_one LOG TIMEOUT CMD...: the command with stdin from /dev/null, under a timeout.
run_one()
{
	local log=$1 tmo=$2

	shift 2
	printf '%q ' "$@" >"$log.cmd"
	echo >>"$log.cmd"
	# In a subshell that is not replaced by the command (the status is
	# returned explicitly), so that the shell's own report of a crash
	# ("Segmentation fault") lands in the log, not on the terminal.
	(
		timeout -k 5s "${tmo}s" "$@" </dev/null >"$log.out" 2>"$log.err"
		st=$?
		exit $st
	) 2>>"$log.err"
}

cell()
{
	local res=$1 note=$2

	if [ -n "$note" ]; then
		printf '%s (%s)' "$res" "$note"
	else
		printf '%s' "$res"
	fi
}

declare -A count_q=([PASS]=0 [FAIL]=0 [SKIP]=0) count_e=([PASS]=0 [FAIL]=0 [SKIP]=0)
rows=()
both_pass=0 qemu_only=0 ember_only=0
nproc=$(getconf _NPROCESSORS_ONLN)

while IFS=$'\x1f' read -r name file smp params targs arch groups accel tmo check; do
	[ -n "$FILTER" ] && ! [[ $name =~ $FILTER ]] && continue
	smp=${smp//\$MAX_SMP/$nproc}
	smp=$(( smp ))
	tmo=${tmo%s}
	tmo=${TIMEOUT:-${tmo:-90}}
	reason=$(skip_reason "$name" "$file" "$arch" "$groups" "$accel" "$check")
	if [ -n "$reason" ]; then
		q=$(cell SKIP "$reason")
		e=$q
		[ "$RUN_QEMU" = 1 ] && count_q[SKIP]=$((count_q[SKIP] + 1))
		[ "$RUN_EMBER" = 1 ] && count_e[SKIP]=$((count_e[SKIP] + 1))
		rows+=("$name"$'\x1f'"$q"$'\x1f'"$e")
		printf '%-28s %s\n' "$name" "SKIP ($reason)" >&2
		continue
	fi
	kernel=$KUT_DIR/x86/$file
	args=$(append_args "$params" "$targs")
	opts=$(qemu_opts "$params")
	mem=$(memory_mib "$opts")
	q='-'
	e='-'
	if [ "$RUN_QEMU" = 1 ] && [[ " $opts " =~ \ (-enable-kvm|-cpu\ host[, ]) ]]; then
		# Tests meant for KVM only (-enable-kvm, -cpu host): TCG cannot start them.
		count_q[SKIP]=$((count_q[SKIP] + 1))
		q=$(cell SKIP "needs KVM: ${BASH_REMATCH[1]% }")
		qres=SKIP
	elif [ "$RUN_QEMU" = 1 ]; then
		log=$LOG_DIR/$name.qemu
		# shellcheck disable=SC2086 # the cfg's options are words
		run_one "$log" "$tmo" "$QEMU" --no-reboot -nodefaults -accel tcg \
			-device pc-testdev -device isa-debug-exit,iobase=0xf4,iosize=0x4 \
			$qemu_pci_testdev -display none -serial stdio \
			-kernel "$kernel" -smp "$smp" $opts ${args:+-append "$args"}
		st=$?
		IFS=$'\t' read -r res note < <(classify "$st" "$log")
		count_q[$res]=$((count_q[$res] + 1))
		q=$(cell "$res" "$note")
		qres=$res
	fi
	if [ "$RUN_EMBER" = 1 ]; then
		log=$LOG_DIR/$name.ember
		# shellcheck disable=SC2086 # EMBER_ARGS are words
		run_one "$log" "${EMBER_TIMEOUT:-$tmo}" "$EMBER" run --test-dev $EMBER_ARGS --kernel "$kernel" \
			--cpus "$smp" --memory "$mem" ${args:+--cmdline "$args"}
		st=$?
		IFS=$'\t' read -r res note < <(classify "$st" "$log" ember)
		count_e[$res]=$((count_e[$res] + 1))
		e=$(cell "$res" "$note")
		eres=$res
	fi
	if [ "$RUN_QEMU" = 1 ] && [ "$RUN_EMBER" = 1 ]; then
		[ "$qres" = PASS ] && [ "$eres" = PASS ] && both_pass=$((both_pass + 1))
		[ "$qres" = PASS ] && [ "$eres" != PASS ] && qemu_only=$((qemu_only + 1))
		[ "$qres" != PASS ] && [ "$eres" = PASS ] && ember_only=$((ember_only + 1))
	fi
	rows+=("$name"$'\x1f'"$q"$'\x1f'"$e")
	printf '%-28s qemu: %-40.40s ember: %s\n' "$name" "$q" "$e" >&2
done < <(parse_cfg)

echo
echo "| test | qemu (TCG) | ember |"
echo "| --- | --- | --- |"
for r in "${rows[@]}"; do
	IFS=$'\x1f' read -r name q e <<<"$r"
	echo "| $name | $q | $e |"
done
echo
total=${#rows[@]}
echo "tests: $total"
[ "$RUN_QEMU" = 1 ] &&
	echo "qemu (TCG): ${count_q[PASS]} PASS, ${count_q[FAIL]} FAIL, ${count_q[SKIP]} SKIP"
[ "$RUN_EMBER" = 1 ] &&
	echo "ember:      ${count_e[PASS]} PASS, ${count_e[FAIL]} FAIL, ${count_e[SKIP]} SKIP"
[ "$RUN_QEMU" = 1 ] && [ "$RUN_EMBER" = 1 ] &&
	echo "both pass: $both_pass; qemu only: $qemu_only; ember only: $ember_only"
echo "logs: $LOG_DIR (NAME.qemu.{cmd,out,err}, NAME.ember.{cmd,out,err})"
exit 0
