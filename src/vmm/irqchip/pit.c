/* After QEMU's i8254 model, with the gate of modes 0, 2, 3 and 4 honoured. */
#include "vmm/irqchip/pit.h"

#include <string.h>

#define RW_LSB 1
#define RW_MSB 2
#define RW_WORD0 3
#define RW_WORD1 4

static uint64_t ns_to_ticks(uint64_t ns)
{
	return (uint64_t)((unsigned __int128)ns * PIT_HZ / 1000000000ULL);
}

/* The first ns at which ns_to_ticks() reaches ticks. */
static uint64_t ticks_to_ns(uint64_t ticks)
{
	return (uint64_t)(((unsigned __int128)ticks * 1000000000ULL + PIT_HZ - 1) / PIT_HZ);
}

/* Ticks counted since the count was loaded. */
static uint64_t elapsed(const struct pit_channel *s, uint64_t now)
{
	if (!s->counting)
		return s->frozen_ticks;
	if ((int64_t)now <= s->load_ns)
		return 0;
	return ns_to_ticks((uint64_t)((int64_t)now - s->load_ns));
}

static uint16_t get_count(const struct pit_channel *s, uint64_t now)
{
	uint64_t d = elapsed(s, now);
	uint32_t c = s->count;

	if (!c)
		return 0;
	switch (s->mode) {
	case 0:
	case 1:
	case 4:
	case 5:
		return (uint16_t)((c - d) & 0xffff);
	case 3:
		return (uint16_t)(c - ((2 * d) % c));
	default: /* 2 */
		return (uint16_t)(c - (d % c));
	}
}

static bool get_out(const struct pit_channel *s, uint64_t now)
{
	uint64_t d = elapsed(s, now);
	uint32_t c = s->count;

	if (!s->count)
		return s->mode != 0; /* never loaded: OUT low only in mode 0 */
	if (!s->counting && (s->mode == 2 || s->mode == 3))
		return true; /* gate low forces OUT high */
	switch (s->mode) {
	default:
	case 0:
		return d >= c;
	case 1:
		return d >= c || !s->counting;
	case 2:
		return (d % c) != (uint64_t)(c - 1) || c == 1;
	case 3:
		return (d % c) < ((c + 1) >> 1);
	case 4:
	case 5:
		return d != c;
	}
}

/* Channel 0's next rising edge of OUT strictly after now, or UINT64_MAX. */
static uint64_t next_rise(const struct pit_channel *s, uint64_t now)
{
	uint64_t d = elapsed(s, now), c = s->count, t;

	if (!s->counting || !c)
		return UINT64_MAX;
	switch (s->mode) {
	case 0:
	case 1:
		if (d >= c)
			return UINT64_MAX;
		t = c;
		break;
	case 4:
	case 5:
		if (d >= c + 1)
			return UINT64_MAX;
		t = c + 1;
		break;
	default: /* 2, 3: OUT rises as each period starts again */
		t = (d / c + 1) * c;
		break;
	}
	return (uint64_t)(s->load_ns + (int64_t)ticks_to_ns(t));
}

static void load_count(struct pit_channel *s, uint32_t val, uint64_t now)
{
	if (!val)
		val = 0x10000;
	s->count = val;
	s->load_ns = (int64_t)now;
	s->frozen_ticks = 0;
	/* Modes 1 and 5 wait for a rising gate; the others count while the gate is high. */
	s->counting = (s->mode == 1 || s->mode == 5) ? false : s->gate;
	s->next_edge = next_rise(s, now);
}

void pit_init(struct pit *p, uint64_t now)
{
	(void)now;
	memset(p, 0, sizeof(*p));
	for (int i = 0; i < 3; i++) {
		struct pit_channel *s = &p->ch[i];

		s->mode = 3;
		s->gate = i != 2;
		s->rw_mode = RW_WORD0;
		s->read_state = s->write_state = RW_WORD0;
		s->next_edge = UINT64_MAX;
	}
}

static void set_gate(struct pit_channel *s, bool gate, uint64_t now)
{
	bool rising = gate && !s->gate;

	if (gate == s->gate)
		return;
	s->gate = gate;
	if (!s->count)
		return;
	switch (s->mode) {
	case 0:
	case 4: /* the gate pauses counting */
		if (!gate) {
			s->frozen_ticks = elapsed(s, now);
			s->counting = false;
		} else {
			s->load_ns = (int64_t)now - (int64_t)ticks_to_ns(s->frozen_ticks);
			s->counting = true;
		}
		break;
	case 1:
	case 5: /* a rising gate (re)triggers */
		if (rising) {
			s->load_ns = (int64_t)now;
			s->counting = true;
		}
		break;
	case 2:
	case 3: /* low stops the count; a rising gate restarts it from the top */
		if (rising) {
			s->load_ns = (int64_t)now;
			s->counting = true;
		} else {
			s->frozen_ticks = elapsed(s, now);
			s->counting = false;
		}
		break;
	}
	s->next_edge = next_rise(s, now);
}

static void latch_count(struct pit_channel *s, uint64_t now)
{
	if (s->count_latched)
		return;
	s->latched_count = get_count(s, now);
	s->count_latched = s->rw_mode;
}

static void latch_status(struct pit_channel *s, uint64_t now)
{
	if (s->status_latched)
		return;
	s->status = (uint8_t)((get_out(s, now) << 7) | (s->rw_mode << 4) | (s->mode << 1) | s->bcd);
	s->status_latched = true;
}

bool pit_write(struct pit *p, uint32_t port, uint8_t val, uint64_t now)
{
	struct pit_channel *s;

	port &= 3;
	if (port == 3) {
		int c = val >> 6;

		if (c == 3) { /* read-back */
			for (int i = 0; i < 3; i++) {
				if (!(val & (2 << i)))
					continue;
				if (!(val & 0x20))
					latch_count(&p->ch[i], now);
				if (!(val & 0x10))
					latch_status(&p->ch[i], now);
			}
			return false;
		}
		s = &p->ch[c];
		if (!(val & 0x30)) { /* counter latch */
			latch_count(s, now);
			return false;
		}
		s->rw_mode = (val >> 4) & 3;
		s->read_state = s->write_state = s->rw_mode;
		s->mode = (val >> 1) & 7;
		if (s->mode > 5)
			s->mode &= 3; /* 6, 7 are 2, 3 */
		s->bcd = val & 1;
		s->count_latched = 0;
		s->status_latched = false;
		/* A control word stops the count until a new one is written. */
		s->counting = false;
		s->frozen_ticks = 0;
		s->count = 0;
		s->next_edge = UINT64_MAX;
		return c == 0;
	}
	s = &p->ch[port];
	switch (s->write_state) {
	default:
	case RW_LSB:
		load_count(s, val, now);
		break;
	case RW_MSB:
		load_count(s, (uint32_t)val << 8, now);
		break;
	case RW_WORD0:
		s->write_latch = val;
		s->write_state = RW_WORD1;
		return false;
	case RW_WORD1:
		load_count(s, s->write_latch | ((uint32_t)val << 8), now);
		s->write_state = RW_WORD0;
		break;
	}
	return port == 0;
}

uint8_t pit_read(struct pit *p, uint32_t port, uint64_t now)
{
	struct pit_channel *s;
	uint16_t count;
	uint8_t ret;

	port &= 3;
	if (port == 3)
		return 0xff; /* the control word register cannot be read */
	s = &p->ch[port];
	if (s->status_latched) {
		s->status_latched = false;
		return s->status;
	}
	if (s->count_latched) {
		switch (s->count_latched) {
		default:
		case RW_LSB:
			s->count_latched = 0;
			return s->latched_count & 0xff;
		case RW_MSB:
			s->count_latched = 0;
			return s->latched_count >> 8;
		case RW_WORD0:
			s->count_latched = RW_MSB;
			return s->latched_count & 0xff;
		}
	}
	count = get_count(s, now);
	switch (s->read_state) {
	default:
	case RW_LSB:
		ret = count & 0xff;
		break;
	case RW_MSB:
		ret = count >> 8;
		break;
	case RW_WORD0:
		ret = count & 0xff;
		s->read_state = RW_WORD1;
		break;
	case RW_WORD1:
		ret = count >> 8;
		s->read_state = RW_WORD0;
		break;
	}
	return ret;
}

uint8_t pit_port61_read(struct pit *p, uint64_t now)
{
	uint8_t refresh = (now / 15085) & 1; /* DRAM refresh toggle, ~15 us */

	return (p->port61 & 0x0f) | (uint8_t)(refresh << 4) |
	       (uint8_t)(get_out(&p->ch[2], now) << 5);
}

void pit_port61_write(struct pit *p, uint8_t val, uint64_t now)
{
	p->port61 = val & 0x0f;
	set_gate(&p->ch[2], val & 1, now);
}

bool pit_poll(struct pit *p, uint64_t now)
{
	struct pit_channel *s = &p->ch[0];

	if (s->next_edge == UINT64_MAX || now < s->next_edge)
		return false;
	s->next_edge = next_rise(s, now);
	return true;
}

uint64_t pit_next_event(const struct pit *p, uint64_t now)
{
	const struct pit_channel *s = &p->ch[0];

	if (s->next_edge == UINT64_MAX)
		return UINT64_MAX;
	if ((s->mode == 2 || s->mode == 3) && ticks_to_ns(s->count) < PIT_MIN_POLL_NS &&
	    s->next_edge < now + PIT_MIN_POLL_NS)
		return now + PIT_MIN_POLL_NS;
	return s->next_edge;
}

uint16_t pit_count(const struct pit *p, int c, uint64_t now)
{
	return get_count(&p->ch[c % 3], now);
}

bool pit_out(const struct pit *p, int c, uint64_t now)
{
	return get_out(&p->ch[c % 3], now);
}
