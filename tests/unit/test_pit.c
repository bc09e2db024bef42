#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "vmm/bus.h"
#include "vmm/irqchip/irqchip.h"
#include "unit/irqchip_fake.h"

#define PIT_HZ 1193182ULL

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

static void mmio_w32(struct rig *r, uint64_t addr, uint32_t v)
{
	uint8_t d[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	cr_assert(bus_write(&r->mmio, addr, d, 4));
}

/* The first ns at which the PIT has counted n ticks. */
static uint64_t tick_ns(uint64_t n)
{
	return (n * 1000000000ULL + PIT_HZ - 1) / PIT_HZ;
}

static void rig_up(struct rig *r)
{
	r->c = make_chip(&r->f, 2);
	bus_init(&r->pio, "pio");
	bus_init(&r->mmio, "mmio");
	cr_assert_eq(irqchip_attach(r->c, &r->pio, &r->mmio), 0);
	outb(r, 0x21, 0xff);
	outb(r, 0xa1, 0xff);
	apic_enable(r->c, 0);
	apic_enable(r->c, 1);
	r->f.now = 1000000000; /* not zero: loads happen at some time */
}

static void rig_down(struct rig *r)
{
	bus_free(&r->pio);
	bus_free(&r->mmio);
	irqchip_destroy(r->c);
}

/* IOAPIC pin 2 (ISA IRQ 0 by the MADT override) -> vector to APIC dest, edge. */
static void route_pit(struct rig *r, uint8_t vector, uint8_t dest)
{
	mmio_w32(r, 0xfec00000, 0x11 + 2 * 2);
	mmio_w32(r, 0xfec00010, (uint32_t)dest << 24);
	mmio_w32(r, 0xfec00000, 0x10 + 2 * 2);
	mmio_w32(r, 0xfec00010, vector);
}

static uint16_t read_latched(struct rig *r, int ch)
{
	uint8_t lo, hi;

	outb(r, 0x43, (uint8_t)(ch << 6)); /* counter latch */
	lo = inb(r, 0x40 + ch);
	hi = inb(r, 0x40 + ch);
	return (uint16_t)(lo | hi << 8);
}

Test(pit, counter_readback)
{
	struct rig r;
	uint64_t t0;

	rig_up(&r);
	t0 = r.f.now;
	outb(&r, 0x43, 0x34); /* channel 0, lo/hi, mode 2 */
	outb(&r, 0x40, 0x00);
	outb(&r, 0x40, 0x10);
	cr_assert_eq(read_latched(&r, 0), 0x1000);
	r.f.now = t0 + tick_ns(100);
	cr_assert_eq(read_latched(&r, 0), 0x1000 - 100);
	/* The latch holds its value while time goes on. */
	outb(&r, 0x43, 0x00);
	r.f.now = t0 + tick_ns(200);
	cr_assert_eq(inb(&r, 0x40), (0x1000 - 100) & 0xff);
	cr_assert_eq(inb(&r, 0x40), (0x1000 - 100) >> 8);
	/* Unlatched reads: lo then hi of the live count. */
	cr_assert_eq(inb(&r, 0x40), (0x1000 - 200) & 0xff);
	cr_assert_eq(inb(&r, 0x40), (0x1000 - 200) >> 8);
	/* Mode 2 wraps at the count. */
	r.f.now = t0 + tick_ns(0x1000 + 5);
	cr_assert_eq(read_latched(&r, 0), 0x1000 - 5);
	/* Read-back: status then count of channel 0. */
	outb(&r, 0x43, 0xc2);
	cr_assert_eq(inb(&r, 0x40), 0x80 | 0x34, "OUT high, lo/hi, mode 2, binary");
	cr_assert_eq(inb(&r, 0x40), (0x1000 - 5) & 0xff);
	cr_assert_eq(inb(&r, 0x40), (0x1000 - 5) >> 8);
	cr_assert_eq(inb(&r, 0x43), 0xff, "the control word is write-only");
	rig_down(&r);
}

Test(pit, byte_access_modes)
{
	struct rig r;
	uint64_t t0;

	rig_up(&r);
	t0 = r.f.now;
	outb(&r, 0x43, 0x50); /* channel 1, LSB only, mode 0 */
	outb(&r, 0x41, 0x80);
	r.f.now = t0 + tick_ns(0x10);
	cr_assert_eq(inb(&r, 0x41), 0x70);
	cr_assert_eq(inb(&r, 0x41), 0x70, "LSB only: every read is the low byte");
	outb(&r, 0x43, 0x60); /* channel 1, MSB only, mode 0 */
	outb(&r, 0x41, 0x12);
	r.f.now += tick_ns(0x100);
	cr_assert_eq(inb(&r, 0x41), 0x11);
	/* Count 0 is 65536. */
	outb(&r, 0x43, 0x74); /* channel 1, lo/hi, mode 2 */
	outb(&r, 0x41, 0);
	outb(&r, 0x41, 0);
	r.f.now += tick_ns(1);
	cr_assert_eq(read_latched(&r, 1), 0xffff);
	rig_down(&r);
}

Test(pit, channel0_periodic_irq0_through_ioapic)
{
	struct rig r;
	uint64_t t0, period = 1193;
	int fired = 0;

	rig_up(&r);
	route_pit(&r, 0x30, 0);
	t0 = r.f.now;
	outb(&r, 0x43, 0x34);
	outb(&r, 0x40, period & 0xff);
	outb(&r, 0x40, period >> 8);
	cr_assert_geq(r.f.kicks[0], 1, "vCPU 0 looks at its deadline again");
	cr_assert_eq(irqchip_poll(&*r.c, 0, r.f.now), t0 + tick_ns(period));
	cr_assert_eq(irqchip_poll(r.c, 1, r.f.now), UINT64_MAX, "the PIT wakes vCPU 0 only");
	for (uint64_t i = 1; i <= 20; i++) {
		uint64_t edge = t0 + tick_ns(period * i);

		irqchip_poll(r.c, 1, edge - 1);
		cr_assert_eq(irqchip_intr_ack(r.c, 0), -1);
		cr_assert_eq(irqchip_poll(r.c, 0, edge), t0 + tick_ns(period * (i + 1)));
		if (irqchip_intr_ack(r.c, 0) == 0x30) {
			fired++;
			apic_wr(r.c, 0, 0xb0, 0);
		}
	}
	cr_assert_eq(fired, 20);
	/* Any vCPU's poll runs the PIT. */
	irqchip_poll(r.c, 1, t0 + tick_ns(period * 21));
	cr_assert_eq(irqchip_intr_ack(r.c, 0), 0x30);
	rig_down(&r);
}

Test(pit, channel0_oneshot_through_pic)
{
	struct rig r;
	uint64_t t0;

	rig_up(&r);
	outb(&r, 0x20, 0x11);
	outb(&r, 0x21, 0x20);
	outb(&r, 0x21, 0x04);
	outb(&r, 0x21, 0x01);
	outb(&r, 0x21, 0xfe); /* only IRQ 0 */
	t0 = r.f.now;
	outb(&r, 0x43, 0x30); /* mode 0, as Linux's oneshot clockevent */
	outb(&r, 0x40, 100);
	outb(&r, 0x40, 0);
	cr_assert_eq(irqchip_poll(r.c, 0, t0 + tick_ns(100) - 1), t0 + tick_ns(100));
	cr_assert_not(irqchip_has_intr(r.c, 0));
	cr_assert_eq(irqchip_poll(r.c, 0, t0 + tick_ns(100)), UINT64_MAX);
	cr_assert_eq(irqchip_intr_ack(r.c, 0), 0x20);
	outb(&r, 0x20, 0x20);
	irqchip_poll(r.c, 0, t0 + tick_ns(100000));
	cr_assert_not(irqchip_has_intr(r.c, 0), "once");
	/* Mode 3 square wave: one edge a period. */
	t0 = r.f.now = t0 + tick_ns(200000);
	outb(&r, 0x43, 0x36);
	outb(&r, 0x40, 0x00);
	outb(&r, 0x40, 0x10);
	for (int i = 1; i <= 3; i++) {
		irqchip_poll(r.c, 0, t0 + tick_ns(0x1000ULL * i));
		cr_assert_eq(irqchip_intr_ack(r.c, 0), 0x20);
		outb(&r, 0x20, 0x20);
	}
	rig_down(&r);
}

Test(pit, channel2_gate_and_port61)
{
	struct rig r;
	uint64_t t0;
	uint16_t latch = 11932; /* 10 ms, as pit_calibrate_tsc */

	rig_up(&r);
	cr_assert_eq(inb(&r, 0x61) & 0x0f, 0);
	/* pit_calibrate_tsc: gate high, speaker off, mode 0 count down. */
	outb(&r, 0x61, (uint8_t)((inb(&r, 0x61) & ~0x02) | 0x01));
	cr_assert_eq(inb(&r, 0x61) & 0x03, 0x01);
	t0 = r.f.now;
	outb(&r, 0x43, 0xb0);
	outb(&r, 0x42, latch & 0xff);
	outb(&r, 0x42, latch >> 8);
	cr_assert_eq(inb(&r, 0x61) & 0x20, 0, "OUT2 low while counting");
	r.f.now = t0 + tick_ns(latch) - 1;
	cr_assert_eq(inb(&r, 0x61) & 0x20, 0);
	r.f.now = t0 + tick_ns(latch);
	cr_assert_eq(inb(&r, 0x61) & 0x20, 0x20, "OUT2 high at terminal count");
	/* quick_pit_calibrate: 0xffff, then the MSB falls by one every 256 ticks. */
	t0 = r.f.now;
	outb(&r, 0x43, 0xb0);
	outb(&r, 0x42, 0xff);
	outb(&r, 0x42, 0xff);
	for (int i = 1; i < 10; i++) {
		r.f.now = t0 + tick_ns(256ULL * i);
		inb(&r, 0x42);
		cr_assert_eq(inb(&r, 0x42), 0xff - i);
	}
	/* Gate low pauses mode 0; high resumes where it was. */
	r.f.now = t0 + tick_ns(3000);
	outb(&r, 0x61, 0x00);
	r.f.now += 50000000;
	cr_assert_eq(read_latched(&r, 2), 0xffff - 3000);
	outb(&r, 0x61, 0x01);
	r.f.now += tick_ns(10);
	cr_assert_eq(read_latched(&r, 2), 0xffff - 3010);
	/* Mode 2: a rising gate reloads; OUT high while the gate is low. */
	outb(&r, 0x43, 0xb4);
	outb(&r, 0x42, 0x00);
	outb(&r, 0x42, 0x01);
	r.f.now += tick_ns(100);
	cr_assert_eq(read_latched(&r, 2), 0x100 - 100);
	outb(&r, 0x61, 0x00);
	cr_assert_eq(inb(&r, 0x61) & 0x20, 0x20);
	outb(&r, 0x61, 0x01);
	cr_assert_eq(read_latched(&r, 2), 0x100);
	/* The refresh bit toggles. */
	uint8_t a = inb(&r, 0x61) & 0x10;
	r.f.now += 15085;
	cr_assert_neq(inb(&r, 0x61) & 0x10, a);
	rig_down(&r);
}

Test(pit, garbage)
{
	struct rig r;
	uint32_t x = 99;

	rig_up(&r);
	for (int i = 0; i < 5000; i++) {
		uint16_t p = (uint16_t)(0x40 + x % 4);

		x = x * 1103515245 + 12345;
		if (x & 0x100)
			outb(&r, p, (uint8_t)(x >> 16));
		else
			inb(&r, p);
		if ((x & 0xf000) == 0)
			outb(&r, 0x61, (uint8_t)(x >> 20));
		inb(&r, 0x61);
		r.f.now += (x >> 24) * 1000;
		irqchip_poll(r.c, 0, r.f.now);
		irqchip_intr_ack(r.c, 0);
	}
	rig_down(&r);
}
