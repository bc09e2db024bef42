/*
 * The test devices kvm-unit-tests' x86 tests expect from QEMU (`-device
 * isa-debug-exit,iobase=0xf4,iosize=0x4 -device pc-testdev`), attached only
 * with `ember run --test-dev`:
 *
 *   0xf4-0xf7   isa-debug-exit: writing v (any width) stops the VM with exit
 *               status ((v << 1) | 1) & 0xff, what QEMU's exit() gives the
 *               shell. Reads return 0.
 *   0xe0-0xe3   pc-testdev ioport: a 32-bit register, read and written in
 *               byte lanes at any width (realmode's and emulator's I/O tests)
 *   0xe4-0xe7   flush page: a 32-bit write of a guest-physical address
 *               makes the host drop its mapping of that page for a moment
 *               (mprotect, as QEMU): the next guest access faults into KVM
 *               again (eventinj). Other widths and reads: ignored / 0.
 *   0xe8-0xeb   the same register as 0xe0, byte by byte
 *   0x2000-0x2017  IRQ lines: writing a byte sets GSI (port - 0x2000) to
 *               (value != 0) (apic, ioapic tests: set_irq_line)
 *   MMIO 0xff000000, 64 KiB: plain memory (pc-testdev-iomem)
 *
 * The board registers each range with the ops below, all on one struct
 * testdev. exit() and set_irq() are called without the device lock.
 */
#ifndef EMBER_VMM_DEV_TESTDEV_H
#define EMBER_VMM_DEV_TESTDEV_H

#include <pthread.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/memory.h"

#define TESTDEV_PORT_EXIT 0xf4
#define TESTDEV_EXIT_LEN 4
#define TESTDEV_PORT_IOPORT 0xe0
#define TESTDEV_PORT_FLUSH 0xe4
#define TESTDEV_PORT_IOPORT_BYTE 0xe8
#define TESTDEV_IOPORT_LEN 4
#define TESTDEV_PORT_IRQ 0x2000
#define TESTDEV_NR_IRQS 24
#define TESTDEV_IOMEM 0xff000000ULL
#define TESTDEV_IOMEM_LEN 0x10000

struct testdev_config {
	/* Stops the VM with this process exit status. */
	void (*exit)(void *ctx, int status);
	void *ctx;
	/* Drives GSI gsi (0..TESTDEV_NR_IRQS-1) to level. */
	void (*set_irq)(void *irq_ctx, uint32_t gsi, int level);
	void *irq_ctx;
	/* Guest RAM, for the flush port; NULL: flushes are ignored (software CPU). */
	const struct guest_mem *mem;
};

struct testdev {
	pthread_mutex_t lock; /* guards ioport and iomem */
	struct testdev_config cfg;
	uint32_t ioport;
	uint8_t iomem[TESTDEV_IOMEM_LEN];
};

/* The exit status for a value written to the debug-exit port. */
static inline int testdev_exit_status(uint32_t v)
{
	return (int)(((v << 1) | 1) & 0xff);
}

extern const struct bus_dev_ops testdev_exit_ops;   /* at TESTDEV_PORT_EXIT */
extern const struct bus_dev_ops testdev_ioport_ops; /* at _IOPORT and _IOPORT_BYTE */
extern const struct bus_dev_ops testdev_flush_ops;  /* at TESTDEV_PORT_FLUSH */
extern const struct bus_dev_ops testdev_irq_ops;    /* at TESTDEV_PORT_IRQ */
extern const struct bus_dev_ops testdev_iomem_ops;  /* MMIO at TESTDEV_IOMEM */

int testdev_init(struct testdev *td, const struct testdev_config *cfg);
void testdev_destroy(struct testdev *td);

#endif
