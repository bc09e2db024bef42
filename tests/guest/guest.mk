# ember's test guests (tests/guest/README.md). Included by the root Makefile;
# also usable alone: make -f tests/guest/guest.mk BUILD=/tmp/x guests
BUILD ?= build
GUEST_DIR := tests/guest
GUEST_OUT := $(BUILD)/guest
GUEST_CC ?= gcc
HOST_CC ?= $(or $(CC),gcc)

GUEST_CFLAGS := -std=c17 -O2 -g -Wall -Wextra -Werror -Wshadow -Wvla \
	-ffreestanding -nostdlib -fno-pic -fno-pie -mno-red-zone \
	-mgeneral-regs-only -mno-sse -mno-mmx -mcmodel=small \
	-fno-stack-protector -fcf-protection=none -fno-asynchronous-unwind-tables \
	-fno-delete-null-pointer-checks -fno-strict-aliasing -MMD -MP
# gcc would turn lib.c's memset loop into a call to memset.
GUEST_CFLAGS += $(if $(findstring clang,$(GUEST_CC)),,-fno-tree-loop-distribute-patterns)
GUEST_LDFLAGS := -nostdlib -static -Wl,--build-id=none \
	-Wl,-z,max-page-size=4096 -Wl,-z,noexecstack \
	-Wl,--no-warn-rwx-segments -Wl,-T,$(GUEST_DIR)/guest.ld

GUEST_SRCS := $(GUEST_DIR)/entry.S $(GUEST_DIR)/main.c $(GUEST_DIR)/serial.c \
	$(GUEST_DIR)/bootinfo.c $(GUEST_DIR)/acpi.c $(GUEST_DIR)/rtc.c \
	$(GUEST_DIR)/smp.c $(GUEST_DIR)/lib.c $(GUEST_DIR)/pci.c \
	$(GUEST_DIR)/virtio.c $(GUEST_DIR)/virtio_blk.c $(GUEST_DIR)/virtio_rng.c \
	$(GUEST_DIR)/virtio_net.c $(GUEST_DIR)/virtio_vsock.c \
	$(GUEST_DIR)/virtio_balloon.c $(GUEST_DIR)/bench_blk.c $(GUEST_DIR)/bench_net.c \
	$(GUEST_DIR)/bench_cpu.c $(GUEST_DIR)/hostile.c
GUEST_OBJS := $(patsubst $(GUEST_DIR)/%,$(GUEST_OUT)/obj/%.o,$(GUEST_SRCS))

.PHONY: guests guests-check
guests: $(GUEST_OUT)/pvh-guest.elf $(GUEST_OUT)/bzimage-guest

$(GUEST_OUT)/obj/%.o: $(GUEST_DIR)/%
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<

$(GUEST_OUT)/pvh-guest.elf: $(GUEST_OBJS) $(GUEST_DIR)/guest.ld $(GUEST_DIR)/guest.mk
	$(GUEST_CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -o $@ $(GUEST_OBJS)

$(GUEST_OUT)/mkbzimage: $(GUEST_DIR)/mkbzimage.c
	@mkdir -p $(dir $@)
	$(HOST_CC) -std=c17 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wshadow \
		-Wvla -o $@ $<

$(GUEST_OUT)/bzimage-guest: $(GUEST_OUT)/pvh-guest.elf $(GUEST_OUT)/mkbzimage
	$(GUEST_OUT)/mkbzimage $< $@

# Checks the bzImage header fields independently of mkbzimage.
guests-check: guests
	$(GUEST_DIR)/check-bzimage.sh $(GUEST_OUT)/bzimage-guest $(GUEST_OUT)/pvh-guest.elf

-include $(GUEST_OBJS:.o=.d)
