#include "vmm/vcpu.h"

#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "vmm/vm.h"

int vcpu_create(struct vcpu *vcpu, struct vm *vm, uint32_t id, char *err, unsigned long errlen)
{
	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->vm = vm;
	vcpu->id = id;
	vcpu->fd = -1;
	return vm->accel->vcpu_init(vcpu, err, errlen);
}

void vcpu_destroy(struct vcpu *vcpu)
{
	if (vcpu->vm)
		vcpu->vm->accel->vcpu_destroy(vcpu);
}

int vcpu_start(struct vcpu *vcpu)
{
	char name[16];
	int ret = pthread_create(&vcpu->thread, NULL, vcpu->vm->accel->vcpu_thread, vcpu);

	if (ret)
		return -ret;
	snprintf(name, sizeof(name), "vcpu%u", vcpu->id);
	pthread_setname_np(vcpu->thread, name);
	vcpu->started = true;
	return 0;
}

void vcpu_kick(struct vcpu *vcpu)
{
	vcpu->vm->accel->vcpu_kick(vcpu);
}

void vcpu_join(struct vcpu *vcpu)
{
	if (vcpu->started)
		pthread_join(vcpu->thread, NULL);
	vcpu->started = false;
}

void vcpu_dump(struct vcpu *vcpu)
{
	vcpu->vm->accel->vcpu_dump(vcpu);
}

int vcpu_get_regs(struct vcpu *vcpu, struct kvm_regs *regs)
{
	return vcpu->vm->accel->get_regs(vcpu, regs);
}

int vcpu_set_regs(struct vcpu *vcpu, const struct kvm_regs *regs)
{
	return vcpu->vm->accel->set_regs(vcpu, regs);
}

int vcpu_get_sregs(struct vcpu *vcpu, struct kvm_sregs *sregs)
{
	return vcpu->vm->accel->get_sregs(vcpu, sregs);
}

int vcpu_set_sregs(struct vcpu *vcpu, const struct kvm_sregs *sregs)
{
	return vcpu->vm->accel->set_sregs(vcpu, sregs);
}

static void dump_seg(const char *name, const struct kvm_segment *s)
{
	fprintf(stderr, "  %-3s sel=0x%04x base=0x%016llx limit=0x%08x type=%u dpl=%u p=%u l=%u db=%u\n",
		name, s->selector, (unsigned long long)s->base, s->limit, s->type, s->dpl,
		s->present, s->l, s->db);
}

void vcpu_dump_state(struct vcpu *vcpu)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (vcpu_get_regs(vcpu, &r) || vcpu_get_sregs(vcpu, &s)) {
		log_err("vcpu %u: cannot read registers: %m", vcpu->id);
		return;
	}
	fprintf(stderr,
		"  rip=0x%016llx rsp=0x%016llx rflags=0x%016llx\n"
		"  rax=0x%016llx rbx=0x%016llx rcx=0x%016llx rdx=0x%016llx\n"
		"  rsi=0x%016llx rdi=0x%016llx rbp=0x%016llx\n"
		"  r8 =0x%016llx r9 =0x%016llx r10=0x%016llx r11=0x%016llx\n"
		"  r12=0x%016llx r13=0x%016llx r14=0x%016llx r15=0x%016llx\n"
		"  cr0=0x%llx cr2=0x%llx cr3=0x%llx cr4=0x%llx efer=0x%llx apic_base=0x%llx\n",
		r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.r8, r.r9,
		r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, s.cr0, s.cr2, s.cr3, s.cr4, s.efer,
		s.apic_base);
	dump_seg("cs", &s.cs);
	dump_seg("ss", &s.ss);
	dump_seg("ds", &s.ds);
	dump_seg("tr", &s.tr);
	fprintf(stderr, "  gdt base=0x%llx limit=0x%x idt base=0x%llx limit=0x%x\n",
		(unsigned long long)s.gdt.base, s.gdt.limit, (unsigned long long)s.idt.base,
		s.idt.limit);
}
