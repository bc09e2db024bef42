#include "vmm/irqchip/ioapic.h"

#include <string.h>

#define IND_ID 0x00
#define IND_VER 0x01
#define IND_ARB 0x02
#define IND_RTE 0x10

#define RTE_LO_WRITABLE 0x1afffULL /* vector, mode, dest mode, polarity, trigger, mask */
#define RTE_HI_WRITABLE 0xff000000ULL

void ioapic_init(struct ioapic *io, uint32_t id,
		 int (*deliver)(void *ctx, const struct apic_msg *m), void *ctx)
{
	memset(io, 0, sizeof(*io));
	io->id = id & 0xff;
	io->deliver = deliver;
	io->ctx = ctx;
	for (int i = 0; i < IOAPIC_PINS; i++)
		io->rte[i] = IOAPIC_RTE_MASKED;
}

static void service(struct ioapic *io, uint32_t pin)
{
	uint64_t e = io->rte[pin];
	uint32_t bit = 1u << pin;
	bool level = e & IOAPIC_RTE_LEVEL;
	struct apic_msg m = {
	    .dest = (uint32_t)(e >> 56),
	    .vector = (uint8_t)e,
	    .mode = (e >> 8) & 7,
	    .logical = e & IOAPIC_RTE_LOGICAL,
	    .level = level,
	    .assert = true,
	};

	if (!(io->irr & bit) || (e & IOAPIC_RTE_MASKED))
		return;
	/* ExtINT: the PIC's output, which the irqchip reads at acknowledge time. */
	if (m.mode == APIC_DM_EXTINT) {
		if (!level)
			io->irr &= ~bit;
		return;
	}
	if (level) {
		if (e & IOAPIC_RTE_REMOTE_IRR)
			return;
		if (io->deliver(io->ctx, &m) > 0 && m.mode != APIC_DM_NMI && m.mode != APIC_DM_INIT)
			io->rte[pin] |= IOAPIC_RTE_REMOTE_IRR;
		return;
	}
	io->irr &= ~bit;
	io->deliver(io->ctx, &m);
}

void ioapic_set_irq(struct ioapic *io, uint32_t pin, int level)
{
	uint32_t bit;

	if (pin >= IOAPIC_PINS)
		return;
	bit = 1u << pin;
	if (io->rte[pin] & IOAPIC_RTE_LEVEL) {
		if (level)
			io->irr |= bit;
		else
			io->irr &= ~bit;
	} else if (level && !(io->level & bit)) {
		io->irr |= bit; /* rising edge; latched while masked */
	}
	if (level)
		io->level |= bit;
	else
		io->level &= ~bit;
	service(io, pin);
}

void ioapic_eoi(struct ioapic *io, uint8_t vector)
{
	for (uint32_t pin = 0; pin < IOAPIC_PINS; pin++) {
		uint64_t e = io->rte[pin];

		if ((uint8_t)e != vector || !(e & IOAPIC_RTE_REMOTE_IRR))
			continue;
		io->rte[pin] &= ~IOAPIC_RTE_REMOTE_IRR;
		service(io, pin);
	}
}

static uint32_t ind_read(struct ioapic *io)
{
	uint8_t r = io->sel;

	switch (r) {
	case IND_ID:
	case IND_ARB:
		return io->id << 24;
	case IND_VER:
		return IOAPIC_VERSION;
	}
	if (r >= IND_RTE && r < IND_RTE + 2 * IOAPIC_PINS) {
		uint64_t e = io->rte[(r - IND_RTE) / 2];

		return (r & 1) ? (uint32_t)(e >> 32) : (uint32_t)e;
	}
	return 0;
}

static void ind_write(struct ioapic *io, uint32_t val)
{
	uint8_t r = io->sel;
	uint32_t pin;
	uint64_t e;

	if (r == IND_ID) {
		io->id = (val >> 24) & 0xff;
		return;
	}
	if (r < IND_RTE || r >= IND_RTE + 2 * IOAPIC_PINS)
		return;
	pin = (r - IND_RTE) / 2;
	e = io->rte[pin];
	if (r & 1) {
		e = (e & ~(RTE_HI_WRITABLE << 32)) | (((uint64_t)val & RTE_HI_WRITABLE) << 32);
	} else {
		e = (e & ~RTE_LO_WRITABLE) | (val & RTE_LO_WRITABLE);
		if (!(e & IOAPIC_RTE_LEVEL))
			e &= ~IOAPIC_RTE_REMOTE_IRR;
	}
	io->rte[pin] = e;
	/* A level line that is still asserted counts as pending again. */
	if ((e & IOAPIC_RTE_LEVEL) && (io->level & (1u << pin)))
		io->irr |= 1u << pin;
	service(io, pin);
}

uint32_t ioapic_mmio_read32(struct ioapic *io, uint64_t offset)
{
	switch (offset) {
	case IOAPIC_REG_SEL:
		return io->sel;
	case IOAPIC_REG_WIN:
		return ind_read(io);
	}
	return 0;
}

void ioapic_mmio_write32(struct ioapic *io, uint64_t offset, uint32_t val, uint32_t len)
{
	switch (offset) {
	case IOAPIC_REG_SEL:
		io->sel = (uint8_t)val;
		return;
	case IOAPIC_REG_WIN:
		if (len >= 4)
			ind_write(io, val);
		return;
	case IOAPIC_REG_EOI:
		ioapic_eoi(io, (uint8_t)val);
		return;
	}
}
