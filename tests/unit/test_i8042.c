#include <criterion/criterion.h>
#include <string.h>

#include "vmm/dev/i8042.h"

#define STR_OBF 0x01
#define STR_IBF 0x02
#define STR_SYS 0x04
#define STR_CMD 0x08
#define STR_KEYLOCK 0x10
#define STR_AUXDATA 0x20
#define STR_TIMEOUT 0x40
#define CTR_KBDINT 0x01
#define CTR_AUXINT 0x02
#define CTR_KBDDIS 0x10
#define CTR_AUXDIS 0x20
#define CTR_XLATE 0x40

struct irq_rec {
	int levels[256];
	int n;
};

static void irq_rec_set(void *ctx, uint32_t gsi, int level)
{
	struct irq_rec *r = ctx;

	(void)gsi;
	if (r->n < 256)
		r->levels[r->n++] = level;
}

static int irq_now(const struct irq_rec *r)
{
	return r->n ? r->levels[r->n - 1] : 0;
}

struct fixture {
	struct i8042 kbc;
	struct irq_rec kbd, aux;
	int resets;
};

static void on_reset(void *ctx)
{
	struct fixture *f = ctx;

	f->resets++;
}

static void setup(struct fixture *f)
{
	struct i8042_config cfg = {
	    .kbd_irq = {.set_level = irq_rec_set, .ctx = &f->kbd, .gsi = 1},
	    .aux_irq = {.set_level = irq_rec_set, .ctx = &f->aux, .gsi = 12},
	    .reset = on_reset,
	    .ctx = f,
	};

	memset(f, 0, sizeof(*f));
	cr_assert_eq(i8042_init(&f->kbc, &cfg), 0);
}

static uint8_t status(struct fixture *f)
{
	uint8_t v;

	i8042_cmd_ops.read(&f->kbc, 0, &v, 1);
	return v;
}

static uint8_t data(struct fixture *f)
{
	uint8_t v;

	i8042_data_ops.read(&f->kbc, 0, &v, 1);
	return v;
}

static void cmd(struct fixture *f, uint8_t v)
{
	i8042_cmd_ops.write(&f->kbc, 0, &v, 1);
}

static void put(struct fixture *f, uint8_t v)
{
	i8042_data_ops.write(&f->kbc, 0, &v, 1);
}

/* Linux's i8042_wait_read() + read: -1 when nothing is there. */
static int get(struct fixture *f)
{
	if (!(status(f) & STR_OBF))
		return -1;
	return data(f);
}

static void flush(struct fixture *f)
{
	while (status(f) & STR_OBF)
		data(f);
}

Test(i8042, status_after_power_on)
{
	struct fixture f;
	uint8_t st;

	setup(&f);
	st = status(&f);
	cr_assert_eq(st & (STR_OBF | STR_IBF), 0);
	cr_assert(st & STR_KEYLOCK, "keylock bit clear makes Linux warn");
	cr_assert(st & STR_SYS);
	i8042_destroy(&f.kbc);
}

Test(i8042, self_test_and_interface_test)
{
	struct fixture f;

	setup(&f);
	cmd(&f, 0xaa);
	cr_assert_eq(status(&f) & (STR_OBF | STR_CMD), STR_OBF | STR_CMD);
	cr_assert_eq(get(&f), 0x55);
	cr_assert_eq(get(&f), -1);
	cmd(&f, 0xab);
	cr_assert_eq(get(&f), 0x00);
	i8042_destroy(&f.kbc);
}

Test(i8042, ctr_read_write_like_linux_controller_init)
{
	struct fixture f;
	int ctr;

	setup(&f);
	cmd(&f, 0x20);
	ctr = get(&f);
	cr_assert_eq(ctr, CTR_XLATE | CTR_AUXDIS | 0x04 | CTR_KBDINT);
	ctr |= CTR_KBDDIS;
	ctr &= ~CTR_KBDINT;
	cmd(&f, 0x60);
	cr_assert_eq(status(&f) & STR_OBF, 0);
	put(&f, (uint8_t)ctr);
	cr_assert_eq(status(&f) & STR_CMD, 0, "last write went to the data port");
	cmd(&f, 0x20);
	cr_assert_eq(get(&f), ctr);
	cmd(&f, 0xae);
	cmd(&f, 0x20);
	cr_assert_eq(get(&f) & CTR_KBDDIS, 0);
	cmd(&f, 0xad);
	cmd(&f, 0x20);
	cr_assert_eq(get(&f) & CTR_KBDDIS, CTR_KBDDIS);
	i8042_destroy(&f.kbc);
}

/* The start of Linux's i8042_check_aux(): must end in "no AUX port", quickly. */
Test(i8042, linux_check_aux_finds_no_aux_port)
{
	struct fixture f;
	int param, st;
	bool aux_present = true;

	setup(&f);
	flush(&f);
	cmd(&f, 0xd3);
	put(&f, 0x5a);
	st = status(&f);
	cr_assert(st & STR_OBF, "AUX loop must answer, or Linux times out");
	cr_assert(st & STR_AUXDATA, "without AUXDATA Linux leaves the byte queued");
	param = data(&f);
	if (param != 0x5a) {
		cmd(&f, 0xa9);
		param = get(&f);
		cr_assert_neq(param, -1);
		if (param && param != 0xfa && param != 0xff)
			aux_present = false;
	}
	cr_assert_not(aux_present);
	cr_assert_eq(get(&f), -1, "nothing left behind for atkbd");
	cr_assert_eq(f.aux.n, 0, "AUX interrupts were never enabled");
	i8042_destroy(&f.kbc);
}

Test(i8042, aux_enable_disable_toggle_ctr)
{
	struct fixture f;

	setup(&f);
	cmd(&f, 0xa8);
	cmd(&f, 0x20);
	cr_assert_eq(get(&f) & CTR_AUXDIS, 0);
	cmd(&f, 0xa7);
	cmd(&f, 0x20);
	cr_assert_eq(get(&f) & CTR_AUXDIS, CTR_AUXDIS);
	i8042_destroy(&f.kbc);
}

Test(i8042, aux_write_times_out)
{
	struct fixture f;

	setup(&f);
	cmd(&f, 0xd4);
	put(&f, 0xf2);
	cr_assert_eq(status(&f) & (STR_OBF | STR_AUXDATA | STR_TIMEOUT),
		     STR_OBF | STR_AUXDATA | STR_TIMEOUT);
	cr_assert_eq(data(&f), 0xfe);
	cr_assert_eq(status(&f) & (STR_AUXDATA | STR_TIMEOUT), 0);
	i8042_destroy(&f.kbc);
}

Test(i8042, reset_commands_call_back)
{
	struct fixture f;

	setup(&f);
	cmd(&f, 0xff); /* pulses nothing */
	cr_assert_eq(f.resets, 0);
	cmd(&f, 0xfe);
	cr_assert_eq(f.resets, 1);
	cmd(&f, 0xf0); /* pulses bits 3:0, reset among them */
	cr_assert_eq(f.resets, 2);
	cmd(&f, 0xf1);
	cr_assert_eq(f.resets, 2);
	cmd(&f, 0xd1);
	put(&f, 0x03); /* reset high, A20 on */
	cr_assert_eq(f.resets, 2);
	cmd(&f, 0xd0);
	cr_assert_eq(get(&f) & 0x03, 0x03);
	cmd(&f, 0xd1);
	put(&f, 0x02);
	cr_assert_eq(f.resets, 3);
	i8042_destroy(&f.kbc);
}

Test(i8042, keyboard_reset_answers_ack_then_bat)
{
	struct fixture f;

	setup(&f);
	put(&f, 0xff);
	cr_assert_eq(get(&f), 0xfa);
	cr_assert_eq(get(&f), 0xaa);
	cr_assert_eq(get(&f), -1);
	i8042_destroy(&f.kbc);
}

Test(i8042, every_byte_gets_its_own_irq_edge)
{
	struct fixture f;

	setup(&f);
	put(&f, 0xff);
	cr_assert_eq(f.kbd.n, 1);
	cr_assert_eq(irq_now(&f.kbd), 1);
	data(&f);
	/* 1 -> 0 -> 1: a fresh edge for the second byte */
	cr_assert_eq(f.kbd.n, 3);
	cr_assert_eq(f.kbd.levels[1], 0);
	cr_assert_eq(f.kbd.levels[2], 1);
	data(&f);
	cr_assert_eq(irq_now(&f.kbd), 0);
	cr_assert_eq(f.kbd.n, 4);
	i8042_destroy(&f.kbc);
}

Test(i8042, no_irq_when_ctr_disables_it)
{
	struct fixture f;

	setup(&f);
	cmd(&f, 0x60);
	put(&f, CTR_XLATE | CTR_AUXDIS); /* KBDINT off */
	put(&f, 0xf2);
	cr_assert_eq(f.kbd.n, 0);
	cr_assert(status(&f) & STR_OBF);
	cmd(&f, 0x60);
	put(&f, CTR_XLATE | CTR_AUXDIS | CTR_KBDINT);
	cr_assert_eq(irq_now(&f.kbd), 1, "enabling it with data waiting raises the line");
	i8042_destroy(&f.kbc);
}

Test(i8042, identify_reports_an_mf2_keyboard)
{
	struct fixture f;

	setup(&f);
	put(&f, 0xf2);
	cr_assert_eq(get(&f), 0xfa);
	cr_assert_eq(get(&f), 0xab);
	cr_assert_eq(get(&f), 0x41, "translated by the controller");
	cmd(&f, 0x60);
	put(&f, CTR_AUXDIS | CTR_KBDINT);
	put(&f, 0xf2);
	cr_assert_eq(get(&f), 0xfa);
	cr_assert_eq(get(&f), 0xab);
	cr_assert_eq(get(&f), 0x83, "raw");
	i8042_destroy(&f.kbc);
}

Test(i8042, atkbd_activation_sequence)
{
	struct fixture f;

	setup(&f);
	cmd(&f, 0x60);
	put(&f, CTR_AUXDIS | CTR_KBDINT); /* untranslated: scan sets read raw */
	put(&f, 0xf0);			  /* set scan set 2 */
	cr_assert_eq(get(&f), 0xfa);
	put(&f, 0x02);
	cr_assert_eq(get(&f), 0xfa);
	put(&f, 0xf0); /* get scan set */
	cr_assert_eq(get(&f), 0xfa);
	put(&f, 0x00);
	cr_assert_eq(get(&f), 0xfa);
	cr_assert_eq(get(&f), 0x02);
	put(&f, 0xed); /* LEDs */
	cr_assert_eq(get(&f), 0xfa);
	put(&f, 0x07);
	cr_assert_eq(get(&f), 0xfa);
	put(&f, 0xf3); /* typematic */
	cr_assert_eq(get(&f), 0xfa);
	put(&f, 0x00);
	cr_assert_eq(get(&f), 0xfa);
	put(&f, 0xf4);
	cr_assert_eq(get(&f), 0xfa);
	put(&f, 0xf5);
	cr_assert_eq(get(&f), 0xfa);
	put(&f, 0xf6);
	cr_assert_eq(get(&f), 0xfa);
	put(&f, 0xee);
	cr_assert_eq(get(&f), 0xee);
	put(&f, 0xfe);
	cr_assert_eq(get(&f), 0xee, "resend repeats the last byte");
	put(&f, 0xf8); /* a set-3 command: acknowledged */
	cr_assert_eq(get(&f), 0xfa);
	cr_assert_eq(get(&f), -1);
	i8042_destroy(&f.kbc);
}

Test(i8042, write_keyboard_output_buffer)
{
	struct fixture f;

	setup(&f);
	cmd(&f, 0xd2);
	put(&f, 0x1c);
	cr_assert_eq(status(&f) & (STR_OBF | STR_AUXDATA), STR_OBF);
	cr_assert_eq(irq_now(&f.kbd), 1);
	cr_assert_eq(data(&f), 0x1c);
	cr_assert_eq(data(&f), 0x1c, "empty buffer reads the last byte again");
	i8042_destroy(&f.kbc);
}

Test(i8042, internal_ram_beyond_ctr)
{
	struct fixture f;

	setup(&f);
	cmd(&f, 0x65);
	put(&f, 0x99);
	cmd(&f, 0x25);
	cr_assert_eq(get(&f), 0x99);
	i8042_destroy(&f.kbc);
}

Test(i8042, hostile_accesses_do_not_crash)
{
	struct fixture f;
	uint8_t buf[8];

	setup(&f);
	for (unsigned int c = 0; c < 256; c++) {
		if (c == 0xd1 || (c >= 0xf0 && !(c & 1)) || c == 0xfe)
			continue; /* resets are tested above */
		cmd(&f, (uint8_t)c);
		for (unsigned int d = 0; d < 40; d++)
			put(&f, (uint8_t)(d * 7 + c));
	}
	cr_assert_eq(f.resets, 0);
	for (int i = 0; i < 64; i++)
		data(&f); /* queue bounded, drains */
	cr_assert_eq(status(&f) & STR_OBF, 0);
	for (uint64_t off = 0; off < 4; off++) {
		for (uint32_t len = 1; len <= 8; len *= 2) {
			memset(buf, 0, sizeof(buf));
			i8042_data_ops.read(&f.kbc, off, buf, len);
			i8042_cmd_ops.read(&f.kbc, off, buf, len);
		}
	}
	/* A 16-bit read of the status port: first byte is the status, the rest open bus. */
	i8042_cmd_ops.read(&f.kbc, 0, buf, 2);
	cr_assert_eq(buf[1], 0xff);
	cr_assert(buf[0] & STR_KEYLOCK);
	i8042_cmd_ops.write(&f.kbc, 1, (uint8_t[]){0xfe}, 1);
	cr_assert_eq(f.resets, 0, "a write past the port is ignored");
	i8042_cmd_ops.write(&f.kbc, 0, (uint8_t[]){0xfe, 0x00}, 2);
	cr_assert_eq(f.resets, 1, "first byte of a wide write counts");
	i8042_destroy(&f.kbc);
}
