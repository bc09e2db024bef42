#include "vmm/board.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/log.h"
#include "vmm/dev/fw_cfg.h"
#include "vmm/dev/i8042.h"
#include "vmm/dev/pmtimer.h"
#include "vmm/dev/quiet.h"
#include "vmm/dev/rtc.h"
#include "vmm/dev/serial.h"
#include "vmm/dev/sleep.h"
#include "vmm/dev/testdev.h"
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
	struct fw_cfg fw_cfg;
	struct pmtimer pmtimer;
	struct testdev *testdev; /* NULL unless board_enable_test_dev() */
	int drained_efd;
	unsigned int inited; /* bit per device, for a partial teardown */
};

enum { HAVE_COM1 = 1, HAVE_KBC = 2, HAVE_RTC = 4, HAVE_SLEEP = 8, HAVE_FW_CFG = 16 };

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
	struct fw_cfg_config fc = {.ram_size = b->vm->mem.ram_size,
				   .ncpus = (uint16_t)b->vm->ncpus,
				   .max_cpus = (uint16_t)b->vm->ncpus};
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
	if ((ret = fw_cfg_init(&b->fw_cfg, &fc)))
		return ret;
	b->inited |= HAVE_FW_CFG;
	pmtimer_init(&b->pmtimer);
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
	ret = ret ?: bus_add(pio, FW_CFG_PORT_SEL, FW_CFG_NR_PORTS, &fw_cfg_ops, &b->fw_cfg,
			     "fw-cfg");
	ret = ret ?: bus_add(pio, LAYOUT_PORT_PM_TMR, PMTIMER_NR_PORTS, &pmtimer_ops, &b->pmtimer,
			     "acpi-pm-timer");
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

/* The guest wrote to isa-debug-exit: stop with its status, as QEMU exits. */
static void test_exit(void *vm, int status)
{
	vm_request_stop(vm, VM_STOP_POWEROFF, status);
}

static const struct {
	uint64_t base, len;
	const struct bus_dev_ops *ops;
	const char *name;
	bool mmio;
} test_ranges[] = {
    {TESTDEV_PORT_EXIT, TESTDEV_EXIT_LEN, &testdev_exit_ops, "isa-debug-exit", false},
    {TESTDEV_PORT_IOPORT, TESTDEV_IOPORT_LEN, &testdev_ioport_ops, "pc-testdev-ioport", false},
    {TESTDEV_PORT_FLUSH, 4, &testdev_flush_ops, "pc-testdev-flush-page", false},
    {TESTDEV_PORT_IOPORT_BYTE, TESTDEV_IOPORT_LEN, &testdev_ioport_ops,
     "pc-testdev-ioport-byte", false},
    {TESTDEV_PORT_IRQ, TESTDEV_NR_IRQS, &testdev_irq_ops, "pc-testdev-irq-line", false},
    {TESTDEV_IOMEM, TESTDEV_IOMEM_LEN, &testdev_iomem_ops, "pc-testdev-iomem", true},
};

static void test_ranges_remove(struct board *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		bus_remove(test_ranges[i].mmio ? &b->vm->mmio : &b->vm->pio, test_ranges[i].base);
}

int board_enable_test_dev(struct board *b, char *err, size_t errlen)
{
	struct testdev_config tc = {.exit = test_exit,
				    .ctx = b->vm,
				    .set_irq = vm_set_irq,
				    .irq_ctx = b->vm,
				    /*
				     * The flush port is for KVM's view of guest RAM; a
				     * software CPU reads RAM straight from the mapping,
				     * which must not go away under it.
				     */
				    .mem = b->vm->kvm_fd >= 0 ? &b->vm->mem : NULL};
	size_t i;
	int ret;

	if (b->testdev)
		return 0;
	b->testdev = calloc(1, sizeof(*b->testdev));
	if (!b->testdev) {
		snprintf(err, errlen, "test device: out of memory");
		return -ENOMEM;
	}
	ret = testdev_init(b->testdev, &tc);
	if (ret) {
		free(b->testdev);
		b->testdev = NULL;
		snprintf(err, errlen, "test device: %s", strerror(-ret));
		return ret;
	}
	for (i = 0; i < sizeof(test_ranges) / sizeof(test_ranges[0]); i++) {
		ret = bus_add(test_ranges[i].mmio ? &b->vm->mmio : &b->vm->pio, test_ranges[i].base,
			      test_ranges[i].len, test_ranges[i].ops, b->testdev,
			      test_ranges[i].name);
		if (ret) {
			snprintf(err, errlen, "test device: %s at 0x%llx: %s", test_ranges[i].name,
				 (unsigned long long)test_ranges[i].base, strerror(-ret));
			test_ranges_remove(b, i);
			testdev_destroy(b->testdev);
			free(b->testdev);
			b->testdev = NULL;
			return ret;
		}
	}
	return 0;
}

void board_destroy(struct board *b)
{
	if (!b)
		return;
	if (b->testdev) { /* its bus ranges go with the VM's buses, as the others' */
		testdev_destroy(b->testdev);
		free(b->testdev);
	}
	if (b->inited & HAVE_FW_CFG)
		fw_cfg_destroy(&b->fw_cfg);
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
