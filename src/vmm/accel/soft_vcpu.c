/* Accel soft: a vCPU is a struct cpu run by its own thread. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "cpu/cpu.h"
#include "cpu/mem.h"
#include "vmm/accel/soft.h"
#include "vmm/irqchip/irqchip.h"
#include "vmm/profile.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"
#include "vmm/x86/cpuid.h"
#include "vmm/x86/layout.h"

/* Instructions per cpu_run() call: between calls the thread looks at timers. */
#define SOFT_BUDGET 20000
#define LAPIC_PAGE 0x1000

/* ---- The CPU's environment: ports, MMIO, CPUID, MSRs, the local APIC ---- */

static bool env_pio_read(void *ctx, uint16_t port, void *data, unsigned len)
{
	struct vcpu *v = ctx;

	if (bus_read(&v->vm->pio, port, data, len))
		return true;
	vm_log_unclaimed_pio(v->vm, port, false, len);
	memset(data, 0xff, len);
	return false;
}

static bool env_pio_write(void *ctx, uint16_t port, const void *data, unsigned len)
{
	struct vcpu *v = ctx;

	if (bus_write(&v->vm->pio, port, (void *)data, len))
		return true;
	vm_log_unclaimed_pio(v->vm, port, true, len);
	return false;
}

static bool is_lapic(uint64_t gpa)
{
	return gpa >= LAYOUT_LAPIC && gpa < LAYOUT_LAPIC + LAPIC_PAGE;
}

static bool env_mmio_read(void *ctx, uint64_t gpa, void *data, unsigned len)
{
	struct vcpu *v = ctx;

	if (is_lapic(gpa)) {
		irqchip_lapic_mmio(v->vm->soft->chip, v->id, gpa - LAYOUT_LAPIC, data, len, false);
		return true;
	}
	if (bus_read(&v->vm->mmio, gpa, data, len))
		return true;
	vm_log_unclaimed_mmio(v->vm, gpa, false, len);
	memset(data, 0xff, len);
	return false;
}

static bool env_mmio_write(void *ctx, uint64_t gpa, const void *data, unsigned len)
{
	struct vcpu *v = ctx;

	if (is_lapic(gpa)) {
		irqchip_lapic_mmio(v->vm->soft->chip, v->id, gpa - LAYOUT_LAPIC, (void *)data, len,
				   true);
		return true;
	}
	if (bus_write(&v->vm->mmio, gpa, (void *)data, len))
		return true;
	vm_log_unclaimed_mmio(v->vm, gpa, true, len);
	return false;
}

static void env_cpuid(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t out[4])
{
	struct vcpu *v = ctx;

	cpuid_lookup(v->soft->cpuid, leaf, subleaf, out);
}

static int env_rdmsr(void *ctx, uint32_t msr, uint64_t *val)
{
	struct vcpu *v = ctx;

	return irqchip_rdmsr(v->vm->soft->chip, v->id, msr, val);
}

static int env_wrmsr(void *ctx, uint32_t msr, uint64_t val)
{
	struct vcpu *v = ctx;

	return irqchip_wrmsr(v->vm->soft->chip, v->id, msr, val);
}

static int env_intr_ack(void *ctx)
{
	struct vcpu *v = ctx;

	return irqchip_intr_ack(v->vm->soft->chip, v->id);
}

static uint64_t env_rdtsc(void *ctx)
{
	struct vcpu *v = ctx;

	return soft_now_ns(v->vm->soft); /* 1 GHz */
}

static void env_set_cr8(void *ctx, uint64_t cr8)
{
	struct vcpu *v = ctx;

	irqchip_set_tpr(v->vm->soft->chip, v->id, cr8);
}

static uint64_t env_get_cr8(void *ctx)
{
	struct vcpu *v = ctx;

	return irqchip_get_tpr(v->vm->soft->chip, v->id);
}

static const struct cpu_env soft_env = {
	.pio_read = env_pio_read,
	.pio_write = env_pio_write,
	.mmio_read = env_mmio_read,
	.mmio_write = env_mmio_write,
	.cpuid = env_cpuid,
	.rdmsr = env_rdmsr,
	.wrmsr = env_wrmsr,
	.intr_ack = env_intr_ack,
	.rdtsc = env_rdtsc,
	.set_cr8 = env_set_cr8,
	.get_cr8 = env_get_cr8,
};

/* ---- Creation ---- */

static uint64_t host_now_ns(void *ctx)
{
	struct vm *vm = ctx;

	return soft_now_ns(vm->soft);
}

static int chip_create(struct vm *vm, char *err, size_t errlen)
{
	struct irqchip_host host = {
		.kick = soft_host_kick,
		.init = soft_host_init,
		.sipi = soft_host_sipi,
		.now_ns = host_now_ns,
		.ctx = vm,
		.nmi = soft_host_nmi,
	};
	int ret;

	ret = irqchip_create(&vm->soft->chip, vm->ncpus, &host);
	if (ret) {
		snprintf(err, errlen, "interrupt controllers: %s", strerror(-ret));
		return ret;
	}
	ret = irqchip_attach(vm->soft->chip, &vm->pio, &vm->mmio);
	if (ret)
		snprintf(err, errlen, "interrupt controllers: port map: %s", strerror(-ret));
	return ret;
}

int soft_vcpu_init(struct vcpu *vcpu, char *err, size_t errlen)
{
	struct vm *vm = vcpu->vm;
	pthread_condattr_t ca;
	struct soft_vcpu *s;
	int ret;

	if (vcpu->id == 0 && !vm->soft->chip) {
		ret = chip_create(vm, err, errlen);
		if (ret)
			return ret;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "vcpu %u: out of memory", vcpu->id);
		return -ENOMEM;
	}
	s->cpuid = cpuid_for_vcpu(vm->soft->cpuid, vcpu->id, vm->ncpus);
	if (!s->cpuid) {
		free(s);
		snprintf(err, errlen, "vcpu %u: CPUID: out of memory", vcpu->id);
		return -ENOMEM;
	}
	vcpu->soft = s; /* cpu_init asks the environment (CPUID) already */
	ret = cpu_init(&s->cpu, &vm->mem, vm->soft->code_map, &soft_env, vcpu, vcpu->id);
	if (ret) {
		vcpu->soft = NULL;
		free(s->cpuid);
		free(s);
		snprintf(err, errlen, "vcpu %u: software CPU: %s", vcpu->id, strerror(-ret));
		return ret;
	}
	pthread_mutex_init(&s->lock, NULL);
	/* Deadlines are CLOCK_MONOTONIC times, like the guest's clock. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	atomic_init(&s->sipi_vector, -1);
	s->wait_for_sipi = vcpu->id != 0; /* APs wait for INIT/SIPI */
	return 0;
}

void soft_vcpu_destroy(struct vcpu *vcpu)
{
	struct soft_vcpu *s = vcpu->soft;

	if (!s)
		return;
	cpu_destroy(&s->cpu);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s->cpuid);
	free(s);
	vcpu->soft = NULL;
}

/* ---- Running ---- */

void soft_vcpu_wake(struct vcpu *vcpu, unsigned int ev)
{
	struct soft_vcpu *s = vcpu->soft;

	cpu_kick(&s->cpu, ev);
	pthread_mutex_lock(&s->lock);
	if (s->sleeping)
		pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

void soft_vcpu_kick(struct vcpu *vcpu)
{
	if (vcpu->soft)
		soft_vcpu_wake(vcpu, CPU_EV_EXIT);
}

static bool has_work(struct vcpu *v)
{
	struct soft_vcpu *s = v->soft;

	if (vm_stopping(v->vm) || atomic_load(&s->init_pending) ||
	    atomic_load(&s->sipi_vector) >= 0)
		return true;
	if (s->wait_for_sipi)
		return false;
	if (atomic_load(&s->cpu.events) & CPU_EV_NMI)
		return true;
	return (cpu_get_rflags(&s->cpu) & FL_IF) && irqchip_has_intr(v->vm->soft->chip, v->id);
}

/* Halted or waiting for SIPI: sleep until woken or the next timer deadline. */
static void vcpu_sleep(struct vcpu *v, uint64_t deadline_ns)
{
	struct soft_vcpu *s = v->soft;
	struct soft_vm *sv = v->vm->soft;
	struct timespec ts;

	pthread_mutex_lock(&s->lock);
	s->sleeping = true;
	if (!has_work(v)) {
		uint64_t now = soft_now_ns(sv);

		if (deadline_ns == UINT64_MAX || deadline_ns - now > 1000000000ull)
			deadline_ns = now + 1000000000ull; /* look again each second */
		if (deadline_ns > now) {
			uint64_t abs = deadline_ns + sv->t0_ns;

			ts.tv_sec = (time_t)(abs / 1000000000ull);
			ts.tv_nsec = (long)(abs % 1000000000ull);
			pthread_cond_timedwait(&s->cond, &s->lock, &ts);
		}
	}
	s->sleeping = false;
	pthread_mutex_unlock(&s->lock);
}

static void crash(struct vcpu *v, const char *what)
{
	log_err("vcpu %u: %s", v->id, what);
	soft_vcpu_dump(v);
	vm_request_stop(v->vm, VM_STOP_CRASH, 1);
}

/* INIT and SIPI, applied by the vCPU's own thread. */
static void take_init_sipi(struct vcpu *v)
{
	struct soft_vcpu *s = v->soft;
	int vec;

	if (atomic_exchange(&s->init_pending, false)) {
		cpu_reset(&s->cpu);
		s->wait_for_sipi = true;
	}
	vec = atomic_exchange(&s->sipi_vector, -1);
	if (vec >= 0 && s->wait_for_sipi) {
		cpu_sipi(&s->cpu, (uint8_t)vec);
		s->wait_for_sipi = false;
	}
}

void *soft_vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct soft_vcpu *s = v->soft;
	struct soft_vm *sv = v->vm->soft;
	struct profile prof;

	/* EMBER_PROFILE: one sample per SOFT_BUDGET instructions retired (the
	 * RIP where each budget ran out), rather than per unit of CPU time. */
	if (profile_start(&prof, v->id, 0))
		log_warn("vcpu %u: EMBER_PROFILE: cannot start sampling", v->id);
	while (!vm_stopping(v->vm)) {
		uint64_t next;
		enum cpu_exit r;

		take_init_sipi(v);
		next = irqchip_poll(sv->chip, v->id, soft_now_ns(sv));
		if (s->wait_for_sipi) {
			vcpu_sleep(v, next);
			continue;
		}
		r = cpu_run(&s->cpu, SOFT_BUDGET);
		switch (r) {
		case CPU_EXIT_BUDGET:
			if (prof.on)
				profile_count(&prof, s->cpu.rip);
			break;
		case CPU_EXIT_INIT: /* INIT comes through init_pending */
			break;
		case CPU_EXIT_HLT:
			/* The guest may have armed a sooner timer since the last poll. */
			vcpu_sleep(v, irqchip_poll(sv->chip, v->id, soft_now_ns(sv)));
			break;
		case CPU_EXIT_SHUTDOWN:
			crash(v, s->cpu.exit_why[0] ? s->cpu.exit_why : "triple fault");
			goto out;
		case CPU_EXIT_ERROR:
		default:
			crash(v, s->cpu.exit_why[0] ? s->cpu.exit_why : "software CPU error");
			goto out;
		}
	}
out:
	profile_stop(&prof);
	return NULL;
}

void soft_vcpu_dump(struct vcpu *vcpu)
{
	struct cpu *c;
	uint64_t lin, gpa;
	const uint8_t *p;

	if (!vcpu->soft)
		return;
	vcpu_dump_state(vcpu);
	c = &vcpu->soft->cpu;
	/* The bytes at CS:RIP, as the CPU would fetch them (no fault, no A/D bits). */
	lin = c->seg[SEG_CS].base + c->rip;
	if (!c->long_mode)
		lin &= 0xffffffffu;
	if (cpu_translate(c, lin, &gpa) || !(p = gmem_ptr(&vcpu->vm->mem, gpa, 16))) {
		fprintf(stderr, "  code at rip: not in RAM\n");
		return;
	}
	fprintf(stderr, "  code at rip (gpa 0x%llx):", (unsigned long long)gpa);
	for (int i = 0; i < 16; i++)
		fprintf(stderr, " %02x", p[i]);
	fprintf(stderr, "\n  mode: %u-bit, cpl %u%s%s\n", c->code_bits, c->cpl,
		c->paging ? ", paging" : "", c->long_mode ? ", long mode" : "");
}

/* ---- Registers in KVM's format ---- */

int soft_get_regs(struct vcpu *vcpu, struct kvm_regs *r)
{
	struct cpu *c = &vcpu->soft->cpu;
	const uint64_t *g = c->gpr;

	*r = (struct kvm_regs){
		.rax = g[R_RAX], .rbx = g[R_RBX], .rcx = g[R_RCX], .rdx = g[R_RDX],
		.rsi = g[R_RSI], .rdi = g[R_RDI], .rsp = g[R_RSP], .rbp = g[R_RBP],
		.r8 = g[R_R8], .r9 = g[R_R9], .r10 = g[R_R10], .r11 = g[R_R11],
		.r12 = g[R_R12], .r13 = g[R_R13], .r14 = g[R_R14], .r15 = g[R_R15],
		.rip = c->rip, .rflags = cpu_get_rflags(c),
	};
	return 0;
}

int soft_set_regs(struct vcpu *vcpu, const struct kvm_regs *r)
{
	struct cpu *c = &vcpu->soft->cpu;
	uint64_t *g = c->gpr;

	g[R_RAX] = r->rax, g[R_RBX] = r->rbx, g[R_RCX] = r->rcx, g[R_RDX] = r->rdx;
	g[R_RSI] = r->rsi, g[R_RDI] = r->rdi, g[R_RSP] = r->rsp, g[R_RBP] = r->rbp;
	g[R_R8] = r->r8, g[R_R9] = r->r9, g[R_R10] = r->r10, g[R_R11] = r->r11;
	g[R_R12] = r->r12, g[R_R13] = r->r13, g[R_R14] = r->r14, g[R_R15] = r->r15;
	c->rip = r->rip;
	cpu_set_rflags(c, r->rflags | 0x2);
	return 0;
}

static void seg_to_kvm(const struct cpu_seg *s, struct kvm_segment *k)
{
	*k = (struct kvm_segment){
		.base = s->base,
		.limit = s->limit,
		.selector = s->sel,
		.type = s->attr & SEG_ATTR_TYPE,
		.present = !!(s->attr & SEG_ATTR_P),
		.dpl = (s->attr >> SEG_ATTR_DPL_SHIFT) & 3,
		.db = !!(s->attr & SEG_ATTR_DB),
		.s = !!(s->attr & SEG_ATTR_S),
		.l = !!(s->attr & SEG_ATTR_L),
		.g = !!(s->attr & SEG_ATTR_G),
		.avl = !!(s->attr & 0x1000),
		.unusable = !!(s->attr & SEG_ATTR_UNUSABLE),
	};
}

static void seg_from_kvm(struct cpu_seg *s, const struct kvm_segment *k)
{
	s->base = k->base;
	s->limit = k->limit;
	s->sel = k->selector;
	s->attr = (k->type & 0xfu) | (k->s ? SEG_ATTR_S : 0) |
		  ((uint32_t)(k->dpl & 3) << SEG_ATTR_DPL_SHIFT) | (k->present ? SEG_ATTR_P : 0) |
		  (k->avl ? 0x1000u : 0) | (k->l ? SEG_ATTR_L : 0) | (k->db ? SEG_ATTR_DB : 0) |
		  (k->g ? SEG_ATTR_G : 0) | (k->unusable ? SEG_ATTR_UNUSABLE : 0);
}

int soft_get_sregs(struct vcpu *vcpu, struct kvm_sregs *k)
{
	struct cpu *c = &vcpu->soft->cpu;

	memset(k, 0, sizeof(*k));
	seg_to_kvm(&c->seg[SEG_CS], &k->cs);
	seg_to_kvm(&c->seg[SEG_DS], &k->ds);
	seg_to_kvm(&c->seg[SEG_ES], &k->es);
	seg_to_kvm(&c->seg[SEG_FS], &k->fs);
	seg_to_kvm(&c->seg[SEG_GS], &k->gs);
	seg_to_kvm(&c->seg[SEG_SS], &k->ss);
	seg_to_kvm(&c->seg[SEG_TR], &k->tr);
	seg_to_kvm(&c->seg[SEG_LDTR], &k->ldt);
	k->gdt.base = c->gdtr.base;
	k->gdt.limit = c->gdtr.limit;
	k->idt.base = c->idtr.base;
	k->idt.limit = c->idtr.limit;
	k->cr0 = c->cr0;
	k->cr2 = c->cr2;
	k->cr3 = c->cr3;
	k->cr4 = c->cr4;
	k->efer = c->efer;
	k->cr8 = irqchip_get_tpr(vcpu->vm->soft->chip, vcpu->id);
	uint64_t apic_base = 0;

	irqchip_rdmsr(vcpu->vm->soft->chip, vcpu->id, 0x1b, &apic_base);
	k->apic_base = apic_base;
	return 0;
}

int soft_set_sregs(struct vcpu *vcpu, const struct kvm_sregs *k)
{
	struct cpu *c = &vcpu->soft->cpu;

	seg_from_kvm(&c->seg[SEG_CS], &k->cs);
	seg_from_kvm(&c->seg[SEG_DS], &k->ds);
	seg_from_kvm(&c->seg[SEG_ES], &k->es);
	seg_from_kvm(&c->seg[SEG_FS], &k->fs);
	seg_from_kvm(&c->seg[SEG_GS], &k->gs);
	seg_from_kvm(&c->seg[SEG_SS], &k->ss);
	seg_from_kvm(&c->seg[SEG_TR], &k->tr);
	seg_from_kvm(&c->seg[SEG_LDTR], &k->ldt);
	c->gdtr.base = k->gdt.base;
	c->gdtr.limit = k->gdt.limit;
	c->idtr.base = k->idt.base;
	c->idtr.limit = k->idt.limit;
	c->cr0 = k->cr0;
	c->cr2 = k->cr2;
	c->cr3 = k->cr3;
	c->cr4 = k->cr4;
	c->efer = k->efer;
	cpu_update_mode(c);
	cpu_tlb_flush(c, true);
	return 0;
}
