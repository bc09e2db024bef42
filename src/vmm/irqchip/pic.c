/* After QEMU's i8259 model. */
#include "vmm/irqchip/pic.h"

#include <string.h>

static void chip_reset(struct pic_chip *s)
{
	uint8_t elcr = s->elcr, elcr_mask = s->elcr_mask;
	bool master = s->master;
	uint8_t irr = s->irr & elcr; /* level inputs stay pending */

	memset(s, 0, sizeof(*s));
	s->elcr = elcr;
	s->elcr_mask = elcr_mask;
	s->master = master;
	s->irr = irr;
}

void pic_init(struct pic *p)
{
	memset(p, 0, sizeof(*p));
	p->chip[0].master = true;
	p->chip[0].elcr_mask = 0xf8; /* IRQ 0-2 are edge only */
	p->chip[1].elcr_mask = 0xde; /* IRQ 8 and 13 are edge only */
	/* Vector bases as a PC BIOS leaves them (real-mode guests rely on it). */
	p->chip[0].irq_base = 0x08;
	p->chip[1].irq_base = 0x70;
}

/* Priority (0 highest) of the best request in mask, 8 if none. */
static int get_priority(const struct pic_chip *s, uint8_t mask)
{
	int priority = 0;

	if (!mask)
		return 8;
	while (!(mask & (1 << ((priority + s->priority_add) & 7))))
		priority++;
	return priority;
}

/* The IRQ this chip would raise INTR for, or -1. */
static int chip_get_irq(const struct pic_chip *s)
{
	int priority, cur;
	uint8_t mask = s->irr & ~s->imr;

	priority = get_priority(s, mask);
	if (priority == 8)
		return -1;
	mask = s->isr;
	if (s->special_mask)
		mask &= ~s->imr;
	if (s->special_fully_nested && s->master)
		mask &= ~(1 << 2);
	cur = get_priority(s, mask);
	if (priority < cur)
		return (priority + s->priority_add) & 7;
	return -1;
}

static void chip_set_irq(struct pic_chip *s, int irq, int level)
{
	uint8_t mask = 1 << irq;

	if (s->elcr & mask) {
		if (level) {
			s->irr |= mask;
			s->last_irr |= mask;
		} else {
			s->irr &= ~mask;
			s->last_irr &= ~mask;
		}
	} else {
		if (level) {
			if (!(s->last_irr & mask))
				s->irr |= mask;
			s->last_irr |= mask;
		} else {
			s->last_irr &= ~mask;
		}
	}
}

/* The slave's INTR drives the master's IRQ 2. */
static void cascade(struct pic *p)
{
	chip_set_irq(&p->chip[0], 2, chip_get_irq(&p->chip[1]) >= 0);
}

void pic_set_irq(struct pic *p, uint32_t irq, int level)
{
	if (irq >= 16 || irq == 2)
		return;
	chip_set_irq(&p->chip[irq >> 3], irq & 7, level);
	cascade(p);
}

bool pic_output(struct pic *p)
{
	return chip_get_irq(&p->chip[0]) >= 0;
}

static void chip_ack(struct pic_chip *s, int irq)
{
	if (s->auto_eoi) {
		if (s->rotate_on_auto_eoi)
			s->priority_add = (irq + 1) & 7;
	} else {
		s->isr |= 1 << irq;
	}
	/* A level-triggered request stays until its line drops. */
	if (!(s->elcr & (1 << irq)))
		s->irr &= ~(1 << irq);
}

uint8_t pic_intack(struct pic *p)
{
	struct pic_chip *m = &p->chip[0], *sl = &p->chip[1];
	int irq = chip_get_irq(m), irq2;
	uint8_t vec;

	if (irq < 0) {
		vec = m->irq_base + 7; /* spurious IRQ 7 */
	} else if (irq == 2) {
		irq2 = chip_get_irq(sl);
		if (irq2 >= 0)
			chip_ack(sl, irq2);
		else
			irq2 = 7; /* spurious IRQ 15 */
		vec = sl->irq_base + irq2;
		chip_ack(m, irq);
	} else {
		vec = m->irq_base + irq;
		chip_ack(m, irq);
	}
	cascade(p);
	return vec;
}

static uint8_t chip_poll(struct pic *p, int chip)
{
	struct pic_chip *s = &p->chip[chip];
	int irq = chip_get_irq(s);

	if (irq < 0)
		return 0;
	if (chip == 0 && irq == 2) {
		int irq2 = chip_get_irq(&p->chip[1]);

		if (irq2 >= 0)
			chip_ack(&p->chip[1], irq2);
	}
	chip_ack(s, irq);
	cascade(p);
	return 0x80 | irq;
}

uint8_t pic_port_read(struct pic *p, int chip, uint32_t port)
{
	struct pic_chip *s = &p->chip[chip & 1];

	if (s->poll) {
		s->poll = false;
		return chip_poll(p, chip & 1);
	}
	if (port & 1)
		return s->imr;
	return s->read_isr ? s->isr : s->irr;
}

void pic_port_write(struct pic *p, int chip, uint32_t port, uint8_t val)
{
	struct pic_chip *s = &p->chip[chip & 1];

	if (!(port & 1)) {
		if (val & 0x10) { /* ICW1 */
			chip_reset(s);
			s->init_state = 1;
			s->init4 = val & 1;
			s->single_mode = val & 2;
		} else if (val & 0x08) { /* OCW3 */
			if (val & 0x04)
				s->poll = true;
			if (val & 0x02)
				s->read_isr = val & 1;
			if (val & 0x40)
				s->special_mask = (val >> 5) & 1;
		} else { /* OCW2 */
			int cmd = val >> 5, prio, irq;

			switch (cmd) {
			case 0: /* rotate in auto-EOI mode: clear */
			case 4: /* set */
				s->rotate_on_auto_eoi = cmd >> 2;
				break;
			case 1: /* non-specific EOI */
			case 5: /* rotate on non-specific EOI */
				prio = get_priority(s, s->isr);
				if (prio != 8) {
					irq = (prio + s->priority_add) & 7;
					s->isr &= ~(1 << irq);
					if (cmd == 5)
						s->priority_add = (irq + 1) & 7;
				}
				break;
			case 3: /* specific EOI */
				s->isr &= ~(1 << (val & 7));
				break;
			case 6: /* set priority */
				s->priority_add = (val + 1) & 7;
				break;
			case 7: /* rotate on specific EOI */
				irq = val & 7;
				s->isr &= ~(1 << irq);
				s->priority_add = (irq + 1) & 7;
				break;
			default: /* 2: no operation */
				break;
			}
		}
	} else {
		switch (s->init_state) {
		case 0: /* OCW1 */
			s->imr = val;
			break;
		case 1: /* ICW2 */
			s->irq_base = val & 0xf8;
			s->init_state = s->single_mode ? (s->init4 ? 3 : 0) : 2;
			break;
		case 2: /* ICW3 */
			s->init_state = s->init4 ? 3 : 0;
			break;
		case 3: /* ICW4 */
			s->special_fully_nested = (val >> 4) & 1;
			s->auto_eoi = (val >> 1) & 1;
			s->init_state = 0;
			break;
		}
	}
	cascade(p);
}

uint8_t pic_elcr_read(struct pic *p, int chip)
{
	return p->chip[chip & 1].elcr;
}

void pic_elcr_write(struct pic *p, int chip, uint8_t val)
{
	p->chip[chip & 1].elcr = val & p->chip[chip & 1].elcr_mask;
	cascade(p);
}
