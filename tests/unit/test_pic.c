#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "vmm/bus.h"
#include "vmm/irqchip/irqchip.h"
#include "unit/irqchip_fake.h"

struct rig {
	struct fake f;
	struct irqchip *c;
	struct bus pio, mmio;
};

static void outb(struct rig *r, uint16_t port, uint8_t v)
{
	cr_assert(bus_write(&r->pio, port, &v, 1));
}

static uint8_t inb(struct rig *r, uint16_t port)
{
	uint8_t v;

	cr_assert(bus_read(&r->pio, port, &v, 1));
	return v;
}

/* Linux's init_8259A: vectors 0x30 / 0x38, cascade on IRQ 2. */
static void pic_setup(struct rig *r, uint8_t icw4)
{
	outb(r, 0x21, 0xff);
	outb(r, 0xa1, 0xff);
	outb(r, 0x20, 0x11);
	outb(r, 0x21, 0x30);
	outb(r, 0x21, 0x04);
	outb(r, 0x21, icw4);
	outb(r, 0xa0, 0x11);
	outb(r, 0xa1, 0x38);
	outb(r, 0xa1, 0x02);
	outb(r, 0xa1, icw4);
	outb(r, 0x21, 0x00);
	outb(r, 0xa1, 0x00);
}

static void rig_up(struct rig *r)
{
	r->c = make_chip(&r->f, 2);
	bus_init(&r->pio, "pio");
	bus_init(&r->mmio, "mmio");
	cr_assert_eq(irqchip_attach(r->c, &r->pio, &r->mmio), 0);
	pic_setup(r, 0x01);
}

static void rig_down(struct rig *r)
{
	bus_free(&r->pio);
	bus_free(&r->mmio);
	irqchip_destroy(r->c);
}

Test(pic, init_and_imr)
{
	struct rig r;

	rig_up(&r);
	cr_assert_eq(inb(&r, 0x21), 0);
	outb(&r, 0x21, 0xfb);
	outb(&r, 0xa1, 0x5a);
	cr_assert_eq(inb(&r, 0x21), 0xfb);
	cr_assert_eq(inb(&r, 0xa1), 0x5a);
	cr_assert_eq(inb(&r, 0x20), 0, "IRR");
	cr_assert_eq(inb(&r, 0x4d0), 0);
	outb(&r, 0x4d0, 0xff);
	outb(&r, 0x4d1, 0xff);
	cr_assert_eq(inb(&r, 0x4d0), 0xf8, "IRQ 0-2 are edge only");
	cr_assert_eq(inb(&r, 0x4d1), 0xde, "IRQ 8 and 13 are edge only");
	rig_down(&r);
}

Test(pic, virtual_wire_to_cpu0_and_priorities)
{
	struct rig r;

	rig_up(&r);
	irqchip_set_irq(r.c, 4, 1);
	cr_assert_eq(r.f.kicks[0], 1, "INTR wakes the BSP");
	cr_assert_eq(r.f.kicks[1], 0);
	irqchip_set_irq(r.c, 1, 1);
	cr_assert_eq(inb(&r, 0x20), 0x12, "IRR");
	cr_assert(irqchip_has_intr(r.c, 0));
	cr_assert_not(irqchip_has_intr(r.c, 1), "APs' LINT0 is masked");
	cr_assert_eq(irqchip_intr_ack(r.c, 0), 0x31, "IRQ 1 first");
	outb(&r, 0x20, 0x0b);
	cr_assert_eq(inb(&r, 0x20), 0x02, "ISR");
	outb(&r, 0x20, 0x0a);
	cr_assert_eq(inb(&r, 0x20), 0x10, "IRR");
	cr_assert_not(irqchip_has_intr(r.c, 0), "IRQ 4 waits behind IRQ 1 in service");
	outb(&r, 0x20, 0x20); /* non-specific EOI */
	cr_assert_eq(irqchip_intr_ack(r.c, 0), 0x34);
	outb(&r, 0x20, 0x64); /* specific EOI, IRQ 4 */
	outb(&r, 0x20, 0x0b);
	cr_assert_eq(inb(&r, 0x20), 0);
	cr_assert_eq(irqchip_intr_ack(r.c, 0), -1);
	/* A higher priority IRQ nests over one in service. */
	irqchip_set_irq(r.c, 4, 0);
	irqchip_set_irq(r.c, 4, 1);
	cr_assert_eq(irqchip_intr_ack(r.c, 0), 0x34);
	irqchip_set_irq(r.c, 1, 0);
	irqchip_set_irq(r.c, 1, 1);
	cr_assert_eq(irqchip_intr_ack(r.c, 0), 0x31);
	outb(&r, 0x20, 0x0b);
	cr_assert_eq(inb(&r, 0x20), 0x12);
	rig_down(&r);
}

Test(pic, cascade)
{
	struct rig r;

	rig_up(&r);
	irqchip_set_irq(r.c, 8, 1);
	irqchip_set_irq(r.c, 12, 1);
	irqchip_set_irq(r.c, 3, 1);
	cr_assert_eq(irqchip_intr_ack(r.c, 0), 0x38, "slave IRQs sit at master IRQ 2's priority");
	outb(&r, 0x20, 0x0b);
	outb(&r, 0xa0, 0x0b);
	cr_assert_eq(inb(&r, 0x20), 0x04);
	cr_assert_eq(inb(&r, 0xa0), 0x01);
	cr_assert_not(irqchip_has_intr(r.c, 0));
	outb(&r, 0xa0, 0x20);
	outb(&r, 0x20, 0x20);
	cr_assert_eq(irqchip_intr_ack(r.c, 0), 0x3c);
	outb(&r, 0xa0, 0x20);
	outb(&r, 0x20, 0x20);
	cr_assert_eq(irqchip_intr_ack(r.c, 0), 0x33);
	outb(&r, 0x20, 0x20);
	cr_assert_eq(irqchip_intr_ack(r.c, 0), -1);
	/* Masking the slave's IRQ on the master hides it. */
	outb(&r, 0x21, 0x04);
	irqchip_set_irq(r.c, 9, 1);
	cr_assert_not(irqchip_has_intr(r.c, 0));
	outb(&r, 0x21, 0x00);
	cr_assert_eq(irqchip_intr_ack(r.c, 0), 0x39);
	rig_down(&r);
}

Test(pic, level_elcr_and_mask)
{
	struct rig r;

	rig_up(&r);
	outb(&r, 0x4d1, 0x04); /* IRQ 10 level */
	irqchip_set_irq(r.c, 10, 1);
	cr_assert_eq(irqchip_intr_ack(r.c, 0), 0x3a);
	outb(&r, 0xa0, 0x20);
	outb(&r, 0x20, 0x20);
	cr_assert_eq(irqchip_intr_ack(r.c, 0), 0x3a, "still asserted: again");
	irqchip_set_irq(r.c, 10, 0);
	outb(&r, 0xa0, 0x20);
	outb(&r, 0x20, 0x20);
	cr_assert_eq(irqchip_intr_ack(r.c, 0), -1);
	/* A request that goes away after INTR was raised reads as spurious IRQ 15. */
	irqchip_set_irq(r.c, 10, 1);
	irqchip_set_irq(r.c, 10, 0);
	cr_assert_eq(irqchip_intr_ack(r.c, 0), 0x3f);
	outb(&r, 0xa0, 0x0b);
	cr_assert_eq(inb(&r, 0xa0), 0, "spurious: nothing in service on the slave");
	outb(&r, 0x20, 0x0b);
	cr_assert_eq(inb(&r, 0x20), 0x04, "but the master's IRQ 2 is");
	outb(&r, 0x20, 0x20);
	/* Masked IRQs do not raise INTR. */
	outb(&r, 0x21, 0x20);
	irqchip_set_irq(r.c, 5, 1);
	cr_assert_not(irqchip_has_intr(r.c, 0));
	outb(&r, 0x21, 0x00);
	cr_assert_eq(irqchip_intr_ack(r.c, 0), 0x35);
	rig_down(&r);
}

Test(pic, spurious_auto_eoi_and_poll)
{
	struct rig r;

	rig_up(&r);
	/* An INTA with nothing pending reads IRQ 7, and nothing goes in service. */
	cr_assert_eq(irqchip_intr_ack(r.c, 0), -1);
	pic_setup(&r, 0x03); /* auto-EOI */
	irqchip_set_irq(r.c, 6, 1);
	cr_assert_eq(irqchip_intr_ack(r.c, 0), 0x36);
	outb(&r, 0x20, 0x0b);
	cr_assert_eq(inb(&r, 0x20), 0, "auto-EOI: nothing in service");
	/* Poll mode: OCW3 with P, then a read acknowledges. */
	irqchip_set_irq(r.c, 5, 1);
	outb(&r, 0x20, 0x0c);
	cr_assert_eq(inb(&r, 0x20), 0x85);
	outb(&r, 0x20, 0x0c);
	cr_assert_eq(inb(&r, 0x20), 0x00);
	rig_down(&r);
}

Test(pic, lint0_and_apic_state)
{
	struct rig r;
	uint64_t v;

	rig_up(&r);
	/* LINT0 masked on an enabled APIC: the PIC is cut off. */
	apic_enable(r.c, 0);
	apic_wr(r.c, 0, 0x350, 0x10700);
	irqchip_set_irq(r.c, 4, 1);
	cr_assert_not(irqchip_has_intr(r.c, 0));
	/* Hardware-disabled APIC: INTR goes straight to the CPU. */
	irqchip_rdmsr(r.c, 0, 0x1b, &v);
	cr_assert_eq(irqchip_wrmsr(r.c, 0, 0x1b, v & ~(1ULL << 11)), 0);
	cr_assert(irqchip_has_intr(r.c, 0));
	cr_assert_eq(irqchip_intr_ack(r.c, 0), 0x34);
	outb(&r, 0x20, 0x20);
	/* Back on, LINT0 as ExtINT. */
	cr_assert_eq(irqchip_wrmsr(r.c, 0, 0x1b, v), 0);
	apic_enable(r.c, 0);
	apic_wr(r.c, 0, 0x350, 0x700);
	irqchip_set_irq(r.c, 3, 1);
	cr_assert_eq(irqchip_intr_ack(r.c, 0), 0x33);
	/* LINT0 in fixed mode: the INTR edge raises the LVT's vector. */
	apic_wr(r.c, 0, 0x350, 0x0e5);
	outb(&r, 0x20, 0x20);
	irqchip_set_irq(r.c, 5, 1);
	cr_assert_eq(irqchip_intr_ack(r.c, 0), 0xe5);
	rig_down(&r);
}

Test(pic, garbage)
{
	struct rig r;
	uint32_t x = 7;

	rig_up(&r);
	for (int i = 0; i < 4000; i++) {
		static const uint16_t ports[] = {0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1};
		uint16_t p = ports[x % 6];

		x = x * 1103515245 + 12345;
		if (x & 0x100)
			outb(&r, p, (uint8_t)(x >> 16));
		else
			inb(&r, p);
		irqchip_set_irq(r.c, (x >> 24) % 16, (x >> 9) & 1);
		irqchip_intr_ack(r.c, 0);
	}
	rig_down(&r);
}
