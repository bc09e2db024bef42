/*
 * The irqchip unit tests' fake monitor (tests/unit/test_{lapic,ioapic,pic,
 * pit,irqchip}.c): a clock the test sets, counters of what the irqchip
 * told it, and local APIC register access.
 */
#ifndef EMBER_TESTS_UNIT_IRQCHIP_FAKE_H
#define EMBER_TESTS_UNIT_IRQCHIP_FAKE_H

#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "vmm/irqchip/irqchip.h"

/* A fake monitor: a clock the test sets, and counters of what it was told. */
struct fake {
	uint64_t now;
	int kicks[4], inits[4], sipis[4];
	uint8_t sipi_vec[4];
};

static inline void fake_kick(void *ctx, uint32_t cpu)
{
	struct fake *f = ctx;

	if (cpu < 4)
		f->kicks[cpu]++;
}

static inline void fake_init(void *ctx, uint32_t cpu)
{
	struct fake *f = ctx;

	if (cpu < 4)
		f->inits[cpu]++;
}

static inline void fake_sipi(void *ctx, uint32_t cpu, uint8_t vector)
{
	struct fake *f = ctx;

	if (cpu < 4) {
		f->sipis[cpu]++;
		f->sipi_vec[cpu] = vector;
	}
}

static inline uint64_t fake_now(void *ctx)
{
	return ((struct fake *)ctx)->now;
}

static inline struct irqchip *make_chip(struct fake *f, uint32_t ncpus)
{
	struct irqchip_host h = {
	    .kick = fake_kick, .init = fake_init, .sipi = fake_sipi, .now_ns = fake_now, .ctx = f};
	struct irqchip *c;

	memset(f, 0, sizeof(*f));
	cr_assert_eq(irqchip_create(&c, ncpus, &h), 0);
	return c;
}

static inline uint32_t apic_rd(struct irqchip *c, uint32_t cpu, uint32_t reg)
{
	uint8_t d[4];

	irqchip_lapic_mmio(c, cpu, reg, d, 4, false);
	return (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
}

static inline void apic_wr(struct irqchip *c, uint32_t cpu, uint32_t reg, uint32_t val)
{
	uint8_t d[4] = {(uint8_t)val, (uint8_t)(val >> 8), (uint8_t)(val >> 16),
			(uint8_t)(val >> 24)};

	irqchip_lapic_mmio(c, cpu, reg, d, 4, true);
}

/* Software-enables the APIC with spurious vector 0xff. */
static inline void apic_enable(struct irqchip *c, uint32_t cpu)
{
	apic_wr(c, cpu, 0xf0, 0x1ff);
}

#endif
