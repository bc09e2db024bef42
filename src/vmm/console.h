/*
 * The guest console on the host side: stdin in raw mode when it is a
 * terminal (restored on every exit path, fatal signals included), and the
 * escape sequence Ctrl-A x that stops the VM, as in QEMU.
 */
#ifndef EMBER_VMM_CONSOLE_H
#define EMBER_VMM_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct console {
	int in_fd;
	bool tty;
	bool eof;
	bool escape; /* the previous byte was Ctrl-A */
};

int console_init(struct console *c, int in_fd);
void console_restore(struct console *c);

/*
 * Filters bytes read from a terminal: drops the escapes, returns how many
 * of buf to pass to the guest and sets *quit on Ctrl-A x. Not a tty: as is.
 */
size_t console_filter(struct console *c, uint8_t *buf, size_t len, bool *quit);

#endif
