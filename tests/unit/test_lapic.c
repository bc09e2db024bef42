#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "vmm/irqchip/irqchip.h"
#include "unit/irqchip_fake.h"

#define ID 0x20
#define VER 0x30
#define TPR 0x80
#define APR 0x90
#define PPR 0xa0
#define EOI 0xb0
#define LDR 0xd0
#define DFR 0xe0
#define SVR 0xf0
#define ISR 0x100
#define TMR 0x180
#define IRR 0x200
#define ESR 0x280
#define ICR 0x300
#define ICR2 0x310
#define LVTT 0x320
#define LVTTHMR 0x330
#define LVTPC 0x340
#define LVT0 0x350
#define LVT1 0x360
#define LVTERR 0x370
#define TMICT 0x380
#define TMCCT 0x390
#define TDCR 0x3e0

#define ICR_SELF (1u << 18)
#define ICR_ALL (2u << 18)
#define ICR_ALL_BUT_SELF (3u << 18)
#define ICR_LOGICAL (1u << 11)
#define ICR_ASSERT (1u << 14)
#define ICR_LEVELTRIG (1u << 15)

static bool vec_bit(struct irqchip *c, uint32_t cpu, uint32_t base, unsigned v)
{
	return (apic_rd(c, cpu, base + (v / 32) * 0x10) >> (v % 32)) & 1;
}

static void self_ipi(struct irqchip *c, uint32_t cpu, uint8_t v)
{
	apic_wr(c, cpu, ICR, ICR_SELF | v);
}

Test(lapic, reset_state)
{
	struct fake f;
	struct irqchip *c = make_chip(&f, 2);
	uint64_t v;

	cr_assert_eq(apic_rd(c, 0, ID), 0);
	cr_assert_eq(apic_rd(c, 1, ID), 1u << 24);
	cr_assert_eq(apic_rd(c, 1, VER), 0x50014);
	cr_assert_eq(apic_rd(c, 0, SVR), 0xff);
	cr_assert_eq(apic_rd(c, 0, DFR), 0xffffffff);
	cr_assert_eq(apic_rd(c, 0, LVT0), 0x700, "BSP LINT0: virtual wire");
	cr_assert_eq(apic_rd(c, 1, LVT0), 0x10000);
	for (uint32_t r = LVTT; r <= LVTERR; r += 0x10)
		if (r != LVT0)
			cr_assert_eq(apic_rd(c, 0, r), 0x10000, "LVT %#x", r);
	cr_assert_eq(irqchip_rdmsr(c, 0, 0x1b, &v), 0);
	cr_assert_eq(v, 0xfee00900);
	cr_assert_eq(irqchip_rdmsr(c, 1, 0x1b, &v), 0);
	cr_assert_eq(v, 0xfee00800);
	cr_assert_eq(irqchip_lapic_base(c, 1), 0xfee00000);
	cr_assert_eq(irqchip_intr_ack(c, 1), -1);
	irqchip_destroy(c);
}

Test(lapic, register_readback)
{
	struct fake f;
	struct irqchip *c = make_chip(&f, 1);

	apic_wr(c, 0, LVTT, 0x12345); /* masked: software-disabled */
	cr_assert_eq(apic_rd(c, 0, LVTT), 0x10045);
	apic_enable(c, 0);
	cr_assert_eq(apic_rd(c, 0, SVR), 0x1ff);
	apic_wr(c, 0, SVR, 0xffffffff);
	cr_assert_eq(apic_rd(c, 0, SVR), 0x3ff);
	apic_wr(c, 0, TPR, 0x1234);
	cr_assert_eq(apic_rd(c, 0, TPR), 0x34);
	apic_wr(c, 0, LDR, 0x12345678);
	cr_assert_eq(apic_rd(c, 0, LDR), 0x12000000);
	apic_wr(c, 0, DFR, 0x0);
	cr_assert_eq(apic_rd(c, 0, DFR), 0x0fffffff);
	apic_wr(c, 0, LVTT, 0x22345);
	cr_assert_eq(apic_rd(c, 0, LVTT), 0x20045);
	apic_wr(c, 0, LVTPC, 0xffffffff);
	cr_assert_eq(apic_rd(c, 0, LVTPC), 0x107ff);
	apic_wr(c, 0, LVT1, 0xffffffff);
	cr_assert_eq(apic_rd(c, 0, LVT1), 0x1a7ff);
	apic_wr(c, 0, LVTERR, 0xffffffff);
	cr_assert_eq(apic_rd(c, 0, LVTERR), 0x100ff);
	apic_wr(c, 0, TDCR, 0xff);
	cr_assert_eq(apic_rd(c, 0, TDCR), 0xb);
	apic_wr(c, 0, ICR2, 0xffffffff);
	cr_assert_eq(apic_rd(c, 0, ICR2), 0xff000000);
	apic_wr(c, 0, ID, 0x05000000); /* read-only here */
	cr_assert_eq(apic_rd(c, 0, ID), 0);
	/* Byte reads see the register's bytes. */
	uint8_t b;
	irqchip_lapic_mmio(c, 0, VER + 2, &b, 1, false);
	cr_assert_eq(b, 0x05);
	/* Disabling masks every LVT. */
	apic_wr(c, 0, SVR, 0xff);
	cr_assert_eq(apic_rd(c, 0, LVTPC), 0x107ff);
	cr_assert(apic_rd(c, 0, LVTT) & 0x10000);
	irqchip_destroy(c);
}

Test(lapic, priority_order_and_eoi)
{
	struct fake f;
	struct irqchip *c = make_chip(&f, 1);

	apic_enable(c, 0);
	self_ipi(c, 0, 0x31);
	self_ipi(c, 0, 0x52);
	self_ipi(c, 0, 0x41);
	cr_assert(vec_bit(c, 0, IRR, 0x31) && vec_bit(c, 0, IRR, 0x52) && vec_bit(c, 0, IRR, 0x41));
	cr_assert(irqchip_has_intr(c, 0));
	cr_assert_eq(irqchip_intr_ack(c, 0), 0x52);
	cr_assert(vec_bit(c, 0, ISR, 0x52));
	cr_assert_not(vec_bit(c, 0, IRR, 0x52));
	cr_assert_eq(apic_rd(c, 0, PPR), 0x50);
	cr_assert_not(irqchip_has_intr(c, 0), "lower classes wait for the EOI");
	cr_assert_eq(irqchip_intr_ack(c, 0), -1);
	self_ipi(c, 0, 0x61); /* a higher class nests */
	cr_assert_eq(irqchip_intr_ack(c, 0), 0x61);
	apic_wr(c, 0, EOI, 0);
	cr_assert_not(vec_bit(c, 0, ISR, 0x61));
	cr_assert(vec_bit(c, 0, ISR, 0x52));
	apic_wr(c, 0, EOI, 0);
	cr_assert_eq(apic_rd(c, 0, PPR), 0);
	cr_assert_eq(irqchip_intr_ack(c, 0), 0x41);
	cr_assert_eq(irqchip_intr_ack(c, 0), -1);
	apic_wr(c, 0, EOI, 0);
	cr_assert_eq(irqchip_intr_ack(c, 0), 0x31);
	apic_wr(c, 0, EOI, 0);
	cr_assert_eq(irqchip_intr_ack(c, 0), -1);
	for (uint32_t i = 0; i < 8; i++)
		cr_assert_eq(apic_rd(c, 0, ISR + i * 0x10), 0);
	/* The same class as the one in service waits too. */
	self_ipi(c, 0, 0x55);
	cr_assert_eq(irqchip_intr_ack(c, 0), 0x55);
	self_ipi(c, 0, 0x56);
	cr_assert_eq(irqchip_intr_ack(c, 0), -1);
	apic_wr(c, 0, EOI, 0);
	cr_assert_eq(irqchip_intr_ack(c, 0), 0x56);
	irqchip_destroy(c);
}

Test(lapic, tpr_masks_and_cr8)
{
	struct fake f;
	struct irqchip *c = make_chip(&f, 1);

	apic_enable(c, 0);
	irqchip_set_tpr(c, 0, 5);
	cr_assert_eq(apic_rd(c, 0, TPR), 0x50);
	cr_assert_eq(irqchip_get_tpr(c, 0), 5);
	self_ipi(c, 0, 0x52);
	self_ipi(c, 0, 0x45);
	cr_assert_eq(apic_rd(c, 0, PPR), 0x50);
	cr_assert_not(irqchip_has_intr(c, 0));
	cr_assert_eq(apic_rd(c, 0, APR), 0x50);
	apic_wr(c, 0, TPR, 0x40);
	cr_assert_eq(irqchip_get_tpr(c, 0), 4);
	cr_assert_eq(irqchip_intr_ack(c, 0), 0x52);
	cr_assert_eq(apic_rd(c, 0, PPR), 0x50);
	apic_wr(c, 0, EOI, 0);
	cr_assert_eq(irqchip_intr_ack(c, 0), -1, "0x45 is still at TPR's class");
	irqchip_set_tpr(c, 0, 0);
	cr_assert_eq(irqchip_intr_ack(c, 0), 0x45);
	irqchip_destroy(c);
}

Test(lapic, esr_illegal_vector_and_register)
{
	struct fake f;
	struct irqchip *c = make_chip(&f, 1);

	apic_enable(c, 0);
	self_ipi(c, 0, 5);
	cr_assert_eq(irqchip_intr_ack(c, 0), -1);
	cr_assert_eq(apic_rd(c, 0, ESR), 0, "ESR shows errors after a write");
	apic_wr(c, 0, ESR, 0);
	cr_assert_eq(apic_rd(c, 0, ESR), 0x20);
	apic_wr(c, 0, ESR, 0);
	cr_assert_eq(apic_rd(c, 0, ESR), 0);
	irqchip_msi(c, 0xfee00000, 0x0003); /* received illegal vector */
	apic_rd(c, 0, 0x2f0);		    /* no CMCI LVT: illegal register */
	apic_wr(c, 0, ESR, 0);
	cr_assert_eq(apic_rd(c, 0, ESR), 0xc0);
	/* With the error LVT unmasked, an error raises its vector. */
	apic_wr(c, 0, LVTERR, 0xe3);
	self_ipi(c, 0, 1);
	cr_assert_eq(irqchip_intr_ack(c, 0), 0xe3);
	irqchip_destroy(c);
}

Test(lapic, fixed_ipi_between_cpus)
{
	struct fake f;
	struct irqchip *c = make_chip(&f, 2);

	apic_enable(c, 0);
	apic_enable(c, 1);
	apic_wr(c, 0, ICR2, 1u << 24);
	apic_wr(c, 0, ICR, 0x40 | ICR_ASSERT);
	cr_assert_eq(apic_rd(c, 0, ICR) & (1u << 12), 0, "delivery status idle");
	cr_assert_eq(f.kicks[1], 1);
	cr_assert_eq(f.kicks[0], 0);
	cr_assert_eq(irqchip_intr_ack(c, 0), -1);
	cr_assert_eq(irqchip_intr_ack(c, 1), 0x40);
	/* Broadcast and all-but-self. */
	apic_wr(c, 0, ICR2, 0xffu << 24);
	apic_wr(c, 0, ICR, 0x41);
	cr_assert_eq(irqchip_intr_ack(c, 0), 0x41);
	cr_assert(vec_bit(c, 1, IRR, 0x41));
	apic_wr(c, 1, ICR, ICR_ALL_BUT_SELF | 0x42);
	cr_assert(vec_bit(c, 0, IRR, 0x42));
	cr_assert_not(vec_bit(c, 1, IRR, 0x42));
	apic_wr(c, 1, ICR, ICR_ALL | 0x43);
	cr_assert(vec_bit(c, 0, IRR, 0x43) && vec_bit(c, 1, IRR, 0x43));
	/* A software-disabled APIC drops fixed interrupts. */
	apic_wr(c, 1, SVR, 0xff);
	apic_wr(c, 0, ICR2, 1u << 24);
	apic_wr(c, 0, ICR, 0x44);
	cr_assert_not(vec_bit(c, 1, IRR, 0x44));
	irqchip_destroy(c);
}

Test(lapic, logical_flat_and_cluster)
{
	struct fake f;
	struct irqchip *c = make_chip(&f, 3);

	for (uint32_t i = 0; i < 3; i++) {
		apic_enable(c, i);
		apic_wr(c, i, LDR, (1u << i) << 24); /* flat: one bit each */
	}
	apic_wr(c, 0, ICR2, 0x06u << 24);
	apic_wr(c, 0, ICR, ICR_LOGICAL | 0x50);
	cr_assert_not(vec_bit(c, 0, IRR, 0x50));
	cr_assert(vec_bit(c, 1, IRR, 0x50) && vec_bit(c, 2, IRR, 0x50));
	/* Cluster: cluster 1, members 1 and 2. */
	for (uint32_t i = 0; i < 3; i++)
		apic_wr(c, i, DFR, 0x0fffffff);
	apic_wr(c, 0, LDR, 0x11u << 24);
	apic_wr(c, 1, LDR, 0x12u << 24);
	apic_wr(c, 2, LDR, 0x21u << 24);
	apic_wr(c, 2, ICR2, 0x13u << 24);
	apic_wr(c, 2, ICR, ICR_LOGICAL | 0x51);
	cr_assert(vec_bit(c, 0, IRR, 0x51) && vec_bit(c, 1, IRR, 0x51));
	cr_assert_not(vec_bit(c, 2, IRR, 0x51));
	irqchip_destroy(c);
}

Test(lapic, lowest_priority_delivers_to_one)
{
	struct fake f;
	struct irqchip *c = make_chip(&f, 3);
	int n = 0;

	for (uint32_t i = 0; i < 3; i++)
		apic_enable(c, i);
	apic_wr(c, 0, TPR, 0x20);
	apic_wr(c, 2, TPR, 0x30);
	apic_wr(c, 0, ICR2, 0xffu << 24);
	apic_wr(c, 0, ICR, (1u << 8) | 0x60);
	for (uint32_t i = 0; i < 3; i++)
		n += vec_bit(c, i, IRR, 0x60);
	cr_assert_eq(n, 1);
	cr_assert(vec_bit(c, 1, IRR, 0x60), "the lowest TPR takes it");
	irqchip_destroy(c);
}

Test(lapic, nmi_init_sipi)
{
	struct fake f;
	struct irqchip *c = make_chip(&f, 2);

	apic_enable(c, 0);
	apic_enable(c, 1);
	apic_wr(c, 1, TPR, 0x70);
	apic_wr(c, 0, ICR2, 1u << 24);
	apic_wr(c, 0, ICR, (4u << 8));
	cr_assert_eq(f.kicks[1], 1);
	cr_assert(irqchip_nmi_peek(c, 1));
	cr_assert(irqchip_nmi_pending(c, 1));
	cr_assert_not(irqchip_nmi_pending(c, 1), "consumed");
	apic_wr(c, 0, ICR, (5u << 8) | ICR_ASSERT | ICR_LEVELTRIG);
	cr_assert_eq(f.inits[1], 1);
	cr_assert_eq(apic_rd(c, 1, SVR), 0xff, "INIT resets the APIC");
	cr_assert_eq(apic_rd(c, 1, TPR), 0);
	apic_wr(c, 0, ICR, (5u << 8) | ICR_LEVELTRIG); /* INIT level de-assert */
	cr_assert_eq(f.inits[1], 1);
	apic_wr(c, 0, ICR, (6u << 8) | 0x9a);
	cr_assert_eq(f.sipis[1], 1);
	cr_assert_eq(f.sipi_vec[1], 0x9a);
	cr_assert_eq(f.sipis[0], 0);
	/* INIT to all but self, as Linux's wakeup sequence may. */
	apic_wr(c, 0, ICR, ICR_ALL_BUT_SELF | (5u << 8) | ICR_ASSERT);
	cr_assert_eq(f.inits[1], 2);
	cr_assert_eq(f.inits[0], 0);
	irqchip_destroy(c);
}

Test(lapic, timer_oneshot)
{
	struct fake f;
	struct irqchip *c = make_chip(&f, 1);

	apic_enable(c, 0);
	f.now = 1000000;
	apic_wr(c, 0, TDCR, 0xb); /* divide by 1: 40 ns a count */
	apic_wr(c, 0, LVTT, 0x40);
	apic_wr(c, 0, TMICT, 1000);
	cr_assert_eq(apic_rd(c, 0, TMICT), 1000);
	cr_assert_eq(apic_rd(c, 0, TMCCT), 1000);
	f.now += 4000;
	cr_assert_eq(apic_rd(c, 0, TMCCT), 900);
	cr_assert_eq(irqchip_poll(c, 0, f.now), 1040000);
	cr_assert_eq(irqchip_intr_ack(c, 0), -1);
	f.now = 1039999;
	cr_assert_eq(irqchip_poll(c, 0, f.now), 1040000);
	cr_assert_eq(irqchip_intr_ack(c, 0), -1);
	f.now = 1040000;
	cr_assert_eq(irqchip_poll(c, 0, f.now), UINT64_MAX);
	cr_assert_eq(irqchip_intr_ack(c, 0), 0x40);
	apic_wr(c, 0, EOI, 0);
	cr_assert_eq(apic_rd(c, 0, TMCCT), 0);
	f.now += 1000000;
	irqchip_poll(c, 0, f.now);
	cr_assert_eq(irqchip_intr_ack(c, 0), -1, "one-shot fires once");
	irqchip_destroy(c);
}

Test(lapic, timer_periodic)
{
	struct fake f;
	struct irqchip *c = make_chip(&f, 1);
	int fired = 0;

	apic_enable(c, 0);
	apic_wr(c, 0, TDCR, 0x1); /* divide by 4: 160 ns a count */
	apic_wr(c, 0, LVTT, (1u << 17) | 0xec);
	apic_wr(c, 0, TMICT, 625); /* 100 us */
	for (int i = 1; i <= 10; i++) {
		f.now = (uint64_t)i * 100000 - 1;
		irqchip_poll(c, 0, f.now);
		cr_assert_eq(irqchip_intr_ack(c, 0), -1);
		f.now++;
		cr_assert_eq(irqchip_poll(c, 0, f.now), f.now + 100000);
		if (irqchip_intr_ack(c, 0) == 0xec) {
			fired++;
			apic_wr(c, 0, EOI, 0);
		}
		cr_assert_eq(apic_rd(c, 0, TMCCT), 625, "reloaded");
	}
	cr_assert_eq(fired, 10);
	/* Missed periods coalesce into one interrupt. */
	f.now += 550000;
	irqchip_poll(c, 0, f.now);
	cr_assert_eq(irqchip_intr_ack(c, 0), 0xec);
	apic_wr(c, 0, EOI, 0);
	cr_assert_eq(irqchip_intr_ack(c, 0), -1);
	cr_assert_eq(apic_rd(c, 0, TMCCT), 313);
	/* Masked: no interrupt, but it keeps counting. */
	apic_wr(c, 0, LVTT, (1u << 17) | (1u << 16) | 0xec);
	f.now += 100000;
	irqchip_poll(c, 0, f.now);
	cr_assert_eq(irqchip_intr_ack(c, 0), -1);
	cr_assert_eq(apic_rd(c, 0, TMCCT), 313);
	/* Stopped by a zero count. */
	apic_wr(c, 0, TMICT, 0);
	cr_assert_eq(irqchip_poll(c, 0, f.now), UINT64_MAX);
	irqchip_destroy(c);
}

Test(lapic, timer_divider)
{
	struct fake f;
	struct irqchip *c = make_chip(&f, 1);

	apic_enable(c, 0);
	apic_wr(c, 0, LVTT, 0x40);
	apic_wr(c, 0, TDCR, 0x3); /* 16: 640 ns a count */
	apic_wr(c, 0, TMICT, 10000);
	f.now = 6400;
	cr_assert_eq(apic_rd(c, 0, TMCCT), 9990);
	f.now = 6400 + 639;
	cr_assert_eq(apic_rd(c, 0, TMCCT), 9990);
	f.now = 6400 + 640;
	cr_assert_eq(apic_rd(c, 0, TMCCT), 9989);
	apic_wr(c, 0, TDCR, 0x0); /* 2: 80 ns a count, from the current count */
	cr_assert_eq(apic_rd(c, 0, TMCCT), 9989);
	f.now += 800;
	cr_assert_eq(apic_rd(c, 0, TMCCT), 9979);
	cr_assert_eq(irqchip_poll(c, 0, f.now), f.now + 9979 * 80);
	apic_wr(c, 0, TDCR, 0xa); /* 128 */
	cr_assert_eq(irqchip_poll(c, 0, f.now), f.now + 9979ULL * 40 * 128);
	irqchip_destroy(c);
}

Test(lapic, timer_tsc_deadline)
{
	struct fake f;
	struct irqchip *c = make_chip(&f, 1);
	uint64_t v;

	apic_enable(c, 0);
	f.now = 1000;
	apic_wr(c, 0, LVTT, (2u << 17) | 0x42);
	cr_assert_eq(irqchip_wrmsr(c, 0, 0x6e0, 5000), 0);
	cr_assert_eq(irqchip_rdmsr(c, 0, 0x6e0, &v), 0);
	cr_assert_eq(v, 5000);
	apic_wr(c, 0, TMICT, 10); /* ignored in deadline mode */
	cr_assert_eq(apic_rd(c, 0, TMICT), 0);
	cr_assert_eq(apic_rd(c, 0, TMCCT), 0);
	cr_assert_eq(irqchip_poll(c, 0, 4999), 5000);
	cr_assert_eq(irqchip_intr_ack(c, 0), -1);
	cr_assert_eq(irqchip_poll(c, 0, 5000), UINT64_MAX);
	cr_assert_eq(irqchip_intr_ack(c, 0), 0x42);
	irqchip_rdmsr(c, 0, 0x6e0, &v);
	cr_assert_eq(v, 0, "disarmed once fired");
	/* The guest TSC runs ahead of now_ns by the offset. */
	irqchip_set_tsc_offset(c, 0, 1000000);
	irqchip_wrmsr(c, 0, 0x6e0, 1010000);
	cr_assert_eq(irqchip_poll(c, 0, 5000), 10000);
	irqchip_poll(c, 0, 10000);
	cr_assert(vec_bit(c, 0, IRR, 0x42));
	/* A deadline far in the future is not in the past. */
	irqchip_set_tsc_offset(c, 0, 0);
	apic_wr(c, 0, EOI, 0);
	irqchip_intr_ack(c, 0);
	apic_wr(c, 0, EOI, 0);
	irqchip_wrmsr(c, 0, 0x6e0, 0xffffffffffff0000ULL);
	cr_assert_eq(irqchip_poll(c, 0, 20000), 0xffffffffffff0000ULL);
	cr_assert_eq(irqchip_intr_ack(c, 0), -1);
	/* Out of deadline mode the MSR is ignored and reads 0. */
	apic_wr(c, 0, LVTT, 0x42);
	irqchip_wrmsr(c, 0, 0x6e0, 99999);
	irqchip_rdmsr(c, 0, 0x6e0, &v);
	cr_assert_eq(v, 0);
	irqchip_destroy(c);
}

Test(lapic, x2apic_msr_rules)
{
	struct fake f;
	struct irqchip *c = make_chip(&f, 2);
	uint64_t v;

	cr_assert_eq(irqchip_rdmsr(c, 1, 0x802, &v), -1, "x2APIC MSRs need x2APIC mode");
	cr_assert_eq(irqchip_wrmsr(c, 1, 0x808, 0), -1);
	cr_assert_eq(irqchip_wrmsr(c, 1, 0x1b, 0xfee00400), -1, "EXTD without EN");
	cr_assert_eq(irqchip_wrmsr(c, 1, 0x1b, 0xfee00c01), -1, "reserved bit");
	cr_assert_eq(irqchip_wrmsr(c, 1, 0x1b, 0xfee00c00), 0);
	cr_assert_eq(irqchip_wrmsr(c, 0, 0x1b, 0xfee00d00), 0);
	cr_assert_eq(irqchip_lapic_base(c, 1), 0);
	cr_assert_eq(apic_rd(c, 1, VER), 0xffffffff, "no MMIO in x2APIC mode");
	cr_assert_eq(irqchip_rdmsr(c, 1, 0x802, &v), 0);
	cr_assert_eq(v, 1);
	cr_assert_eq(irqchip_rdmsr(c, 1, 0x803, &v), 0);
	cr_assert_eq(v, 0x50014);
	cr_assert_eq(irqchip_rdmsr(c, 1, 0x80d, &v), 0);
	cr_assert_eq(v, 0x2, "LDR: cluster 0, bit 1");
	cr_assert_eq(irqchip_rdmsr(c, 1, 0x80e, &v), -1, "no DFR");
	cr_assert_eq(irqchip_rdmsr(c, 1, 0x80b, &v), -1, "EOI is write-only");
	cr_assert_eq(irqchip_rdmsr(c, 1, 0x83f, &v), -1, "SELF_IPI is write-only");
	cr_assert_eq(irqchip_rdmsr(c, 1, 0x831, &v), -1, "no ICR2");
	cr_assert_eq(irqchip_rdmsr(c, 1, 0x8ff, &v), -1);
	cr_assert_eq(irqchip_wrmsr(c, 1, 0x802, 5), -1, "ID is read-only");
	cr_assert_eq(irqchip_wrmsr(c, 1, 0x80d, 5), -1, "LDR is read-only");
	cr_assert_eq(irqchip_wrmsr(c, 1, 0x80b, 1), -1, "EOI takes 0");
	cr_assert_eq(irqchip_wrmsr(c, 1, 0x828, 1), -1, "ESR takes 0");
	cr_assert_eq(irqchip_wrmsr(c, 1, 0x808, 1ULL << 32), -1);
	cr_assert_eq(irqchip_wrmsr(c, 1, 0x80f, 0x1ff), 0);
	cr_assert_eq(irqchip_wrmsr(c, 0, 0x80f, 0x1ff), 0);
	cr_assert_eq(irqchip_wrmsr(c, 1, 0x808, 0x20), 0);
	cr_assert_eq(irqchip_get_tpr(c, 1), 2);
	/* SELF_IPI, then ICR to the other APIC with a 32-bit destination. */
	cr_assert_eq(irqchip_wrmsr(c, 1, 0x83f, 0x77), 0);
	cr_assert_eq(irqchip_intr_ack(c, 1), 0x77);
	cr_assert_eq(irqchip_wrmsr(c, 1, 0x80b, 0), 0);
	cr_assert_eq(irqchip_wrmsr(c, 1, 0x830, (0ULL << 32) | 0x66), 0);
	cr_assert_eq(irqchip_intr_ack(c, 0), 0x66);
	irqchip_wrmsr(c, 0, 0x80b, 0);
	cr_assert_eq(irqchip_rdmsr(c, 1, 0x830, &v), 0);
	cr_assert_eq(v, 0x66);
	cr_assert_eq(irqchip_wrmsr(c, 1, 0x830, (0xffffffffULL << 32) | 0x67), 0);
	cr_assert_eq(irqchip_intr_ack(c, 0), 0x67);
	cr_assert_eq(irqchip_intr_ack(c, 1), 0x67);
	/* Logical x2APIC: cluster 0, bits 0 and 1. */
	irqchip_wrmsr(c, 1, 0x80b, 0);
	irqchip_wrmsr(c, 0, 0x80b, 0);
	cr_assert_eq(irqchip_wrmsr(c, 0, 0x830, (0x3ULL << 32) | (1u << 11) | 0x68), 0);
	cr_assert_eq(irqchip_rdmsr(c, 1, 0x820 + 0x68 / 32, &v), 0);
	cr_assert(v & (1u << (0x68 % 32)));
	/* x2APIC -> xAPIC is refused; through disabled it works. */
	cr_assert_eq(irqchip_wrmsr(c, 1, 0x1b, 0xfee00800), -1);
	cr_assert_eq(irqchip_wrmsr(c, 1, 0x1b, 0xfee00000), 0);
	cr_assert_eq(irqchip_lapic_base(c, 1), 0);
	cr_assert_eq(irqchip_wrmsr(c, 1, 0x1b, 0xfee00c00), -1, "disabled -> x2APIC");
	cr_assert_eq(irqchip_wrmsr(c, 1, 0x1b, 0xfee00800), 0);
	cr_assert_eq(apic_rd(c, 1, SVR), 0xff, "registers were reset");
	cr_assert_eq(apic_rd(c, 1, LDR), 0);
	cr_assert_eq(irqchip_rdmsr(c, 1, 0x10, &v), -1, "not an APIC MSR");
	irqchip_destroy(c);
}

Test(lapic, garbage_never_crashes)
{
	struct fake f;
	struct irqchip *c = make_chip(&f, 2);
	uint32_t x = 12345;
	uint8_t d[8];

	for (int round = 0; round < 3; round++) {
		for (uint32_t off = 0; off < 0x1010; off += 4) {
			x = x * 1103515245 + 12345;
			uint32_t len = 1u << (x % 4);
			memcpy(d, &x, 4);
			memcpy(d + 4, &x, 4);
			/* Leave the APIC page reachable: no writes to SVR to disable is fine too.
			 */
			irqchip_lapic_mmio(c, x % 3, off, d, len, (x >> 8) & 1);
			irqchip_lapic_mmio(c, x % 3, off + (x >> 16) % 16, d, len, false);
		}
		for (uint32_t msr = 0x800; msr < 0x900; msr++) {
			uint64_t v;

			irqchip_rdmsr(c, 1, msr, &v);
			irqchip_wrmsr(c, 1, msr, (uint64_t)x * msr);
		}
		irqchip_wrmsr(c, 1, 0x1b, 0xfee00c00);
		for (int i = 0; i < 64; i++)
			irqchip_intr_ack(c, (uint32_t)i % 3);
		irqchip_poll(c, 0, f.now += 1000000);
		irqchip_poll(c, 1, f.now);
	}
	irqchip_destroy(c);
}

/*
 * The soft CPU asks for an interrupt only after a kick: anything that makes
 * one deliverable kicks, also on the vCPU's own thread.
 */
Test(lapic, kicks_when_an_interrupt_becomes_deliverable)
{
	struct fake f;
	struct irqchip *c = make_chip(&f, 1);

	apic_enable(c, 0);
	self_ipi(c, 0, 0x52);
	cr_assert_eq(f.kicks[0], 1);
	cr_assert_eq(irqchip_intr_ack(c, 0), 0x52);
	self_ipi(c, 0, 0x41); /* blocked by 0x52 in service */
	int k = f.kicks[0];
	apic_wr(c, 0, TPR, 0x10); /* still blocked: no kick */
	cr_assert_eq(f.kicks[0], k);
	apic_wr(c, 0, EOI, 0);
	cr_assert_eq(f.kicks[0], k + 1, "EOI unblocked 0x41");
	irqchip_set_tpr(c, 0, 0xf);
	cr_assert_eq(irqchip_intr_ack(c, 0), -1);
	irqchip_set_tpr(c, 0, 0);
	cr_assert_eq(f.kicks[0], k + 2, "CR8 lowered");
	cr_assert_eq(irqchip_intr_ack(c, 0), 0x41);
	apic_wr(c, 0, EOI, 0);
	/* The vCPU's own timer. */
	apic_wr(c, 0, TDCR, 0xb);
	apic_wr(c, 0, LVTT, 0x60);
	apic_wr(c, 0, TMICT, 10);
	k = f.kicks[0];
	irqchip_poll(c, 0, 400);
	cr_assert_eq(f.kicks[0], k + 1);
	irqchip_poll(c, 0, 500);
	cr_assert_eq(f.kicks[0], k + 1, "nothing new");
	irqchip_destroy(c);
}
