/*
 * User-space completion of instructions KVM's emulator gives up on
 * (KVM_EXIT_INTERNAL_ERROR, KVM_INTERNAL_ERROR_EMULATION). On hosts where
 * KVM emulates all guest CPL 0 code (see HOST-KVM.md), stock kernels run
 * into a handful of such instructions; ember decodes the one at RIP,
 * carries it out on a copy of the vCPU's registers and on guest memory
 * (through the guest's page tables), or reports the exception it raises.
 *
 * Nothing here touches KVM: emulate_kvm.c moves the state in and out, so
 * the unit tests run on fake guest memory.
 *
 * Instructions finished here (64-bit and 32-bit code):
 *   int3                 #BP (a trap: RIP points past it)
 *   ud2, ud1, ud0        #UD
 *   cmpxchg8b/16b m      with or without lock; 16b atomically on host memory
 *   iret/iretq           same privilege, and to CPL 3 (long mode)
 *   sysret/sysretq       long mode, to CPL 3
 *   swapgs               exchanges GS.base with IA32_KERNEL_GS_BASE
 *   clac, stac           RFLAGS.AC (SMAP)
 *   rd/wr fs/gs base     FS.base, GS.base (CR4.FSGSBASE)
 *   rdpid                IA32_TSC_AUX
 *   rdrand/rdseed r      from the host's own instruction
 *   popcnt r, r/m        (the kernel's hweight alternatives)
 *   fwait                #NM / #MF when due, else nothing
 *   ldmxcsr, stmxcsr m32 MXCSR (kernel_fpu_begin)
 *   xgetbv               XCR0
 */
#ifndef EMBER_VMM_X86_EMULATE_H
#define EMBER_VMM_X86_EMULATE_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/memory.h"

#define EMU_MAX_INSN 15

/* x86 exception vectors the completion raises. */
#define EMU_DE 0
#define EMU_BP 3
#define EMU_UD 6
#define EMU_NM 7
#define EMU_TS 10
#define EMU_NP 11
#define EMU_SS 12
#define EMU_GP 13
#define EMU_PF 14
#define EMU_MF 16

/* An exception the instruction raised; the caller injects it. */
struct emu_exception {
	uint8_t vector;
	bool has_error;
	uint32_t error;
	uint64_t cr2; /* #PF: the faulting linear address */
};

/*
 * Registers that are not in kvm_regs/kvm_sregs, read and written only when
 * an instruction needs them (swapgs, sysret, xgetbv). Each returns 0 or
 * -errno; a NULL hook makes such instructions unhandled.
 */
struct emu_hooks {
	int (*get_msr)(void *opaque, uint32_t index, uint64_t *value);
	int (*set_msr)(void *opaque, uint32_t index, uint64_t value);
	int (*get_xcr0)(void *opaque, uint64_t *value);
	/* x87 status and control words (fwait); NULL: no x87 exception is ever pending */
	int (*get_x87)(void *opaque, uint16_t *fsw, uint16_t *fcw);
	int (*get_mxcsr)(void *opaque, uint32_t *mxcsr);
	int (*set_mxcsr)(void *opaque, uint32_t mxcsr);
	void *opaque;
};

#define EMU_MSR_STAR 0xc0000081u
#define EMU_MSR_KERNEL_GS_BASE 0xc0000102u
#define EMU_MSR_TSC_AUX 0xc0000103u

/*
 * One vCPU's state, in and out. The caller fills regs, sregs, hooks and mem;
 * emu_step() changes them as the instruction does. sregs_dirty tells the
 * caller to write the segment/control state back.
 */
struct emu_cpu {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct emu_hooks hooks;
	const struct guest_mem *mem;
	bool sregs_dirty;	  /* segments or control registers changed: write them back */
	bool nmi_unmasked;	  /* iret: NMIs are no longer blocked */
	struct emu_exception exc; /* valid when emu_step() returned EMU_EXCEPTION */
	/*
	 * The bytes KVM failed on (its exit reports them), or expect_len 0: when
	 * memory at CS:RIP no longer holds them, another vCPU has rewritten the
	 * code since (Linux's text_poke puts an int3 there for a moment).
	 */
	const uint8_t *expect;
	unsigned int expect_len;
	uint8_t insn[EMU_MAX_INSN];
	unsigned int insn_len; /* bytes fetched and decoded */
	const char *mnemonic;  /* what was finished, for logs; NULL when not decoded */
	char why[128];	       /* EMU_UNHANDLED: the reason */
};

enum emu_result {
	EMU_DONE,      /* registers/memory updated, RIP past the instruction */
	EMU_EXCEPTION, /* inject cpu->exc; RIP as the exception requires */
	EMU_UNHANDLED, /* nothing changed; cpu->why says why */
	EMU_CHANGED,   /* nothing changed: the code at CS:RIP is not cpu->expect; run it again */
};

/* Decodes the instruction at CS:RIP and finishes it. */
enum emu_result emu_step(struct emu_cpu *cpu);

/* ---- For the instruction files (emulate_*.c) ---- */

/* One decoded instruction. */
struct emu_insn {
	uint8_t bytes[EMU_MAX_INSN];
	unsigned int avail; /* bytes fetched */
	unsigned int len;   /* bytes decoded so far */
	enum emu_result fetch_result;
	struct emu_exception fetch_fault; /* why fetching stopped short of 15 bytes */
	bool lock, opsize, adsize;
	uint8_t rep; /* 0, 0xf2 or 0xf3 */
	int seg;     /* segment override (0 ES .. 5 GS), -1 for none */
	uint8_t rex;
	unsigned int map; /* 1: one-byte opcodes, 2: 0x0f xx */
	uint8_t op;
	bool has_modrm;
	uint8_t mod, reg, rm; /* reg and rm include REX.R / REX.B */
	bool is_mem;	      /* ModRM names memory: ea is valid */
	bool rip_rel;
	int ea_seg;
	uint64_t ea;
};

enum emu_result emu_unhandled(struct emu_cpu *cpu, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
enum emu_result emu_raise(struct emu_cpu *cpu, uint8_t vector, bool has_error, uint32_t error);
/* Out of instruction bytes: the fetch fault, or #GP past 15 bytes. */
enum emu_result emu_fetch_fault(struct emu_cpu *cpu, const struct emu_insn *in);
bool emu_decode_modrm(struct emu_cpu *cpu, struct emu_insn *in);
/* Linear address of the ModRM memory operand (segment base, canonical check). */
enum emu_result emu_operand_la(struct emu_cpu *cpu, const struct emu_insn *in, uint64_t *la);
/* The r/m operand (register or memory) of `size` bytes, zero-extended. */
enum emu_result emu_read_rm(struct emu_cpu *cpu, const struct emu_insn *in, unsigned int size,
			    uint64_t *v);
/* A register write of `size` bytes: 4 zero-extends, 2 merges. */
void emu_write_reg(struct emu_cpu *cpu, unsigned int reg, unsigned int size, uint64_t v);
/* RIP past the decoded instruction. */
void emu_retire(struct emu_cpu *cpu, const struct emu_insn *in);

unsigned int emu_cpl(const struct emu_cpu *cpu);
bool emu_mode64(const struct emu_cpu *cpu);
__u64 *emu_gpr(struct kvm_regs *r, unsigned int n);

/* Guest linear memory; access is MMU_* from emulate_mmu.h. */
enum emu_result emu_read(struct emu_cpu *cpu, uint64_t la, void *buf, uint64_t len,
			 unsigned int access);
enum emu_result emu_write(struct emu_cpu *cpu, uint64_t la, const void *buf, uint64_t len,
			  unsigned int access);
/* Host pointer for an access within one page (for atomics). */
enum emu_result emu_mem_ptr(struct emu_cpu *cpu, uint64_t la, uint64_t len, unsigned int access,
			    void **host);

/* lock cmpxchg16b on host memory p (16-byte aligned); true when it matched. */
bool emu_host_cas128(void *p, uint64_t *lo, uint64_t *hi, uint64_t new_lo, uint64_t new_hi);

#endif
