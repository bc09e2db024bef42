#include "vmm/x86/emulate.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vmm/x86/emulate_mmu.h"
#include "vmm/x86/emulate_sys.h"

#define RFLAGS_ZF (1ULL << 6)
#define RFLAGS_AC (1ULL << 18)
#define EFER_LMA (1ULL << 10)

#define SEG_ES 0
#define SEG_CS 1
#define SEG_SS 2
#define SEG_DS 3
#define SEG_FS 4
#define SEG_GS 5

enum emu_result emu_unhandled(struct emu_cpu *cpu, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cpu->why, sizeof(cpu->why), fmt, ap);
	va_end(ap);
	return EMU_UNHANDLED;
}

enum emu_result emu_raise(struct emu_cpu *cpu, uint8_t vector, bool has_error, uint32_t error)
{
	cpu->exc = (struct emu_exception){.vector = vector, .has_error = has_error, .error = error};
	return EMU_EXCEPTION;
}

unsigned int emu_cpl(const struct emu_cpu *cpu)
{
	/* KVM's convention: SS.DPL is the CPL (CS.DPL differs for conforming code). */
	return cpu->sregs.ss.dpl & 3;
}

bool emu_mode64(const struct emu_cpu *cpu)
{
	return (cpu->sregs.efer & EFER_LMA) && cpu->sregs.cs.l;
}

static void mmu_mode_of(const struct emu_cpu *cpu, struct mmu_mode *m)
{
	*m = (struct mmu_mode){
	    .cr0 = cpu->sregs.cr0,
	    .cr3 = cpu->sregs.cr3,
	    .cr4 = cpu->sregs.cr4,
	    .efer = cpu->sregs.efer,
	    .cpl = emu_cpl(cpu),
	    .ac = cpu->regs.rflags & RFLAGS_AC,
	};
}

/* Translates one page-bounded piece; EMU_EXCEPTION for #PF, EMU_UNHANDLED outside RAM. */
static enum emu_result translate(struct emu_cpu *cpu, uint64_t la, uint64_t len,
				 unsigned int access, void **host)
{
	struct mmu_mode m;
	uint32_t pf;
	uint64_t gpa;
	int ret;

	mmu_mode_of(cpu, &m);
	ret = mmu_translate(cpu->mem, &m, la, access, &gpa, &pf);
	if (ret == -EFAULT) {
		emu_raise(cpu, EMU_PF, true, pf);
		cpu->exc.cr2 = la;
		return EMU_EXCEPTION;
	}
	if (ret)
		return emu_unhandled(cpu, "page table of 0x%llx lies outside RAM",
				     (unsigned long long)la);
	*host = gmem_ptr(cpu->mem, gpa, len);
	if (!*host)
		return emu_unhandled(cpu, "0x%llx (guest-physical 0x%llx) is not RAM",
				     (unsigned long long)la, (unsigned long long)gpa);
	return EMU_DONE;
}

enum emu_result emu_mem_ptr(struct emu_cpu *cpu, uint64_t la, uint64_t len, unsigned int access,
			    void **host)
{
	if ((la & 0xfff) + len > 4096)
		return emu_unhandled(cpu, "access at 0x%llx crosses a page",
				     (unsigned long long)la);
	return translate(cpu, la, len, access, host);
}

/* Copies between guest linear memory and buf, a page at a time. */
static enum emu_result copy_linear(struct emu_cpu *cpu, uint64_t la, void *buf, uint64_t len,
				   unsigned int access)
{
	uint8_t *b = buf;

	while (len) {
		uint64_t chunk = 4096 - (la & 0xfff);
		enum emu_result r;
		void *host;

		if (chunk > len)
			chunk = len;
		r = translate(cpu, la, chunk, access, &host);
		if (r != EMU_DONE)
			return r;
		if (access & MMU_WRITE)
			memcpy(host, b, chunk);
		else
			memcpy(b, host, chunk);
		la += chunk;
		b += chunk;
		len -= chunk;
	}
	return EMU_DONE;
}

enum emu_result emu_read(struct emu_cpu *cpu, uint64_t la, void *buf, uint64_t len,
			 unsigned int access)
{
	return copy_linear(cpu, la, buf, len, access & ~MMU_WRITE);
}

enum emu_result emu_write(struct emu_cpu *cpu, uint64_t la, const void *buf, uint64_t len,
			  unsigned int access)
{
	return copy_linear(cpu, la, (void *)buf, len, access | MMU_WRITE);
}

__u64 *emu_gpr(struct kvm_regs *r, unsigned int n)
{
	__u64 *map[16] = {&r->rax, &r->rcx, &r->rdx, &r->rbx, &r->rsp, &r->rbp, &r->rsi, &r->rdi,
			  &r->r8,  &r->r9,  &r->r10, &r->r11, &r->r12, &r->r13, &r->r14, &r->r15};

	return map[n & 15];
}

/*
 * Fetches the instruction bytes at CS:RIP, up to 15, stopping early at a
 * page that is not mapped (the decoder only faults if it needs them).
 */
static enum emu_result fetch(struct emu_cpu *cpu, struct emu_insn *in)
{
	uint64_t la = cpu->sregs.cs.base + cpu->regs.rip;
	enum emu_result r = EMU_DONE;

	if (!emu_mode64(cpu))
		la &= 0xffffffffULL;
	in->avail = 0;
	while (in->avail < EMU_MAX_INSN) {
		uint64_t chunk = 4096 - (la & 0xfff);
		void *host;

		if (chunk > EMU_MAX_INSN - in->avail)
			chunk = EMU_MAX_INSN - in->avail;
		r = translate(cpu, la, chunk, MMU_FETCH, &host);
		if (r != EMU_DONE) {
			if (in->avail)
				break; /* raised only if decoding runs past what we have */
			return r;
		}
		memcpy(in->bytes + in->avail, host, chunk);
		in->avail += chunk;
		la += chunk;
	}
	in->fetch_fault = cpu->exc;
	in->fetch_result = r;
	return EMU_DONE;
}

/* The next instruction byte; false when none (past 15 bytes, or an unmapped page). */
static bool next_byte(struct emu_insn *in, uint8_t *b)
{
	if (in->len >= in->avail)
		return false;
	*b = in->bytes[in->len++];
	return true;
}

static bool next_le(struct emu_insn *in, unsigned int n, uint64_t *v)
{
	uint8_t b;

	*v = 0;
	for (unsigned int i = 0; i < n; i++) {
		if (!next_byte(in, &b))
			return false;
		*v |= (uint64_t)b << (8 * i);
	}
	return true;
}

static bool decode_prefixes(struct emu_insn *in, bool mode64)
{
	uint8_t b;

	for (;;) {
		if (!next_byte(in, &b))
			return false;
		switch (b) {
		case 0xf0:
			in->lock = true;
			continue;
		case 0xf2:
			in->rep = 0xf2;
			continue;
		case 0xf3:
			in->rep = 0xf3;
			continue;
		case 0x66:
			in->opsize = true;
			continue;
		case 0x67:
			in->adsize = true;
			continue;
		case 0x26:
		case 0x2e:
		case 0x36:
		case 0x3e:
			in->seg = (b >> 3) & 3; /* 26 ES, 2E CS, 36 SS, 3E DS */
			continue;
		case 0x64:
			in->seg = SEG_FS;
			continue;
		case 0x65:
			in->seg = SEG_GS;
			continue;
		}
		if (mode64 && (b & 0xf0) == 0x40) {
			in->rex = b;
			if (!next_byte(in, &b))
				return false;
		}
		in->op = b;
		if (b == 0x0f) {
			in->map = 2;
			return next_byte(in, &in->op);
		}
		in->map = 1;
		return true;
	}
}

/* ModRM, SIB and displacement: a register operand or an effective address. */
static bool decode_modrm(struct emu_cpu *cpu, struct emu_insn *in)
{
	bool mode64 = emu_mode64(cpu);
	uint8_t modrm, sib;
	uint64_t disp = 0;
	int base, index = -1;
	unsigned int scale = 0;

	if (!next_byte(in, &modrm))
		return false;
	in->has_modrm = true;
	in->mod = modrm >> 6;
	in->reg = ((modrm >> 3) & 7) | ((in->rex & 4) << 1);
	in->rm = (modrm & 7) | ((in->rex & 1) << 3);
	if (in->mod == 3)
		return true;
	base = modrm & 7;
	if (base == 4) {
		if (!next_byte(in, &sib))
			return false;
		scale = sib >> 6;
		index = ((sib >> 3) & 7) | ((in->rex & 2) << 2);
		if (index == 4)
			index = -1;
		base = sib & 7;
		if (base == 5 && in->mod == 0)
			base = -1;
	} else if (base == 5 && in->mod == 0) {
		base = mode64 ? -2 : -1; /* RIP-relative, or disp32 alone */
	}
	if (base >= 0)
		base |= (in->rex & 1) << 3;
	if (in->mod == 1) {
		if (!next_le(in, 1, &disp))
			return false;
		disp = (uint64_t)(int64_t)(int8_t)disp;
	} else if (in->mod == 2 || base < 0) {
		if (!next_le(in, 4, &disp))
			return false;
		disp = (uint64_t)(int64_t)(int32_t)disp;
	}
	in->ea = disp;
	in->rip_rel = base == -2;
	if (base >= 0)
		in->ea += *emu_gpr(&cpu->regs, (unsigned int)base);
	if (index >= 0)
		in->ea += *emu_gpr(&cpu->regs, (unsigned int)index) << scale;
	in->ea_seg = (base == 4 || base == 5) ? SEG_SS : SEG_DS;
	in->is_mem = true;
	return true;
}

static const struct kvm_segment *seg_of(const struct emu_cpu *cpu, int seg)
{
	const struct kvm_segment *s[] = {&cpu->sregs.es, &cpu->sregs.cs, &cpu->sregs.ss,
					 &cpu->sregs.ds, &cpu->sregs.fs, &cpu->sregs.gs};

	return s[seg];
}

/* The linear address of the memory operand, after the whole instruction is decoded. */
enum emu_result emu_operand_la(struct emu_cpu *cpu, const struct emu_insn *in, uint64_t *la)
{
	int seg = in->seg >= 0 ? in->seg : in->ea_seg;
	uint64_t ea = in->ea;

	if (in->rip_rel)
		ea += cpu->regs.rip + in->len;
	if (in->adsize || !emu_mode64(cpu))
		ea &= 0xffffffffULL;
	if (emu_mode64(cpu)) {
		struct mmu_mode m;

		*la = ea + ((seg == SEG_FS || seg == SEG_GS) ? seg_of(cpu, seg)->base : 0);
		mmu_mode_of(cpu, &m);
		if (!mmu_canonical(&m, *la))
			return emu_raise(cpu, seg == SEG_SS ? EMU_SS : EMU_GP, true, 0);
		return EMU_DONE;
	}
	/* Protected mode: flat segments in practice; limits are not checked. */
	*la = (seg_of(cpu, seg)->base + ea) & 0xffffffffULL;
	return EMU_DONE;
}

/* Consumes the rest of the instruction's bytes into cpu->insn and moves RIP past it. */
void emu_retire(struct emu_cpu *cpu, const struct emu_insn *in)
{
	cpu->regs.rip += in->len;
	if (!emu_mode64(cpu))
		cpu->regs.rip &= 0xffffffffULL;
}

/* cmpxchg8b / cmpxchg16b m: compare EDX:EAX (RDX:RAX) with m, ZF says whether they matched. */
static enum emu_result do_cmpxchg8b16b(struct emu_cpu *cpu, const struct emu_insn *in)
{
	bool wide = in->rex & 8;
	unsigned int size = wide ? 16 : 8;
	struct kvm_regs *r = &cpu->regs;
	enum emu_result res;
	uint64_t la;
	void *host;
	bool equal;

	cpu->mnemonic = wide ? "cmpxchg16b" : "cmpxchg8b";
	if (!in->is_mem)
		return emu_raise(cpu, EMU_UD, false, 0);
	res = emu_operand_la(cpu, in, &la);
	if (res != EMU_DONE)
		return res;
	if (wide && (la & 15))
		return emu_raise(cpu, EMU_GP, true, 0);
	res = emu_mem_ptr(cpu, la, size, MMU_WRITE, &host);
	if (res != EMU_DONE)
		return res;
	if (wide) {
		uint64_t lo = r->rax, hi = r->rdx;

		equal = emu_host_cas128(host, &lo, &hi, r->rbx, r->rcx);
		r->rax = lo;
		r->rdx = hi;
	} else {
		uint64_t old = (r->rax & 0xffffffffULL) | (r->rdx << 32);
		uint64_t new = (r->rbx & 0xffffffffULL) | (r->rcx << 32);

		equal = __atomic_compare_exchange_n((uint64_t *)host, &old, new, false,
						    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		if (!equal) { /* 32-bit writes zero the upper halves */
			r->rax = old & 0xffffffffULL;
			r->rdx = old >> 32;
		}
	}
	if (equal)
		r->rflags |= RFLAGS_ZF;
	else
		r->rflags &= ~RFLAGS_ZF;
	emu_retire(cpu, in);
	return EMU_DONE;
}

bool emu_host_cas128(void *p, uint64_t *lo, uint64_t *hi, uint64_t new_lo, uint64_t new_hi)
{
	struct u128 {
		uint64_t q[2];
	};
	bool ok;

	__asm__ volatile("lock cmpxchg16b %1\n\tsete %0"
			 : "=q"(ok), "+m"(*(volatile struct u128 *)p), "+a"(*lo), "+d"(*hi)
			 : "b"(new_lo), "c"(new_hi)
			 : "memory", "cc");
	return ok;
}

/* Operand size of a general-purpose instruction: 2, 4 or 8 bytes. */
static unsigned int op_size(const struct emu_insn *in)
{
	return (in->rex & 8) ? 8 : in->opsize ? 2 : 4;
}

/* The ModRM r/m operand: a register or memory. */
enum emu_result emu_read_rm(struct emu_cpu *cpu, const struct emu_insn *in, unsigned int size,
			    uint64_t *v)
{
	enum emu_result r;
	uint64_t la;

	*v = 0;
	if (!in->is_mem) {
		*v = *emu_gpr(&cpu->regs, in->rm);
	} else {
		r = emu_operand_la(cpu, in, &la);
		if (r != EMU_DONE)
			return r;
		r = emu_read(cpu, la, v, size, 0);
		if (r != EMU_DONE)
			return r;
	}
	if (size < 8)
		*v &= (1ULL << (8 * size)) - 1;
	return EMU_DONE;
}

/* Writes a register as the CPU does: 32-bit results zero-extend, 16-bit ones merge. */
void emu_write_reg(struct emu_cpu *cpu, unsigned int reg, unsigned int size, uint64_t v)
{
	__u64 *dst = emu_gpr(&cpu->regs, reg);

	if (size == 8)
		*dst = v;
	else if (size == 4)
		*dst = v & 0xffffffffULL;
	else
		*dst = (*dst & ~0xffffULL) | (v & 0xffff);
}

/* popcnt r, r/m: ZF when the source is zero; OF SF AF CF PF cleared. */
static enum emu_result do_popcnt(struct emu_cpu *cpu, struct emu_insn *in)
{
	unsigned int size = op_size(in);
	enum emu_result r;
	uint64_t v;

	cpu->mnemonic = "popcnt";
	if (in->lock)
		return emu_raise(cpu, EMU_UD, false, 0);
	r = emu_read_rm(cpu, in, size, &v);
	if (r != EMU_DONE)
		return r;
	emu_write_reg(cpu, in->reg, size, (uint64_t)__builtin_popcountll(v));
	cpu->regs.rflags &= ~0x8d5ULL;
	if (!v)
		cpu->regs.rflags |= RFLAGS_ZF;
	emu_retire(cpu, in);
	return EMU_DONE;
}

/* fwait: #NM when CR0.TS and CR0.MP, #MF when an unmasked x87 exception is pending. */
static enum emu_result do_fwait(struct emu_cpu *cpu, struct emu_insn *in)
{
	uint16_t fsw, fcw;

	cpu->mnemonic = "fwait";
	if ((cpu->sregs.cr0 & 0xa) == 0xa)
		return emu_raise(cpu, EMU_NM, false, 0);
	if (cpu->hooks.get_x87 && !cpu->hooks.get_x87(cpu->hooks.opaque, &fsw, &fcw) &&
	    (fsw & ~fcw & 0x3f) && (cpu->sregs.cr0 & 0x20))
		return emu_raise(cpu, EMU_MF, false, 0);
	emu_retire(cpu, in);
	return EMU_DONE;
}

/* MXCSR bits ldmxcsr accepts (MXCSR_MASK with DAZ); others raise #GP. */
#define MXCSR_WRITABLE 0xffffu

/* ldmxcsr / stmxcsr m32: #UD without OSFXSR or with CR0.EM, #NM with CR0.TS. */
static enum emu_result do_mxcsr(struct emu_cpu *cpu, struct emu_insn *in, bool load)
{
	enum emu_result r;
	uint32_t mxcsr;
	uint64_t la;

	cpu->mnemonic = load ? "ldmxcsr" : "stmxcsr";
	if (in->lock || (cpu->sregs.cr0 & 0x4) || !(cpu->sregs.cr4 & (1ULL << 9)))
		return emu_raise(cpu, EMU_UD, false, 0);
	if (cpu->sregs.cr0 & 0x8)
		return emu_raise(cpu, EMU_NM, false, 0);
	if (!cpu->hooks.get_mxcsr || !cpu->hooks.set_mxcsr)
		return emu_unhandled(cpu, "%s: no FPU access", cpu->mnemonic);
	r = emu_operand_la(cpu, in, &la);
	if (r != EMU_DONE)
		return r;
	if (load) {
		r = emu_read(cpu, la, &mxcsr, 4, 0);
		if (r != EMU_DONE)
			return r;
		if (mxcsr & ~MXCSR_WRITABLE)
			return emu_raise(cpu, EMU_GP, true, 0);
		if (cpu->hooks.set_mxcsr(cpu->hooks.opaque, mxcsr))
			return emu_unhandled(cpu, "ldmxcsr: cannot write MXCSR");
	} else {
		if (cpu->hooks.get_mxcsr(cpu->hooks.opaque, &mxcsr))
			return emu_unhandled(cpu, "stmxcsr: cannot read MXCSR");
		r = emu_write(cpu, la, &mxcsr, 4, 0);
		if (r != EMU_DONE)
			return r;
	}
	emu_retire(cpu, in);
	return EMU_DONE;
}

static enum emu_result exec_map1(struct emu_cpu *cpu, struct emu_insn *in)
{
	switch (in->op) {
	case 0x9b:
		return do_fwait(cpu, in);
	case 0xcc: /* int3: a trap, so the return address is the next instruction */
		cpu->mnemonic = "int3";
		emu_retire(cpu, in);
		return emu_raise(cpu, EMU_BP, false, 0);
	case 0xcf:
		return emu_iret(cpu, in);
	}
	return emu_unhandled(cpu, "opcode 0x%02x", in->op);
}

static enum emu_result exec_map2(struct emu_cpu *cpu, struct emu_insn *in)
{
	switch (in->op) {
	case 0x0b: /* ud2 */
	case 0xb9: /* ud1 */
	case 0xff: /* ud0 */
		cpu->mnemonic = "ud";
		return emu_raise(cpu, EMU_UD, false, 0);
	case 0x01:
		return emu_group7(cpu, in);
	case 0xae:
		if (!decode_modrm(cpu, in))
			break;
		if (in->rep == 0xf3 && in->mod == 3 && (in->reg & 7) < 4)
			return emu_fsgsbase(cpu, in);
		if (!in->rep && !in->opsize && in->is_mem &&
		    ((in->reg & 7) == 2 || (in->reg & 7) == 3))
			return do_mxcsr(cpu, in, (in->reg & 7) == 2);
		return emu_unhandled(cpu, "0f ae /%u%s", in->reg & 7,
				     in->mod == 3 ? " (register form)" : "");
	case 0xb8:
		if (in->rep != 0xf3)
			return emu_unhandled(cpu, "jmpe (0x0f 0xb8 without f3)");
		if (!decode_modrm(cpu, in))
			break;
		return do_popcnt(cpu, in);
	case 0x07:
		return emu_sysret(cpu, in);
	case 0xc7:
		if (!decode_modrm(cpu, in))
			break;
		if ((in->reg & 7) == 1 && !in->rep)
			return do_cmpxchg8b16b(cpu, in);
		if ((in->reg & 7) >= 6 && in->mod == 3 && !in->rep)
			return emu_rdrand(cpu, in);
		if ((in->reg & 7) == 7 && in->mod == 3 && in->rep == 0xf3)
			return emu_rdpid(cpu, in);
		return emu_unhandled(cpu, "0f c7 /%u", in->reg & 7);
	default:
		return emu_unhandled(cpu, "opcode 0x0f 0x%02x", in->op);
	}
	return emu_fetch_fault(cpu, in);
}

/* Ran out of bytes: a fault on the next page, or an instruction longer than 15 bytes. */
enum emu_result emu_fetch_fault(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (in->avail < EMU_MAX_INSN && in->fetch_result == EMU_EXCEPTION) {
		cpu->exc = in->fetch_fault;
		return EMU_EXCEPTION;
	}
	if (in->avail < EMU_MAX_INSN)
		return emu_unhandled(cpu, "instruction bytes past 0x%llx are not RAM",
				     (unsigned long long)cpu->regs.rip + in->avail);
	return emu_raise(cpu, EMU_GP, true, 0);
}

bool emu_decode_modrm(struct emu_cpu *cpu, struct emu_insn *in)
{
	return decode_modrm(cpu, in);
}

enum emu_result emu_step(struct emu_cpu *cpu)
{
	struct emu_insn in = {.seg = -1};
	enum emu_result r;

	cpu->mnemonic = NULL;
	cpu->why[0] = '\0';
	cpu->insn_len = 0;
	cpu->sregs_dirty = false;
	if (!(cpu->sregs.cr0 & 1))
		return emu_unhandled(cpu, "real mode");
	if (!emu_mode64(cpu) && !cpu->sregs.cs.db)
		return emu_unhandled(cpu, "16-bit protected mode");
	r = fetch(cpu, &in);
	if (r != EMU_DONE)
		return r;
	if (cpu->expect_len &&
	    memcmp(in.bytes, cpu->expect, in.avail < cpu->expect_len ? in.avail : cpu->expect_len))
		return EMU_CHANGED;
	if (!decode_prefixes(&in, emu_mode64(cpu)))
		return emu_fetch_fault(cpu, &in);
	if (in.adsize && !emu_mode64(cpu))
		return emu_unhandled(cpu, "16-bit addressing");
	r = in.map == 1 ? exec_map1(cpu, &in) : exec_map2(cpu, &in);
	cpu->insn_len = in.len;
	memcpy(cpu->insn, in.bytes, in.avail);
	return r;
}
