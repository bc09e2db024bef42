#include "vmm/board.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/log.h"
#include "vmm/dev/i8042.h"
#include "vmm/dev/quiet.h"
#include "vmm/dev/rtc.h"
#include "vmm/dev/serial.h"
#include "vmm/dev/sleep.h"
#include "vmm/vm.h"
#include "vmm/x86/layout.h"

#define COM1_BASE 0x3f8

struct board {
	struct vm *vm;
	struct serial com1;
	struct i8042 kbc;
	struct rtc rtc;
	struct sleep sleep;
	struct quiet post;  /* port 0x80: POST codes, Linux's io_delay */
	struct quiet delay; /* port 0xed: the other io_delay port */
	int drained_efd;
	unsigned int inited; /* bit per device, for a partial teardown */
};

enum { HAVE_COM1 = 1, HAVE_KBC = 2, HAVE_RTC = 4, HAVE_SLEEP = 8 };

static void com1_drained(void *ctx)
{
	struct board *b = ctx;
	uint64_t one = 1;

	if (write(b->drained_efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("console eventfd: %m");
}

static struct irq_line isa_irq(struct board *b, uint32_t irq)
{
	return (struct irq_line){.set_level = vm_set_irq, .ctx = b->vm, .gsi = irq};
}

static int devices_init(struct board *b, int out_fd)
{
	struct serial_config sc = {.irq = isa_irq(b, LAYOUT_IRQ_COM1),
				   .out_fd = out_fd,
				   .rx_drained = com1_drained,
				   .ctx = b};
	/* No mouse: its IRQ 12 is wired but never raised by an absent device. */
	struct i8042_config kc = {.kbd_irq = isa_irq(b, LAYOUT_IRQ_KBD),
				  .aux_irq = isa_irq(b, 12),
				  .reset = vm_reset_cb,
				  .ctx = b->vm};
	struct rtc_config rc = {.irq = isa_irq(b, LAYOUT_IRQ_RTC)};
	struct sleep_config slc = {.poweroff = vm_poweroff_cb, .ctx = b->vm};
	int ret;

	if ((ret = serial_init(&b->com1, &sc)))
		return ret;
	b->inited |= HAVE_COM1;
	if ((ret = i8042_init(&b->kbc, &kc)))
		return ret;
	b->inited |= HAVE_KBC;
	if ((ret = rtc_init(&b->rtc, &rc)))
		return ret;
	b->inited |= HAVE_RTC;
	if ((ret = sleep_init(&b->sleep, &slc)))
		return ret;
	b->inited |= HAVE_SLEEP;
	quiet_init(&b->post, 0xff);
	quiet_init(&b->delay, 0xff);
	return 0;
}

static int devices_attach(struct board *b)
{
	struct bus *pio = &b->vm->pio;
	int ret = 0;

	ret = ret ?: bus_add(pio, COM1_BASE, SERIAL_NR_PORTS, &serial_ops, &b->com1, "com1");
	ret = ret ?: bus_add(pio, 0x60, 1, &i8042_data_ops, &b->kbc, "i8042-data");
	ret = ret ?: bus_add(pio, 0x64, 1, &i8042_cmd_ops, &b->kbc, "i8042-cmd");
	ret = ret ?: bus_add(pio, 0x70, RTC_NR_PORTS, &rtc_ops, &b->rtc, "rtc");
	ret = ret ?: bus_add(pio, LAYOUT_PORT_SLEEP_CTL, SLEEP_NR_PORTS, &sleep_ops, &b->sleep,
			     "acpi-sleep");
	ret = ret ?: bus_add(pio, QUIET_PORT_POST, 1, &quiet_ops, &b->post, "post");
	ret = ret ?: bus_add(pio, QUIET_PORT_DELAY, 1, &quiet_ops, &b->delay, "io-delay");
	return ret;
}

int board_create(struct vm *vm, int console_out_fd, struct board **out, char *err,
		 size_t errlen)
{
	struct board *b = calloc(1, sizeof(*b));
	int ret;

	*out = NULL;
	if (!b) {
		snprintf(err, errlen, "board: out of memory");
		return -ENOMEM;
	}
	b->vm = vm;
	b->drained_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->drained_efd < 0) {
		ret = -errno;
		snprintf(err, errlen, "board: eventfd: %s", strerror(-ret));
		goto err_free;
	}
	ret = devices_init(b, console_out_fd);
	if (ret) {
		snprintf(err, errlen, "board: device setup: %s", strerror(-ret));
		goto err_free;
	}
	ret = devices_attach(b);
	if (ret) {
		snprintf(err, errlen, "board: port map: %s", strerror(-ret));
		goto err_free;
	}
	*out = b;
	return 0;

err_free:
	board_destroy(b);
	return ret;
}

void board_destroy(struct board *b)
{
	if (!b)
		return;
	if (b->inited & HAVE_SLEEP)
		sleep_destroy(&b->sleep);
	if (b->inited & HAVE_RTC)
		rtc_destroy(&b->rtc);
	if (b->inited & HAVE_KBC)
		i8042_destroy(&b->kbc);
	if (b->inited & HAVE_COM1)
		serial_destroy(&b->com1);
	if (b->drained_efd >= 0)
		close(b->drained_efd);
	free(b);
}

size_t board_console_space(struct board *b)
{
	return serial_rx_space(&b->com1);
}

size_t board_console_push(struct board *b, const uint8_t *buf, size_t len)
{
	return serial_rx_push(&b->com1, buf, len);
}

int board_console_drained_fd(struct board *b)
{
	return b->drained_efd;
}

int board_timer_fd(struct board *b)
{
	return rtc_timer_fd(&b->rtc);
}

void board_timer_event(struct board *b)
{
	rtc_timer_event(&b->rtc);
}
