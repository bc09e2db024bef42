/* Accel kvm: a vCPU is a KVM vCPU fd, its kvm_run page and a KVM_RUN loop. */
#include "vmm/vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/log.h"
#include "vmm/accel/kvm.h"
#include "vmm/profile.h"
#include "vmm/vm.h"
#include "vmm/x86/cpu_boot.h"
#include "vmm/x86/cpuid.h"
#include "vmm/x86/emulate_kvm.h"
#include "vmm/x86/msr.h"

int kvm_vcpu_init(struct vcpu *vcpu, char *err, size_t errlen)
{
	struct vm *vm = vcpu->vm;
	uint32_t id = vcpu->id;
	struct kvm_cpuid2 *cpuid, *mine;
	int ret;

	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (vcpu->fd < 0) {
		snprintf(err, errlen, "KVM_CREATE_VCPU %u: %m", id);
		return -errno;
	}
	vcpu->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		snprintf(err, errlen, "mmap kvm_run of vcpu %u: %m", id);
		ret = -errno;
		goto err_fd;
	}
	cpuid = cpuid_get_supported(vm->kvm_fd);
	if (!cpuid) {
		ret = -errno;
		snprintf(err, errlen, "KVM_GET_SUPPORTED_CPUID: %m");
		goto err_run;
	}
	mine = cpuid_for_vcpu(cpuid, id, vm->ncpus);
	free(cpuid);
	if (!mine) {
		ret = -ENOMEM;
		snprintf(err, errlen, "vcpu %u: CPUID: out of memory", id);
		goto err_run;
	}
	ret = ioctl(vcpu->fd, KVM_SET_CPUID2, mine) ? -errno : 0;
	free(mine);
	if (ret) {
		snprintf(err, errlen, "vcpu %u: KVM_SET_CPUID2: %s", id, strerror(-ret));
		goto err_run;
	}
	ret = msr_setup(vcpu->fd, err, errlen);
	if (ret)
		goto err_run;
	ret = cpu_init_common(vcpu->fd);
	if (ret) {
		snprintf(err, errlen, "vcpu %u: FPU/LAPIC setup: %s", id, strerror(-ret));
		goto err_run;
	}
	return 0;

err_run:
	munmap(vcpu->run, vm->run_size);
err_fd:
	close(vcpu->fd);
	vcpu->fd = -1;
	return ret;
}

void kvm_vcpu_destroy(struct vcpu *vcpu)
{
	if (vcpu->fd < 0)
		return;
	munmap(vcpu->run, vcpu->vm->run_size);
	close(vcpu->fd);
	vcpu->fd = -1;
}

static void handle_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	struct vm *vm = vcpu->vm;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool write = run->io.direction == KVM_EXIT_IO_OUT;
	uint32_t size = run->io.size;

	/* data_offset and count come from KVM: the page holds count*size bytes. */
	for (uint32_t i = 0; i < run->io.count; i++, data += size) {
		bool claimed = write ? bus_write(&vm->pio, run->io.port, data, size)
				     : bus_read(&vm->pio, run->io.port, data, size);

		if (!claimed)
			vm_log_unclaimed_pio(vm, run->io.port, write, size);
	}
}

static void handle_mmio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	struct vm *vm = vcpu->vm;
	uint32_t len = run->mmio.len;
	bool claimed;

	if (len > sizeof(run->mmio.data))
		len = sizeof(run->mmio.data);
	claimed = run->mmio.is_write
			  ? bus_write(&vm->mmio, run->mmio.phys_addr, run->mmio.data, len)
			  : bus_read(&vm->mmio, run->mmio.phys_addr, run->mmio.data, len);
	if (!claimed)
		vm_log_unclaimed_mmio(vm, run->mmio.phys_addr, run->mmio.is_write, len);
}

static void crash(struct vcpu *vcpu, const char *what)
{
	log_err("vcpu %u: %s", vcpu->id, what);
	vcpu_dump(vcpu);
	vm_request_stop(vcpu->vm, VM_STOP_CRASH, 1);
}

/* False when the vCPU must stop: an instruction KVM could not emulate and ember cannot finish. */
static bool handle_internal_error(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	char what[512], why[256] = "";
	int n;

	if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION &&
	    (syscall_fixup_emulation_exit(&vcpu->vm->sysfix, vcpu->fd, &vcpu->vm->mem) == 1 ||
	     !emulate_kvm_finish(vcpu->fd, run, &vcpu->vm->mem, why, sizeof(why))))
		return true;
	n = snprintf(what, sizeof(what), "KVM internal error, suberror %u%s", run->internal.suberror,
		     run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION
			     ? " (instruction emulation failed)"
			     : "");
	for (uint32_t i = 0; i < run->internal.ndata && i < 16 && n < (int)sizeof(what) - 20; i++)
		n += snprintf(what + n, sizeof(what) - n, " 0x%llx",
			      (unsigned long long)run->internal.data[i]);
	if (why[0])
		snprintf(what + n, sizeof(what) - n, "; %s", why);
	crash(vcpu, what);
	return false;
}

static void handle_system_event(struct vcpu *vcpu)
{
	switch (vcpu->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vm_request_stop(vcpu->vm, VM_STOP_POWEROFF, 0);
		break;
	case KVM_SYSTEM_EVENT_RESET:
		vm_request_stop(vcpu->vm, VM_STOP_RESET, 0);
		break;
	default:
		crash(vcpu, "guest reported a crash (KVM_SYSTEM_EVENT)");
	}
}

/* One exit; false when this vCPU must stop running. */
static bool handle_exit(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	char what[96];

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(vcpu);
		return true;
	case KVM_EXIT_MMIO:
		handle_mmio(vcpu);
		return true;
	case KVM_EXIT_INTR:
	case KVM_EXIT_IRQ_WINDOW_OPEN:
		return true;
	case KVM_EXIT_HLT:
		/* Only without an in-kernel LAPIC, which ember always creates. */
		crash(vcpu, "unexpected HLT exit");
		return false;
	case KVM_EXIT_SHUTDOWN:
		crash(vcpu, "triple fault (KVM_EXIT_SHUTDOWN)");
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		return handle_internal_error(vcpu);
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(what, sizeof(what), "VM entry failed, hardware reason 0x%llx",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		crash(vcpu, what);
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		handle_system_event(vcpu);
		return false;

	default:
		snprintf(what, sizeof(what), "unhandled KVM exit reason %u", run->exit_reason);
		crash(vcpu, what);
		return false;
	}
}

/* The guest's RIP when the sampling timer interrupted KVM_RUN. */
static void profile_sample(struct vcpu *vcpu, struct profile *prof)
{
	struct kvm_regs r;
	int e = errno;

	if (!ioctl(vcpu->fd, KVM_GET_REGS, &r))
		profile_count(prof, r.rip);
	errno = e;
}

void *kvm_vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	sigset_t set;

	struct profile prof;

	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	if (profile_start(&prof, vcpu->id, VCPU_KICK_SIGNAL))
		log_warn("vcpu %u: EMBER_PROFILE: cannot start sampling", vcpu->id);
	while (!vm_stopping(vcpu->vm)) {
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR && prof.on)
				profile_sample(vcpu, &prof);
			if (errno == EINTR || errno == EAGAIN)
				continue;
			log_err("vcpu %u: KVM_RUN: %m", vcpu->id);
			vm_request_stop(vcpu->vm, VM_STOP_ERROR, 1);
			break;
		}
		if (!handle_exit(vcpu))
			break;
		syscall_fixup_track(&vcpu->vm->sysfix, vcpu->fd, &vcpu->vm->mem, &vcpu->sysfix_exits);
	}
	profile_stop(&prof);
	return NULL;
}

void kvm_vcpu_kick(struct vcpu *vcpu)
{
	/* immediate_exit covers a kick that lands before the thread enters KVM_RUN. */
	vcpu->run->immediate_exit = 1;
	if (vcpu->started)
		pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
}

void kvm_vcpu_dump(struct vcpu *vcpu)
{
	vcpu_dump_state(vcpu);
}

int kvm_get_regs(struct vcpu *vcpu, struct kvm_regs *regs)
{
	return ioctl(vcpu->fd, KVM_GET_REGS, regs) ? -errno : 0;
}

int kvm_set_regs(struct vcpu *vcpu, const struct kvm_regs *regs)
{
	return ioctl(vcpu->fd, KVM_SET_REGS, regs) ? -errno : 0;
}

int kvm_get_sregs(struct vcpu *vcpu, struct kvm_sregs *sregs)
{
	return ioctl(vcpu->fd, KVM_GET_SREGS, sregs) ? -errno : 0;
}

int kvm_set_sregs(struct vcpu *vcpu, const struct kvm_sregs *sregs)
{
	return ioctl(vcpu->fd, KVM_SET_SREGS, sregs) ? -errno : 0;
}
