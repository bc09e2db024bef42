/*
 * The x86 board: which devices sit where on the buses, their interrupt
 * wiring and the guest console. Lock order: a device's own lock only;
 * devices never call into each other.
 */
#ifndef EMBER_VMM_BOARD_H
#define EMBER_VMM_BOARD_H

#include <stddef.h>
#include <stdint.h>

struct vm;
struct board;

/*
 * Adds COM1, i8042, RTC, ACPI sleep registers, the ACPI PM timer, fw_cfg
 * (RAM size and CPU count from vm: call after the vCPUs are created) and
 * quiet probe ports.
 */
int board_create(struct vm *vm, int console_out_fd, struct board **out, char *err,
		 size_t errlen);
/*
 * `--test-dev`: QEMU's isa-debug-exit (port 0xf4: stops the VM with
 * VM_STOP_POWEROFF and status (v << 1) | 1) and pc-testdev, as
 * kvm-unit-tests expects them (dev/testdev.h). Before any vCPU runs.
 */
int board_enable_test_dev(struct board *b, char *err, size_t errlen);
void board_destroy(struct board *b);

/* Console input for COM1: free room, and push (returns bytes taken). */
size_t board_console_space(struct board *b);
size_t board_console_push(struct board *b, const uint8_t *buf, size_t len);
/* Readable when the guest has drained COM1's receive FIFO. */
int board_console_drained_fd(struct board *b);

/* Readable when a device timer (RTC update/alarm) is due; then call board_timer_event. */
int board_timer_fd(struct board *b);
void board_timer_event(struct board *b);

#endif
