#include "vmm/irqchip/lapic.h"

#include <string.h>

/* xAPIC register offsets; the x2APIC MSR is 0x800 + offset / 16. */
#define REG_ID 0x020
#define REG_VERSION 0x030
#define REG_TPR 0x080
#define REG_APR 0x090
#define REG_PPR 0x0a0
#define REG_EOI 0x0b0
#define REG_RRD 0x0c0
#define REG_LDR 0x0d0
#define REG_DFR 0x0e0
#define REG_SVR 0x0f0
#define REG_ISR 0x100
#define REG_TMR 0x180
#define REG_IRR 0x200
#define REG_ESR 0x280
#define REG_ICR 0x300
#define REG_ICR2 0x310
#define REG_LVT0 0x320 /* LVT timer; the six LVTs are 0x320..0x370 */
#define REG_LVT_END 0x380
#define REG_TMICT 0x380
#define REG_TMCCT 0x390
#define REG_TDCR 0x3e0
#define REG_SELF_IPI 0x3f0

#define MSR_APIC_BASE 0x1b
#define MSR_TSC_DEADLINE 0x6e0
#define MSR_X2APIC_FIRST 0x800
#define MSR_X2APIC_LAST 0x8ff

#define SVR_ENABLE 0x100
#define SVR_MASK 0x3ff /* vector, enable, focus checking; no EOI-broadcast suppression */

#define ICR_LO_MASK 0xccfffu /* vector, mode, dest mode, level, trigger, shorthand */
#define ICR_LEVEL (1u << 14)
#define ICR_TRIGGER (1u << 15)
#define ICR_LOGICAL (1u << 11)

#define TIMER_MODE_SHIFT 17
#define TIMER_ONESHOT 0
#define TIMER_PERIODIC 1
#define TIMER_DEADLINE 2

/* Writable bits per LVT (reserved and read-only bits read 0). */
static const uint32_t lvt_mask[LVT_NR] = {
    [LVT_TIMER] = 0x700ff,			    /* vector, mask, mode (bits 17-18) */
    [LVT_THERMAL] = 0x107ff,			    /* vector, delivery mode, mask */
    [LVT_PERF] = 0x107ff,    [LVT_LINT0] = 0x1a7ff, /* + polarity, trigger */
    [LVT_LINT1] = 0x1a7ff,   [LVT_ERROR] = 0x100ff,
};

static bool vec_test(const uint32_t *r, unsigned v)
{
	return (r[v >> 5] >> (v & 31)) & 1;
}

static void vec_set(uint32_t *r, unsigned v)
{
	r[v >> 5] |= 1u << (v & 31);
}

static void vec_clear(uint32_t *r, unsigned v)
{
	r[v >> 5] &= ~(1u << (v & 31));
}

static int vec_highest(const uint32_t *r)
{
	for (int i = 7; i >= 0; i--)
		if (r[i])
			return i * 32 + 31 - __builtin_clz(r[i]);
	return -1;
}

bool lapic_hw_enabled(const struct lapic *l)
{
	return l->apic_base & APIC_BASE_EN;
}

bool lapic_x2apic(const struct lapic *l)
{
	return (l->apic_base & (APIC_BASE_EN | APIC_BASE_EXTD)) == (APIC_BASE_EN | APIC_BASE_EXTD);
}

bool lapic_sw_enabled(const struct lapic *l)
{
	return l->svr & SVR_ENABLE;
}

static uint32_t x2apic_ldr(uint32_t id)
{
	return ((id >> 4) << 16) | (1u << (id & 0xf));
}

void lapic_reset_regs(struct lapic *l)
{
	l->tpr = 0;
	l->ldr = lapic_x2apic(l) ? x2apic_ldr(l->id) : 0;
	l->dfr = 0xffffffff;
	l->svr = 0xff;
	l->esr = l->esr_pending = 0;
	l->icr_lo = l->icr_hi = 0;
	for (int i = 0; i < LVT_NR; i++)
		l->lvt[i] = APIC_LVT_MASKED;
	/* As KVM does: the BSP's LINT0 starts in virtual-wire mode (PIC -> CPU). */
	if (l->apic_base & APIC_BASE_BSP)
		l->lvt[LVT_LINT0] = APIC_DM_EXTINT << 8;
	memset(l->irr, 0, sizeof(l->irr));
	memset(l->isr, 0, sizeof(l->isr));
	memset(l->tmr, 0, sizeof(l->tmr));
	l->tmict = l->tdcr = 0;
	l->nmi = false;
	l->timer_armed = false;
	l->timer_expire = UINT64_MAX;
	l->tsc_deadline = 0;
}

void lapic_init(struct lapic *l, uint32_t id, bool bsp, const struct lapic_env *env)
{
	memset(l, 0, sizeof(*l));
	l->env = env;
	l->id = id;
	l->apic_base = APIC_DEFAULT_BASE | APIC_BASE_EN | (bsp ? APIC_BASE_BSP : 0);
	lapic_reset_regs(l);
}

static uint64_t now_ns(struct lapic *l)
{
	return l->env->now(l->env->ctx);
}

uint32_t lapic_ppr(const struct lapic *l)
{
	int isrv = vec_highest(l->isr);
	uint32_t isrc = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;

	if ((l->tpr & 0xf0) >= isrc)
		return l->tpr & 0xff;
	return isrc;
}

static uint32_t lapic_apr(const struct lapic *l)
{
	int irrv = vec_highest(l->irr), isrv = vec_highest(l->isr);
	int v = irrv > isrv ? irrv : isrv;
	uint32_t c = v < 0 ? 0 : (uint32_t)v & 0xf0;

	if ((l->tpr & 0xf0) >= c)
		return l->tpr & 0xff;
	return c;
}

int lapic_pending(const struct lapic *l)
{
	int v;

	if (!lapic_hw_enabled(l))
		return -1;
	v = vec_highest(l->irr);
	if (v < 0 || ((uint32_t)v & 0xf0) <= (lapic_ppr(l) & 0xf0))
		return -1;
	return v;
}

int lapic_ack(struct lapic *l)
{
	int v = lapic_pending(l);

	if (v < 0)
		return -1;
	vec_clear(l->irr, (unsigned)v);
	vec_set(l->isr, (unsigned)v);
	return v;
}

static void lapic_error(struct lapic *l, uint32_t bit)
{
	uint32_t lvt = l->lvt[LVT_ERROR];
	unsigned v = lvt & 0xff;

	if (l->esr_pending & bit)
		return;
	l->esr_pending |= bit;
	if ((lvt & APIC_LVT_MASKED) || !lapic_sw_enabled(l))
		return;
	if (v < 16) {
		l->esr_pending |= APIC_ESR_RECV_ILLEGAL; /* no second error interrupt */
		return;
	}
	vec_set(l->irr, v);
	vec_clear(l->tmr, v);
}

bool lapic_accept(struct lapic *l, int vector, bool level)
{
	if (!lapic_hw_enabled(l))
		return false;
	if (vector < 16 || vector > 255) {
		lapic_error(l, APIC_ESR_RECV_ILLEGAL);
		return false;
	}
	/* As KVM: a software-disabled APIC drops fixed interrupts. */
	if (!lapic_sw_enabled(l))
		return false;
	vec_set(l->irr, (unsigned)vector);
	if (level)
		vec_set(l->tmr, (unsigned)vector);
	else
		vec_clear(l->tmr, (unsigned)vector);
	return true;
}

bool lapic_accepts_pic(const struct lapic *l)
{
	uint32_t lvt0 = l->lvt[LVT_LINT0];

	if (!lapic_hw_enabled(l))
		return true;
	return !(lvt0 & APIC_LVT_MASKED) && ((lvt0 >> 8) & 7) == APIC_DM_EXTINT;
}

bool lapic_match_dest(const struct lapic *l, uint32_t dest, bool logical, bool x2fmt)
{
	if (!lapic_hw_enabled(l))
		return false;
	if (dest == 0xffffffff || (!x2fmt && dest == 0xff))
		return true;
	if (lapic_x2apic(l)) {
		if (!logical)
			return dest == l->id;
		return (dest >> 16) == (l->ldr >> 16) && (dest & l->ldr & 0xffff);
	}
	if (x2fmt && dest > 0xff)
		return false;
	dest &= 0xff;
	if (dest == 0xff)
		return true;
	if (!logical)
		return dest == (l->id & 0xff);
	uint32_t ldr = l->ldr >> 24;
	if ((l->dfr >> 28) == 0xf)
		return (ldr & dest) != 0;			/* flat */
	return (ldr >> 4) == (dest >> 4) && (ldr & dest & 0xf); /* cluster */
}

static void lapic_eoi(struct lapic *l)
{
	int v = vec_highest(l->isr);

	if (v < 0)
		return;
	vec_clear(l->isr, (unsigned)v);
	if (vec_test(l->tmr, (unsigned)v))
		l->env->eoi(l->env->ctx, (uint8_t)v);
}

/* --- timer --- */

static unsigned timer_mode(const struct lapic *l)
{
	return (l->lvt[LVT_TIMER] >> TIMER_MODE_SHIFT) & 3;
}

static uint64_t timer_tick_ns(const struct lapic *l)
{
	uint32_t v = (l->tdcr & 3) | ((l->tdcr & 8) >> 1);
	uint64_t div = v == 7 ? 1 : 2ULL << v;

	return LAPIC_TIMER_TICK_NS * div;
}

static void timer_start(struct lapic *l, uint32_t count)
{
	l->tmict = count;
	if (!count) {
		l->timer_armed = false;
		l->timer_expire = UINT64_MAX;
		return;
	}
	l->timer_armed = true;
	l->timer_expire = now_ns(l) + (uint64_t)count * timer_tick_ns(l);
}

static uint32_t timer_current(const struct lapic *l, uint64_t now)
{
	uint64_t tick = timer_tick_ns(l), e = l->timer_expire, cur;

	if (timer_mode(l) == TIMER_DEADLINE || !l->timer_armed || !l->tmict)
		return 0;
	if (now >= e) {
		uint64_t period = (uint64_t)l->tmict * tick;

		if (timer_mode(l) != TIMER_PERIODIC)
			return 0;
		e += ((now - e) / period + 1) * period;
	}
	cur = (e - now + tick - 1) / tick;
	return cur > l->tmict ? l->tmict : (uint32_t)cur;
}

static void timer_fire(struct lapic *l)
{
	uint32_t lvt = l->lvt[LVT_TIMER];

	if (lvt & APIC_LVT_MASKED)
		return;
	lapic_accept(l, lvt & 0xff, false);
}

uint64_t lapic_timer_poll(struct lapic *l, uint64_t now)
{
	if (!lapic_hw_enabled(l))
		return UINT64_MAX;
	if (timer_mode(l) == TIMER_DEADLINE) {
		uint64_t tsc = now + (uint64_t)l->tsc_offset;

		if (!l->tsc_deadline)
			return UINT64_MAX;
		if (tsc >= l->tsc_deadline) {
			l->tsc_deadline = 0;
			timer_fire(l);
			return UINT64_MAX;
		}
		return now + (l->tsc_deadline - tsc);
	}
	if (!l->timer_armed)
		return UINT64_MAX;
	if (now >= l->timer_expire) {
		timer_fire(l);
		if (timer_mode(l) == TIMER_PERIODIC) {
			uint64_t period = (uint64_t)l->tmict * timer_tick_ns(l);

			l->timer_expire += ((now - l->timer_expire) / period + 1) * period;
		} else {
			l->timer_armed = false;
			l->timer_expire = UINT64_MAX;
			return UINT64_MAX;
		}
	}
	if (timer_mode(l) == TIMER_PERIODIC && l->timer_expire < now + LAPIC_TIMER_MIN_POLL_NS &&
	    (uint64_t)l->tmict * timer_tick_ns(l) < LAPIC_TIMER_MIN_POLL_NS)
		return now + LAPIC_TIMER_MIN_POLL_NS;
	return l->timer_expire;
}

static void timer_set_divide(struct lapic *l, uint32_t val)
{
	uint64_t now = now_ns(l);
	uint32_t cur = timer_current(l, now);

	l->tdcr = val & 0xb;
	if (l->timer_armed && timer_mode(l) != TIMER_DEADLINE && cur)
		l->timer_expire = now + (uint64_t)cur * timer_tick_ns(l);
}

/* --- ICR --- */

static void lapic_send(struct lapic *l, uint32_t lo, uint32_t dest, bool x2fmt)
{
	struct apic_msg m = {
	    .dest = dest,
	    .vector = lo & 0xff,
	    .mode = (lo >> 8) & 7,
	    .shorthand = (lo >> 18) & 3,
	    .logical = lo & ICR_LOGICAL,
	    .level = lo & ICR_TRIGGER,
	    .assert = lo & ICR_LEVEL,
	    .x2apic = x2fmt,
	};

	if (!m.level)
		m.assert = true; /* edge: the level bit does not matter */
	if ((m.mode == APIC_DM_FIXED || m.mode == APIC_DM_LOWEST) && m.vector < 16) {
		lapic_error(l, APIC_ESR_SEND_ILLEGAL);
		return;
	}
	l->env->send(l->env->ctx, l, &m);
}

/* --- registers --- */

/* Reads register reg (16-byte aligned offset); false if there is none. */
static bool reg_read(struct lapic *l, uint32_t reg, uint32_t *val, bool x2)
{
	switch (reg) {
	case REG_ID:
		*val = x2 ? l->id : l->id << 24;
		return true;
	case REG_VERSION:
		*val = LAPIC_VERSION;
		return true;
	case REG_TPR:
		*val = l->tpr;
		return true;
	case REG_APR:
		*val = lapic_apr(l);
		return !x2;
	case REG_PPR:
		*val = lapic_ppr(l);
		return true;
	case REG_EOI:
		*val = 0;
		return !x2; /* write-only in x2APIC mode */
	case REG_RRD:
		*val = 0;
		return !x2;
	case REG_LDR:
		*val = l->ldr;
		return true;
	case REG_DFR:
		*val = l->dfr;
		return !x2;
	case REG_SVR:
		*val = l->svr;
		return true;
	case REG_ESR:
		*val = l->esr;
		return true;
	case REG_ICR:
		*val = l->icr_lo;
		return true;
	case REG_ICR2:
		*val = l->icr_hi;
		return !x2;
	case REG_TMICT:
		*val = l->tmict;
		return true;
	case REG_TMCCT:
		*val = timer_current(l, now_ns(l));
		return true;
	case REG_TDCR:
		*val = l->tdcr;
		return true;
	}
	if (reg >= REG_ISR && reg < REG_ISR + 0x80) {
		*val = l->isr[(reg - REG_ISR) >> 4];
		return true;
	}
	if (reg >= REG_TMR && reg < REG_TMR + 0x80) {
		*val = l->tmr[(reg - REG_TMR) >> 4];
		return true;
	}
	if (reg >= REG_IRR && reg < REG_IRR + 0x80) {
		*val = l->irr[(reg - REG_IRR) >> 4];
		return true;
	}
	if (reg >= REG_LVT0 && reg < REG_LVT_END) {
		*val = l->lvt[(reg - REG_LVT0) >> 4];
		return true;
	}
	*val = 0;
	return false;
}

static void lvt_write(struct lapic *l, unsigned i, uint32_t val)
{
	uint32_t old = l->lvt[i];

	val &= lvt_mask[i];
	if (!lapic_sw_enabled(l))
		val |= APIC_LVT_MASKED;
	if (i == LVT_TIMER && ((old ^ val) >> TIMER_MODE_SHIFT) & 3) {
		/* A mode change stops the timer (as KVM does). */
		l->tmict = 0;
		l->timer_armed = false;
		l->timer_expire = UINT64_MAX;
		l->tsc_deadline = 0;
	}
	/* Keep the read-only remote IRR bit of LINT0/LINT1. */
	l->lvt[i] = val | (old & (1u << 14) & ~lvt_mask[i]);
}

/* Writes register reg: 0, or -1 if the write is invalid (x2APIC: #GP). */
static int reg_write(struct lapic *l, uint32_t reg, uint32_t val, bool x2)
{
	switch (reg) {
	case REG_ID:
	case REG_VERSION:
	case REG_PPR:
	case REG_TMCCT:
		return x2 ? -1 : 0; /* read-only */
	case REG_APR:
	case REG_RRD:
		return x2 ? -1 : 0;
	case REG_TPR:
		l->tpr = val & 0xff;
		return 0;
	case REG_EOI:
		if (x2 && val)
			return -1;
		lapic_eoi(l);
		return 0;
	case REG_LDR:
		if (x2)
			return -1;
		l->ldr = val & 0xff000000;
		return 0;
	case REG_DFR:
		if (x2)
			return -1;
		l->dfr = val | 0x0fffffff;
		return 0;
	case REG_SVR:
		l->svr = val & SVR_MASK;
		if (!(val & SVR_ENABLE))
			for (int i = 0; i < LVT_NR; i++)
				l->lvt[i] |= APIC_LVT_MASKED;
		return 0;
	case REG_ESR:
		if (x2 && val)
			return -1;
		l->esr = l->esr_pending;
		l->esr_pending = 0;
		return 0;
	case REG_ICR:
		if (x2)
			return -1; /* 64-bit, in lapic_wrmsr */
		l->icr_lo = val & ICR_LO_MASK;
		lapic_send(l, l->icr_lo, l->icr_hi >> 24, false);
		return 0;
	case REG_ICR2:
		if (x2)
			return -1;
		l->icr_hi = val & 0xff000000;
		return 0;
	case REG_TMICT:
		if (timer_mode(l) == TIMER_DEADLINE)
			return 0;
		timer_start(l, val);
		return 0;
	case REG_TDCR:
		if (x2 && (val & ~0xbu))
			return -1;
		timer_set_divide(l, val);
		return 0;
	case REG_SELF_IPI:
		if (!x2)
			return -1;
		if (val & ~0xffu)
			return -1;
		lapic_send(l, (val & 0xff) | (APIC_SH_SELF << 18), 0, true);
		return 0;
	}
	if ((reg >= REG_ISR && reg < REG_IRR + 0x80))
		return x2 ? -1 : 0; /* ISR, TMR, IRR: read-only */
	if (reg >= REG_LVT0 && reg < REG_LVT_END) {
		lvt_write(l, (reg - REG_LVT0) >> 4, val);
		return 0;
	}
	return -1;
}

void lapic_mmio_read(struct lapic *l, uint64_t offset, uint8_t *data, uint32_t len)
{
	uint32_t val = 0;
	unsigned byte = offset & 0xf;

	if (!lapic_hw_enabled(l) || lapic_x2apic(l) || offset >= 0x1000) {
		memset(data, 0xff, len);
		return;
	}
	if (!reg_read(l, (uint32_t)offset & 0xff0, &val, false) || (offset & 0xff0) == REG_SELF_IPI)
		lapic_error(l, APIC_ESR_ILLEGAL_REG);
	for (uint32_t i = 0; i < len; i++) {
		unsigned b = byte + i;

		data[i] = b < 4 ? (uint8_t)(val >> (8 * b)) : 0;
	}
}

void lapic_mmio_write(struct lapic *l, uint64_t offset, const uint8_t *data, uint32_t len)
{
	uint32_t val;

	if (!lapic_hw_enabled(l) || lapic_x2apic(l) || offset >= 0x1000)
		return;
	/* Only aligned 32-bit writes reach a register (as KVM). */
	if (len != 4 || (offset & 0xf))
		return;
	val = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
	      (uint32_t)data[3] << 24;
	if (reg_write(l, (uint32_t)offset, val, false))
		lapic_error(l, APIC_ESR_ILLEGAL_REG);
}

/* xAPIC, x2APIC or disabled; -1 for the invalid EN=0, EXTD=1. */
static int base_mode(uint64_t base)
{
	if (!(base & APIC_BASE_EN))
		return (base & APIC_BASE_EXTD) ? -1 : 0;
	return (base & APIC_BASE_EXTD) ? 2 : 1;
}

static int apic_base_write(struct lapic *l, uint64_t val)
{
	/* Reserved: bits 0-7, 9 and above a 52-bit physical address. */
	const uint64_t reserved = 0x2ffULL | ~((1ULL << 52) - 1);
	int old = base_mode(l->apic_base), new = base_mode(val);

	if ((val & reserved) || new < 0)
		return -1;
	if (old == 2 && new == 1)
		return -1; /* x2APIC -> xAPIC only through disabled */
	if (old == 0 && new == 2)
		return -1; /* disabled -> x2APIC only through xAPIC */
	l->apic_base = val;
	if (new == 0 && old != 0)
		lapic_reset_regs(l); /* SDM 11.4.3: back to the power-up state */
	if (new == 2 && old != 2)
		l->ldr = x2apic_ldr(l->id);
	return 0;
}

int lapic_rdmsr(struct lapic *l, uint32_t msr, uint64_t *val)
{
	uint32_t v;

	*val = 0;
	if (msr == MSR_APIC_BASE) {
		*val = l->apic_base;
		return 0;
	}
	if (msr == MSR_TSC_DEADLINE) {
		if (lapic_hw_enabled(l) && timer_mode(l) == TIMER_DEADLINE)
			*val = l->tsc_deadline;
		return 0;
	}
	if (msr < MSR_X2APIC_FIRST || msr > MSR_X2APIC_LAST || !lapic_x2apic(l))
		return -1;
	uint32_t reg = (msr - MSR_X2APIC_FIRST) << 4;
	if (reg == REG_ICR) {
		*val = (uint64_t)l->icr_hi << 32 | l->icr_lo;
		return 0;
	}
	if (reg == REG_SELF_IPI || !reg_read(l, reg, &v, true))
		return -1;
	*val = v;
	return 0;
}

int lapic_wrmsr(struct lapic *l, uint32_t msr, uint64_t val)
{
	if (msr == MSR_APIC_BASE)
		return apic_base_write(l, val);
	if (msr == MSR_TSC_DEADLINE) {
		if (lapic_hw_enabled(l) && timer_mode(l) == TIMER_DEADLINE)
			l->tsc_deadline = val;
		return 0;
	}
	if (msr < MSR_X2APIC_FIRST || msr > MSR_X2APIC_LAST || !lapic_x2apic(l))
		return -1;
	uint32_t reg = (msr - MSR_X2APIC_FIRST) << 4;
	if (reg == REG_ICR) {
		l->icr_lo = (uint32_t)val & ICR_LO_MASK;
		l->icr_hi = (uint32_t)(val >> 32);
		lapic_send(l, l->icr_lo, l->icr_hi, true);
		return 0;
	}
	if (val >> 32)
		return -1;
	return reg_write(l, reg, (uint32_t)val, true);
}
