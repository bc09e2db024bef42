#!/usr/bin/env bash
# virtio benchmark (issue 3): virtio-blk throughput and IOPS of ember's PVH
# test guest (bench-blk, tests/guest/README.md) against the host's own
# reads and writes of the same image file (fio), and virtio-net throughput
# guest -> host over a TAP (bench-net) against the host writing the same
# frames into the TAP itself; QEMU (-M q35, KVM; TCG if KVM cannot run the
# guest) runs the same guest in the same run. Medians of RUNS runs.
#   bench/virtio.sh [RUNS]     (default 5); the table also goes to $BUILD/bench/virtio.txt
# Environment: BENCH_MIB (256), BENCH_BS_KIB (128), BENCH_DEPTH (8),
# BENCH_IOS (50000), BENCH_FRAMES (500000), BENCH_TIMEOUT (300 s per VM run),
# BENCH_QEMU_ACCEL (kvm; tcg to measure QEMU's software emulation instead).
# Needs root (namespace, TAP), /dev/kvm, fio; QEMU is optional (n/a without).
#
# Fairness rules (summed up in the lines above the table):
# - Same access pattern: sequential BENCH_BS_KIB-KiB requests over the first
#   BENCH_MIB MiB with BENCH_DEPTH in flight, the same range written back,
#   then BENCH_IOS random 4 KiB reads with the same depth. The host runs the
#   same pattern with fio and counts the better of io_uring at the same
#   depth (the engine of ember's raw backend) and psync (plain pread and
#   pwrite, which is faster on cached data): the host figure is a ceiling.
# - Same cache state: all three sides do buffered I/O (ember's raw backend
#   and QEMU's default cache=writeback open the image without O_DIRECT; fio
#   runs with direct=0 and invalidate=0). Before every blk run the dirty
#   pages of earlier writes are written back (sync) and the image is read
#   into the page cache: every read phase starts warm, no write phase pays
#   for another's write-back, and nothing is flushed inside a phase (the
#   guest negotiates FLUSH, so writes are write-back, and sends none).
# - Timing: the guest has no clock to trust; virtiobench timestamps its
#   serial lines, a phase runs from the end of its start line to the
#   beginning of its done line.
# - Network traffic stays in a network namespace of its own: a persistent
#   TAP there, IPv6 off, no address; the namespace is deleted on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
BUILD=${BUILD:-build}
MIB=${BENCH_MIB:-256}
BS_KIB=${BENCH_BS_KIB:-128}
DEPTH=${BENCH_DEPTH:-8}
IOS=${BENCH_IOS:-50000}
FRAMES=${BENCH_FRAMES:-500000}
TIMEOUT=${BENCH_TIMEOUT:-300}
GUEST=$BUILD/guest/pvh-guest.elf
DIR=$BUILD/bench
IMG=$DIR/virtio.img
OUT=$DIR/virtio.txt
TOOL=$DIR/virtiobench
NS=ember-bench-$$
TAP=ebtap0
MAC=52:54:00:12:34:56

die() {
	echo "bench/virtio.sh: $*" >&2
	exit 1
}

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS: '$RUNS' is not a positive number"
[ -e /dev/kvm ] || die "no /dev/kvm: the benchmark needs KVM"
{ [ -r /dev/kvm ] && [ -w /dev/kvm ]; } || die "/dev/kvm is not readable and writable by this user"
[ "$(id -u)" -eq 0 ] || die "needs root (a network namespace and a TAP device)"
[ -c /dev/net/tun ] || die "no /dev/net/tun (tun module not loaded?)"
command -v fio >/dev/null || die "fio is missing (apt-get install fio): it is the host's peer"
command -v ip >/dev/null || die "ip (iproute2) is missing"
{ [ -x "$BUILD/ember" ] && [ -f "$GUEST" ]; } || die "$BUILD/ember or $GUEST missing: run 'make -j2 all'"
QEMU=$(command -v qemu-system-x86_64 || true)

cleanup() {
	ip netns del "$NS" 2>/dev/null || true
	rm -f "$IMG"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$DIR"
cc -std=c17 -O2 -Wall -Wextra -Werror -o "$TOOL" bench/virtiobench.c

# ---- helpers ----

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {
	if (!NR) print "n/a"; else if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b <= 0) print "n/a"; else printf "%.2f", a / b }'; }
fmt() { awk -v a="$1" 'BEGIN { if (a == "n/a") print a; else printf "%.0f", a }'; }

# Written-back and warm: the state every blk run starts from.
cache_ready() {
	sync
	cat "$IMG" >/dev/null
}

# fio on the host, one job: prints "MiB/s IOPS" (terse v3: fields 7-8 read, 48-49 write).
fio_job() {
	local engine=$1 rw=$2 bs=$3 f
	shift 3
	f=$(fio --name=host --filename="$IMG" --rw="$rw" --bs="$bs" --iodepth="$DEPTH" \
		--ioengine="$engine" --direct=0 --invalidate=0 --size="${MIB}M" "$@" \
		--output-format=terse --terse-version=3)
	awk -F';' -v w="$([ "$rw" = write ] && echo 1 || echo 0)" \
		'NF > 50 { o = w ? 41 : 0; printf "%.1f %.0f\n", $(7+o) / 1024, $(8+o) }' <<<"$f"
}

# The host's own figure: the better of io_uring at the guest's depth (ember's
# engine) and plain pread/pwrite (psync, depth 1), which is faster on cached
# data. Prints "MiB/s IOPS", each the larger of the two, from a warm cache.
host_fio() {
	local a b
	cache_ready
	a=$(fio_job io_uring "$@")
	cache_ready
	b=$(fio_job psync "$@")
	awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ")
		printf "%s %s\n", (x[1] > y[1] ? x[1] : y[1]), (x[2] > y[2] ? x[2] : y[2]) }'
}

# Runs a monitor under virtiobench; stamped console in $1.log, stderr in $1.err.
vm_run() {
	local log=$1
	shift
	"$TOOL" stamp -- timeout -k 5 "$TIMEOUT" "$@" </dev/null >"$log" 2>"$log.err" || true
}

# Phase figures from a stamped console: "read_mibs write_mibs randread_iops"
# for blk, "seconds" for net; empty when a phase is missing or a FAIL was printed.
parse_blk() {
	awk '$3 == "guest:" && $4 == "FAIL" { bad = 1 }
	     $4 == "bench" && $5 == "blk" && $7 == "start" { s[$6] = $2 }
	     $4 == "bench" && $5 == "blk" && $7 == "done" {
		split($8, b, "="); split($9, r, "="); d = $1 - s[$6]
		if (d > 0) { mibs[$6] = b[2] / 1048576 / d; iops[$6] = r[2] / d } }
	     END { if (!bad && ("read" in mibs) && ("write" in mibs) && ("randread" in iops))
		printf "%.1f %.1f %.0f\n", mibs["read"], mibs["write"], iops["randread"] }' "$1"
}
parse_net() {
	awk '$3 == "guest:" && $4 == "FAIL" { bad = 1 }
	     $4 == "bench" && $5 == "net" && $6 == "start" { s = $2 }
	     $4 == "bench" && $5 == "net" && $6 == "done" { d = $1 - s }
	     END { if (!bad && d > 0) printf "%.6f\n", d }' "$1"
}

blk_cmdline="bench-blk bench-mib=$MIB bench-bs=$BS_KIB bench-depth=$DEPTH bench-ios=$IOS"
net_cmdline="bench-net bench-frames=$FRAMES"
ember=("$BUILD/ember" run --kernel "$GUEST" --memory 128 --cpus 1)
# -cpu host aborts on this kind of host (HOST-KVM.md); qemu64 runs the guest. The
# drive's cache/aio are QEMU's defaults, written out.
qemu_set() {
	QACCEL=$1
	qemu=("$QEMU" -M q35 -accel "$QACCEL" -cpu "$([ "$QACCEL" = kvm ] && echo qemu64 || echo max)"
		-m 128 -smp 1 -display none -no-reboot -nodefaults -no-user-config -serial stdio
		-kernel "$GUEST")
}
qemu_set "${BENCH_QEMU_ACCEL:-kvm}"
cmdflag() { [ "$1" = ember ] && echo --cmdline || echo -append; }

# ---- the image and the namespace ----

head -c "${MIB}M" /dev/urandom >"$IMG"
ip netns add "$NS" || die "'ip netns add $NS' failed"
# No IPv6 on the TAP: the host stack sends nothing, the guest's frames are all it receives.
ip netns exec "$NS" sysctl -qw net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.all.disable_ipv6=1
ip -n "$NS" tuntap add dev "$TAP" mode tap || die "cannot create TAP $TAP in $NS"
ip -n "$NS" link set "$TAP" up
rx() { ip netns exec "$NS" cat "/sys/class/net/$TAP/statistics/$1"; }

# ---- blk ----

declare -A V # V[side.metric] = space-separated samples
add() { V[$1]="${V[$1]:-} $2"; }
qemu_why=""
[ -n "$QEMU" ] || qemu_why="qemu-system-x86_64 not installed"

blk_vm() { # side, command...: adds the side's samples, or returns 1
	local side=$1 log=$DIR/virtio-$1-blk.log r
	shift
	cache_ready
	vm_run "$log" "$@" "$(cmdflag "$side")" "$blk_cmdline" "${blkdev[@]}"
	r=$(parse_blk "$log")
	[ -n "$r" ] || return 1
	read -r a b c <<<"$r"
	add "$side.read" "$a"; add "$side.write" "$b"; add "$side.rand" "$c"
}

echo "virtio benchmark: $RUNS runs each, medians; image $MIB MiB (random) in $DIR" >&2
for ((i = 1; i <= RUNS; i++)); do
	echo "run $i/$RUNS: blk" >&2
	read -r a _ <<<"$(host_fio read "${BS_KIB}k")"; add host.read "$a"
	read -r a _ <<<"$(host_fio write "${BS_KIB}k")"; add host.write "$a"
	read -r _ a <<<"$(host_fio randread 4k --number_ios="$IOS" --norandommap)"; add host.rand "$a"

	blkdev=(--disk "$IMG")
	blk_vm ember "${ember[@]}" || die "ember: bench-blk failed; see $DIR/virtio-ember-blk.log{,.err}"
	if [ -z "$qemu_why" ]; then
		blkdev=(-device "virtio-blk-pci,drive=d0,disable-legacy=on"
			-drive "if=none,id=d0,file=$IMG,format=raw,cache=writeback,aio=threads")
		if blk_vm qemu "${qemu[@]}"; then
			:
		elif [ "$QACCEL" = kvm ] && [ "$i" = 1 ]; then
			echo "qemu: -accel kvm did not run the guest ($(tail -n1 "$DIR/virtio-qemu-blk.log.err")); trying TCG" >&2
			qemu_set tcg
			blk_vm qemu "${qemu[@]}" || qemu_why="QEMU could not run the guest, see $DIR/virtio-qemu-blk.log{,.err}"
		else
			echo "qemu: bench-blk failed in run $i, see $DIR/virtio-qemu-blk.log{,.err}" >&2
		fi
	fi
done

# ---- net ----

net_vm() { # side, command...
	local side=$1 log=$DIR/virtio-$1-net.log b0 p0 b1 p1 d
	shift
	b0=$(rx rx_bytes); p0=$(rx rx_packets)
	vm_run "$log" ip netns exec "$NS" "$@" "$(cmdflag "$side")" "$net_cmdline" "${netdev[@]}"
	b1=$(rx rx_bytes); p1=$(rx rx_packets)
	d=$(parse_net "$log")
	[ -n "$d" ] || return 1
	add "$side.net" "$(awk -v b=$((b1 - b0)) -v d="$d" 'BEGIN { printf "%.1f", b / 1048576 / d }')"
	add "$side.pps" "$(awk -v p=$((p1 - p0)) -v d="$d" 'BEGIN { printf "%.0f", p / d }')"
	add "$side.lost" $((FRAMES - (p1 - p0)))
}

for ((i = 1; i <= RUNS; i++)); do
	echo "run $i/$RUNS: net" >&2
	b0=$(rx rx_bytes); p0=$(rx rx_packets)
	h=$(ip netns exec "$NS" "$TOOL" tapsend "$TAP" "$FRAMES") || die "host: tapsend failed"
	b1=$(rx rx_bytes); p1=$(rx rx_packets)
	d=${h##*seconds=}
	add host.net "$(awk -v b=$((b1 - b0)) -v d="$d" 'BEGIN { printf "%.1f", b / 1048576 / d }')"
	add host.pps "$(awk -v p=$((p1 - p0)) -v d="$d" 'BEGIN { printf "%.0f", p / d }')"
	add host.lost $((FRAMES - (p1 - p0)))

	netdev=(--net "tap=$TAP,mac=$MAC")
	net_vm ember "${ember[@]}" || die "ember: bench-net failed; see $DIR/virtio-ember-net.log{,.err}"
	if [ -z "$qemu_why" ]; then
		netdev=(-netdev "tap,id=n0,ifname=$TAP,script=no,downscript=no,vhost=off"
			-device "virtio-net-pci,netdev=n0,disable-legacy=on,mac=$MAC")
		net_vm qemu "${qemu[@]}" || echo "qemu: bench-net failed, see $DIR/virtio-qemu-net.log{,.err}" >&2
	fi
done

# ---- table ----

{
	echo "virtio benchmark, $(date -u +%Y-%m-%dT%H:%MZ): median of $RUNS; PVH test guest, 1 vCPU, 128 MiB"
	echo "blk: $MIB MiB image, ${BS_KIB} KiB sequential and 4 KiB random requests, $DEPTH in flight," \
		"$IOS random reads; page cache warm, buffered I/O, no flush"
	echo "host: blk = fio on the image, the better of io_uring (depth $DEPTH) and psync per run;" \
		"net = a host process writing the same frames into the same TAP"
	echo "net: $FRAMES frames of 1514 bytes guest -> host TAP, counted by the TAP's rx statistics"
	echo "qemu: ${qemu_why:-$QEMU -M q35 -accel $QACCEL, virtio-*-pci disable-legacy=on, drive cache=writeback aio=threads, tap vhost=off}"
	printf "%-30s %10s %10s %10s %11s %11s\n" metric host ember qemu ember/host ember/qemu
	for m in "read:blk seq read MiB/s" "write:blk seq write MiB/s" "rand:blk rand read 4K IOPS" \
		"net:net tx MiB/s" "pps:net tx frames/s" "lost:net frames lost (max)"; do
		k=${m%%:*}
		if [ "$k" = lost ]; then
			hv=$(tr ' ' '\n' <<<"${V[host.$k]:-}" | sort -g | tail -n1)
			ev=$(tr ' ' '\n' <<<"${V[ember.$k]:-}" | sort -g | tail -n1)
			qv=$(tr ' ' '\n' <<<"${V[qemu.$k]:-}" | sort -g | tail -n1)
			printf "%-30s %10s %10s %10s\n" "${m#*:}" "${hv:-n/a}" "${ev:-n/a}" "${qv:-n/a}"
			continue
		fi
		hv=$(median <<<"${V[host.$k]:-}"); ev=$(median <<<"${V[ember.$k]:-}"); qv=$(median <<<"${V[qemu.$k]:-}")
		printf "%-30s %10s %10s %10s %11s %11s\n" "${m#*:}" "$(fmt "$hv")" "$(fmt "$ev")" "$(fmt "$qv")" \
			"$(ratio "$ev" "$hv")" "$(ratio "$ev" "$qv")"
	done
	echo "samples:"
	for k in $(printf '%s\n' "${!V[@]}" | sort); do echo "  $k:${V[$k]}"; done
} | tee "$OUT"
