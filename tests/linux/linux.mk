# Stock Linux guest: Debian's cloud kernel and a busybox initramfs (tests/linux).
#   make linux-guest   fetches the packages (apt-get download, dpkg -x) and builds
#                      $(BUILD)/linux/{vmlinuz,vmlinux,initramfs.cpio}; cached
#   make run-linux     boots it: a shell when stdin is a terminal, else a short
#                      tour; either way it powers off and ember exits 0
# The kernel is booted as the uncompressed vmlinux through PVH: on hosts where
# KVM emulates CPL 0 (HOST-KVM.md) the guest's own decompressor costs minutes.
LINUX_DIR := $(BUILD)/linux
LINUX_CPUS ?= 2
LINUX_MEMORY ?= 512
# The guest's kernel command line, one line in tests/linux/cmdline, shared by
# run-linux, tests/linux and bench/linux-boot.sh (through $(LINUX_DIR)/cmdline).
# ember itself adds what hosts like ours need (clearcpuid for SSSE3, XSAVE, SMAP, ...:
# see src/vmm/x86/linux_opts.h). The file holds what makes the boot cheaper there:
# mitigations=off: fewer instructions per kernel entry and exit.
# nowatchdog, hung_task_timeout_secs=0: at ~1 us per CPL 0 instruction the
# lockup and hung-task detectors only fill the console with false alarms.
# init_on_alloc=0: no zeroing of every page the kernel allocates.
# cryptomgr.notests, psi=0 and the initcalls left out (kprobes' blacklist,
# syscall trace events, trace event enum maps, the built-in X.509 key whose
# RSA check alone takes minutes there): work this guest never uses.
LINUX_CMDLINE ?= $(shell cat tests/linux/cmdline)

.PHONY: linux-guest run-linux
linux-guest: $(LINUX_DIR)/vmlinuz $(LINUX_DIR)/vmlinux $(LINUX_DIR)/initramfs.cpio $(LINUX_DIR)/cmdline

# Fetched again only when the fetch script changes (or after `make clean`).
$(LINUX_DIR)/.fetched: tests/linux/fetch.sh | $(BUILD)/.deps
	tests/linux/fetch.sh $(LINUX_DIR)
	@touch $@

$(LINUX_DIR)/vmlinuz: $(LINUX_DIR)/.fetched
	cp $(LINUX_DIR)/root/boot/vmlinuz-$$(cat $(LINUX_DIR)/kernel-release) $@

$(LINUX_DIR)/vmlinux: $(LINUX_DIR)/vmlinuz tests/linux/extract-vmlinux.sh
	tests/linux/extract-vmlinux.sh $< $@

$(LINUX_DIR)/cmdline: tests/linux/cmdline
	@mkdir -p $(dir $@)
	cp $< $@

$(LINUX_DIR)/initramfs.cpio: $(LINUX_DIR)/.fetched tests/linux/mkinitramfs.sh tests/linux/init
	tests/linux/mkinitramfs.sh $(LINUX_DIR) $@

run-linux: $(BUILD)/ember linux-guest
	@echo "run-linux: booting Debian's kernel on ember (KVM when /dev/kvm works, else its software CPU: about a minute)" >&2
	$(BUILD)/ember run --kernel $(LINUX_DIR)/vmlinux --initrd $(LINUX_DIR)/initramfs.cpio \
		--cpus $(LINUX_CPUS) --memory $(LINUX_MEMORY) \
		--cmdline "$(LINUX_CMDLINE)$$([ -t 0 ] && echo ' ember.shell')"
