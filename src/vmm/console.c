#include "vmm/console.h"

#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define CTRL_A 0x01

/*
 * The one piece of file-scope state: a fatal-signal handler has no other
 * way to reach the terminal settings it must put back.
 */
static struct termios saved_termios;
static volatile sig_atomic_t saved_fd = -1;

static void restore_now(void)
{
	if (saved_fd >= 0)
		tcsetattr(saved_fd, TCSANOW, &saved_termios);
}

static void fatal_signal(int sig)
{
	restore_now();
	signal(sig, SIG_DFL);
	raise(sig);
}

int console_init(struct console *c, int in_fd)
{
	static const int fatal[] = {SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE};
	struct termios raw;

	memset(c, 0, sizeof(*c));
	c->in_fd = in_fd;
	if (!isatty(in_fd) || tcgetattr(in_fd, &saved_termios))
		return 0;
	raw = saved_termios;
	cfmakeraw(&raw);
	/* Keep output post-processing: our own stderr lines still need \r\n. */
	raw.c_oflag |= OPOST;
	if (tcsetattr(in_fd, TCSANOW, &raw))
		return 0;
	saved_fd = in_fd;
	c->tty = true;
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		signal(fatal[i], fatal_signal);
	return 0;
}

void console_restore(struct console *c)
{
	if (!c->tty)
		return;
	restore_now();
	saved_fd = -1;
	c->tty = false;
}

size_t console_filter(struct console *c, uint8_t *buf, size_t len, bool *quit)
{
	size_t out = 0;

	*quit = false;
	if (!c->tty)
		return len;
	for (size_t i = 0; i < len; i++) {
		uint8_t b = buf[i];

		if (c->escape) {
			c->escape = false;
			if (b == 'x' || b == 'X') {
				*quit = true;
				return out;
			}
			if (b != CTRL_A)
				buf[out++] = CTRL_A;
			buf[out++] = b;
		} else if (b == CTRL_A) {
			c->escape = true;
		} else {
			buf[out++] = b;
		}
	}
	return out;
}
