# ember: `make` builds build/ember and the test guests; `make check` runs every test.
CC      ?= gcc
BUILD   ?= build
CFLAGS_COMMON := -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wvla \
                 -Wno-missing-field-initializers -g -Isrc -MMD -MP
CFLAGS  ?= -O2
LDLIBS  := -luring -lpthread -lm
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

LIB_SRCS  := $(shell find src/core src/cpu src/vmm -name '*.c' | sort)
CLI_SRCS  := $(shell find src/cli -name '*.c' | sort)
TEST_SRCS := $(shell find tests/unit tests/vm tests/linux -name '*.c' 2>/dev/null | sort)

LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
CLI_OBJS  := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
SAN_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/san/%.o) $(TEST_SRCS:%.c=$(BUILD)/san/%.o)

.PHONY: all check check-cpu check-linux unit clean run run-guest bench bench-virtio guests
all: $(BUILD)/.deps $(BUILD)/ember guests

# Debian packages the build and tests need (apt-get, once).
$(BUILD)/.deps: scripts/deps.sh
	@mkdir -p $(BUILD)
	scripts/deps.sh
	@touch $@

$(BUILD)/ember: $(LIB_OBJS) $(CLI_OBJS) | $(BUILD)/.deps
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# Objects wait for the packages (headers such as liburing.h) under make -j.
$(BUILD)/obj/%.o: %.c | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS) -c -o $@ $<

# Unit and VM tests: one Criterion binary, built with ASan and UBSan.
$(BUILD)/tests/ember-tests: $(SAN_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^ -lcriterion $(LDLIBS)

$(BUILD)/san/%.o: %.c | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -O1 $(SAN) -Itests -c -o $@ $<

include tests/guest/guest.mk
# Stock Linux guest (Debian's cloud kernel + busybox initramfs): linux-guest target.
-include tests/linux/linux.mk
# libFuzzer targets (clang): fuzz target, and fuzz-smoke run by check.
-include tests/fuzz/fuzz.mk

# Fuzz smoke runs first, so Criterion's summary is the last line printed.
# One test at a time: the test guests' own timeouts are wall-clock ones, and
# the Linux guest (minutes on hosts that emulate CPL 0) must not share the
# host's CPUs with another guest.
TEST_ENV = EMBER_BUILD=$(abspath $(BUILD)) LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp)
# VM tests run on every accelerator the host has: with /dev/kvm, once more
# on the software CPU (EMBER_ACCEL=soft) before the full run on KVM (auto).
VM_SUITES := @(cli|guest_boot|hostile|virtio_blk|virtio_net|virtio_rng|virtio_vsock|virtio_balloon|linux)/*
check: all linux-guest $(BUILD)/tests/ember-tests fuzz-smoke
	@if [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ -z "$$EMBER_ACCEL" ]; then \
		echo "VM tests on the software CPU (EMBER_ACCEL=soft), then everything on KVM"; \
		$(TEST_ENV) EMBER_ACCEL=soft $(BUILD)/tests/ember-tests --jobs 1 --filter '$(VM_SUITES)' || exit 1; \
	fi
	$(TEST_ENV) $(BUILD)/tests/ember-tests --jobs 1

# Only the stock Linux guest with a disk and a NIC (tests/linux).
check-linux: all linux-guest $(BUILD)/tests/ember-tests
	$(TEST_ENV) $(BUILD)/tests/ember-tests --filter 'linux/*'

# Only the software CPU's unit tests (tests/unit/cpu), from the same binary.
CPU_SUITES := @(decode|alu|string|diff|run|mmu|except|sys|sysrun|x87|sse)/*
check-cpu: $(BUILD)/tests/ember-tests
	$(TEST_ENV) $(BUILD)/tests/ember-tests --filter '$(CPU_SUITES)'

bench: all
	bench/boot.sh

# virtio-blk and virtio-net against the host and QEMU (root: TAP in a netns).
bench-virtio: all
	bench/virtio.sh

# The main job: Debian's kernel and a busybox initramfs (tests/linux/linux.mk).
run: run-linux

# ember's own test guest: reports what it was given and powers off, in a blink.
run-guest: all
	$(BUILD)/ember run --kernel $(BUILD)/guest/pvh-guest.elf --cpus 2 --cmdline "console=ttyS0"

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
