#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "vmm/bus.h"
#include "vmm/irq.h"
#include "vmm/irqchip/irqchip.h"
#include "unit/irqchip_fake.h"

static bool irr_bit(struct irqchip *c, uint32_t cpu, unsigned v)
{
	return (apic_rd(c, cpu, 0x200 + (v / 32) * 0x10) >> (v % 32)) & 1;
}

Test(irqchip, create_arguments)
{
	struct irqchip_host h = {.now_ns = fake_now};
	struct irqchip *c = (struct irqchip *)1;

	cr_assert_eq(irqchip_create(&c, 0, &h), -EINVAL);
	cr_assert_null(c);
	cr_assert_eq(irqchip_create(&c, IRQCHIP_MAX_CPUS + 1, &h), -EINVAL);
	cr_assert_eq(irqchip_create(&c, 1, NULL), -EINVAL);
	irqchip_destroy(NULL);
}

Test(irqchip, attach_claims_the_ranges)
{
	static const uint64_t ports[] = {0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1,
					 0x40, 0x41, 0x42, 0x43, 0x61};
	struct fake f;
	struct irqchip *c = make_chip(&f, 1);
	struct bus pio, mmio;

	bus_init(&pio, "pio");
	bus_init(&mmio, "mmio");
	cr_assert_eq(irqchip_attach(c, &pio, &mmio), 0);
	for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++)
		cr_assert_not_null(bus_find(&pio, ports[i]), "port %#lx", ports[i]);
	cr_assert_null(bus_find(&pio, 0x60));
	cr_assert_null(bus_find(&pio, 0x44));
	cr_assert_not_null(bus_find(&mmio, 0xfec00000));
	cr_assert_not_null(bus_find(&mmio, 0xfec00fff));
	cr_assert_null(bus_find(&mmio, 0xfee00000), "the LAPIC page is per vCPU");
	cr_assert_eq(irqchip_attach(c, &pio, &mmio), -EEXIST);
	/* Wide and odd accesses do not crash. */
	uint8_t d[8];
	bus_read(&mmio, 0xfec00000, d, 8);
	bus_read(&mmio, 0xfec00013, d, 2);
	bus_write(&mmio, 0xfec00ffc, d, 8);
	bus_read(&pio, 0x20, d, 4);
	bus_read(&pio, 0x43, d, 4);
	bus_write(&pio, 0x61, d, 2);
	bus_free(&pio);
	bus_free(&mmio);
	irqchip_destroy(c);
}

Test(irqchip, msi)
{
	struct fake f;
	struct irqchip *c = make_chip(&f, 3);

	for (uint32_t i = 0; i < 3; i++) {
		apic_enable(c, i);
		apic_wr(c, i, 0xd0, (1u << i) << 24);
	}
	/* Physical destination 2, fixed, edge (virtio-pci MSI-X as Linux writes it). */
	irqchip_msi(c, 0xfee02000, 0x0041);
	cr_assert(irr_bit(c, 2, 0x41));
	cr_assert_not(irr_bit(c, 0, 0x41) || irr_bit(c, 1, 0x41));
	cr_assert_eq(f.kicks[2], 1);
	cr_assert_eq(irqchip_intr_ack(c, 2), 0x41);
	/* Logical to APICs 0 and 1. */
	irqchip_msi(c, 0xfee03004, 0x0042);
	cr_assert(irr_bit(c, 0, 0x42) && irr_bit(c, 1, 0x42));
	cr_assert_not(irr_bit(c, 2, 0x42));
	/* Lowest priority: exactly one. */
	irqchip_msi(c, 0xfee07004, 0x0143);
	cr_assert_eq(irr_bit(c, 0, 0x43) + irr_bit(c, 1, 0x43) + irr_bit(c, 2, 0x43), 1);
	/* Redirection hint with fixed mode: one too. */
	irqchip_msi(c, 0xfee0700c, 0x0044);
	cr_assert_eq(irr_bit(c, 0, 0x44) + irr_bit(c, 1, 0x44) + irr_bit(c, 2, 0x44), 1);
	/* NMI. */
	irqchip_msi(c, 0xfee01000, 0x0400);
	cr_assert(irqchip_nmi_pending(c, 1));
	/* Level-triggered sets TMR. */
	irqchip_msi(c, 0xfee00000, 0xc045);
	cr_assert((apic_rd(c, 0, 0x180 + 0x10 * (0x45 / 32)) >> (0x45 % 32)) & 1);
	/* Not an MSI address, SIPI or ExtINT by MSI: ignored. */
	irqchip_msi(c, 0xfed00000, 0x0046);
	irqchip_msi(c, 0xfee00000, 0x0646);
	irqchip_msi(c, 0xfee00000, 0x0746);
	cr_assert_eq(f.sipis[0], 0);
	cr_assert_not(irr_bit(c, 0, 0x46));
	irqchip_destroy(c);
}

Test(irqchip, irq_line_callback)
{
	struct fake f;
	struct irqchip *c = make_chip(&f, 1);
	struct irq_line line = {.set_level = irqchip_set_irq_cb, .ctx = c, .gsi = 16};
	uint8_t d[4];

	apic_enable(c, 0);
	/* IOAPIC pin 16: level, vector 0x90, APIC 0. */
	irqchip_lapic_mmio(c, 0, 0, d, 4, false);
	struct bus pio, mmio;
	bus_init(&pio, "pio");
	bus_init(&mmio, "mmio");
	irqchip_attach(c, &pio, &mmio);
	uint32_t v;
	v = 0x10 + 2 * 16;
	bus_write(&mmio, 0xfec00000, (uint8_t *)&v, 4);
	v = 0x8090;
	bus_write(&mmio, 0xfec00010, (uint8_t *)&v, 4);
	irq_set(&line, 1);
	cr_assert_eq(irqchip_intr_ack(c, 0), 0x90);
	irq_set(&line, 0);
	apic_wr(c, 0, 0xb0, 0);
	cr_assert_eq(irqchip_intr_ack(c, 0), -1);
	bus_free(&pio);
	bus_free(&mmio);
	irqchip_destroy(c);
}

/* kick calls back into the irqchip: it must not hold the lock then. */
struct reenter {
	struct irqchip *c;
	atomic_int kicks, seen;
	atomic_uint_fast64_t now;
};

static void reenter_kick(void *ctx, uint32_t cpu)
{
	struct reenter *r = ctx;

	r->kicks++;
	if (irqchip_has_intr(r->c, cpu))
		r->seen++;
}

static void reenter_init(void *ctx, uint32_t cpu)
{
	struct reenter *r = ctx;

	irqchip_get_tpr(r->c, cpu);
}

static void reenter_sipi(void *ctx, uint32_t cpu, uint8_t vector)
{
	struct reenter *r = ctx;

	(void)vector;
	irqchip_get_tpr(r->c, cpu);
}

static uint64_t reenter_now(void *ctx)
{
	return ((struct reenter *)ctx)->now;
}

Test(irqchip, callbacks_run_unlocked)
{
	struct reenter r = {0};
	struct irqchip_host h = {.kick = reenter_kick,
				 .init = reenter_init,
				 .sipi = reenter_sipi,
				 .now_ns = reenter_now,
				 .ctx = &r};

	cr_assert_eq(irqchip_create(&r.c, 2, &h), 0);
	apic_enable(r.c, 0);
	apic_enable(r.c, 1);
	apic_wr(r.c, 0, 0x310, 1u << 24);
	apic_wr(r.c, 0, 0x300, 0x50);
	apic_wr(r.c, 0, 0x300, 0x4500);
	apic_wr(r.c, 0, 0x300, 0x4610);
	cr_assert_not(irqchip_has_intr(r.c, 1), "the INIT cleared the first IPI");
	apic_enable(r.c, 1);
	irqchip_msi(r.c, 0xfee01000, 0x51);
	cr_assert_eq(r.kicks, 2);
	cr_assert_eq(r.seen, 2);
	irqchip_destroy(r.c);
}

struct storm {
	struct irqchip *c;
	atomic_bool stop;
	atomic_int taken;
};

static void *storm_devices(void *arg)
{
	struct storm *s = arg;

	for (int i = 0; i < 20000; i++) {
		irqchip_msi(s->c, 0xfee00000 | ((uint64_t)(i & 1) << 12), 0x40 + (i % 64));
		irqchip_set_irq(s->c, 16 + i % 8, i & 1);
	}
	return NULL;
}

static void *storm_cpu(void *arg)
{
	struct storm *s = arg;
	static atomic_uint which;
	uint32_t cpu = atomic_fetch_add(&which, 1) & 1;

	while (!s->stop) {
		if (irqchip_intr_ack(s->c, cpu) >= 0) {
			s->taken++;
			apic_wr(s->c, cpu, 0xb0, 0);
		}
		irqchip_poll(s->c, cpu, 0);
	}
	while (irqchip_intr_ack(s->c, cpu) >= 0)
		apic_wr(s->c, cpu, 0xb0, 0);
	return NULL;
}

static uint64_t zero_now(void *ctx)
{
	(void)ctx;
	return 0;
}

Test(irqchip, concurrent_devices_and_vcpus)
{
	struct irqchip_host h = {.now_ns = zero_now};
	struct storm s = {0};
	pthread_t dev[2], cpu[2];

	cr_assert_eq(irqchip_create(&s.c, 2, &h), 0);
	apic_enable(s.c, 0);
	apic_enable(s.c, 1);
	for (int i = 0; i < 2; i++)
		pthread_create(&cpu[i], NULL, storm_cpu, &s);
	for (int i = 0; i < 2; i++)
		pthread_create(&dev[i], NULL, storm_devices, &s);
	for (int i = 0; i < 2; i++)
		pthread_join(dev[i], NULL);
	s.stop = true;
	for (int i = 0; i < 2; i++)
		pthread_join(cpu[i], NULL);
	cr_assert_gt(s.taken, 0);
	cr_assert_eq(irqchip_intr_ack(s.c, 0), -1);
	cr_assert_eq(irqchip_intr_ack(s.c, 1), -1);
	irqchip_destroy(s.c);
}

Test(irqchip, bad_cpu_index)
{
	struct fake f;
	struct irqchip *c = make_chip(&f, 1);
	uint64_t v;
	uint8_t d[4];

	cr_assert_eq(irqchip_intr_ack(c, 1), -1);
	cr_assert_not(irqchip_has_intr(c, 7));
	cr_assert_eq(irqchip_rdmsr(c, 1, 0x1b, &v), -1);
	cr_assert_eq(irqchip_wrmsr(c, 1, 0x1b, 0), -1);
	cr_assert_eq(irqchip_poll(c, 1, 0), UINT64_MAX);
	irqchip_lapic_mmio(c, 5, 0x30, d, 4, false);
	cr_assert_eq(d[0], 0xff);
	irqchip_destroy(c);
}

static int nmi_calls[2];

static void count_nmi(void *ctx, uint32_t cpu)
{
	(void)ctx;
	if (cpu < 2)
		nmi_calls[cpu]++;
}

Test(irqchip, nmi_callback)
{
	struct fake f = {0};
	struct irqchip_host h = {
	    .kick = fake_kick, .now_ns = fake_now, .ctx = &f, .nmi = count_nmi};
	struct irqchip *c;

	cr_assert_eq(irqchip_create(&c, 2, &h), 0);
	apic_wr(c, 0, 0x310, 1u << 24);
	apic_wr(c, 0, 0x300, 0x400);
	cr_assert_eq(nmi_calls[1], 1);
	cr_assert_eq(nmi_calls[0], 0);
	cr_assert_not(irqchip_nmi_pending(c, 1), "given to the callback, not latched");
	irqchip_msi(c, 0xfee00000, 0x400);
	cr_assert_eq(nmi_calls[0], 1);
	irqchip_destroy(c);
}
