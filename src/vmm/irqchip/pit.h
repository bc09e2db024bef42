/*
 * The 8254 PIT: three channels counting at 1.193182 MHz, their counts and
 * outputs computed from the time; channel 2's gate and output on port 0x61.
 * Plain state under the irqchip's lock; every call is given the time (ns).
 */
#ifndef EMBER_VMM_IRQCHIP_PIT_H
#define EMBER_VMM_IRQCHIP_PIT_H

#include <stdbool.h>
#include <stdint.h>

#define PIT_HZ 1193182ULL
#define PIT_MIN_POLL_NS 50000ULL /* channel 0 faster than this is polled no more often */

struct pit_channel {
	uint32_t count;	 /* loaded count, 1..0x10000 */
	int64_t load_ns; /* time the count was loaded (or counting resumed) */
	uint16_t latched_count;
	uint8_t count_latched; /* access mode of the pending count latch, 0 if none */
	bool status_latched;
	uint8_t status;
	uint8_t read_state, write_state;
	uint8_t write_latch;
	uint8_t rw_mode, mode;
	bool bcd, gate;
	bool counting;	       /* a count is loaded (and the gate lets it run) */
	bool armed;	       /* channel 0: waits for the next rising edge of OUT */
	uint64_t frozen_ticks; /* ticks counted when the gate went low */
	uint64_t next_edge;    /* channel 0: time of the next rising edge, or UINT64_MAX */
};

struct pit {
	struct pit_channel ch[3];
	uint8_t port61; /* bits 0-3 as written */
};

void pit_init(struct pit *p, uint64_t now);
/* port 0-3 = 0x40-0x43. pit_write returns true when channel 0 was (re)loaded. */
uint8_t pit_read(struct pit *p, uint32_t port, uint64_t now);
bool pit_write(struct pit *p, uint32_t port, uint8_t val, uint64_t now);
uint8_t pit_port61_read(struct pit *p, uint64_t now);
void pit_port61_write(struct pit *p, uint8_t val, uint64_t now);
/* Channel 0: true if OUT rose since the last call (edges coalesce). */
bool pit_poll(struct pit *p, uint64_t now);
/* Channel 0's next rising edge (ns), or UINT64_MAX. */
uint64_t pit_next_event(const struct pit *p, uint64_t now);
/* Channel c's counter and output as the guest would read them now. */
uint16_t pit_count(const struct pit *p, int c, uint64_t now);
bool pit_out(const struct pit *p, int c, uint64_t now);

#endif
