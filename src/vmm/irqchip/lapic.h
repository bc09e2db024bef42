/*
 * Local APIC (SDM vol. 3 ch. 11): xAPIC registers by MMIO offset, x2APIC
 * registers by MSR, the IRR/ISR/TMR vectors, priorities and the timer. One
 * per vCPU; plain state that the irqchip's lock protects. What leaves the
 * APIC (IPIs, EOI broadcasts) goes through the callbacks in lapic_env.
 */
#ifndef EMBER_VMM_IRQCHIP_LAPIC_H
#define EMBER_VMM_IRQCHIP_LAPIC_H

#include <stdbool.h>
#include <stdint.h>

/* Delivery modes (ICR, LVT, IOAPIC redirection entries, MSI data). */
#define APIC_DM_FIXED 0
#define APIC_DM_LOWEST 1
#define APIC_DM_SMI 2
#define APIC_DM_NMI 4
#define APIC_DM_INIT 5
#define APIC_DM_STARTUP 6
#define APIC_DM_EXTINT 7

/* ICR destination shorthands. */
#define APIC_SH_NONE 0
#define APIC_SH_SELF 1
#define APIC_SH_ALL 2
#define APIC_SH_ALL_BUT_SELF 3

#define APIC_BASE_BSP (1ULL << 8)
#define APIC_BASE_EXTD (1ULL << 10)
#define APIC_BASE_EN (1ULL << 11)
#define APIC_DEFAULT_BASE 0xfee00000ULL

#define LAPIC_VERSION 0x50014 /* 6 LVT entries (max LVT index 5), integrated APIC */

/* ESR bits. */
#define APIC_ESR_SEND_ILLEGAL 0x20
#define APIC_ESR_RECV_ILLEGAL 0x40
#define APIC_ESR_ILLEGAL_REG 0x80

#define APIC_LVT_MASKED (1u << 16)

enum { LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR, LVT_NR };

/* The LAPIC timer's input clock: 25 MHz (CPUID 0x15 core crystal clock). */
#define LAPIC_TIMER_HZ 25000000ULL
#define LAPIC_TIMER_TICK_NS 40ULL
/* A periodic timer faster than this is polled no more often than this. */
#define LAPIC_TIMER_MIN_POLL_NS 50000ULL

/* An interrupt message: from an ICR, an IOAPIC entry or an MSI. */
struct apic_msg {
	uint32_t dest;
	uint8_t vector;
	uint8_t mode;	   /* APIC_DM_* */
	uint8_t shorthand; /* APIC_SH_*; IPIs only */
	bool logical;	   /* logical destination mode */
	bool level;	   /* level-triggered (sets TMR: EOI goes to the IOAPIC) */
	bool assert;	   /* false only for an INIT level de-assert */
	bool x2apic;	   /* dest is a 32-bit x2APIC destination (x2APIC ICR) */
	bool lowest_hint;  /* MSI redirection hint: deliver to one of dest */
};

struct lapic;

struct lapic_env {
	void *ctx;
	/* An IPI from the ICR or SELF_IPI of src. */
	void (*send)(void *ctx, struct lapic *src, const struct apic_msg *m);
	/* EOI of a level-triggered vector: broadcast to the IOAPIC. */
	void (*eoi)(void *ctx, uint8_t vector);
	uint64_t (*now)(void *ctx);
};

struct lapic {
	const struct lapic_env *env;
	uint32_t id; /* APIC ID: the vCPU index */
	uint64_t apic_base;
	uint32_t tpr, ldr, dfr, svr;
	uint32_t esr, esr_pending;
	uint32_t icr_lo, icr_hi;
	uint32_t lvt[LVT_NR];
	uint32_t irr[8], isr[8], tmr[8];
	uint32_t tmict, tdcr;
	bool nmi; /* an NMI waits for the CPU */
	/* One-shot / periodic timer: armed, next expiry (ns). */
	bool timer_armed;
	uint64_t timer_expire;
	/* TSC-deadline timer, in guest TSC units (1 GHz, now_ns + tsc_offset). */
	uint64_t tsc_deadline;
	int64_t tsc_offset;
};

void lapic_init(struct lapic *l, uint32_t id, bool bsp, const struct lapic_env *env);
/* The power-up state of the registers; apic_base and ID unchanged (INIT). */
void lapic_reset_regs(struct lapic *l);

bool lapic_hw_enabled(const struct lapic *l);
bool lapic_x2apic(const struct lapic *l);
bool lapic_sw_enabled(const struct lapic *l);

/* xAPIC MMIO, offset into the 4 KiB page; all-ones/ignored outside xAPIC mode. */
void lapic_mmio_read(struct lapic *l, uint64_t offset, uint8_t *data, uint32_t len);
void lapic_mmio_write(struct lapic *l, uint64_t offset, const uint8_t *data, uint32_t len);
/* IA32_APIC_BASE, IA32_TSC_DEADLINE and 0x800-0x8ff: 0, or -1 for #GP. */
int lapic_rdmsr(struct lapic *l, uint32_t msr, uint64_t *val);
int lapic_wrmsr(struct lapic *l, uint32_t msr, uint64_t val);

/* Whether a message's destination (no shorthand) names this APIC. */
bool lapic_match_dest(const struct lapic *l, uint32_t dest, bool logical, bool x2fmt);
/* A fixed interrupt arrives: into IRR (TMR if level). False if refused. */
bool lapic_accept(struct lapic *l, int vector, bool level);

/* The vector the CPU would take now (by PPR), or -1. */
int lapic_pending(const struct lapic *l);
/* Takes it: IRR -> ISR. */
int lapic_ack(struct lapic *l);
uint32_t lapic_ppr(const struct lapic *l);

/* The PIC's INTR reaches this CPU: APIC hardware-disabled or LINT0 unmasked ExtINT. */
bool lapic_accepts_pic(const struct lapic *l);

/* Fires the timer if due; returns its next deadline in ns or UINT64_MAX. */
uint64_t lapic_timer_poll(struct lapic *l, uint64_t now);

#endif
