/*
 * 16550A UART (COM1 on the x86 board: ports 0x3f8..0x3ff, IRQ 4).
 *
 * Transmission is instantaneous: a byte written to THR goes straight to the
 * output, so LSR.THRE and LSR.TEMT always read 1 and the THRE interrupt
 * comes back right after each THR write, as on a chip whose shift register
 * empties at once. The receive FIFO holds SERIAL_RX_FIFO_SIZE bytes of host
 * input (more than the chip's 16 so one guest interrupt can take a whole
 * burst of typed or pasted input); bytes looped back in loopback mode fill
 * it only up to the chip's 16 bytes (1 with the FIFO off), so Linux's FIFO
 * size probe still counts 16 and the port is reported as a 16550A.
 *
 * The IRQ line is driven as a level that is 1 while an enabled interrupt
 * is pending, gated by MCR.OUT2 and forced low in loopback (the OUT2 pin is
 * inactive then), as on PCs.
 *
 * Lock order: the device lock, then whatever irq.set_level and the output
 * take. rx_drained is called without the device lock held, so it may call
 * serial_rx_push().
 */
#ifndef EMBER_VMM_DEV_SERIAL_H
#define EMBER_VMM_DEV_SERIAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "vmm/bus.h"
#include "vmm/irq.h"

#define SERIAL_COM1_BASE 0x3f8
#define SERIAL_NR_PORTS 8
#define SERIAL_RX_FIFO_SIZE 256	 /* host input */
#define SERIAL_LOOP_FIFO_SIZE 16 /* loopback, as the chip's FIFO */

struct serial_config {
	struct irq_line irq;
	/* Transmitted bytes: to tx() when set, else written to out_fd (-1: dropped). */
	int out_fd;
	void (*tx)(void *ctx, uint8_t byte);
	/*
	 * Called (without the device lock) once the receive FIFO is empty and
	 * accepting host input again after serial_rx_push() took less than it
	 * was given or serial_rx_space() returned 0. Optional.
	 */
	void (*rx_drained)(void *ctx);
	void *ctx;
};

struct serial {
	pthread_mutex_t lock; /* guards everything below */
	struct serial_config cfg;
	uint8_t ier, fcr, lcr, mcr, lsr, msr, scr, dll, dlm;
	bool thr_ipending; /* THRE interrupt not yet acknowledged */
	bool rx_wanted;	   /* host is waiting for room: call rx_drained */
	int irq_level;
	uint8_t rx[SERIAL_RX_FIFO_SIZE];
	uint32_t rx_head, rx_count;
	struct ratelimit rl;
};

/* Ops for a range of SERIAL_NR_PORTS ports; opaque is the struct serial. */
extern const struct bus_dev_ops serial_ops;

/* 0 or -errno. Does not take ownership of cfg->out_fd. */
int serial_init(struct serial *s, const struct serial_config *cfg);
void serial_destroy(struct serial *s);

/* Host input: bytes the FIFO accepts now (0 in loopback), and pushing them. */
size_t serial_rx_space(struct serial *s);
size_t serial_rx_push(struct serial *s, const uint8_t *buf, size_t len);

#endif
