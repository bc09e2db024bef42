#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "vmm/dev/serial.h"

/* Register offsets and bits, spelled as Linux's serial_reg.h does. */
#define RX 0
#define TX 0
#define DLL 0
#define IER 1
#define DLM 1
#define IIR 2
#define FCR 2
#define EFR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

#define IER_RDI 0x01
#define IER_THRI 0x02
#define IER_RLSI 0x04
#define IER_MSI 0x08
#define IER_UUE 0x40
#define IIR_NO_INT 0x01
#define IIR_ID 0x0e
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_RLSI 0x06
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RCVR 0x02
#define FCR_CLEAR_XMIT 0x04
#define FCR7_64BYTE 0x20
#define LCR_CONF_MODE_A 0x80
#define LCR_CONF_MODE_B 0xbf
#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

struct irq_rec {
	int levels[256];
	int n;
	uint32_t gsi;
};

static void irq_rec_set(void *ctx, uint32_t gsi, int level)
{
	struct irq_rec *r = ctx;

	r->gsi = gsi;
	if (r->n < 256)
		r->levels[r->n++] = level;
}

static int irq_now(const struct irq_rec *r)
{
	return r->n ? r->levels[r->n - 1] : 0;
}

struct out_rec {
	uint8_t bytes[1024];
	size_t n;
	int drained;
};

static void out_tx(void *ctx, uint8_t b)
{
	struct out_rec *o = ctx;

	if (o->n < sizeof(o->bytes))
		o->bytes[o->n++] = b;
}

static void out_drained(void *ctx)
{
	struct out_rec *o = ctx;

	o->drained++;
}

struct fixture {
	struct serial s;
	struct irq_rec irq;
	struct out_rec out;
};

static void setup(struct fixture *f)
{
	struct serial_config cfg = {
	    .irq = {.set_level = irq_rec_set, .ctx = &f->irq, .gsi = 4},
	    .out_fd = -1,
	    .tx = out_tx,
	    .rx_drained = out_drained,
	    .ctx = &f->out,
	};

	memset(f, 0, sizeof(*f));
	cr_assert_eq(serial_init(&f->s, &cfg), 0);
}

static uint8_t in(struct serial *s, uint64_t off)
{
	uint8_t v = 0;

	serial_ops.read(s, off, &v, 1);
	return v;
}

static void out(struct serial *s, uint64_t off, uint8_t v)
{
	serial_ops.write(s, off, &v, 1);
}

static unsigned int size_fifo(struct serial *s)
{
	unsigned int count;

	out(s, LCR, 0);
	out(s, FCR, FCR_ENABLE | FCR_CLEAR_RCVR | FCR_CLEAR_XMIT);
	out(s, MCR, MCR_LOOP);
	out(s, LCR, LCR_CONF_MODE_A);
	out(s, DLL, 1);
	out(s, DLM, 0);
	out(s, LCR, 0x03);
	for (count = 0; count < 256; count++)
		out(s, TX, (uint8_t)count);
	for (count = 0; (in(s, LSR) & LSR_DR) && count < 256; count++)
		in(s, RX);
	out(s, MCR, 0);
	return count;
}

/*
 * The probe of Linux's 8250 autoconfig() and autoconfig_16550a(), step by
 * step. Returns the type name Linux would settle on.
 */
static const char *linux_autoconfig(struct serial *s)
{
	uint8_t scratch, scratch2, scratch3, status1, status2, save_mcr, iersave;

	scratch = in(s, IER);
	out(s, IER, 0);
	scratch2 = in(s, IER) & 0x0f;
	out(s, IER, 0x0f);
	scratch3 = in(s, IER) & 0x0f;
	out(s, IER, scratch);
	if (scratch2 != 0 || scratch3 != 0x0f)
		return "none (IER test)";

	save_mcr = in(s, MCR);
	out(s, MCR, MCR_LOOP | 0x0a);
	status1 = in(s, MSR) & 0xf0;
	out(s, MCR, save_mcr);
	if (status1 != 0x90)
		return "none (LOOP test)";

	out(s, LCR, LCR_CONF_MODE_B);
	out(s, EFR, 0);
	out(s, LCR, 0);
	out(s, FCR, FCR_ENABLE);
	switch (in(s, IIR) >> 6) {
	case 0:
		return "8250/16450";
	case 1:
		return "unknown";
	case 2:
		return "16550";
	}

	/* autoconfig_16550a */
	out(s, LCR, LCR_CONF_MODE_A);
	if (in(s, EFR) == 0)
		return "16650 (EFR with DLAB)";
	out(s, LCR, LCR_CONF_MODE_B);
	if (in(s, EFR) == 0)
		return "EFR v2";
	out(s, LCR, 0);
	status1 = in(s, MCR);
	out(s, LCR, 0xe0);
	status2 = in(s, 0x02);
	if (!((status2 ^ status1) & MCR_LOOP)) {
		out(s, LCR, 0);
		out(s, MCR, status1 ^ MCR_LOOP);
		out(s, LCR, 0xe0);
		status2 = in(s, 0x02);
		out(s, LCR, 0);
		out(s, MCR, status1);
		if ((status2 ^ status1) & MCR_LOOP)
			return "NS16550A";
	}
	out(s, LCR, 0);
	out(s, FCR, FCR_ENABLE | FCR7_64BYTE);
	status1 = in(s, IIR) >> 5;
	out(s, FCR, FCR_ENABLE);
	out(s, LCR, LCR_CONF_MODE_A);
	out(s, FCR, FCR_ENABLE | FCR7_64BYTE);
	status2 = in(s, IIR) >> 5;
	out(s, FCR, FCR_ENABLE);
	out(s, LCR, 0);
	if (status1 == 6 && status2 == 7)
		return "16750";
	iersave = in(s, IER);
	out(s, IER, iersave & ~IER_UUE);
	if (!(in(s, IER) & IER_UUE)) {
		out(s, IER, iersave | IER_UUE);
		if (in(s, IER) & IER_UUE)
			return "XScale";
	}
	out(s, IER, iersave);
	if (size_fifo(s) == 64)
		return "U6_16550A";
	return "16550A";
}

Test(serial, linux_autoconfig_finds_a_16550a)
{
	struct fixture f;

	setup(&f);
	cr_assert_str_eq(linux_autoconfig(&f.s), "16550A");
	cr_assert_eq(size_fifo(&f.s), 16, "loopback FIFO holds the chip's 16 bytes");
	cr_assert_eq(f.out.n, 0, "probe bytes must not reach the console");
	serial_destroy(&f.s);
}

Test(serial, scratch_register_holds_values)
{
	struct fixture f;

	setup(&f);
	out(&f.s, SCR, 0xa5);
	cr_assert_eq(in(&f.s, SCR), 0xa5);
	out(&f.s, SCR, 0x5a);
	cr_assert_eq(in(&f.s, SCR), 0x5a);
	serial_destroy(&f.s);
}

Test(serial, divisor_latch_is_separate_from_data_and_ier)
{
	struct fixture f;

	setup(&f);
	out(&f.s, IER, IER_RDI);
	out(&f.s, LCR, LCR_CONF_MODE_A | 0x03);
	out(&f.s, DLL, 0x01);
	out(&f.s, DLM, 0x02);
	cr_assert_eq(in(&f.s, DLL), 0x01);
	cr_assert_eq(in(&f.s, DLM), 0x02);
	cr_assert_eq(f.out.n, 0, "a DLL write is not a transmitted byte");
	out(&f.s, LCR, 0x03);
	cr_assert_eq(in(&f.s, IER), IER_RDI);
	cr_assert_eq(in(&f.s, LCR), 0x03);
	serial_destroy(&f.s);
}

Test(serial, transmit_goes_to_callback_and_lsr_stays_empty)
{
	struct fixture f;

	setup(&f);
	out(&f.s, TX, 'h');
	out(&f.s, TX, 'i');
	cr_assert_eq(f.out.n, 2);
	cr_assert_eq(memcmp(f.out.bytes, "hi", 2), 0);
	cr_assert_eq(in(&f.s, LSR) & (LSR_THRE | LSR_TEMT), LSR_THRE | LSR_TEMT);
	serial_destroy(&f.s);
}

Test(serial, transmit_goes_to_out_fd)
{
	struct serial s;
	struct serial_config cfg = {.out_fd = -1};
	int p[2];
	char buf[8] = {0};

	cr_assert_eq(pipe(p), 0);
	cfg.out_fd = p[1];
	cr_assert_eq(serial_init(&s, &cfg), 0);
	out(&s, TX, 'o');
	out(&s, TX, 'k');
	cr_assert_eq(read(p[0], buf, sizeof(buf)), 2);
	cr_assert_str_eq(buf, "ok");
	serial_destroy(&s);
	close(p[0]);
	close(p[1]);
}

Test(serial, failed_output_write_is_not_fatal)
{
	struct serial s;
	struct serial_config cfg = {.out_fd = -1};
	int p[2];

	cr_assert_eq(pipe(p), 0);
	close(p[0]); /* every write fails with EPIPE */
	signal(SIGPIPE, SIG_IGN);
	cfg.out_fd = p[1];
	cr_assert_eq(serial_init(&s, &cfg), 0);
	for (int i = 0; i < 20; i++)
		out(&s, TX, 'x');
	cr_assert_eq(in(&s, LSR) & LSR_THRE, LSR_THRE);
	serial_destroy(&s);
	close(p[1]);
}

Test(serial, thre_interrupt_like_a_16550)
{
	struct fixture f;

	setup(&f);
	out(&f.s, MCR, MCR_OUT2 | MCR_DTR | MCR_RTS);
	cr_assert_eq(in(&f.s, IIR), 0x01, "no interrupt with IER clear (FIFO off)");
	out(&f.s, IER, IER_THRI);
	cr_assert_eq(irq_now(&f.irq), 1, "enabling ETBEI with THR empty raises THRE");
	cr_assert_eq(f.irq.gsi, 4);
	cr_assert_eq(in(&f.s, IIR), IIR_THRI);
	cr_assert_eq(irq_now(&f.irq), 0, "reading IIR acknowledges THRE");
	cr_assert_eq(in(&f.s, IIR) & IIR_NO_INT, IIR_NO_INT);
	out(&f.s, TX, 'a');
	cr_assert_eq(irq_now(&f.irq), 1, "THR empties again after a write");
	out(&f.s, IER, 0);
	cr_assert_eq(irq_now(&f.irq), 0);
	/* Linux's startup THRE test: a re-enable must reassert. */
	out(&f.s, IER, IER_THRI);
	cr_assert_eq(in(&f.s, IIR) & IIR_NO_INT, 0);
	out(&f.s, IER, 0);
	out(&f.s, IER, IER_THRI);
	cr_assert_eq(in(&f.s, IIR) & IIR_NO_INT, 0);
	serial_destroy(&f.s);
}

Test(serial, irq_only_reported_on_level_changes)
{
	struct fixture f;

	setup(&f);
	out(&f.s, MCR, MCR_OUT2);
	out(&f.s, IER, IER_THRI | IER_RDI);
	cr_assert_eq(f.irq.n, 1);
	out(&f.s, TX, 'a');
	out(&f.s, TX, 'b');
	serial_rx_push(&f.s, (const uint8_t *)"x", 1);
	cr_assert_eq(f.irq.n, 1, "level stayed 1: no more calls");
	serial_destroy(&f.s);
}

Test(serial, out2_gates_the_irq_line)
{
	struct fixture f;

	setup(&f);
	out(&f.s, IER, IER_THRI);
	cr_assert_eq(irq_now(&f.irq), 0, "OUT2 clear: line held low");
	cr_assert_eq(in(&f.s, IIR) & IIR_NO_INT, 0, "but the UART has it pending");
	out(&f.s, IER, 0);
	out(&f.s, IER, IER_THRI);
	out(&f.s, MCR, MCR_OUT2);
	cr_assert_eq(irq_now(&f.irq), 1);
	out(&f.s, MCR, 0);
	cr_assert_eq(irq_now(&f.irq), 0);
	serial_destroy(&f.s);
}

Test(serial, fifo_enable_shows_in_iir)
{
	struct fixture f;

	setup(&f);
	out(&f.s, FCR, FCR_ENABLE);
	cr_assert_eq(in(&f.s, IIR), 0xc1);
	out(&f.s, FCR, 0);
	cr_assert_eq(in(&f.s, IIR), 0x01);
	serial_destroy(&f.s);
}

Test(serial, receive_fifo_data_ready_and_interrupt)
{
	struct fixture f;

	setup(&f);
	out(&f.s, FCR, FCR_ENABLE);
	out(&f.s, MCR, MCR_OUT2);
	out(&f.s, IER, IER_RDI);
	cr_assert_eq(in(&f.s, LSR) & LSR_DR, 0);
	cr_assert_eq(serial_rx_push(&f.s, (const uint8_t *)"abc", 3), 3);
	cr_assert_eq(irq_now(&f.irq), 1);
	cr_assert_eq(in(&f.s, IIR), 0xc0 | IIR_RDI);
	cr_assert_eq(in(&f.s, LSR) & LSR_DR, LSR_DR);
	cr_assert_eq(in(&f.s, RX), 'a');
	cr_assert_eq(in(&f.s, RX), 'b');
	cr_assert_eq(irq_now(&f.irq), 1);
	cr_assert_eq(in(&f.s, RX), 'c');
	cr_assert_eq(irq_now(&f.irq), 0, "drained FIFO lowers the line");
	cr_assert_eq(in(&f.s, LSR) & LSR_DR, 0);
	cr_assert_eq(f.out.drained, 0, "host never was refused: no callback");
	serial_destroy(&f.s);
}

Test(serial, full_fifo_refuses_then_calls_rx_drained)
{
	struct fixture f;
	uint8_t buf[SERIAL_RX_FIFO_SIZE + 10];

	setup(&f);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)i;
	cr_assert_eq(serial_rx_space(&f.s), SERIAL_RX_FIFO_SIZE);
	cr_assert_eq(serial_rx_push(&f.s, buf, sizeof(buf)), SERIAL_RX_FIFO_SIZE);
	cr_assert_eq(serial_rx_space(&f.s), 0);
	cr_assert_eq(serial_rx_push(&f.s, buf, 1), 0);
	for (size_t i = 0; i < SERIAL_RX_FIFO_SIZE - 1; i++)
		cr_assert_eq(in(&f.s, RX), (uint8_t)i);
	cr_assert_eq(f.out.drained, 0, "not empty yet");
	in(&f.s, RX);
	cr_assert_eq(f.out.drained, 1);
	in(&f.s, RX);
	in(&f.s, LSR);
	cr_assert_eq(f.out.drained, 1, "one call per refusal");
	serial_destroy(&f.s);
}

Test(serial, fcr_clear_empties_receive_fifo)
{
	struct fixture f;

	setup(&f);
	out(&f.s, FCR, FCR_ENABLE);
	serial_rx_push(&f.s, (const uint8_t *)"zz", 2);
	out(&f.s, FCR, FCR_ENABLE | FCR_CLEAR_RCVR);
	cr_assert_eq(in(&f.s, LSR) & LSR_DR, 0);
	serial_destroy(&f.s);
}

Test(serial, loopback_msr_mirrors_mcr)
{
	struct fixture f;

	setup(&f);
	out(&f.s, MCR, MCR_LOOP | MCR_DTR);
	cr_assert_eq(in(&f.s, MSR) & 0xf0, 0x20, "DTR -> DSR");
	out(&f.s, MCR, MCR_LOOP | MCR_RTS);
	cr_assert_eq(in(&f.s, MSR) & 0xf0, 0x10, "RTS -> CTS");
	out(&f.s, MCR, MCR_LOOP | MCR_OUT1);
	cr_assert_eq(in(&f.s, MSR) & 0xf0, 0x40, "OUT1 -> RI");
	out(&f.s, MCR, MCR_LOOP | MCR_OUT2);
	cr_assert_eq(in(&f.s, MSR), 0x80 | 0x08 | 0x04, "OUT2 -> DCD, with DDCD and TERI");
	cr_assert_eq(in(&f.s, MSR), 0x80, "deltas clear on read");
	out(&f.s, MCR, 0);
	cr_assert_eq(in(&f.s, MSR) & 0xf0, 0xb0, "outside loopback: DCD, DSR, CTS");
	serial_destroy(&f.s);
}

Test(serial, loopback_sends_bytes_back_not_out)
{
	struct fixture f;

	setup(&f);
	out(&f.s, FCR, FCR_ENABLE);
	out(&f.s, MCR, MCR_LOOP | MCR_OUT2);
	cr_assert_eq(serial_rx_space(&f.s), 0, "host input disconnected in loopback");
	cr_assert_eq(serial_rx_push(&f.s, (const uint8_t *)"q", 1), 0);
	out(&f.s, TX, 0x42);
	cr_assert_eq(f.out.n, 0);
	cr_assert_eq(in(&f.s, LSR) & LSR_DR, LSR_DR);
	cr_assert_eq(in(&f.s, RX), 0x42);
	for (int i = 0; i < 17; i++)
		out(&f.s, TX, (uint8_t)i);
	cr_assert_eq(in(&f.s, LSR) & LSR_OE, LSR_OE, "17th byte overruns the 16-byte FIFO");
	cr_assert_eq(in(&f.s, LSR) & LSR_OE, 0, "OE clears on read");
	cr_assert_eq(f.out.drained, 0);
	out(&f.s, FCR, FCR_ENABLE | FCR_CLEAR_RCVR);
	out(&f.s, MCR, MCR_OUT2);
	cr_assert_eq(f.out.drained, 1, "refused host input is invited back");
	cr_assert_eq(serial_rx_push(&f.s, (const uint8_t *)"q", 1), 1);
	serial_destroy(&f.s);
}

Test(serial, overrun_raises_line_status_interrupt)
{
	struct fixture f;

	setup(&f);
	out(&f.s, MCR, MCR_LOOP);
	out(&f.s, IER, IER_RLSI | IER_RDI);
	out(&f.s, TX, 1);
	out(&f.s, TX, 2); /* FIFO off: one-byte holding register */
	cr_assert_eq(in(&f.s, IIR) & IIR_ID, IIR_RLSI);
	in(&f.s, LSR);
	cr_assert_eq(in(&f.s, IIR) & IIR_ID, IIR_RDI);
	cr_assert_eq(irq_now(&f.irq), 0, "no line in loopback");
	serial_destroy(&f.s);
}

Test(serial, modem_status_interrupt)
{
	struct fixture f;

	setup(&f);
	out(&f.s, IER, IER_MSI);
	in(&f.s, MSR);
	cr_assert_eq(in(&f.s, IIR) & IIR_NO_INT, IIR_NO_INT);
	out(&f.s, MCR, MCR_LOOP);
	cr_assert_eq(in(&f.s, IIR), 0x00, "modem status change pending");
	in(&f.s, MSR);
	cr_assert_eq(in(&f.s, IIR), 0x01);
	serial_destroy(&f.s);
}

Test(serial, hostile_accesses_do_not_crash)
{
	struct fixture f;
	uint8_t buf[8];

	setup(&f);
	for (uint64_t off = 0; off < 16; off++) {
		for (uint32_t len = 1; len <= 8; len *= 2) {
			memset(buf, 0xa5, sizeof(buf));
			serial_ops.write(&f.s, off, buf, len);
			serial_ops.read(&f.s, off, buf, len);
		}
	}
	for (unsigned int v = 0; v < 256; v++)
		for (uint64_t off = 0; off < 8; off++)
			out(&f.s, off, (uint8_t)v);
	serial_ops.read(&f.s, UINT64_MAX - 1, buf, 8);
	serial_ops.write(&f.s, UINT64_MAX, buf, 8);
	cr_assert_eq(in(&f.s, 9), 0xff, "past the 8 registers reads open bus");
	serial_destroy(&f.s);
}

Test(serial, wide_access_splits_into_bytes)
{
	struct fixture f;
	uint8_t w[2] = {0x00, 0x03};
	uint8_t r[2];

	setup(&f);
	/* A 16-bit write at MSR hits MSR (read-only) and then SCR. */
	serial_ops.write(&f.s, MSR, (uint8_t[]){0x11, 0x77}, 2);
	cr_assert_eq(in(&f.s, SCR), 0x77);
	serial_ops.write(&f.s, IER, w, 2); /* IER=0, FCR=3 */
	serial_ops.read(&f.s, IER, r, 2);
	cr_assert_eq(r[0], 0);
	cr_assert_eq(r[1], 0xc1);
	serial_destroy(&f.s);
}

struct pusher {
	struct serial *s;
	size_t pushed;
};

static void *push_thread(void *arg)
{
	struct pusher *p = arg;
	uint8_t b;

	while (p->pushed < 20000) {
		b = (uint8_t)p->pushed;
		p->pushed += serial_rx_push(p->s, &b, 1);
	}
	return NULL;
}

Test(serial, concurrent_push_and_read_keep_order)
{
	struct fixture f;
	struct pusher p;
	pthread_t t;
	size_t got = 0;

	setup(&f);
	p.s = &f.s;
	p.pushed = 0;
	cr_assert_eq(pthread_create(&t, NULL, push_thread, &p), 0);
	while (got < 20000) {
		if (in(&f.s, LSR) & LSR_DR) {
			cr_assert_eq(in(&f.s, RX), (uint8_t)got);
			got++;
		}
	}
	pthread_join(t, NULL);
	serial_destroy(&f.s);
}
