#include "vmm/irqchip/irqchip.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/irqchip/ioapic.h"
#include "vmm/irqchip/lapic.h"
#include "vmm/irqchip/pic.h"
#include "vmm/irqchip/pit.h"

#define PIT_GSI 2    /* ISA IRQ 0 -> IOAPIC pin 2 (MADT interrupt source override) */
#define EXTINT_PIN 0 /* the PIC's INTR on the IOAPIC */

#define MSI_ADDR_BASE 0xfee00000ULL
#define MSI_ADDR_MASK 0xfff00000ULL

#define WORDS ((IRQCHIP_MAX_CPUS + 63) / 64)

/* What to tell the host once the lock is released. */
struct deferred {
	uint64_t kick[WORDS], init[WORDS], sipi[WORDS], nmi[WORDS];
	uint8_t sipi_vector[IRQCHIP_MAX_CPUS];
};

struct irqchip {
	pthread_mutex_t lock; /* everything below; a leaf lock */
	struct irqchip_host host;
	uint32_t ncpus;
	struct lapic *lapics;
	struct lapic_env env;
	struct ioapic ioapic;
	struct pic pic;
	struct pit pit;
	bool pic_out;	     /* the PIC's INTR as last seen */
	uint32_t lowest_rr;  /* round robin among equals for lowest priority */
	struct deferred *df; /* the current lock holder's */
};

static void bit_set(uint64_t *m, uint32_t i)
{
	m[i / 64] |= 1ULL << (i % 64);
}

static void lock(struct irqchip *c, struct deferred *d)
{
	memset(d, 0, sizeof(*d));
	pthread_mutex_lock(&c->lock);
	c->df = d;
}

static void unlock(struct irqchip *c)
{
	struct deferred *d = c->df;
	const struct irqchip_host *h = &c->host;

	c->df = NULL;
	pthread_mutex_unlock(&c->lock);
	for (uint32_t w = 0; w < WORDS; w++) {
		uint64_t any = d->init[w] | d->sipi[w] | d->nmi[w] | d->kick[w];

		while (any) {
			uint32_t cpu = w * 64 + (uint32_t)__builtin_ctzll(any);
			uint64_t bit = 1ULL << (cpu % 64);

			any &= ~bit;
			if ((d->init[w] & bit) && h->init)
				h->init(h->ctx, cpu);
			if ((d->sipi[w] & bit) && h->sipi)
				h->sipi(h->ctx, cpu, d->sipi_vector[cpu]);
			if (d->nmi[w] & bit)
				h->nmi(h->ctx, cpu);
			if ((d->kick[w] & bit) && h->kick)
				h->kick(h->ctx, cpu);
		}
	}
}

static void kick(struct irqchip *c, uint32_t cpu)
{
	bit_set(c->df->kick, cpu);
}

static uint64_t now(struct irqchip *c)
{
	return c->host.now_ns(c->host.ctx);
}

static void raise_nmi(struct irqchip *c, uint32_t cpu)
{
	if (c->host.nmi) {
		bit_set(c->df->nmi, cpu);
		return;
	}
	c->lapics[cpu].nmi = true;
	kick(c, cpu);
}

/* --- the PIC's INTR --- */

/* Whether the IOAPIC's ExtINT pin routes the PIC to this APIC. */
static bool extint_pin_to(struct irqchip *c, const struct lapic *l)
{
	uint64_t e = c->ioapic.rte[EXTINT_PIN];

	if ((e & IOAPIC_RTE_MASKED) || ((e >> 8) & 7) != APIC_DM_EXTINT)
		return false;
	return lapic_match_dest(l, (uint32_t)(e >> 56), e & IOAPIC_RTE_LOGICAL, false);
}

static bool pic_wired(struct irqchip *c, uint32_t cpu)
{
	const struct lapic *l = &c->lapics[cpu];

	return (cpu == 0 && lapic_accepts_pic(l)) || extint_pin_to(c, l);
}

/* Whether irqchip_intr_ack(cpu) would return a vector now. */
static bool deliverable(struct irqchip *c, uint32_t cpu)
{
	return (c->pic_out && pic_wired(c, cpu)) || lapic_pending(&c->lapics[cpu]) >= 0;
}

/*
 * The CPU asks for interrupts only after a kick (and again after each one it
 * takes): whatever makes one deliverable on cpu (EOI, TPR, LVT, APIC_BASE,
 * its timer) kicks it, even from its own thread.
 */
static void kick_if_newly(struct irqchip *c, uint32_t cpu, bool before)
{
	if (!before && deliverable(c, cpu))
		kick(c, cpu);
}

/* After any PIC change: a rising INTR wakes who takes it. */
static void pic_update(struct irqchip *c)
{
	bool out = pic_output(&c->pic);
	struct lapic *l0 = &c->lapics[0];

	if (out == c->pic_out)
		return;
	c->pic_out = out;
	if (!out)
		return;
	for (uint32_t i = 0; i < c->ncpus; i++)
		if (pic_wired(c, i))
			kick(c, i);
	/* LINT0 in fixed or NMI mode sees the INTR edge as an interrupt of its own. */
	if (lapic_hw_enabled(l0) && !(l0->lvt[LVT_LINT0] & APIC_LVT_MASKED)) {
		uint32_t lvt = l0->lvt[LVT_LINT0];

		switch ((lvt >> 8) & 7) {
		case APIC_DM_FIXED:
			if (lapic_accept(l0, lvt & 0xff, lvt & (1u << 15)))
				kick(c, 0);
			break;
		case APIC_DM_NMI:
			raise_nmi(c, 0);
			break;
		}
	}
}

/* --- delivery to the local APICs --- */

static bool targeted(const struct lapic *l, const struct lapic *src, const struct apic_msg *m)
{
	switch (m->shorthand) {
	case APIC_SH_SELF:
		return l == src;
	case APIC_SH_ALL:
		return lapic_hw_enabled(l);
	case APIC_SH_ALL_BUT_SELF:
		return l != src && lapic_hw_enabled(l);
	default:
		return lapic_match_dest(l, m->dest, m->logical, m->x2apic);
	}
}

static int deliver_one(struct irqchip *c, uint32_t cpu, const struct apic_msg *m)
{
	struct lapic *l = &c->lapics[cpu];

	switch (m->mode) {
	case APIC_DM_FIXED:
	case APIC_DM_LOWEST:
		if (!lapic_accept(l, m->vector, m->level))
			return 0;
		kick(c, cpu);
		return 1;
	case APIC_DM_NMI:
		raise_nmi(c, cpu);
		return 1;
	case APIC_DM_INIT:
		if (m->level && !m->assert)
			return 0; /* INIT level de-assert: nothing on xAPIC and later */
		lapic_reset_regs(l);
		bit_set(c->df->init, cpu);
		return 1;
	case APIC_DM_STARTUP:
		c->df->sipi_vector[cpu] = m->vector;
		bit_set(c->df->sipi, cpu);
		return 1;
	default: /* SMI, ExtINT (only IOAPIC pin 0, see extint_pin_to), reserved */
		return 0;
	}
}

/* Routes m (from src's ICR, or from the IOAPIC / an MSI if src is NULL). */
static int deliver(struct irqchip *c, struct lapic *src, const struct apic_msg *m)
{
	int n = 0;

	if (m->shorthand == APIC_SH_SELF && m->mode != APIC_DM_FIXED)
		return 0;
	if (m->mode == APIC_DM_LOWEST || (m->lowest_hint && m->mode == APIC_DM_FIXED)) {
		/* One of the destination: the lowest TPR, round robin among equals. */
		uint32_t best = UINT32_MAX, best_tpr = UINT32_MAX;

		for (uint32_t k = 0; k < c->ncpus; k++) {
			uint32_t i = (c->lowest_rr + k) % c->ncpus;
			const struct lapic *l = &c->lapics[i];

			if (!targeted(l, src, m) || !lapic_sw_enabled(l))
				continue;
			if ((l->tpr & 0xf0) < best_tpr) {
				best_tpr = l->tpr & 0xf0;
				best = i;
			}
		}
		if (best == UINT32_MAX)
			return 0;
		c->lowest_rr = best + 1;
		return deliver_one(c, best, m);
	}
	for (uint32_t i = 0; i < c->ncpus; i++)
		if (targeted(&c->lapics[i], src, m))
			n += deliver_one(c, i, m);
	return n;
}

static void env_send(void *ctx, struct lapic *src, const struct apic_msg *m)
{
	deliver(ctx, src, m);
}

static void env_eoi(void *ctx, uint8_t vector)
{
	struct irqchip *c = ctx;

	ioapic_eoi(&c->ioapic, vector);
}

static uint64_t env_now(void *ctx)
{
	return now(ctx);
}

static int ioapic_deliver(void *ctx, const struct apic_msg *m)
{
	return deliver(ctx, NULL, m);
}

/* --- lines --- */

static void set_irq_locked(struct irqchip *c, uint32_t gsi, int level)
{
	if (gsi >= IRQCHIP_GSI_COUNT)
		return;
	/* ISA IRQ n is GSI n except IRQ 0 (the PIT), which is GSI 2. */
	if (gsi == PIT_GSI)
		pic_set_irq(&c->pic, 0, level);
	else if (gsi != EXTINT_PIN && gsi < 16)
		pic_set_irq(&c->pic, gsi, level);
	ioapic_set_irq(&c->ioapic, gsi, level);
	pic_update(c);
}

void irqchip_set_irq(struct irqchip *c, uint32_t gsi, int level)
{
	struct deferred d;

	lock(c, &d);
	set_irq_locked(c, gsi, level);
	unlock(c);
}

void irqchip_set_irq_cb(void *c, uint32_t gsi, int level)
{
	irqchip_set_irq(c, gsi, level);
}

void irqchip_msi(struct irqchip *c, uint64_t addr, uint32_t data)
{
	struct apic_msg m = {
	    .dest = (uint32_t)(addr >> 12) & 0xff,
	    .vector = data & 0xff,
	    .mode = (data >> 8) & 7,
	    .logical = addr & (1u << 2),
	    .lowest_hint = addr & (1u << 3),
	    .level = data & (1u << 15),
	    .assert = true,
	};
	struct deferred d;

	if ((addr & MSI_ADDR_MASK) != MSI_ADDR_BASE)
		return;
	if (m.mode == APIC_DM_STARTUP || m.mode == APIC_DM_EXTINT)
		return;
	lock(c, &d);
	deliver(c, NULL, &m);
	unlock(c);
}

/* --- the CPU's side --- */

int irqchip_intr_ack(struct irqchip *c, uint32_t cpu)
{
	struct deferred d;
	int v = -1;

	if (cpu >= c->ncpus)
		return -1;
	lock(c, &d);
	if (c->pic_out && pic_wired(c, cpu)) {
		v = pic_intack(&c->pic);
		pic_update(c);
	} else {
		v = lapic_ack(&c->lapics[cpu]);
	}
	unlock(c);
	return v;
}

bool irqchip_has_intr(struct irqchip *c, uint32_t cpu)
{
	struct deferred d;
	bool r;

	if (cpu >= c->ncpus)
		return false;
	lock(c, &d);
	r = (c->pic_out && pic_wired(c, cpu)) || lapic_pending(&c->lapics[cpu]) >= 0;
	unlock(c);
	return r;
}

/* The vCPU's pending NMI; consume clears it. */
static bool nmi_check(struct irqchip *c, uint32_t cpu, bool consume)
{
	struct deferred d;
	bool r;

	if (cpu >= c->ncpus)
		return false;
	lock(c, &d);
	r = c->lapics[cpu].nmi;
	if (consume)
		c->lapics[cpu].nmi = false;
	unlock(c);
	return r;
}

bool irqchip_nmi_pending(struct irqchip *c, uint32_t cpu)
{
	return nmi_check(c, cpu, true);
}

bool irqchip_nmi_peek(struct irqchip *c, uint32_t cpu)
{
	return nmi_check(c, cpu, false);
}

void irqchip_lapic_mmio(struct irqchip *c, uint32_t cpu, uint64_t offset, uint8_t *data,
			uint32_t len, bool write)
{
	struct deferred d;

	if (cpu >= c->ncpus) {
		if (!write)
			memset(data, 0xff, len);
		return;
	}
	lock(c, &d);
	if (write) {
		bool before = deliverable(c, cpu);

		lapic_mmio_write(&c->lapics[cpu], offset, data, len);
		kick_if_newly(c, cpu, before);
	} else {
		lapic_mmio_read(&c->lapics[cpu], offset, data, len);
	}
	unlock(c);
}

uint64_t irqchip_lapic_base(struct irqchip *c, uint32_t cpu)
{
	struct deferred d;
	uint64_t base = 0;

	if (cpu >= c->ncpus)
		return 0;
	lock(c, &d);
	if (lapic_hw_enabled(&c->lapics[cpu]) && !lapic_x2apic(&c->lapics[cpu]))
		base = c->lapics[cpu].apic_base & ~0xfffULL;
	unlock(c);
	return base;
}

int irqchip_rdmsr(struct irqchip *c, uint32_t cpu, uint32_t msr, uint64_t *val)
{
	struct deferred d;
	int r;

	*val = 0;
	if (cpu >= c->ncpus)
		return -1;
	lock(c, &d);
	r = lapic_rdmsr(&c->lapics[cpu], msr, val);
	unlock(c);
	return r;
}

int irqchip_wrmsr(struct irqchip *c, uint32_t cpu, uint32_t msr, uint64_t val)
{
	struct deferred d;
	bool before;
	int r;

	if (cpu >= c->ncpus)
		return -1;

	lock(c, &d);
	before = deliverable(c, cpu);
	r = lapic_wrmsr(&c->lapics[cpu], msr, val);
	kick_if_newly(c, cpu, before);
	unlock(c);
	return r;
}

void irqchip_set_tpr(struct irqchip *c, uint32_t cpu, uint64_t cr8)
{
	struct deferred d;
	bool before;

	if (cpu >= c->ncpus)
		return;

	lock(c, &d);
	before = deliverable(c, cpu);
	c->lapics[cpu].tpr = (uint32_t)(cr8 & 0xf) << 4;
	kick_if_newly(c, cpu, before);
	unlock(c);
}

uint64_t irqchip_get_tpr(struct irqchip *c, uint32_t cpu)
{
	struct deferred d;
	uint64_t r;

	if (cpu >= c->ncpus)
		return 0;
	lock(c, &d);
	r = (c->lapics[cpu].tpr >> 4) & 0xf;
	unlock(c);
	return r;
}

void irqchip_set_tsc_offset(struct irqchip *c, uint32_t cpu, int64_t offset)
{
	struct deferred d;

	if (cpu >= c->ncpus)
		return;
	lock(c, &d);
	c->lapics[cpu].tsc_offset = offset;
	unlock(c);
}

uint64_t irqchip_poll(struct irqchip *c, uint32_t cpu, uint64_t now_ns)
{
	struct deferred d;
	uint64_t next = UINT64_MAX, pit_next;
	bool before;

	if (cpu >= c->ncpus)
		return UINT64_MAX;

	lock(c, &d);
	before = deliverable(c, cpu);
	next = lapic_timer_poll(&c->lapics[cpu], now_ns);
	kick_if_newly(c, cpu, before);
	if (pit_poll(&c->pit, now_ns)) {
		/* A pulse: edge-triggered inputs latch it. */
		set_irq_locked(c, PIT_GSI, 1);
		set_irq_locked(c, PIT_GSI, 0);
	}
	if (cpu == 0) {
		pit_next = pit_next_event(&c->pit, now_ns);
		if (pit_next < next)
			next = pit_next;
	}
	unlock(c);
	return next;
}

/* --- bus handlers --- */

static void put_le(uint8_t *data, uint32_t len, uint32_t val)
{
	for (uint32_t i = 0; i < len; i++)
		data[i] = i < 4 ? (uint8_t)(val >> (8 * i)) : 0;
}

static uint32_t get_le(const uint8_t *data, uint32_t len)
{
	uint32_t val = 0;

	for (uint32_t i = 0; i < len && i < 4; i++)
		val |= (uint32_t)data[i] << (8 * i);
	return val;
}

/* Port ranges; opaque is the irqchip, the range is in the ops. */
enum pio_dev { PIO_PIC_MASTER, PIO_PIC_SLAVE, PIO_ELCR, PIO_PIT, PIO_PORT61 };

static uint8_t pio_read_byte(struct irqchip *c, enum pio_dev dev, uint64_t off)
{
	switch (dev) {
	case PIO_PIC_MASTER:
	case PIO_PIC_SLAVE: {
		uint8_t v;

		if (off > 1)
			return 0xff;
		v = pic_port_read(&c->pic, dev == PIO_PIC_SLAVE, (uint32_t)off);
		pic_update(c); /* a poll read acknowledges */
		return v;
	}
	case PIO_ELCR:
		return off > 1 ? 0xff : pic_elcr_read(&c->pic, (int)off);
	case PIO_PIT:
		return off > 3 ? 0xff : pit_read(&c->pit, (uint32_t)off, now(c));
	case PIO_PORT61:
		return off ? 0xff : pit_port61_read(&c->pit, now(c));
	}
	return 0xff;
}

static void pio_write_byte(struct irqchip *c, enum pio_dev dev, uint64_t off, uint8_t v)
{
	switch (dev) {
	case PIO_PIC_MASTER:
	case PIO_PIC_SLAVE:
		if (off <= 1) {
			pic_port_write(&c->pic, dev == PIO_PIC_SLAVE, (uint32_t)off, v);
			pic_update(c);
		}
		return;
	case PIO_ELCR:
		if (off <= 1) {
			pic_elcr_write(&c->pic, (int)off, v);
			pic_update(c);
		}
		return;
	case PIO_PIT:
		/* A new channel 0 count: vCPU 0 must look at its deadline again. */
		if (off <= 3 && pit_write(&c->pit, (uint32_t)off, v, now(c)))
			kick(c, 0);
		return;
	case PIO_PORT61:
		if (!off)
			pit_port61_write(&c->pit, v, now(c));
		return;
	}
}

static void pio_read(struct irqchip *c, enum pio_dev dev, uint64_t off, uint8_t *data, uint32_t len)
{
	struct deferred d;

	lock(c, &d);
	for (uint32_t i = 0; i < len; i++)
		data[i] = pio_read_byte(c, dev, off + i);
	unlock(c);
}

static void pio_write(struct irqchip *c, enum pio_dev dev, uint64_t off, const uint8_t *data,
		      uint32_t len)
{
	struct deferred d;

	lock(c, &d);
	for (uint32_t i = 0; i < len; i++)
		pio_write_byte(c, dev, off + i, data[i]);
	unlock(c);
}

#define PIO_OPS(name, dev)                                                                         \
	static void name##_read(void *o, uint64_t off, uint8_t *data, uint32_t len)                \
	{                                                                                          \
		pio_read(o, dev, off, data, len);                                                  \
	}                                                                                          \
	static void name##_write(void *o, uint64_t off, const uint8_t *data, uint32_t len)         \
	{                                                                                          \
		pio_write(o, dev, off, data, len);                                                 \
	}                                                                                          \
	static const struct bus_dev_ops name##_ops = {.read = name##_read, .write = name##_write};

PIO_OPS(pio_pic_master, PIO_PIC_MASTER)
PIO_OPS(pio_pic_slave, PIO_PIC_SLAVE)
PIO_OPS(pio_elcr, PIO_ELCR)
PIO_OPS(pio_pit, PIO_PIT)
PIO_OPS(pio_port61, PIO_PORT61)

static void ioapic_read(void *o, uint64_t off, uint8_t *data, uint32_t len)
{
	struct irqchip *c = o;
	struct deferred d;
	uint32_t v;

	lock(c, &d);
	v = ioapic_mmio_read32(&c->ioapic, off & ~0xfULL);
	unlock(c);
	/* Bytes of the 32-bit register at off & 0xf. */
	if ((off & 0xf) >= 4)
		v = 0;
	else
		v >>= 8 * (off & 3);
	put_le(data, len, v);
}

static void ioapic_write(void *o, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct irqchip *c = o;
	struct deferred d;

	if (off & 0xf)
		return;
	lock(c, &d);
	ioapic_mmio_write32(&c->ioapic, off, get_le(data, len), len);
	/* Pin 0 may now route the PIC's INTR (ExtINT) to someone. */
	if (c->pic_out)
		for (uint32_t i = 0; i < c->ncpus; i++)
			if (pic_wired(c, i))
				kick(c, i);
	unlock(c);
}

static const struct bus_dev_ops ioapic_ops = {.read = ioapic_read, .write = ioapic_write};

int irqchip_attach(struct irqchip *c, struct bus *pio, struct bus *mmio)
{
	int ret = 0;

	ret = ret ?: bus_add(pio, 0x20, 2, &pio_pic_master_ops, c, "pic-master");
	ret = ret ?: bus_add(pio, 0xa0, 2, &pio_pic_slave_ops, c, "pic-slave");
	ret = ret ?: bus_add(pio, 0x4d0, 2, &pio_elcr_ops, c, "elcr");
	ret = ret ?: bus_add(pio, 0x40, 4, &pio_pit_ops, c, "pit");
	ret = ret ?: bus_add(pio, 0x61, 1, &pio_port61_ops, c, "port61");
	ret = ret
		  ?: bus_add(mmio, IRQCHIP_IOAPIC_BASE, IRQCHIP_IOAPIC_SIZE, &ioapic_ops, c,
			     "ioapic");
	return ret;
}

/* --- life --- */

int irqchip_create(struct irqchip **out, uint32_t ncpus, const struct irqchip_host *host)
{
	struct irqchip *c;
	int err;

	*out = NULL;
	if (!ncpus || ncpus > IRQCHIP_MAX_CPUS || !host || !host->now_ns)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->lapics = calloc(ncpus, sizeof(*c->lapics));
	if (!c->lapics) {
		free(c);
		return -ENOMEM;
	}
	err = pthread_mutex_init(&c->lock, NULL);
	if (err) {
		free(c->lapics);
		free(c);
		return -err;
	}
	c->host = *host;
	c->ncpus = ncpus;
	c->env = (struct lapic_env){.ctx = c, .send = env_send, .eoi = env_eoi, .now = env_now};
	for (uint32_t i = 0; i < ncpus; i++)
		lapic_init(&c->lapics[i], i, i == 0, &c->env);
	ioapic_init(&c->ioapic, ncpus, ioapic_deliver, c);
	pic_init(&c->pic);
	pit_init(&c->pit, now(c));
	*out = c;
	return 0;
}

void irqchip_destroy(struct irqchip *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c->lapics);
	free(c);
}
