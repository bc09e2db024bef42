#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "vmm/bus.h"
#include "vmm/irqchip/irqchip.h"
#include "unit/irqchip_fake.h"

#define IOAPIC 0xfec00000ULL
#define EOI 0xb0
#define IRR 0x200
#define TPR 0x80

#define RTE_LEVEL (1u << 15)
#define RTE_REMOTE_IRR (1u << 14)
#define RTE_LOGICAL (1u << 11)
#define RTE_MASKED (1u << 16)

struct rig {
	struct fake f;
	struct irqchip *c;
	struct bus pio, mmio;
};

static void rig_up(struct rig *r, uint32_t ncpus)
{
	r->c = make_chip(&r->f, ncpus);
	bus_init(&r->pio, "pio");
	bus_init(&r->mmio, "mmio");
	cr_assert_eq(irqchip_attach(r->c, &r->pio, &r->mmio), 0);
	for (uint32_t i = 0; i < ncpus; i++)
		apic_enable(r->c, i);
	/* Both PICs masked, as Linux leaves them with the IOAPIC in use. */
	uint8_t ff = 0xff;
	bus_write(&r->pio, 0x21, &ff, 1);
	bus_write(&r->pio, 0xa1, &ff, 1);
}

static void rig_down(struct rig *r)
{
	bus_free(&r->pio);
	bus_free(&r->mmio);
	irqchip_destroy(r->c);
}

static void mmio_w32(struct rig *r, uint64_t addr, uint32_t v)
{
	uint8_t d[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	cr_assert(bus_write(&r->mmio, addr, d, 4));
}

static uint32_t mmio_r32(struct rig *r, uint64_t addr)
{
	uint8_t d[4];

	cr_assert(bus_read(&r->mmio, addr, d, 4));
	return (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
}

static uint32_t io_rd(struct rig *r, uint8_t reg)
{
	mmio_w32(r, IOAPIC, reg);
	return mmio_r32(r, IOAPIC + 0x10);
}

static void io_wr(struct rig *r, uint8_t reg, uint32_t v)
{
	mmio_w32(r, IOAPIC, reg);
	mmio_w32(r, IOAPIC + 0x10, v);
}

static void route(struct rig *r, uint32_t pin, uint32_t lo, uint8_t dest)
{
	io_wr(r, (uint8_t)(0x11 + 2 * pin), (uint32_t)dest << 24);
	io_wr(r, (uint8_t)(0x10 + 2 * pin), lo);
}

static bool irr_bit(struct rig *r, uint32_t cpu, unsigned v)
{
	return (apic_rd(r->c, cpu, IRR + (v / 32) * 0x10) >> (v % 32)) & 1;
}

Test(ioapic, registers)
{
	struct rig r;

	rig_up(&r, 2);
	cr_assert_eq(io_rd(&r, 1), 0x00170011);
	cr_assert_eq(io_rd(&r, 0), 2u << 24, "ID: the first one no LAPIC uses (MADT)");
	cr_assert_eq(mmio_r32(&r, IOAPIC), 0);
	for (uint8_t p = 0; p < 24; p++) {
		cr_assert_eq(io_rd(&r, 0x10 + 2 * p), RTE_MASKED);
		cr_assert_eq(io_rd(&r, 0x11 + 2 * p), 0);
	}
	io_wr(&r, 0x10 + 2 * 5, 0xffffffff);
	cr_assert_eq(io_rd(&r, 0x10 + 2 * 5), 0x1afff,
		     "delivery status and remote IRR are read-only");
	io_wr(&r, 0x11 + 2 * 5, 0xffffffff);
	cr_assert_eq(io_rd(&r, 0x11 + 2 * 5), 0xff000000);
	io_wr(&r, 0, 0x0f000000);
	cr_assert_eq(io_rd(&r, 0), 0x0f000000);
	cr_assert_eq(io_rd(&r, 0x40), 0, "past the table");
	cr_assert_eq(io_rd(&r, 0xff), 0);
	io_wr(&r, 0xff, 0x1234);
	rig_down(&r);
}

Test(ioapic, edge)
{
	struct rig r;

	rig_up(&r, 2);
	route(&r, 4, 0x34, 1);
	irqchip_set_irq(r.c, 4, 1);
	cr_assert_eq(r.f.kicks[1], 1);
	cr_assert_eq(irqchip_intr_ack(r.c, 0), -1);
	cr_assert_eq(irqchip_intr_ack(r.c, 1), 0x34);
	apic_wr(r.c, 1, EOI, 0);
	irqchip_set_irq(r.c, 4, 1); /* no new edge */
	cr_assert_eq(irqchip_intr_ack(r.c, 1), -1);
	irqchip_set_irq(r.c, 4, 0);
	irqchip_set_irq(r.c, 4, 1);
	cr_assert_eq(irqchip_intr_ack(r.c, 1), 0x34);
	apic_wr(r.c, 1, EOI, 0);
	irqchip_set_irq(r.c, 4, 0);
	/* An edge while masked is held until unmasked. */
	route(&r, 4, RTE_MASKED | 0x34, 1);
	irqchip_set_irq(r.c, 4, 1);
	irqchip_set_irq(r.c, 4, 0);
	cr_assert_eq(irqchip_intr_ack(r.c, 1), -1);
	route(&r, 4, 0x35, 1);
	cr_assert_eq(irqchip_intr_ack(r.c, 1), 0x35);
	rig_down(&r);
}

Test(ioapic, level_remote_irr_and_eoi)
{
	struct rig r;

	rig_up(&r, 2);
	route(&r, 20, RTE_LEVEL | (1u << 13) | 0x60, 0);
	irqchip_set_irq(r.c, 20, 1);
	cr_assert(io_rd(&r, 0x10 + 2 * 20) & RTE_REMOTE_IRR);
	cr_assert_eq(irqchip_intr_ack(r.c, 0), 0x60);
	cr_assert((apic_rd(r.c, 0, 0x180 + 0x10 * (0x60 / 32)) >> (0x60 % 32)) & 1, "TMR");
	/* EOI with the line still asserted: delivered again. */
	apic_wr(r.c, 0, EOI, 0);
	cr_assert(io_rd(&r, 0x10 + 2 * 20) & RTE_REMOTE_IRR);
	cr_assert_eq(irqchip_intr_ack(r.c, 0), 0x60);
	irqchip_set_irq(r.c, 20, 0);
	apic_wr(r.c, 0, EOI, 0);
	cr_assert_not(io_rd(&r, 0x10 + 2 * 20) & RTE_REMOTE_IRR);
	cr_assert_eq(irqchip_intr_ack(r.c, 0), -1);
	/* While remote IRR is set nothing more is sent; the EOI register clears it. */
	irqchip_set_irq(r.c, 20, 1);
	cr_assert_eq(irqchip_intr_ack(r.c, 0), 0x60);
	irqchip_set_irq(r.c, 20, 0);
	irqchip_set_irq(r.c, 20, 1);
	cr_assert_not(irr_bit(&r, 0, 0x60));
	irqchip_set_irq(r.c, 20, 0);
	mmio_w32(&r, IOAPIC + 0x40, 0x60);
	cr_assert_not(io_rd(&r, 0x10 + 2 * 20) & RTE_REMOTE_IRR);
	/* A masked, asserted level line is delivered when unmasked. */
	route(&r, 21, RTE_MASKED | RTE_LEVEL | 0x70, 1);
	irqchip_set_irq(r.c, 21, 1);
	cr_assert_not(irr_bit(&r, 1, 0x70));
	route(&r, 21, RTE_LEVEL | 0x70, 1);
	cr_assert(irr_bit(&r, 1, 0x70));
	rig_down(&r);
}

Test(ioapic, destinations_and_modes)
{
	struct rig r;

	rig_up(&r, 3);
	for (uint32_t i = 0; i < 3; i++)
		apic_wr(r.c, i, 0xd0, (1u << i) << 24);
	/* Logical (flat) to APICs 0 and 2. */
	route(&r, 5, RTE_LOGICAL | 0x45, 0x05);
	irqchip_set_irq(r.c, 5, 1);
	cr_assert(irr_bit(&r, 0, 0x45) && irr_bit(&r, 2, 0x45));
	cr_assert_not(irr_bit(&r, 1, 0x45));
	/* Physical broadcast. */
	route(&r, 6, 0x46, 0xff);
	irqchip_set_irq(r.c, 6, 1);
	for (uint32_t i = 0; i < 3; i++)
		cr_assert(irr_bit(&r, i, 0x46));
	/* Lowest priority: one of the logical set. */
	apic_wr(r.c, 0, TPR, 0x80);
	route(&r, 7, RTE_LOGICAL | (1u << 8) | 0x47, 0x07);
	irqchip_set_irq(r.c, 7, 1);
	cr_assert_eq(irr_bit(&r, 0, 0x47) + irr_bit(&r, 1, 0x47) + irr_bit(&r, 2, 0x47), 1);
	cr_assert_not(irr_bit(&r, 0, 0x47));
	/* NMI. */
	route(&r, 9, (4u << 8), 2);
	irqchip_set_irq(r.c, 9, 1);
	cr_assert(irqchip_nmi_pending(r.c, 2));
	cr_assert_not(irqchip_nmi_pending(r.c, 1));
	/* No such APIC: nothing happens. */
	route(&r, 10, 0x4a, 9);
	irqchip_set_irq(r.c, 10, 1);
	for (uint32_t i = 0; i < 3; i++)
		cr_assert_not(irr_bit(&r, i, 0x4a));
	/* Out-of-range GSIs are ignored. */
	irqchip_set_irq(r.c, 24, 1);
	irqchip_set_irq(r.c, 0xffffffff, 1);
	rig_down(&r);
}

Test(ioapic, extint_pin0_takes_the_pic)
{
	struct rig r;
	uint8_t b;

	rig_up(&r, 2);
	/* LINT0 masked everywhere; the PIC reaches APIC 1 through pin 0. */
	apic_wr(r.c, 0, 0x350, 0x10000);
	b = 0x11;
	bus_write(&r.pio, 0x20, &b, 1);
	b = 0x20;
	bus_write(&r.pio, 0x21, &b, 1);
	b = 0x04;
	bus_write(&r.pio, 0x21, &b, 1);
	b = 0x01;
	bus_write(&r.pio, 0x21, &b, 1);
	b = 0x00;
	bus_write(&r.pio, 0x21, &b, 1);
	irqchip_set_irq(r.c, 3, 1);
	cr_assert_not(irqchip_has_intr(r.c, 0));
	cr_assert_not(irqchip_has_intr(r.c, 1));
	route(&r, 0, (7u << 8), 1);
	cr_assert(irqchip_has_intr(r.c, 1));
	cr_assert_eq(irqchip_intr_ack(r.c, 1), 0x23);
	rig_down(&r);
}
