#include "vmm/x86/emulate_sys.h"

#include <string.h>

#include "vmm/x86/emulate_mmu.h"

#define RFLAGS_FIXED (1ULL << 1)
#define RFLAGS_IF (1ULL << 9)
#define RFLAGS_IOPL (3ULL << 12)
#define RFLAGS_VM (1ULL << 17)
#define RFLAGS_AC (1ULL << 18)
#define RFLAGS_VIF (1ULL << 19)
#define RFLAGS_VIP (1ULL << 20)
/* Flags iret may change at CPL 0: CF PF AF ZF SF TF IF DF OF IOPL NT RF AC VIF VIP ID. */
#define RFLAGS_IRET_MASK 0x3f7fd5ULL
/* sysret: RFLAGS = R11 with RF and VM cleared (and bit 1 set). */
#define RFLAGS_SYSRET_MASK 0x3c7fd7ULL

#define CR4_FSGSBASE (1ULL << 16)
#define CR4_OSXSAVE (1ULL << 18)
#define EFER_SCE 1ULL

#define DESC_TYPE_CODE 0x8u
#define DESC_TYPE_CONFORMING 0x4u
#define DESC_TYPE_WRITABLE 0x2u
#define DESC_TYPE_ACCESSED 0x1u

static struct kvm_segment seg_from_desc(uint64_t d, uint16_t sel)
{
	struct kvm_segment s = {
	    .base = ((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24),
	    .limit = (uint32_t)((d & 0xffff) | (((d >> 48) & 0xf) << 16)),
	    .selector = sel,
	    .type = (d >> 40) & 0xf,
	    .s = (d >> 44) & 1,
	    .dpl = (d >> 45) & 3,
	    .present = (d >> 47) & 1,
	    .avl = (d >> 52) & 1,
	    .l = (d >> 53) & 1,
	    .db = (d >> 54) & 1,
	    .g = (d >> 55) & 1,
	};

	if (s.g)
		s.limit = (s.limit << 12) | 0xfff;
	return s;
}

/*
 * Reads the GDT/LDT descriptor of a non-null selector and sets its accessed
 * bit, as a segment load does. #GP(selector) when it lies past the table.
 */
static enum emu_result read_desc(struct emu_cpu *cpu, uint16_t sel, uint64_t *d)
{
	const struct kvm_dtable *gdt = &cpu->sregs.gdt;
	uint64_t base = gdt->base, limit = gdt->limit;
	enum emu_result r;
	void *host;

	if (sel & 4) {
		if (cpu->sregs.ldt.unusable || !cpu->sregs.ldt.present)
			return emu_raise(cpu, EMU_GP, true, sel & ~3u);
		base = cpu->sregs.ldt.base;
		limit = cpu->sregs.ldt.limit;
	}
	if ((uint64_t)(sel & ~7u) + 7 > limit)
		return emu_raise(cpu, EMU_GP, true, sel & ~3u);
	r = emu_mem_ptr(cpu, base + (sel & ~7u), 8, MMU_IMPLICIT_SV | MMU_WRITE, &host);
	if (r != EMU_DONE)
		return r;
	*d = __atomic_load_n((uint64_t *)host, __ATOMIC_ACQUIRE);
	if (!(*d & (1ULL << 40)))
		*d = __atomic_or_fetch((uint64_t *)host, 1ULL << 40, __ATOMIC_ACQ_REL);
	return EMU_DONE;
}

/* The code segment iret returns to: checks of the SDM's IRET pseudocode. */
static enum emu_result load_cs(struct emu_cpu *cpu, uint16_t sel, struct kvm_segment *cs)
{
	unsigned int rpl = sel & 3;
	enum emu_result r;
	uint64_t d;

	if (!(sel & ~3u))
		return emu_raise(cpu, EMU_GP, true, 0);
	if (rpl < emu_cpl(cpu))
		return emu_raise(cpu, EMU_GP, true, sel & ~3u);
	r = read_desc(cpu, sel, &d);
	if (r != EMU_DONE)
		return r;
	*cs = seg_from_desc(d, sel);
	if (!cs->s || !(cs->type & DESC_TYPE_CODE))
		return emu_raise(cpu, EMU_GP, true, sel & ~3u);
	if ((cs->type & DESC_TYPE_CONFORMING) ? cs->dpl > rpl : cs->dpl != rpl)
		return emu_raise(cpu, EMU_GP, true, sel & ~3u);
	if (!cs->present)
		return emu_raise(cpu, EMU_NP, true, sel & ~3u);
	return EMU_DONE;
}

/* The stack segment for privilege level rpl; a null one is allowed in 64-bit mode below CPL 3. */
static enum emu_result load_ss(struct emu_cpu *cpu, uint16_t sel, unsigned int rpl, bool to64,
			       struct kvm_segment *ss)
{
	enum emu_result r;
	uint64_t d;

	if (!(sel & ~3u)) {
		if (!to64 || rpl == 3 || (sel & 3) != rpl)
			return emu_raise(cpu, EMU_GP, true, 0);
		*ss = (struct kvm_segment){.selector = sel, .dpl = rpl, .unusable = 1, .db = 1};
		return EMU_DONE;
	}
	if ((sel & 3) != rpl)
		return emu_raise(cpu, EMU_GP, true, sel & ~3u);
	r = read_desc(cpu, sel, &d);
	if (r != EMU_DONE)
		return r;
	*ss = seg_from_desc(d, sel);
	if (!ss->s || (ss->type & DESC_TYPE_CODE) || !(ss->type & DESC_TYPE_WRITABLE) ||
	    ss->dpl != rpl)
		return emu_raise(cpu, EMU_GP, true, sel & ~3u);
	if (!ss->present)
		return emu_raise(cpu, EMU_SS, true, sel & ~3u);
	return EMU_DONE;
}

static enum emu_result pop_frame(struct emu_cpu *cpu, unsigned int size, uint64_t v[5])
{
	uint8_t buf[40];
	uint64_t la = cpu->sregs.ss.base + cpu->regs.rsp;
	enum emu_result r;

	if (emu_mode64(cpu))
		la = cpu->regs.rsp;
	else
		la &= 0xffffffffULL;
	r = emu_read(cpu, la, buf, 5ULL * size, 0);
	if (r != EMU_DONE)
		return r;
	for (unsigned int i = 0; i < 5; i++) {
		v[i] = 0;
		memcpy(&v[i], buf + i * size, size);
	}
	return EMU_DONE;
}

/*
 * iret without a task switch or virtual-8086 return: long mode (any
 * target) and protected mode at the same privilege level. The data
 * segment registers are left as they are on a return to an outer level.
 */
enum emu_result emu_iret(struct emu_cpu *cpu, struct emu_insn *in)
{
	unsigned int size = (in->rex & 8) ? 8 : in->opsize ? 2 : 4;
	bool mode64 = emu_mode64(cpu);
	struct kvm_segment cs, ss = cpu->sregs.ss;
	uint64_t v[5], mask = RFLAGS_IRET_MASK, flags;
	unsigned int cpl = emu_cpl(cpu), rpl;
	enum emu_result r;

	cpu->mnemonic = size == 8 ? "iretq" : "iret";
	if (size == 2)
		return emu_unhandled(cpu, "16-bit iret");
	if (cpu->regs.rflags & (1ULL << 14))
		return emu_unhandled(cpu, "iret with NT set (task return)");
	r = pop_frame(cpu, size, v);
	if (r != EMU_DONE)
		return r;
	rpl = v[1] & 3;
	r = load_cs(cpu, (uint16_t)v[1], &cs);
	if (r != EMU_DONE)
		return r;
	if (!mode64 && rpl != cpl)
		return emu_unhandled(cpu, "protected-mode iret to another privilege level");
	if (mode64 || rpl != cpl) {
		r = load_ss(cpu, (uint16_t)v[4], rpl, cs.l, &ss);
		if (r != EMU_DONE)
			return r;
	}
	if (cs.l) {
		struct mmu_mode m = {.cr4 = cpu->sregs.cr4};

		if (!mmu_canonical(&m, v[0]))
			return emu_raise(cpu, EMU_GP, true, 0);
	} else {
		v[0] &= 0xffffffffULL;
	}
	if (cpl > 0)
		mask &= ~RFLAGS_IOPL;
	if (cpl > ((cpu->regs.rflags & RFLAGS_IOPL) >> 12))
		mask &= ~RFLAGS_IF;
	if (mode64)
		mask &= ~RFLAGS_VM;
	if (size == 4)
		mask &= 0xffffffffULL;
	if (cpl > 0)
		mask &= ~(RFLAGS_VIF | RFLAGS_VIP);
	flags = (cpu->regs.rflags & ~mask) | (v[2] & mask) | RFLAGS_FIXED;
	cpu->regs.rip = v[0];
	cpu->regs.rflags = flags;
	cpu->sregs.cs = cs;
	if (mode64 || rpl != cpl) {
		cpu->regs.rsp = size == 8 ? v[3] : (v[3] & 0xffffffffULL);
		cpu->sregs.ss = ss;
	} else {
		cpu->regs.rsp += 3ULL * size;
	}
	cpu->sregs_dirty = true;
	cpu->nmi_unmasked = true;
	return EMU_DONE;
}

static struct kvm_segment flat_seg(uint16_t sel, uint8_t type, bool l)
{
	return (struct kvm_segment){
	    .base = 0,
	    .limit = 0xffffffff,
	    .selector = sel,
	    .type = type,
	    .present = 1,
	    .dpl = 3,
	    .db = !l,
	    .s = 1,
	    .l = l,
	    .g = 1,
	};
}

/* sysret: back to CPL 3 with the flat segments STAR[63:48] names. */
enum emu_result emu_sysret(struct emu_cpu *cpu, struct emu_insn *in)
{
	bool wide = in->rex & 8;
	uint64_t star;
	uint16_t base;

	cpu->mnemonic = wide ? "sysretq" : "sysret";
	if (!emu_mode64(cpu) || !(cpu->sregs.efer & EFER_SCE))
		return emu_raise(cpu, EMU_UD, false, 0);
	if (emu_cpl(cpu) != 0)
		return emu_raise(cpu, EMU_GP, true, 0);
	if (!cpu->hooks.get_msr)
		return emu_unhandled(cpu, "sysret: no MSR access");
	if (cpu->hooks.get_msr(cpu->hooks.opaque, EMU_MSR_STAR, &star))
		return emu_unhandled(cpu, "sysret: cannot read MSR STAR");
	if (wide && (int64_t)(cpu->regs.rcx << 16) >> 16 != (int64_t)cpu->regs.rcx)
		return emu_raise(cpu, EMU_GP, true, 0);
	base = (uint16_t)(star >> 48);
	cpu->regs.rip = wide ? cpu->regs.rcx : (cpu->regs.rcx & 0xffffffffULL);
	cpu->regs.rflags = (cpu->regs.r11 & RFLAGS_SYSRET_MASK) | RFLAGS_FIXED;
	cpu->sregs.cs = flat_seg((uint16_t)((wide ? base + 16 : base) | 3),
				 DESC_TYPE_CODE | DESC_TYPE_WRITABLE | DESC_TYPE_ACCESSED, wide);
	cpu->sregs.ss =
	    flat_seg((uint16_t)((base + 8) | 3), DESC_TYPE_WRITABLE | DESC_TYPE_ACCESSED, false);
	cpu->sregs_dirty = true;
	return EMU_DONE;
}

static enum emu_result do_swapgs(struct emu_cpu *cpu, struct emu_insn *in)
{
	uint64_t kgs;

	cpu->mnemonic = "swapgs";
	if (!emu_mode64(cpu))
		return emu_raise(cpu, EMU_UD, false, 0);
	if (emu_cpl(cpu) != 0)
		return emu_raise(cpu, EMU_GP, true, 0);
	if (!cpu->hooks.get_msr || !cpu->hooks.set_msr)
		return emu_unhandled(cpu, "swapgs: no MSR access");
	if (cpu->hooks.get_msr(cpu->hooks.opaque, EMU_MSR_KERNEL_GS_BASE, &kgs))
		return emu_unhandled(cpu, "swapgs: cannot read KERNEL_GS_BASE");
	if (cpu->hooks.set_msr(cpu->hooks.opaque, EMU_MSR_KERNEL_GS_BASE, cpu->sregs.gs.base))
		return emu_unhandled(cpu, "swapgs: cannot write KERNEL_GS_BASE");
	cpu->sregs.gs.base = kgs;
	cpu->sregs_dirty = true;
	emu_retire(cpu, in);
	return EMU_DONE;
}

static enum emu_result do_xgetbv(struct emu_cpu *cpu, struct emu_insn *in)
{
	uint64_t xcr0;

	cpu->mnemonic = "xgetbv";
	if (!(cpu->sregs.cr4 & CR4_OSXSAVE) || in->lock)
		return emu_raise(cpu, EMU_UD, false, 0);
	if ((uint32_t)cpu->regs.rcx != 0)
		return emu_raise(cpu, EMU_GP, true, 0);
	if (!cpu->hooks.get_xcr0 || cpu->hooks.get_xcr0(cpu->hooks.opaque, &xcr0))
		return emu_unhandled(cpu, "xgetbv: cannot read XCR0");
	cpu->regs.rax = xcr0 & 0xffffffffULL;
	cpu->regs.rdx = xcr0 >> 32;
	emu_retire(cpu, in);
	return EMU_DONE;
}

/* clac / stac: RFLAGS.AC for SMAP; CPL 0 only. */
static enum emu_result do_clac_stac(struct emu_cpu *cpu, struct emu_insn *in, bool set)
{
	cpu->mnemonic = set ? "stac" : "clac";
	if (in->lock || emu_cpl(cpu) != 0)
		return emu_raise(cpu, EMU_UD, false, 0);
	if (set)
		cpu->regs.rflags |= RFLAGS_AC;
	else
		cpu->regs.rflags &= ~RFLAGS_AC;
	emu_retire(cpu, in);
	return EMU_DONE;
}

enum emu_result emu_group7(struct emu_cpu *cpu, struct emu_insn *in)
{
	if (!emu_decode_modrm(cpu, in))
		return emu_fetch_fault(cpu, in);
	if (in->mod == 3 && (in->reg & 7) == 1 && ((in->rm & 7) == 2 || (in->rm & 7) == 3) &&
	    !in->rep && !in->opsize)
		return do_clac_stac(cpu, in, (in->rm & 7) == 3);
	if (in->mod == 3 && (in->reg & 7) == 7 && (in->rm & 7) == 0 && !in->rep && !in->opsize)
		return do_swapgs(cpu, in);
	if (in->mod == 3 && (in->reg & 7) == 2 && (in->rm & 7) == 0 && !in->rep && !in->opsize)
		return do_xgetbv(cpu, in);
	return emu_unhandled(cpu, "0f 01 modrm 0x%02x", in->bytes[in->len - 1]);
}

/* The host's own rdrand/rdseed; CF=0 (the guest retries) when it has none to give. */
static bool host_random(bool seed, uint64_t *v)
{
	uint8_t ok;

	if (seed)
		__asm__ volatile("rdseed %0\n\tsetc %1" : "=r"(*v), "=qm"(ok) : : "cc");
	else
		__asm__ volatile("rdrand %0\n\tsetc %1" : "=r"(*v), "=qm"(ok) : : "cc");
	return ok;
}

enum emu_result emu_rdrand(struct emu_cpu *cpu, struct emu_insn *in)
{
	bool seed = (in->reg & 7) == 7;
	__u64 *dst = emu_gpr(&cpu->regs, in->rm);
	uint64_t v = 0;
	bool ok;

	cpu->mnemonic = seed ? "rdseed" : "rdrand";
	if (in->lock)
		return emu_raise(cpu, EMU_UD, false, 0);
	ok = host_random(seed, &v);
	if (in->rex & 8)
		*dst = v;
	else if (in->opsize)
		*dst = (*dst & ~0xffffULL) | (v & 0xffff);
	else
		*dst = v & 0xffffffffULL;
	/* CF reports success; OF SF ZF AF PF are cleared. */
	cpu->regs.rflags &= ~0x8d5ULL;
	if (ok)
		cpu->regs.rflags |= 1;
	emu_retire(cpu, in);
	return EMU_DONE;
}

/* rdfsbase, rdgsbase, wrfsbase, wrgsbase (f3 0f ae /0../3, register operand). */
enum emu_result emu_fsgsbase(struct emu_cpu *cpu, struct emu_insn *in)
{
	static const char *const names[] = {"rdfsbase", "rdgsbase", "wrfsbase", "wrgsbase"};
	unsigned int op = in->reg & 7;
	struct kvm_segment *seg = (op & 1) ? &cpu->sregs.gs : &cpu->sregs.fs;
	unsigned int size = (in->rex & 8) ? 8 : 4;
	struct mmu_mode m = {.cr4 = cpu->sregs.cr4};
	uint64_t v;

	cpu->mnemonic = names[op & 3];
	if (!emu_mode64(cpu) || !(cpu->sregs.cr4 & CR4_FSGSBASE) || in->lock || in->opsize)
		return emu_raise(cpu, EMU_UD, false, 0);
	if (op < 2) {
		emu_write_reg(cpu, in->rm, size, seg->base);
	} else {
		v = *emu_gpr(&cpu->regs, in->rm);
		if (size == 4)
			v &= 0xffffffffULL;
		if (!mmu_canonical(&m, v))
			return emu_raise(cpu, EMU_GP, true, 0);
		seg->base = v;
		cpu->sregs_dirty = true;
	}
	emu_retire(cpu, in);
	return EMU_DONE;
}

/* rdpid r64: IA32_TSC_AUX, which Linux sets to the CPU (and node) number. */
enum emu_result emu_rdpid(struct emu_cpu *cpu, struct emu_insn *in)
{
	uint64_t aux;

	cpu->mnemonic = "rdpid";
	if (in->lock)
		return emu_raise(cpu, EMU_UD, false, 0);
	if (!cpu->hooks.get_msr || cpu->hooks.get_msr(cpu->hooks.opaque, EMU_MSR_TSC_AUX, &aux))
		return emu_unhandled(cpu, "rdpid: cannot read TSC_AUX");
	emu_write_reg(cpu, in->rm, emu_mode64(cpu) ? 8 : 4, aux & 0xffffffffULL);
	emu_retire(cpu, in);
	return EMU_DONE;
}
