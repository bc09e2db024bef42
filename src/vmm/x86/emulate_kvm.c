#include "vmm/x86/emulate_kvm.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "core/log.h"
#include "vmm/x86/emulate.h"
#include "vmm/x86/msr.h"

static int kvm_get_msr(void *opaque, uint32_t index, uint64_t *value)
{
	return msr_get(*(int *)opaque, index, value);
}

static int kvm_set_msr(void *opaque, uint32_t index, uint64_t value)
{
	return msr_set(*(int *)opaque, index, value);
}

static int kvm_get_xcr0(void *opaque, uint64_t *value)
{
	struct kvm_xcrs x;

	if (ioctl(*(int *)opaque, KVM_GET_XCRS, &x))
		return -errno;
	for (uint32_t i = 0; i < x.nr_xcrs && i < KVM_MAX_XCRS; i++) {
		if (x.xcrs[i].xcr == 0) {
			*value = x.xcrs[i].value;
			return 0;
		}
	}
	return -ENOENT;
}

static int kvm_get_x87(void *opaque, uint16_t *fsw, uint16_t *fcw)
{
	struct kvm_fpu fpu;

	if (ioctl(*(int *)opaque, KVM_GET_FPU, &fpu))
		return -errno;
	*fsw = fpu.fsw;
	*fcw = fpu.fcw;
	return 0;
}

static int kvm_get_mxcsr(void *opaque, uint32_t *mxcsr)
{
	struct kvm_fpu fpu;

	if (ioctl(*(int *)opaque, KVM_GET_FPU, &fpu))
		return -errno;
	*mxcsr = fpu.mxcsr;
	return 0;
}

static int kvm_set_mxcsr(void *opaque, uint32_t mxcsr)
{
	struct kvm_fpu fpu;

	if (ioctl(*(int *)opaque, KVM_GET_FPU, &fpu))
		return -errno;
	fpu.mxcsr = mxcsr;
	return ioctl(*(int *)opaque, KVM_SET_FPU, &fpu) ? -errno : 0;
}

static void insn_hex(const struct emu_cpu *cpu, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned int i = 0; i < EMU_MAX_INSN && n + 4 < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%02x", i ? " " : "", cpu->insn[i]);
}

/* Writes back what the instruction changed and queues its exception. */
static int commit(int fd, struct emu_cpu *cpu, enum emu_result res)
{
	struct kvm_vcpu_events ev;

	if (res == EMU_EXCEPTION && cpu->exc.vector == EMU_PF) {
		cpu->sregs.cr2 = cpu->exc.cr2;
		cpu->sregs_dirty = true;
	}
	if (cpu->sregs_dirty && ioctl(fd, KVM_SET_SREGS, &cpu->sregs))
		return -errno;
	if (ioctl(fd, KVM_SET_REGS, &cpu->regs))
		return -errno;
	if (res != EMU_EXCEPTION && !cpu->nmi_unmasked)
		return 0;
	if (ioctl(fd, KVM_GET_VCPU_EVENTS, &ev))
		return -errno;
	if (cpu->nmi_unmasked)
		ev.nmi.masked = 0;
	if (res == EMU_EXCEPTION) {
		ev.exception.injected = 1;
		ev.exception.nr = cpu->exc.vector;
		ev.exception.has_error_code = cpu->exc.has_error;
		ev.exception.error_code = cpu->exc.error;
	}
	return ioctl(fd, KVM_SET_VCPU_EVENTS, &ev) ? -errno : 0;
}

int emulate_kvm_finish(int vcpu_fd, const struct kvm_run *run, const struct guest_mem *mem,
		       char *why, size_t whylen)
{
	struct emu_cpu cpu = {
	    .mem = mem,
	    .hooks = {.get_msr = kvm_get_msr,
		      .set_msr = kvm_set_msr,
		      .get_xcr0 = kvm_get_xcr0,
		      .get_x87 = kvm_get_x87,
		      .get_mxcsr = kvm_get_mxcsr,
		      .set_mxcsr = kvm_set_mxcsr,
		      .opaque = &vcpu_fd},
	};
	enum emu_result res;
	char hex[3 * EMU_MAX_INSN + 1];
	int ret;

	if (ioctl(vcpu_fd, KVM_GET_REGS, &cpu.regs) || ioctl(vcpu_fd, KVM_GET_SREGS, &cpu.sregs)) {
		snprintf(why, whylen, "cannot read the vCPU's registers: %m");
		return -errno;
	}
	if ((run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) &&
	    run->emulation_failure.ndata >= 3) {
		cpu.expect = run->emulation_failure.insn_bytes;
		cpu.expect_len = run->emulation_failure.insn_size;
		if (cpu.expect_len > sizeof(run->emulation_failure.insn_bytes))
			cpu.expect_len = sizeof(run->emulation_failure.insn_bytes);
	}
	res = emu_step(&cpu);
	if (res == EMU_CHANGED) {
		log_debug("code at 0x%llx rewritten since KVM's exit: running it again",
			  (unsigned long long)cpu.regs.rip);
		return 0;
	}
	if (res == EMU_UNHANDLED) {
		insn_hex(&cpu, hex, sizeof(hex));
		snprintf(why, whylen, "ember cannot finish the instruction at 0x%llx [%s]: %s",
			 (unsigned long long)cpu.regs.rip, hex, cpu.why);
		return -ENOTSUP;
	}
	ret = commit(vcpu_fd, &cpu, res);
	if (ret) {
		snprintf(why, whylen, "%s at 0x%llx: cannot update the vCPU: %s",
			 cpu.mnemonic ? cpu.mnemonic : "instruction",
			 (unsigned long long)cpu.regs.rip, strerror(-ret));
		return ret;
	}
	log_debug("finished %s in user space (%s)", cpu.mnemonic ? cpu.mnemonic : "?",
		  res == EMU_EXCEPTION ? "exception" : "done");
	return 0;
}
