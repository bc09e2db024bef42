#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <sys/timerfd.h>

#include "vmm/dev/rtc.h"

#define SEC 0x00
#define SEC_ALARM 0x01
#define MIN 0x02
#define MIN_ALARM 0x03
#define HOUR 0x04
#define HOUR_ALARM 0x05
#define WDAY 0x06
#define MDAY 0x07
#define MONTH 0x08
#define YEAR 0x09
#define REG_A 0x0a
#define REG_B 0x0b
#define REG_C 0x0c
#define REG_D 0x0d
#define CENTURY 0x32
#define B_SET 0x80
#define B_PIE 0x40
#define B_AIE 0x20
#define B_UIE 0x10
#define B_DM_BINARY 0x04
#define B_24H 0x02
#define C_IRQF 0x80
#define C_AF 0x20
#define C_UF 0x10

/* 2024-02-29 13:45:07 UTC, a Thursday. */
#define T0 1709214307

struct irq_rec {
	int levels[64];
	int n;
};

static void irq_rec_set(void *ctx, uint32_t gsi, int level)
{
	struct irq_rec *r = ctx;

	(void)gsi;
	if (r->n < 64)
		r->levels[r->n++] = level;
}

static int irq_now(const struct irq_rec *r)
{
	return r->n ? r->levels[r->n - 1] : 0;
}

struct fixture {
	struct rtc rtc;
	struct irq_rec irq;
	time_t now;
};

static time_t fake_now(void *ctx)
{
	struct fixture *f = ctx;

	return f->now;
}

static void setup(struct fixture *f)
{
	struct rtc_config cfg = {
	    .irq = {.set_level = irq_rec_set, .ctx = &f->irq, .gsi = 8},
	    .now = fake_now,
	    .ctx = f,
	};

	memset(f, 0, sizeof(*f));
	f->now = T0;
	cr_assert_eq(rtc_init(&f->rtc, &cfg), 0);
}

static uint8_t cmos_in(struct fixture *f, uint8_t idx)
{
	uint8_t v;

	rtc_ops.write(&f->rtc, 0, &idx, 1);
	rtc_ops.read(&f->rtc, 1, &v, 1);
	return v;
}

static void cmos_out(struct fixture *f, uint8_t idx, uint8_t v)
{
	rtc_ops.write(&f->rtc, 0, &idx, 1);
	rtc_ops.write(&f->rtc, 1, &v, 1);
}

struct rtc_time {
	uint8_t sec, min, hour, wday, mday, mon, year, century;
};

/* Linux's mc146818_get_time(): wait for UIP clear, then read the registers. */
static struct rtc_time read_time(struct fixture *f)
{
	struct rtc_time t;
	int spins = 0;

	while (cmos_in(f, REG_A) & 0x80)
		cr_assert_lt(++spins, 1000, "UIP never cleared");
	t.sec = cmos_in(f, SEC);
	t.min = cmos_in(f, MIN);
	t.hour = cmos_in(f, HOUR);
	t.wday = cmos_in(f, WDAY);
	t.mday = cmos_in(f, MDAY);
	t.mon = cmos_in(f, MONTH);
	t.year = cmos_in(f, YEAR);
	t.century = cmos_in(f, CENTURY);
	return t;
}

Test(rtc, power_on_registers)
{
	struct fixture f;

	setup(&f);
	cr_assert_eq(cmos_in(&f, REG_A), 0x26);
	cr_assert_eq(cmos_in(&f, REG_B), 0x02, "24 hours, BCD");
	cr_assert_eq(cmos_in(&f, REG_D), 0x80, "valid RAM and time");
	rtc_destroy(&f.rtc);
}

Test(rtc, reads_host_time_in_bcd)
{
	struct fixture f;
	struct rtc_time t;

	setup(&f);
	t = read_time(&f);
	cr_assert_eq(t.sec, 0x07);
	cr_assert_eq(t.min, 0x45);
	cr_assert_eq(t.hour, 0x13);
	cr_assert_eq(t.wday, 0x05, "Thursday, Sunday = 1");
	cr_assert_eq(t.mday, 0x29);
	cr_assert_eq(t.mon, 0x02);
	cr_assert_eq(t.year, 0x24);
	cr_assert_eq(t.century, 0x20);
	rtc_destroy(&f.rtc);
}

Test(rtc, reads_host_time_in_binary)
{
	struct fixture f;
	struct rtc_time t;

	setup(&f);
	cmos_out(&f, REG_B, B_24H | B_DM_BINARY);
	t = read_time(&f);
	cr_assert_eq(t.sec, 7);
	cr_assert_eq(t.min, 45);
	cr_assert_eq(t.hour, 13);
	cr_assert_eq(t.mday, 29);
	cr_assert_eq(t.mon, 2);
	cr_assert_eq(t.year, 24);
	cr_assert_eq(t.century, 20);
	rtc_destroy(&f.rtc);
}

Test(rtc, twelve_hour_mode)
{
	struct fixture f;

	setup(&f);
	cmos_out(&f, REG_B, 0);
	cr_assert_eq(cmos_in(&f, HOUR), 0x81, "1 PM in BCD");
	f.now = T0 - 13 * 3600; /* 00:45 */
	cr_assert_eq(cmos_in(&f, HOUR), 0x12, "midnight is 12 AM");
	f.now = T0 - 3600; /* 12:45 */
	cr_assert_eq(cmos_in(&f, HOUR), 0x92, "noon is 12 PM");
	cmos_out(&f, REG_B, B_DM_BINARY);
	cr_assert_eq(cmos_in(&f, HOUR), 0x80 | 12);
	rtc_destroy(&f.rtc);
}

Test(rtc, time_advances_with_the_host_clock)
{
	struct fixture f;

	setup(&f);
	f.now = T0 + 60 * 60 * 24 + 53; /* next day, 13:46:00 */
	cr_assert_eq(cmos_in(&f, SEC), 0x00);
	cr_assert_eq(cmos_in(&f, MIN), 0x46);
	cr_assert_eq(cmos_in(&f, MDAY), 0x01);
	cr_assert_eq(cmos_in(&f, MONTH), 0x03);
	rtc_destroy(&f.rtc);
}

/* Linux's mc146818_set_time() in BCD, then reads later on. */
Test(rtc, guest_sets_time_and_it_keeps_running)
{
	struct fixture f;
	struct rtc_time t;
	uint8_t save_control, save_freq;

	setup(&f);
	save_control = cmos_in(&f, REG_B);
	cmos_out(&f, REG_B, save_control | B_SET);
	save_freq = cmos_in(&f, REG_A);
	cmos_out(&f, REG_A, save_freq | 0x70); /* divider reset */
	cmos_out(&f, YEAR, 0x30);
	cmos_out(&f, MONTH, 0x01);
	cmos_out(&f, MDAY, 0x02);
	cmos_out(&f, HOUR, 0x03);
	cmos_out(&f, MIN, 0x04);
	cmos_out(&f, SEC, 0x05);
	cmos_out(&f, CENTURY, 0x20);
	f.now += 30; /* frozen while SET */
	cr_assert_eq(cmos_in(&f, SEC), 0x05);
	cmos_out(&f, REG_B, save_control);
	cmos_out(&f, REG_A, save_freq);
	cr_assert_eq(cmos_in(&f, REG_A), 0x26);

	t = read_time(&f);
	cr_assert_eq(t.sec, 0x05);
	cr_assert_eq(t.min, 0x04);
	cr_assert_eq(t.year, 0x30);
	f.now += 100;
	t = read_time(&f);
	cr_assert_eq(t.sec, 0x45);
	cr_assert_eq(t.min, 0x05);
	cr_assert_eq(t.hour, 0x03);
	cr_assert_eq(t.mday, 0x02);
	cr_assert_eq(t.mon, 0x01);
	cr_assert_eq(t.year, 0x30);
	cr_assert_eq(t.century, 0x20);
	cr_assert_eq(t.wday, 0x04, "2030-01-02 is a Wednesday");
	rtc_destroy(&f.rtc);
}

Test(rtc, set_time_in_binary_12h_mode)
{
	struct fixture f;

	setup(&f);
	cmos_out(&f, REG_B, B_DM_BINARY | B_SET);
	cmos_out(&f, HOUR, 0x80 | 11); /* 11 PM */
	cmos_out(&f, MIN, 59);
	cmos_out(&f, SEC, 58);
	cmos_out(&f, REG_B, B_DM_BINARY);
	f.now += 3;
	cr_assert_eq(cmos_in(&f, SEC), 1);
	cr_assert_eq(cmos_in(&f, MIN), 0);
	cr_assert_eq(cmos_in(&f, HOUR), 12, "midnight, 12 AM");
	cr_assert_eq(cmos_in(&f, MDAY), 1, "rolled into March");
	cr_assert_eq(cmos_in(&f, MONTH), 3);

	cmos_out(&f, REG_B, B_SET); /* 12 hours, BCD */
	cmos_out(&f, HOUR, 0x12);   /* 12 AM */
	cmos_out(&f, REG_B, B_24H);
	cr_assert_eq(cmos_in(&f, HOUR), 0x00, "12 AM is hour 0");
	cmos_out(&f, REG_B, B_SET);
	cmos_out(&f, HOUR, 0x92); /* 12 PM */
	cmos_out(&f, REG_B, B_24H);
	cr_assert_eq(cmos_in(&f, HOUR), 0x12, "12 PM is hour 12");
	rtc_destroy(&f.rtc);
}

Test(rtc, write_without_set_changes_running_clock)
{
	struct fixture f;

	setup(&f);
	cmos_out(&f, MIN, 0x10);
	cr_assert_eq(cmos_in(&f, MIN), 0x10);
	cr_assert_eq(cmos_in(&f, HOUR), 0x13);
	f.now += 1;
	cr_assert_eq(cmos_in(&f, SEC), 0x08);
	rtc_destroy(&f.rtc);
}

Test(rtc, invalid_time_leaves_clock_alone)
{
	struct fixture f;

	setup(&f);
	cmos_out(&f, REG_B, B_24H | B_SET);
	cmos_out(&f, SEC, 0x7a); /* not BCD */
	cmos_out(&f, HOUR, 0x25);
	cmos_out(&f, REG_B, B_24H);
	cr_assert_eq(cmos_in(&f, SEC), 0x07);
	cr_assert_eq(cmos_in(&f, HOUR), 0x13);
	rtc_destroy(&f.rtc);
}

Test(rtc, update_flag_and_interrupt)
{
	struct fixture f;

	setup(&f);
	cr_assert_eq(cmos_in(&f, REG_C), 0, "no update yet");
	f.now++;
	cr_assert_eq(cmos_in(&f, REG_C), C_UF, "flag without enable, no IRQF");
	cr_assert_eq(cmos_in(&f, REG_C), 0, "read clears");
	cr_assert_eq(f.irq.n, 0);

	cmos_out(&f, REG_B, B_24H | B_UIE);
	f.now++;
	rtc_update(&f.rtc);
	cr_assert_eq(irq_now(&f.irq), 1);
	cr_assert_eq(cmos_in(&f, REG_C), C_IRQF | C_UF);
	cr_assert_eq(irq_now(&f.irq), 0, "reading C lowers IRQ 8");
	rtc_update(&f.rtc);
	cr_assert_eq(irq_now(&f.irq), 0, "same second: no new update");
	cr_assert_eq(f.irq.n, 2);
	rtc_destroy(&f.rtc);
}

Test(rtc, alarm_interrupt)
{
	struct fixture f;

	setup(&f);
	cmos_out(&f, HOUR_ALARM, 0x13);
	cmos_out(&f, MIN_ALARM, 0xff); /* any minute */
	cmos_out(&f, SEC_ALARM, 0x10);
	cmos_out(&f, REG_B, B_24H | B_AIE);
	f.now = T0 + 1; /* 13:45:08 */
	rtc_update(&f.rtc);
	cr_assert_eq(irq_now(&f.irq), 0);
	f.now = T0 + 3; /* 13:45:10 */
	rtc_update(&f.rtc);
	cr_assert_eq(irq_now(&f.irq), 1);
	cr_assert_eq(cmos_in(&f, REG_C), C_IRQF | C_AF | C_UF);
	cr_assert_eq(irq_now(&f.irq), 0);
	rtc_destroy(&f.rtc);
}

Test(rtc, set_inhibits_updates_and_clears_uie)
{
	struct fixture f;

	setup(&f);
	cmos_out(&f, REG_B, B_24H | B_UIE);
	cmos_out(&f, REG_B, B_24H | B_UIE | B_SET);
	cr_assert_eq(cmos_in(&f, REG_B), B_24H | B_SET);
	f.now += 5;
	cr_assert_eq(cmos_in(&f, REG_C), 0);
	rtc_destroy(&f.rtc);
}

Test(rtc, timer_runs_only_while_needed)
{
	struct fixture f;
	struct itimerspec its;

	setup(&f);
	cr_assert_geq(rtc_timer_fd(&f.rtc), 0);
	cmos_out(&f, REG_B, B_24H | B_UIE);
	cr_assert_eq(timerfd_gettime(rtc_timer_fd(&f.rtc), &its), 0);
	cr_assert_eq(its.it_interval.tv_sec, 1);
	cmos_out(&f, REG_B, B_24H);
	cr_assert_eq(timerfd_gettime(rtc_timer_fd(&f.rtc), &its), 0);
	cr_assert_eq(its.it_value.tv_sec + its.it_value.tv_nsec, 0);
	rtc_timer_event(&f.rtc); /* spurious: harmless */
	rtc_destroy(&f.rtc);
}

Test(rtc, real_clock_uip_is_sane)
{
	struct rtc rtc;
	struct rtc_config cfg = {0};
	uint8_t idx = REG_A, v;
	int clear = 0;

	cr_assert_eq(rtc_init(&rtc, &cfg), 0);
	rtc_ops.write(&rtc, 0, &idx, 1);
	for (int i = 0; i < 1000; i++) {
		rtc_ops.read(&rtc, 1, &v, 1);
		cr_assert_eq(v & 0x7f, 0x26);
		clear += !(v & 0x80);
	}
	cr_assert_gt(clear, 0, "UIP is set only briefly");
	idx = YEAR;
	rtc_ops.write(&rtc, 0, &idx, 1);
	rtc_ops.read(&rtc, 1, &v, 1);
	cr_assert_geq(v, 0x24, "host clock after 2024");
	rtc_destroy(&rtc);
}

Test(rtc, nmi_bit_of_index_is_ignored)
{
	struct fixture f;

	setup(&f);
	cr_assert_eq(cmos_in(&f, 0x80 | REG_D), 0x80);
	cr_assert_eq(cmos_in(&f, 0x80 | SEC), 0x07);
	rtc_destroy(&f.rtc);
}

Test(rtc, nvram_bytes)
{
	struct fixture f;

	setup(&f);
	cmos_out(&f, 0x40, 0x5a);
	cmos_out(&f, 0x7f, 0xa5);
	cr_assert_eq(cmos_in(&f, 0x40), 0x5a);
	cr_assert_eq(cmos_in(&f, 0x7f), 0xa5);
	cr_assert_eq(rtc_nvram_set(&f.rtc, 0x15, 0x80), 0);
	cr_assert_eq(cmos_in(&f, 0x15), 0x80);
	cr_assert_eq(rtc_nvram_set(&f.rtc, REG_B, 0), -EINVAL);
	cr_assert_eq(rtc_nvram_set(&f.rtc, CENTURY, 0), -EINVAL);
	cr_assert_eq(rtc_nvram_set(&f.rtc, 0x80, 0), -EINVAL);
	cmos_out(&f, REG_D, 0x00);
	cr_assert_eq(cmos_in(&f, REG_D), 0x80, "D is read-only");
	rtc_destroy(&f.rtc);
}

Test(rtc, hostile_accesses_do_not_crash)
{
	struct fixture f;
	uint8_t buf[8];

	setup(&f);
	for (unsigned int idx = 0; idx < 256; idx++) {
		for (unsigned int v = 0; v < 256; v += 17) {
			cmos_out(&f, (uint8_t)idx, (uint8_t)v);
			cmos_in(&f, (uint8_t)idx);
		}
	}
	for (uint64_t off = 0; off < 4; off++) {
		for (uint32_t len = 1; len <= 8; len *= 2) {
			memset(buf, 0xcc, sizeof(buf));
			rtc_ops.write(&f.rtc, off, buf, len);
			rtc_ops.read(&f.rtc, off, buf, len);
		}
	}
	/* A 16-bit write: index then data, as the ISA bus splits it. */
	rtc_ops.write(&f.rtc, 0, (uint8_t[]){0x41, 0x33}, 2);
	cr_assert_eq(cmos_in(&f, 0x41), 0x33);
	rtc_ops.read(&f.rtc, 0, buf, 1);
	cr_assert_eq(buf[0], 0xff, "the index port reads open bus");
	rtc_destroy(&f.rtc);
}
