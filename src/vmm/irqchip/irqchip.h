/*
 * ember's user-space interrupt controllers and timers for the software
 * accelerator: a local APIC per vCPU, the I/O APIC, the two 8259 PICs and
 * the 8254 PIT, wired as on a PC:
 *
 *   ISA IRQ n (n != 0, 2) -> PIC IRQ n and IOAPIC pin n (GSI n)
 *   PIT (ISA IRQ 0)       -> PIC IRQ 0 and IOAPIC pin 2 (GSI 2, the MADT override)
 *   PCI INTx              -> IOAPIC pins 16-23
 *   PIC INTR              -> LINT0 of vCPU 0 (virtual wire: LVT LINT0 ExtINT, or
 *                            its APIC hardware-disabled), and IOAPIC pin 0 when
 *                            that entry is unmasked ExtINT
 *
 * Knows nothing of the CPU: the accelerator asks it for interrupts
 * (irqchip_intr_ack, irqchip_nmi_pending), hands it the APIC's MMIO page,
 * MSRs and CR8, and polls it for timers.
 *
 * Locking: one mutex per irqchip guards every controller. It is a leaf:
 * nothing else is locked while it is held, and the host callbacks (kick,
 * init, sipi) are called after it is released, so they may call back into
 * the irqchip. Devices may call irqchip_set_irq with their own lock held
 * (device lock -> irqchip lock). now_ns is called with the lock held and
 * must not call into the irqchip.
 */
#ifndef EMBER_VMM_IRQCHIP_IRQCHIP_H
#define EMBER_VMM_IRQCHIP_IRQCHIP_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/bus.h"

#define IRQCHIP_MAX_CPUS 256
#define IRQCHIP_IOAPIC_BASE 0xfec00000ULL
#define IRQCHIP_IOAPIC_SIZE 0x1000ULL
#define IRQCHIP_LAPIC_BASE 0xfee00000ULL
#define IRQCHIP_LAPIC_SIZE 0x1000ULL
#define IRQCHIP_GSI_COUNT 24

struct irqchip_host {
	/* An interrupt (or NMI) may be pending for vCPU cpu: wake it / make it look. */
	void (*kick)(void *ctx, uint32_t cpu);
	/* INIT IPI to vCPU cpu (its local APIC has already been reset). */
	void (*init)(void *ctx, uint32_t cpu);
	/* STARTUP IPI: the vCPU starts at vector << 12 if it waits for SIPI. */
	void (*sipi)(void *ctx, uint32_t cpu, uint8_t vector);
	/* Monotonic guest time in ns. */
	uint64_t (*now_ns)(void *ctx);
	void *ctx;
	/*
	 * Optional: an NMI for vCPU cpu. When set, NMIs go here (after the lock
	 * is released); when NULL they wait in the APIC for irqchip_nmi_pending
	 * and cpu is kicked.
	 */
	void (*nmi)(void *ctx, uint32_t cpu);
};

struct irqchip;

/*
 * ncpus 1..IRQCHIP_MAX_CPUS; APIC IDs are the vCPU indexes, cpu 0 is the
 * BSP, the IOAPIC's ID is ncpus (as ember's MADT says). 0 or -errno.
 */
int irqchip_create(struct irqchip **out, uint32_t ncpus, const struct irqchip_host *host);
void irqchip_destroy(struct irqchip *c);

/*
 * Claims PIC 0x20-0x21 and 0xa0-0xa1, ELCR 0x4d0-0x4d1, PIT 0x40-0x43 and
 * port 0x61 on pio, the IOAPIC page 0xfec00000 on mmio. The LAPIC page is
 * not on a bus: see irqchip_lapic_mmio. 0 or -errno from bus_add.
 */
int irqchip_attach(struct irqchip *c, struct bus *pio, struct bus *mmio);

/* GSI 0-23 input level (1 asserted); struct irq_line's set_level. */
void irqchip_set_irq(struct irqchip *c, uint32_t gsi, int level);
/* Same, with the irqchip as a void * (for struct irq_line.set_level). */
void irqchip_set_irq_cb(void *c, uint32_t gsi, int level);
/* An MSI write: addr 0xfeeXXXXX (dest ID 19:12, RH 3, DM 2), data (vector, mode, trigger). */
void irqchip_msi(struct irqchip *c, uint64_t addr, uint32_t data);

/*
 * vCPU cpu can take an interrupt now (RFLAGS.IF = 1, no interrupt shadow):
 * the vector it takes (ExtINT from the PIC, else the LAPIC's highest IRR
 * vector above PPR, moved to ISR), or -1.
 */
int irqchip_intr_ack(struct irqchip *c, uint32_t cpu);
/* Whether irqchip_intr_ack would return a vector. */
bool irqchip_has_intr(struct irqchip *c, uint32_t cpu);
/* NMI (host->nmi unset): true once per NMI delivered to cpu (consumes it); peek does not. */
bool irqchip_nmi_pending(struct irqchip *c, uint32_t cpu);
bool irqchip_nmi_peek(struct irqchip *c, uint32_t cpu);

/*
 * The vCPU's own local APIC page (xAPIC mode): offset into the page. Reads
 * return all-ones while the APIC is disabled or in x2APIC mode.
 */
void irqchip_lapic_mmio(struct irqchip *c, uint32_t cpu, uint64_t offset, uint8_t *data,
			uint32_t len, bool write);
/* Where the vCPU's APIC page is (IA32_APIC_BASE), or 0 if it decodes none (disabled, x2APIC). */
uint64_t irqchip_lapic_base(struct irqchip *c, uint32_t cpu);

/*
 * IA32_APIC_BASE (0x1b), IA32_TSC_DEADLINE (0x6e0), x2APIC 0x800-0x8ff:
 * 0, or -1 for #GP (x2APIC MSRs outside x2APIC mode, reserved registers
 * or bits, read-only/write-only ones, invalid APIC_BASE transitions, and
 * any other MSR).
 */
int irqchip_rdmsr(struct irqchip *c, uint32_t cpu, uint32_t msr, uint64_t *val);
int irqchip_wrmsr(struct irqchip *c, uint32_t cpu, uint32_t msr, uint64_t val);

/* MOV CR8: TPR[7:4]. */
void irqchip_set_tpr(struct irqchip *c, uint32_t cpu, uint64_t cr8);
uint64_t irqchip_get_tpr(struct irqchip *c, uint32_t cpu);

/* The guest TSC of cpu is now_ns + offset (for the TSC-deadline timer); 0 by default. */
void irqchip_set_tsc_offset(struct irqchip *c, uint32_t cpu, int64_t offset);

/*
 * Fires what is due at now_ns: cpu's LAPIC timer, and the PIT (whoever
 * polls). Returns the time of cpu's next deadline (ns; cpu 0 also waits
 * for the PIT), UINT64_MAX if none.
 */
uint64_t irqchip_poll(struct irqchip *c, uint32_t cpu, uint64_t now_ns);

#endif
