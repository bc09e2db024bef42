/*
 * i8042 keyboard controller with a PS/2 keyboard attached and no mouse.
 *
 * The board registers it as two one-port ranges on the same struct:
 *   bus_add(&pio, I8042_DATA_PORT, 1, &i8042_data_ops, kbc, "i8042-data");
 *   bus_add(&pio, I8042_CMD_PORT, 1, &i8042_cmd_ops, kbc, "i8042-cmd");
 * (port 0x61 in between belongs to someone else.)
 *
 * The AUX port is reported absent the way Linux's i8042_check_aux() can
 * tell at once: the AUX loopback command 0xd3 hands back 0xff instead of
 * the byte it was given, and the AUX interface test 0xa9 reports 0x02
 * ("clock line stuck high", nothing drives it). Linux then returns -ENODEV
 * for the AUX port quietly, after two commands, instead of waiting 250 ms
 * for an IRQ 12 test interrupt and then probing a mouse that is not there.
 * Bytes sent to the mouse with 0xd4 come back as 0xfe with the AUX and
 * timeout status bits, as from a controller with nothing on its AUX port.
 *
 * The keyboard answers the commands Linux's atkbd sends (reset, identify,
 * LEDs, scan set, typematic, enable/disable); no key presses are generated.
 * IRQ 1 is a level: 1 while a keyboard-port byte waits in the output buffer
 * and the CTR enables keyboard interrupts; it drops for a moment each time
 * the guest reads a byte so every queued byte gets its own edge.
 *
 * Lock order: the device lock, then whatever irq.set_level takes. reset()
 * is called without the lock.
 */
#ifndef EMBER_VMM_DEV_I8042_H
#define EMBER_VMM_DEV_I8042_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/log.h"
#include "vmm/bus.h"
#include "vmm/irq.h"

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT 0x64
#define I8042_QUEUE_SIZE 16

struct i8042_config {
	struct irq_line kbd_irq;
	struct irq_line aux_irq; /* optional (set_level NULL): no mouse ever speaks */
	/* The guest pulsed the CPU reset line (0xfe, 0xd1 with bit 0 clear). */
	void (*reset)(void *ctx);
	void *ctx;
};

struct i8042_byte {
	uint8_t val;
	uint8_t status; /* extra status bits it carries: AUX data, timeout */
};

struct i8042 {
	pthread_mutex_t lock; /* guards everything below */
	struct i8042_config cfg;
	uint8_t ram[32]; /* ram[0] is the CTR */
	uint8_t outport;
	uint8_t last_write_cmd; /* status bit 3: last write went to port 0x64 */
	uint8_t pending_cmd;	/* controller command waiting for its data byte */
	uint8_t last_read;	/* what port 0x60 returns when the buffer is empty */
	/* the keyboard */
	uint8_t kbd_pending_cmd; /* command waiting for its argument byte */
	uint8_t kbd_last_sent;
	uint8_t kbd_scan_set;
	uint8_t kbd_leds;
	uint8_t kbd_typematic;
	bool kbd_scanning;
	/* output buffer: queue[head] is the byte the guest reads next */
	struct i8042_byte queue[I8042_QUEUE_SIZE];
	uint32_t head, count;
	int kbd_level, aux_level;
	struct ratelimit rl;
};

extern const struct bus_dev_ops i8042_data_ops; /* port 0x60, one port */
extern const struct bus_dev_ops i8042_cmd_ops;	/* port 0x64, one port */

int i8042_init(struct i8042 *kbc, const struct i8042_config *cfg);
void i8042_destroy(struct i8042 *kbc);

#endif
