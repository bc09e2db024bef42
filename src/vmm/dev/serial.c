#include "vmm/dev/serial.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* Register offsets. */
#define REG_RBR 0 /* read, DLAB=0 */
#define REG_THR 0 /* write, DLAB=0 */
#define REG_DLL 0 /* DLAB=1 */
#define REG_IER 1 /* DLAB=0 */
#define REG_DLM 1 /* DLAB=1 */
#define REG_IIR 2 /* read */
#define REG_FCR 2 /* write */
#define REG_LCR 3
#define REG_MCR 4
#define REG_LSR 5
#define REG_MSR 6
#define REG_SCR 7

#define IER_ERBFI 0x01 /* received data available */
#define IER_ETBEI 0x02 /* THR empty */
#define IER_ELSI 0x04  /* receiver line status */
#define IER_EDSSI 0x08 /* modem status */
#define IER_MASK 0x0f  /* upper bits read 0 on a 16550A (Linux tests UUE, bit 6) */

#define IIR_NO_INT 0x01
#define IIR_MSI 0x00
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_RLSI 0x06
#define IIR_FIFO_ENABLED 0xc0

#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define FCR_CLEAR_TX 0x04
#define FCR_STORED 0xc9 /* trigger level, DMA mode, enable */

#define LCR_DLAB 0x80

#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f

#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_DELTAS 0x0f
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

/* Outside loopback nothing drives the modem inputs: a cable that is always ready. */
#define MSR_IDLE_LINES (MSR_DCD | MSR_DSR | MSR_CTS)

static uint8_t modem_lines(const struct serial *s)
{
	uint8_t m = s->mcr, lines = 0;

	if (!(m & MCR_LOOP))
		return MSR_IDLE_LINES;
	if (m & MCR_DTR)
		lines |= MSR_DSR;
	if (m & MCR_RTS)
		lines |= MSR_CTS;
	if (m & MCR_OUT1)
		lines |= MSR_RI;
	if (m & MCR_OUT2)
		lines |= MSR_DCD;
	return lines;
}

/* Latches the new modem input lines into MSR with their delta bits. */
static void update_msr(struct serial *s)
{
	uint8_t old = s->msr & ~MSR_DELTAS, now = modem_lines(s);
	uint8_t changed = old ^ now, deltas = s->msr & MSR_DELTAS;

	if (changed & MSR_CTS)
		deltas |= MSR_DCTS;
	if (changed & MSR_DSR)
		deltas |= MSR_DDSR;
	if ((old & MSR_RI) && !(now & MSR_RI))
		deltas |= MSR_TERI; /* trailing edge only */
	if (changed & MSR_DCD)
		deltas |= MSR_DDCD;
	s->msr = now | deltas;
}

/* The pending interrupt of highest priority, as IIR bits 3:0. */
static uint8_t pending_id(const struct serial *s)
{
	if ((s->ier & IER_ELSI) && (s->lsr & LSR_OE))
		return IIR_RLSI;
	if ((s->ier & IER_ERBFI) && s->rx_count)
		return IIR_RDI;
	if ((s->ier & IER_ETBEI) && s->thr_ipending)
		return IIR_THRI;
	if ((s->ier & IER_EDSSI) && (s->msr & MSR_DELTAS))
		return IIR_MSI;
	return IIR_NO_INT;
}

static void update_irq(struct serial *s)
{
	int level = pending_id(s) != IIR_NO_INT && (s->mcr & MCR_OUT2) && !(s->mcr & MCR_LOOP);

	if (level == s->irq_level)
		return;
	s->irq_level = level;
	irq_set(&s->cfg.irq, level);
}

static void rx_clear(struct serial *s)
{
	s->rx_head = 0;
	s->rx_count = 0;
}

static uint8_t rx_pop(struct serial *s)
{
	uint8_t b;

	if (!s->rx_count)
		return 0;
	b = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % SERIAL_RX_FIFO_SIZE;
	s->rx_count--;
	return b;
}

static void rx_put(struct serial *s, uint8_t b)
{
	s->rx[(s->rx_head + s->rx_count) % SERIAL_RX_FIFO_SIZE] = b;
	s->rx_count++;
}

static void output_fd(struct serial *s, uint8_t b)
{
	ssize_t n;

	if (s->cfg.out_fd < 0)
		return;
	do {
		n = write(s->cfg.out_fd, &b, 1);
	} while (n < 0 && errno == EINTR);
	if (n != 1)
		log_ratelimited(&s->rl, LOG_WARN, "serial: write to output: %s",
				n < 0 ? strerror(errno) : "nothing written");
}

static void transmit(struct serial *s, uint8_t b)
{
	uint32_t cap = (s->fcr & FCR_ENABLE) ? SERIAL_LOOP_FIFO_SIZE : 1;

	if (s->mcr & MCR_LOOP) {
		if (s->rx_count < cap)
			rx_put(s, b);
		else
			s->lsr |= LSR_OE;
	} else if (s->cfg.tx) {
		s->cfg.tx(s->cfg.ctx, b);
	} else {
		output_fd(s, b);
	}
	/* THR emptied again at once: the THRE interrupt comes back. */
	s->thr_ipending = true;
}

static void write_ier(struct serial *s, uint8_t val)
{
	uint8_t old = s->ier;

	s->ier = val & IER_MASK;
	/*
	 * Enabling ETBEI with THR empty raises THRE even if it was acknowledged
	 * before (Linux's startup THRE test and Windows rely on it).
	 */
	if (!(old & IER_ETBEI) && (s->ier & IER_ETBEI))
		s->thr_ipending = true;
}

static void write_fcr(struct serial *s, uint8_t val)
{
	/* Turning the FIFOs on or off empties them, as on the chip. */
	if ((val ^ s->fcr) & FCR_ENABLE)
		rx_clear(s);
	if (val & FCR_CLEAR_RX)
		rx_clear(s);
	s->fcr = val & FCR_STORED;
}

static void reg_write(struct serial *s, uint64_t off, uint8_t val)
{
	bool dlab = s->lcr & LCR_DLAB;

	switch (off) {
	case REG_THR:
		if (dlab)
			s->dll = val;
		else
			transmit(s, val);
		break;
	case REG_IER:
		if (dlab)
			s->dlm = val;
		else
			write_ier(s, val);
		break;
	case REG_FCR:
		write_fcr(s, val);
		break;
	case REG_LCR:
		s->lcr = val;
		break;
	case REG_MCR:
		s->mcr = val & MCR_MASK;
		update_msr(s);
		break;
	case REG_LSR:
	case REG_MSR:
		break; /* read-only on a 16550A */
	case REG_SCR:
		s->scr = val;
		break;
	default:
		log_ratelimited(&s->rl, LOG_WARN, "serial: write to offset %#llx ignored",
				(unsigned long long)off);
		break;
	}
}

static uint8_t read_iir(struct serial *s)
{
	uint8_t id = pending_id(s);

	/* Reading IIR acknowledges THRE when that is what it reports. */
	if (id == IIR_THRI)
		s->thr_ipending = false;
	return id | ((s->fcr & FCR_ENABLE) ? IIR_FIFO_ENABLED : 0);
}

static uint8_t read_lsr(struct serial *s)
{
	uint8_t v = s->lsr | LSR_THRE | LSR_TEMT | (s->rx_count ? LSR_DR : 0);

	s->lsr &= ~LSR_OE; /* error bits clear on read */
	return v;
}

static uint8_t reg_read(struct serial *s, uint64_t off)
{
	bool dlab = s->lcr & LCR_DLAB;
	uint8_t v;

	switch (off) {
	case REG_RBR:
		return dlab ? s->dll : rx_pop(s);
	case REG_IER:
		return dlab ? s->dlm : s->ier;
	case REG_IIR:
		return read_iir(s);
	case REG_LCR:
		return s->lcr;
	case REG_MCR:
		return s->mcr;
	case REG_LSR:
		return read_lsr(s);
	case REG_MSR:
		v = s->msr;
		s->msr &= ~MSR_DELTAS;
		return v;
	case REG_SCR:
		return s->scr;
	default:
		log_ratelimited(&s->rl, LOG_WARN, "serial: read of offset %#llx",
				(unsigned long long)off);
		return 0xff;
	}
}

/* Under the lock: should the host hear that input is welcome again? */
static bool take_drained(struct serial *s)
{
	if (!s->rx_wanted || s->rx_count || (s->mcr & MCR_LOOP))
		return false;
	s->rx_wanted = false;
	return s->cfg.rx_drained != NULL;
}

static void finish_access(struct serial *s)
{
	bool notify;

	update_irq(s);
	notify = take_drained(s);
	pthread_mutex_unlock(&s->lock);
	if (notify)
		s->cfg.rx_drained(s->cfg.ctx);
}

/* A wider access is split into byte accesses at consecutive ports, as the ISA bus does. */
static void serial_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct serial *s = opaque;

	pthread_mutex_lock(&s->lock);
	for (uint32_t i = 0; i < len; i++)
		data[i] = reg_read(s, offset + i);
	finish_access(s);
}

static void serial_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct serial *s = opaque;

	pthread_mutex_lock(&s->lock);
	for (uint32_t i = 0; i < len; i++)
		reg_write(s, offset + i, data[i]);
	finish_access(s);
}

const struct bus_dev_ops serial_ops = {
    .read = serial_read,
    .write = serial_write,
};

int serial_init(struct serial *s, const struct serial_config *cfg)
{
	int err;

	memset(s, 0, sizeof(*s));
	err = pthread_mutex_init(&s->lock, NULL);
	if (err)
		return -err;
	s->cfg = *cfg;
	s->rl = (struct ratelimit)RATELIMIT_INIT(5000, 5);
	/* Power-on values: 8 data bits is what firmware would leave. */
	s->lcr = 0x03;
	s->msr = modem_lines(s);
	s->thr_ipending = true;
	return 0;
}

void serial_destroy(struct serial *s)
{
	pthread_mutex_destroy(&s->lock);
}

static size_t rx_space_locked(struct serial *s)
{
	if (s->mcr & MCR_LOOP)
		return 0; /* the serial input is disconnected in loopback */
	return SERIAL_RX_FIFO_SIZE - s->rx_count;
}

size_t serial_rx_space(struct serial *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = rx_space_locked(s);
	if (!n)
		s->rx_wanted = true;
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t serial_rx_push(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = rx_space_locked(s);
	if (n > len)
		n = len;
	for (size_t i = 0; i < n; i++)
		rx_put(s, buf[i]);
	if (n < len)
		s->rx_wanted = true;
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}
