/* COM1 (8250/16550 at 0x3f8), polled; a tiny printf on top. */
#include "guest.h"

#define THRE_POLLS 10000 /* a UART that never drains must not hang us */

void serial_putc(char c)
{
	for (int i = 0; i < THRE_POLLS; i++) {
		if (inb(COM1 + UART_LSR) & LSR_THRE)
			break;
		cpu_relax();
	}
	outb(COM1, (uint8_t)c);
}

bool serial_rx_ready(void)
{
	return inb(COM1 + UART_LSR) & LSR_DR;
}

uint8_t serial_getc(void)
{
	while (!serial_rx_ready())
		cpu_relax();
	return inb(COM1 + UART_RBR);
}

static void put_num(uint64_t v, unsigned int base, int width, char pad, bool neg)
{
	char buf[24];
	int n = 0;

	do {
		buf[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (neg)
		buf[n++] = '-';
	while (width-- > n)
		serial_putc(pad);
	while (n)
		serial_putc(buf[--n]);
}

/* %s %c %d %u %x with optional 0/width and l/ll; nothing else. */
void serial_vprintf(const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			serial_putc(*fmt);
			continue;
		}
		char pad = ' ';
		int width = 0, lng = 0;

		if (*++fmt == '0')
			pad = *fmt++;
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l') {
			lng++;
			fmt++;
		}
		switch (*fmt) {
		case 's': {
			const char *s = va_arg(ap, const char *);

			while (*s)
				serial_putc(*s++);
			break;
		}
		case 'c':
			serial_putc((char)va_arg(ap, int));
			break;
		case 'd': {
			int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);

			put_num(v < 0 ? -(uint64_t)v : (uint64_t)v, 10, width, pad, v < 0);
			break;
		}
		case 'u':
		case 'x': {
			uint64_t v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned int);

			put_num(v, *fmt == 'x' ? 16 : 10, width, pad, false);
			break;
		}
		case '%':
			serial_putc('%');
			break;
		default:
			return;
		}
	}
}

void gprintf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	serial_vprintf(fmt, ap);
	va_end(ap);
}
