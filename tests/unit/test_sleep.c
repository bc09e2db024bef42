/* ACPI sleep registers (src/vmm/dev/sleep.c), and the quiet ports (quiet.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "vmm/dev/quiet.h"
#include "vmm/dev/sleep.h"
#include "vmm/x86/layout.h"

#define CTL 0
#define STS 1
#define SLP_EN 0x20
#define SLP_TYP(t) ((t) << 2)
#define WAK_STS 0x80

struct fixture {
	struct sleep sl;
	int poweroffs;
};

static void on_poweroff(void *ctx)
{
	struct fixture *f = ctx;

	f->poweroffs++;
}

static void setup(struct fixture *f)
{
	struct sleep_config cfg = {.poweroff = on_poweroff, .ctx = f};

	memset(f, 0, sizeof(*f));
	cr_assert_eq(sleep_init(&f->sl, &cfg), 0);
}

static void out(struct fixture *f, uint64_t off, uint8_t v)
{
	sleep_ops.write(&f->sl, off, &v, 1);
}

static uint8_t in(struct fixture *f, uint64_t off)
{
	uint8_t v;

	sleep_ops.read(&f->sl, off, &v, 1);
	return v;
}

Test(sleep, registers_sit_at_the_layout_ports)
{
	cr_assert_eq(LAYOUT_PORT_SLEEP_STS - LAYOUT_PORT_SLEEP_CTL, STS);
	cr_assert_eq(SLEEP_NR_PORTS, 2);
}

/* What Linux's acpi_hw_extended_sleep() writes for S5. */
Test(sleep, s5_powers_off)
{
	struct fixture f;

	setup(&f);
	out(&f, STS, WAK_STS);
	out(&f, CTL, SLP_TYP(LAYOUT_SLP_TYP_S5) | SLP_EN);
	cr_assert_eq(f.poweroffs, 1);
	sleep_destroy(&f.sl);
}

Test(sleep, slp_typ_without_slp_en_does_nothing)
{
	struct fixture f;

	setup(&f);
	out(&f, CTL, SLP_TYP(LAYOUT_SLP_TYP_S5));
	cr_assert_eq(f.poweroffs, 0);
	cr_assert_eq(in(&f, STS), 0);
	sleep_destroy(&f.sl);
}

Test(sleep, other_sleep_types_wake_at_once)
{
	struct fixture f;

	setup(&f);
	for (unsigned int t = 0; t < 8; t++) {
		if (t == LAYOUT_SLP_TYP_S5)
			continue;
		out(&f, STS, WAK_STS);
		cr_assert_eq(in(&f, STS), 0, "WAK_STS is write-1-to-clear");
		out(&f, CTL, SLP_TYP(t) | SLP_EN);
		cr_assert_eq(in(&f, STS), WAK_STS, "Linux spins until WAK_STS");
	}
	cr_assert_eq(f.poweroffs, 0);
	out(&f, STS, 0x7f);
	cr_assert_eq(in(&f, STS), WAK_STS, "writing 0 to WAK_STS keeps it");
	sleep_destroy(&f.sl);
}

Test(sleep, hostile_accesses)
{
	struct fixture f;
	uint8_t buf[8];

	setup(&f);
	/* A 16-bit write covering both registers counts for the control byte. */
	sleep_ops.write(&f.sl, CTL, (uint8_t[]){SLP_TYP(LAYOUT_SLP_TYP_S5) | SLP_EN, 0}, 2);
	cr_assert_eq(f.poweroffs, 1);
	/* Past the two registers: ignored. */
	out(&f, 2, SLP_TYP(LAYOUT_SLP_TYP_S5) | SLP_EN);
	sleep_ops.write(&f.sl, UINT64_MAX, (uint8_t[]){0xff, 0xff}, 2);
	cr_assert_eq(f.poweroffs, 1);
	/* Every other byte, reserved bits included, leaves the machine on. */
	for (unsigned int v = 0; v < 256; v++)
		if ((v & 0x3c) != (SLP_TYP(LAYOUT_SLP_TYP_S5) | SLP_EN))
			out(&f, CTL, (uint8_t)v);
	cr_assert_eq(f.poweroffs, 1);
	out(&f, CTL, 0xc3 | SLP_TYP(LAYOUT_SLP_TYP_S5) | SLP_EN); /* junk bits ignored */
	cr_assert_eq(f.poweroffs, 2);
	sleep_ops.read(&f.sl, CTL, buf, 8);
	cr_assert_eq(buf[0], 0, "control reads 0");
	sleep_destroy(&f.sl);
}

Test(quiet, reads_constant_and_drops_writes)
{
	struct quiet q;
	uint8_t buf[8];

	quiet_init(&q, 0xff);
	quiet_ops.write(&q, 0, (uint8_t[]){0x12}, 1);
	quiet_ops.read(&q, 0, buf, 4);
	cr_assert_eq(buf[0], 0xff);
	cr_assert_eq(buf[3], 0xff);
	quiet_init(&q, 0x00);
	quiet_ops.read(&q, 7, buf, 8);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(buf[i], 0x00);
}
