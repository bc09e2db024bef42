/* fw_cfg, the kvm-unit-tests test devices and the ACPI PM timer (src/vmm/dev). */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "vmm/config.h"
#include "vmm/dev/fw_cfg.h"
#include "vmm/dev/pmtimer.h"
#include "vmm/dev/testdev.h"
#include "vmm/memory.h"

#define SEL 0
#define DATA 1

static void fw_select(struct fw_cfg *fc, uint16_t key)
{
	uint8_t b[2] = {(uint8_t)key, (uint8_t)(key >> 8)};

	fw_cfg_ops.write(fc, SEL, b, 2);
}

/* As kvm-unit-tests' fwcfg_get_u: select, then byte reads from the data port. */
static uint64_t fw_get(struct fw_cfg *fc, uint16_t key, int bytes)
{
	uint64_t v = 0;

	fw_select(fc, key);
	for (int i = 0; i < bytes; i++) {
		uint8_t b;

		fw_cfg_ops.read(fc, DATA, &b, 1);
		v |= (uint64_t)b << (8 * i);
	}
	return v;
}

static void fw_setup(struct fw_cfg *fc)
{
	struct fw_cfg_config cfg = {.ram_size = 0x12345678000ULL, .ncpus = 3, .max_cpus = 3};

	cr_assert_eq(fw_cfg_init(fc, &cfg), 0);
}

Test(fw_cfg, signature_and_id)
{
	struct fw_cfg fc;
	char sig[5] = {0};

	fw_setup(&fc);
	cr_assert_eq(FW_CFG_PORT_SEL, 0x510);
	cr_assert_eq(FW_CFG_PORT_DATA, FW_CFG_PORT_SEL + DATA);
	fw_select(&fc, FW_CFG_SIGNATURE);
	for (int i = 0; i < 4; i++)
		fw_cfg_ops.read(&fc, DATA, (uint8_t *)&sig[i], 1);
	cr_assert_str_eq(sig, "QEMU");
	cr_assert_eq(fw_get(&fc, FW_CFG_ID, 4), 1, "traditional interface, no DMA");
	fw_cfg_destroy(&fc);
}

Test(fw_cfg, signature_selected_after_reset)
{
	struct fw_cfg fc;
	uint8_t b;

	fw_setup(&fc);
	fw_cfg_ops.read(&fc, DATA, &b, 1);
	cr_assert_eq(b, 'Q');
	fw_cfg_destroy(&fc);
}

Test(fw_cfg, ram_and_cpus)
{
	struct fw_cfg fc;

	fw_setup(&fc);
	cr_assert_eq(fw_get(&fc, FW_CFG_RAM_SIZE, 8), 0x12345678000ULL);
	cr_assert_eq(fw_get(&fc, FW_CFG_NB_CPUS, 2), 3);
	cr_assert_eq(fw_get(&fc, FW_CFG_MAX_CPUS, 2), 3);
	cr_assert_eq(fw_get(&fc, FW_CFG_FILE_DIR, 4), 0, "empty file directory");
	/* Reading on past an item gives 0; reselecting rewinds. */
	cr_assert_eq(fw_get(&fc, FW_CFG_NB_CPUS, 8), 3);
	cr_assert_eq(fw_get(&fc, FW_CFG_NB_CPUS, 1), 3);
	fw_cfg_destroy(&fc);
}

Test(fw_cfg, unknown_keys_and_other_accesses)
{
	struct fw_cfg fc;
	uint8_t b[4] = {0x05, 0, 0, 0};

	fw_setup(&fc);
	/* kvm-unit-tests' FW_CFG_MAX_RAM (0x11, "bare metal only") reads 0 = no limit. */
	cr_assert_eq(fw_get(&fc, 0x11, 8), 0);
	cr_assert_eq(fw_get(&fc, FW_CFG_ARCH_LOCAL | FW_CFG_NB_CPUS, 2), 0);
	/* The write-channel bit is masked off as in QEMU. */
	cr_assert_eq(fw_get(&fc, FW_CFG_WRITE_CHANNEL | FW_CFG_NB_CPUS, 2), 3);
	/* A byte write to the selector selects nothing; data writes are ignored. */
	fw_get(&fc, FW_CFG_SIGNATURE, 0);
	fw_cfg_ops.write(&fc, SEL, b, 1);
	fw_cfg_ops.write(&fc, DATA, b, 1);
	fw_cfg_ops.read(&fc, DATA, b, 1);
	cr_assert_eq(b[0], 'Q');
	fw_cfg_destroy(&fc);
}

struct td_fixture {
	struct testdev td;
	int exits, last_status;
	int levels[TESTDEV_NR_IRQS];
	int irq_calls;
};

static void on_exit_cb(void *ctx, int status)
{
	struct td_fixture *f = ctx;

	f->exits++;
	f->last_status = status;
}

static void on_irq(void *ctx, uint32_t gsi, int level)
{
	struct td_fixture *f = ctx;

	cr_assert_lt(gsi, TESTDEV_NR_IRQS);
	f->levels[gsi] = level;
	f->irq_calls++;
}

static void td_setup(struct td_fixture *f, const struct guest_mem *mem)
{
	struct testdev_config cfg = {
	    .exit = on_exit_cb, .ctx = f, .set_irq = on_irq, .irq_ctx = f, .mem = mem};

	memset(f, 0, sizeof(*f));
	cr_assert_eq(testdev_init(&f->td, &cfg), 0);
}

static void out32(const struct bus_dev_ops *ops, void *o, uint64_t off, uint32_t v, uint32_t len)
{
	uint8_t b[4];

	memcpy(b, &v, 4);
	ops->write(o, off, b, len);
}

static uint32_t in32(const struct bus_dev_ops *ops, void *o, uint64_t off, uint32_t len)
{
	uint8_t b[4] = {0};
	uint32_t v;

	ops->read(o, off, b, len);
	memcpy(&v, b, 4);
	return v;
}

/* QEMU's isa-debug-exit: exit((v << 1) | 1); the shell sees the low 8 bits. */
Test(testdev, debug_exit_status_encoding)
{
	struct td_fixture *f = malloc(sizeof(*f));

	td_setup(f, NULL);
	cr_assert_eq(testdev_exit_status(0), 1);
	cr_assert_eq(testdev_exit_status(1), 3);
	cr_assert_eq(testdev_exit_status(0x7f), 0xff);
	cr_assert_eq(testdev_exit_status(0x80), 1);
	out32(&testdev_exit_ops, &f->td, 0, 0, 4); /* outl(0, 0xf4): kvm-unit-tests' pass */
	cr_assert_eq(f->exits, 1);
	cr_assert_eq(f->last_status, 1);
	out32(&testdev_exit_ops, &f->td, 0, 1, 1); /* outb(1, 0xf4): a failure */
	cr_assert_eq(f->exits, 2);
	cr_assert_eq(f->last_status, 3);
	out32(&testdev_exit_ops, &f->td, 0, 0x1234, 2);
	cr_assert_eq(f->last_status, (0x2469 & 0xff));
	cr_assert_eq(in32(&testdev_exit_ops, &f->td, 0, 4), 0);
	testdev_destroy(&f->td);
	free(f);
}

Test(testdev, ioport_register_in_byte_lanes)
{
	struct td_fixture *f = malloc(sizeof(*f));

	td_setup(f, NULL);
	out32(&testdev_ioport_ops, &f->td, 0, 0x12345678, 4);
	cr_assert_eq(in32(&testdev_ioport_ops, &f->td, 0, 4), 0x12345678);
	cr_assert_eq(in32(&testdev_ioport_ops, &f->td, 0, 1), 0x78);
	cr_assert_eq(in32(&testdev_ioport_ops, &f->td, 2, 2), 0x1234);
	out32(&testdev_ioport_ops, &f->td, 1, 0xab, 1);
	cr_assert_eq(in32(&testdev_ioport_ops, &f->td, 0, 4), 0x1234ab78);
	out32(&testdev_ioport_ops, &f->td, 0, 0xcdef, 2);
	cr_assert_eq(in32(&testdev_ioport_ops, &f->td, 0, 4), 0x1234cdef);
	/* Past the register: dropped, reads 0. */
	out32(&testdev_ioport_ops, &f->td, 3, 0xffffffff, 4);
	cr_assert_eq(in32(&testdev_ioport_ops, &f->td, 0, 4), 0xff34cdef);
	cr_assert_eq(in32(&testdev_ioport_ops, &f->td, 3, 2), 0xff);
	testdev_destroy(&f->td);
	free(f);
}

Test(testdev, irq_lines_follow_writes)
{
	struct td_fixture *f = malloc(sizeof(*f));

	td_setup(f, NULL);
	out32(&testdev_irq_ops, &f->td, 0x0e, 1, 1);
	cr_assert_eq(f->levels[0x0e], 1);
	out32(&testdev_irq_ops, &f->td, 0x0e, 0x80, 1);
	cr_assert_eq(f->levels[0x0e], 1, "any non-zero value raises");
	out32(&testdev_irq_ops, &f->td, 0x0e, 0, 1);
	cr_assert_eq(f->levels[0x0e], 0);
	out32(&testdev_irq_ops, &f->td, 23, 1, 1);
	cr_assert_eq(f->levels[23], 1);
	cr_assert_eq(f->irq_calls, 4);
	out32(&testdev_irq_ops, &f->td, TESTDEV_NR_IRQS, 1, 1);
	cr_assert_eq(f->irq_calls, 4, "no line 24");
	testdev_destroy(&f->td);
	free(f);
}

Test(testdev, iomem_is_memory)
{
	struct td_fixture *f = malloc(sizeof(*f));
	uint8_t b[8] = {1, 2, 3, 4, 5, 6, 7, 8}, r[8];

	td_setup(f, NULL);
	testdev_iomem_ops.write(&f->td, 0x100, b, 8);
	testdev_iomem_ops.read(&f->td, 0x100, r, 8);
	cr_assert_arr_eq(r, b, 8);
	testdev_iomem_ops.read(&f->td, TESTDEV_IOMEM_LEN - 1, r, 2);
	cr_assert_eq(r[1], 0xff, "past the end");
	testdev_destroy(&f->td);
	free(f);
}

/* The flush port drops the host mapping for a moment; the page keeps its bytes. */
Test(testdev, flush_page_keeps_contents)
{
	struct td_fixture *f = malloc(sizeof(*f));
	struct gmem_region r;
	struct guest_mem mem;
	uint8_t *ram =
	    mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(ram, MAP_FAILED);
	memset(ram, 0x5c, 4 * 4096);
	r = (struct gmem_region){.gpa = 0, .size = 4 * 4096, .hva = ram};
	gmem_init_fake(&mem, &r, 1);
	td_setup(f, &mem);
	out32(&testdev_flush_ops, &f->td, 0, 0x2123, 4);
	out32(&testdev_flush_ops, &f->td, 0, 0x100000, 4); /* outside RAM: ignored */
	cr_assert_eq(ram[0x2000], 0x5c);
	ram[0x2000] = 1; /* still writable */
	cr_assert_eq(in32(&testdev_flush_ops, &f->td, 0, 4), 0);
	testdev_destroy(&f->td);
	munmap(ram, 4 * 4096);
	free(f);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

Test(pmtimer, counts_at_3_579545_mhz_and_wraps_at_24_bits)
{
	struct pmtimer pt = {.start_ns = 1000};

	cr_assert_eq(pmtimer_count_at(&pt, 1000), 0);
	cr_assert_eq(pmtimer_count_at(&pt, 1000 + 1000000000ULL), 3579545);
	cr_assert_eq(pmtimer_count_at(&pt, 1000 + 1000000ULL), 3579);
	/* 2^24 ticks = 4.687 s: the count wraps to 24 bits. */
	cr_assert_eq(pmtimer_count_at(&pt, 1000 + 5000000000ULL), (5 * 3579545) & 0xffffff);
	cr_assert_lt(pmtimer_count_at(&pt, 1000 + 86400000000000ULL), 1u << 24);
}

Test(pmtimer, port_reads_are_monotonic_at_the_right_rate)
{
	struct pmtimer pt;
	uint32_t a, b, prev;
	uint64_t t0, t1;
	struct timespec ts = {.tv_nsec = 50 * 1000000};

	pmtimer_init(&pt);
	t0 = mono_ns();
	a = in32(&pmtimer_ops, &pt, 0, 4);
	prev = a;
	for (int i = 0; i < 1000; i++) {
		uint32_t v = in32(&pmtimer_ops, &pt, 0, 4);

		cr_assert_geq(v, prev, "monotonic (no wrap within the first 4 s)");
		prev = v;
	}
	nanosleep(&ts, NULL);
	b = in32(&pmtimer_ops, &pt, 0, 4);
	t1 = mono_ns();
	cr_assert_eq(b >> 24, 0, "24 bits");
	/* b - a ticks took at most t1 - t0 ns, and at least the 50 ms slept. */
	cr_assert_geq(b - a, 50ULL * 3579545 / 1000 - 1);
	cr_assert_leq(b - a, (t1 - t0) * 3579545ULL / 1000000000ULL + 1);
	(void)pmtimer_ops.write;
}

Test(config, test_dev_flag)
{
	struct vm_config c;
	char err[128];

	vm_config_defaults(&c);
	cr_assert_not(c.test_dev, "off by default");
	cr_assert_eq(vm_config_set_test_dev(&c, NULL, err, sizeof(err)), 0);
	cr_assert(c.test_dev);
	vm_config_defaults(&c);
	cr_assert_eq(vm_config_set_test_dev(&c, "yes", err, sizeof(err)), -EINVAL);
	cr_assert_str_eq(err, "--test-dev: takes no value (got 'yes')");
	cr_assert_not(c.test_dev);
}
