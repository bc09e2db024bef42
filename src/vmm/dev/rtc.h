/*
 * MC146818 CMOS real-time clock and its 128 bytes of NVRAM: ports 0x70
 * (index; bit 7, NMI disable, is dropped) and 0x71 (data), IRQ 8.
 *
 * The clock is the host clock (UTC) plus an offset the guest changes by
 * setting the time (SET in register B, write the time registers, clear
 * SET). Register A's UIP bit follows the host clock: it reads 1 for the
 * last 244 us of each second, when no fake clock is injected, so pollers
 * that wait for UIP to go low (Linux's mc146818_get_time) or for its edge
 * both find one. With an injected clock UIP always reads 0.
 *
 * Interrupts: update-ended (UIE) and alarm (AIE) are supported; periodic
 * (PIE) is not, and a guest enabling it is told so in the log. Flags in
 * register C are brought up to date whenever C is read and on each tick of
 * a timerfd the device owns: the board polls rtc_timer_fd() and calls
 * rtc_timer_event() when it is readable. The timer runs (once a second, on
 * the host clock's second boundary) only while UIE or AIE is enabled.
 * IRQ 8 is a level: register C's IRQF bit.
 *
 * Lock order: the device lock, then whatever irq.set_level takes.
 */
#ifndef EMBER_VMM_DEV_RTC_H
#define EMBER_VMM_DEV_RTC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "core/log.h"
#include "vmm/bus.h"
#include "vmm/irq.h"

#define RTC_PORT_BASE 0x70
#define RTC_NR_PORTS 2
#define RTC_CMOS_SIZE 128

struct rtc_config {
	struct irq_line irq;
	/* Host time in seconds since the epoch; NULL: the real clock. */
	time_t (*now)(void *ctx);
	void *ctx;
};

struct rtc {
	pthread_mutex_t lock; /* guards everything below */
	struct rtc_config cfg;
	uint8_t cmos[RTC_CMOS_SIZE]; /* time registers hold values only while SET */
	uint8_t index;
	int64_t offset;	   /* guest clock minus host clock, seconds */
	int64_t last_tick; /* guest second when the flags were last brought up to date */
	int timer_fd;
	bool timer_armed;
	int irq_level;
	struct ratelimit rl;
};

/* Ops for ports 0x70..0x71 (RTC_NR_PORTS); opaque is the struct rtc. */
extern const struct bus_dev_ops rtc_ops;

/* 0 or -errno (mutex or timerfd creation). */
int rtc_init(struct rtc *rtc, const struct rtc_config *cfg);
void rtc_destroy(struct rtc *rtc);

/* Board setup: NVRAM contents (index 0x0e..0x7f except century 0x32). 0 or -EINVAL. */
int rtc_nvram_set(struct rtc *rtc, uint8_t index, uint8_t val);

/* Readable when a tick is due; then call rtc_timer_event(). */
int rtc_timer_fd(const struct rtc *rtc);
void rtc_timer_event(struct rtc *rtc);

/* Brings the update/alarm flags and IRQ 8 up to date with the clock now. */
void rtc_update(struct rtc *rtc);

#endif
