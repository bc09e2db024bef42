#include "vmm/vmm.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/log.h"
#include "vmm/board.h"
#include "vmm/console.h"
#include "vmm/devices.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"
#include "vmm/x86/acpi.h"
#include "vmm/x86/boot.h"
#include "vmm/x86/cpu_boot.h"
#include "vmm/x86/cpuid.h"
#include "vmm/x86/layout.h"
#include "vmm/x86/linux_opts.h"

#define ERRLEN 512
#define EXIT_GUEST_CRASH 1
#define EXIT_BAD_INPUT 2 /* the user's flags or files; the same as the CLI's */

static void kick_noop(int sig)
{
	(void)sig;
}

/* Stop signals arrive on a signalfd; vCPU kicks need a real (empty) handler. */
static int signals_setup(sigset_t *stop_set)
{
	struct sigaction sa = {.sa_handler = kick_noop};
	sigset_t block;

	sigemptyset(&sa.sa_mask);
	if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL))
		return -errno;
	sigemptyset(stop_set);
	sigaddset(stop_set, SIGINT);
	sigaddset(stop_set, SIGTERM);
	sigaddset(stop_set, SIGHUP);
	block = *stop_set;
	sigaddset(&block, VCPU_KICK_SIGNAL);
	signal(SIGPIPE, SIG_IGN);
	/* Threads inherit this mask; vCPU threads unblock only the kick. */
	return -pthread_sigmask(SIG_BLOCK, &block, NULL);
}

/* 0, or the exit status: the user's files are bad input, the rest our failure. */
static int load_guest(struct vm *vm, const struct vm_config *cfg, char *err)
{
	struct acpi_config acfg = {.ncpus = cfg->ncpus, .pci = true};
	uint8_t *acpi = gmem_ptr(&vm->mem, LAYOUT_ACPI_START, LAYOUT_ACPI_END - LAYOUT_ACPI_START);
	struct boot_config bcfg = {
		.kernel_path = cfg->kernel_path,
		.initrd_path = cfg->initrd_path,
		.cmdline = cfg->cmdline,
	};
	struct boot_entry entry;
	bool long_mode;
	int ret;

	if (!acpi || acpi_build(acpi, LAYOUT_ACPI_END - LAYOUT_ACPI_START, LAYOUT_ACPI_START,
				&acfg, &bcfg.rsdp_gpa) < 0) {
		snprintf(err, ERRLEN, "ACPI: cannot build the tables at 0x%llx",
			 (unsigned long long)LAYOUT_ACPI_START);
		return EXIT_GUEST_CRASH;
	}
	/* Only KVM on such hosts emulates CPL 0; the software CPU runs all of it. */
	if (vm->accel == &accel_kvm_ops && linux_opts_host_needs(NULL)) {
		bcfg.linux_opts = LINUX_OPTS_CPL0_EMULATED;
		vm->sysfix.on = true; /* such hosts leave user-mode syscalls half done */
	}
	if (boot_load(&vm->mem, &bcfg, &entry, err, ERRLEN))
		return EXIT_BAD_INPUT;
	if (entry.opts_added[0])
		log_warn("this host's KVM emulates guest kernel code and cannot run some "
			 "instructions there: added '%s' to the kernel command line",
			 entry.opts_added);
	long_mode = entry.mode == BOOT_LINUX64;
	ret = cpu_boot_tables(&vm->mem, long_mode);
	if (!ret)
		ret = cpu_boot_regs(&vm->vcpus[0], long_mode, entry.entry, entry.boot_info,
				    entry.eax);
	if (ret) {
		snprintf(err, ERRLEN, "boot vCPU setup: %s", strerror(-ret));
		return EXIT_GUEST_CRASH;
	}
	return 0;
}

static int vcpus_create(struct vm *vm, uint32_t ncpus, char *err)
{
	int ret = 0;

	vm->vcpus = calloc(ncpus, sizeof(*vm->vcpus));
	if (!vm->vcpus) {
		snprintf(err, ERRLEN, "vcpus: out of memory");
		return -ENOMEM;
	}
	vm->ncpus = ncpus;
	for (uint32_t i = 0; i < ncpus; i++)
		vm->vcpus[i].fd = -1;
	for (uint32_t i = 0; i < ncpus && !ret; i++)
		ret = vcpu_create(&vm->vcpus[i], vm, i, err, ERRLEN);
	return ret;
}

static void vcpus_destroy(struct vm *vm)
{
	for (uint32_t i = 0; vm->vcpus && i < vm->ncpus; i++)
		vcpu_destroy(&vm->vcpus[i]);
	free(vm->vcpus);
	vm->vcpus = NULL;
}

static void vcpus_stop(struct vm *vm)
{
	for (uint32_t i = 0; i < vm->ncpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	for (uint32_t i = 0; i < vm->ncpus; i++)
		vcpu_join(&vm->vcpus[i]);
}

static void console_read(struct vm *vm, struct board *board, struct console *con)
{
	uint8_t buf[256];
	size_t space = board_console_space(board);
	ssize_t n;
	bool quit;

	if (space > sizeof(buf))
		space = sizeof(buf);
	n = read(con->in_fd, buf, space);
	if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
		con->eof = true;
		return;
	}
	if (n < 0)
		return;
	n = (ssize_t)console_filter(con, buf, (size_t)n, &quit);
	board_console_push(board, buf, (size_t)n);
	if (quit)
		vm_request_stop(vm, VM_STOP_USER, 0);
}

/* The main thread: console input, stop signals and the stop request. */
static void main_loop(struct vm *vm, struct board *board, struct console *con, int sig_fd)
{
	while (!vm_stopping(vm)) {
		struct pollfd p[5] = {
			{.fd = vm->stop_efd, .events = POLLIN},
			{.fd = sig_fd, .events = POLLIN},
			{.fd = board_console_drained_fd(board), .events = POLLIN},
			{.fd = -1, .events = POLLIN},
			{.fd = board_timer_fd(board), .events = POLLIN},
		};
		uint64_t v;

		if (!con->eof && board_console_space(board) > 0)
			p[3].fd = con->in_fd;
		if (poll(p, 5, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_err("poll: %m");
			vm_request_stop(vm, VM_STOP_ERROR, 1);
			break;
		}
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sig_fd, &si, sizeof(si)) == sizeof(si)) {
				log_err("stopping the VM on signal %s", strsignal((int)si.ssi_signo));
				vm_request_stop(vm, VM_STOP_SIGNAL, 128 + (int)si.ssi_signo);
			}
		}
		if (p[2].revents & POLLIN) {
			if (read(p[2].fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				log_debug("drained eventfd: %m");
		}
		if (p[3].revents & (POLLIN | POLLHUP | POLLERR))
			console_read(vm, board, con);
		if (p[4].revents & POLLIN)
			board_timer_event(board);
	}
}

static int run_vm(struct vm *vm, struct board *board, struct devices *ds, int sig_fd)
{
	struct console con;
	int ret;

	console_init(&con, STDIN_FILENO);
	if (vm->accel_note[0])
		log_warn("%s", vm->accel_note);
	ret = devices_start(ds);
	if (ret)
		log_err("event thread: %s", strerror(-ret));
	for (uint32_t i = 0; i < vm->ncpus && !ret; i++)
		ret = vcpu_start(&vm->vcpus[i]);
	if (ret) {
		log_err("vcpu thread: %s", strerror(-ret));
		vm_request_stop(vm, VM_STOP_ERROR, 1);
	}
	if (ret)
		vm_request_stop(vm, VM_STOP_ERROR, EXIT_GUEST_CRASH);
	main_loop(vm, board, &con, sig_fd);
	vcpus_stop(vm);
	console_restore(&con);
	return vm->exit_status;
}

int vmm_run(const struct vm_config *cfg)
{
	char err[ERRLEN] = "";
	struct board *board = NULL;
	struct devices devices;
	sigset_t stop_set;
	struct vm vm;
	int sig_fd, status = EXIT_GUEST_CRASH;

	if (signals_setup(&stop_set)) {
		log_err("signals: %m");
		return 1;
	}
	sig_fd = signalfd(-1, &stop_set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sig_fd < 0) {
		log_err("signalfd: %m");
		return 1;
	}
	if (vm_create(&vm, cfg->accel, cfg->mem_mib << 20, err, sizeof(err)))
		goto out_sig;
	if (vm_config_check_cpus(cfg, vm.accel->max_vcpus(&vm), err, sizeof(err))) {
		status = EXIT_BAD_INPUT;
		goto out_vm;
	}
	if (vcpus_create(&vm, cfg->ncpus, err))
		goto out_vm;
	if (board_create(&vm, STDOUT_FILENO, &board, err, sizeof(err)))
		goto out_vcpus;
	if (cfg->test_dev && board_enable_test_dev(board, err, sizeof(err)))
		goto out_board;
	/* Backends (images, TAPs, sockets) are the user's: bad input when they fail. */
	if (devices_create(&devices, &vm, cfg, err, sizeof(err))) {
		status = EXIT_BAD_INPUT;
		goto out_board;
	}
	status = load_guest(&vm, cfg, err);
	if (status)
		goto out_devices;
	status = run_vm(&vm, board, &devices, sig_fd);
	err[0] = '\0';
out_devices:
	devices_destroy(&devices);
out_board:
	board_destroy(board);
out_vcpus:
	vcpus_destroy(&vm);
out_vm:
	vm_destroy(&vm);
out_sig:
	close(sig_fd);
	if (err[0])
		log_err("%s", err);
	return status;
}
