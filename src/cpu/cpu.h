/*
 * ember's software x86-64 CPU: one vCPU's architectural state as plain
 * data, and the contract between its parts.
 *
 *   decode.c      bytes -> struct insn (all opcode maps, prefixes, ModRM/SIB,
 *                 displacement, immediate, the handler to run)
 *   cache.c       decoded blocks keyed by guest-physical page, invalidated
 *                 when that page is written (by any vCPU or the monitor)
 *   run.c         cpu_run(): fetch from the cache, dispatch, interrupts,
 *                 exceptions (longjmp back here), exits to the monitor
 *   flags.c       lazy arithmetic flags
 *   exec_*.c      instruction handlers (integer, string, control, system,
 *                 x87, SSE)
 *   mmu.c         paging, the software TLB, guest memory reads and writes
 *   seg.c         segment loads and checks, descriptor tables
 *   except.c      exception and interrupt delivery (real, protected, long
 *                 mode; IST, double and triple fault), iret, far transfers
 *   msr.c         the CPU's own MSRs
 *
 * The CPU knows guest RAM (struct guest_mem) and nothing of devices: port
 * I/O, MMIO, CPUID values, the local APIC and its interrupts go through
 * struct cpu_env, which the monitor (accel soft) provides.
 *
 * Threads: a struct cpu is touched only by its own vCPU thread, except the
 * fields marked atomic (other threads raise interrupts and exit requests).
 */
#ifndef EMBER_CPU_CPU_H
#define EMBER_CPU_CPU_H

#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/memory.h"

/* General-purpose registers, in encoding order. */
enum {
	R_RAX, R_RCX, R_RDX, R_RBX, R_RSP, R_RBP, R_RSI, R_RDI,
	R_R8, R_R9, R_R10, R_R11, R_R12, R_R13, R_R14, R_R15,
};

/* Segment registers, in encoding order (sreg field of ModRM), then LDTR, TR. */
enum { SEG_ES, SEG_CS, SEG_SS, SEG_DS, SEG_FS, SEG_GS, SEG_LDTR, SEG_TR, SEG_COUNT };
#define SEG_NONE 0xff /* insn.seg when no override prefix: the default applies */

/* Exception vectors. */
enum {
	EXC_DE = 0, EXC_DB = 1, EXC_NMI = 2, EXC_BP = 3, EXC_OF = 4, EXC_BR = 5, EXC_UD = 6,
	EXC_NM = 7, EXC_DF = 8, EXC_TS = 10, EXC_NP = 11, EXC_SS = 12, EXC_GP = 13,
	EXC_PF = 14, EXC_MF = 16, EXC_AC = 17, EXC_MC = 18, EXC_XM = 19,
};

/* RFLAGS bits. */
#define FL_CF 0x1ULL
#define FL_PF 0x4ULL
#define FL_AF 0x10ULL
#define FL_ZF 0x40ULL
#define FL_SF 0x80ULL
#define FL_TF 0x100ULL
#define FL_IF 0x200ULL
#define FL_DF 0x400ULL
#define FL_OF 0x800ULL
#define FL_IOPL 0x3000ULL
#define FL_NT 0x4000ULL
#define FL_RF 0x10000ULL
#define FL_VM 0x20000ULL
#define FL_AC 0x40000ULL
#define FL_VIF 0x80000ULL
#define FL_VIP 0x100000ULL
#define FL_ID 0x200000ULL
#define FL_ARITH (FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF | FL_OF)

/* Control register and EFER bits. */
#define CR0_PE 0x1ULL
#define CR0_MP 0x2ULL
#define CR0_EM 0x4ULL
#define CR0_TS 0x8ULL
#define CR0_ET 0x10ULL
#define CR0_NE 0x20ULL
#define CR0_WP 0x10000ULL
#define CR0_AM 0x40000ULL
#define CR0_NW 0x20000000ULL
#define CR0_CD 0x40000000ULL
#define CR0_PG 0x80000000ULL
#define CR4_VME 0x1ULL
#define CR4_PVI 0x2ULL
#define CR4_TSD 0x4ULL
#define CR4_DE 0x8ULL
#define CR4_PSE 0x10ULL
#define CR4_PAE 0x20ULL
#define CR4_MCE 0x40ULL
#define CR4_PGE 0x80ULL
#define CR4_PCE 0x100ULL
#define CR4_OSFXSR 0x200ULL
#define CR4_OSXMMEXCPT 0x400ULL
#define CR4_UMIP 0x800ULL
#define CR4_FSGSBASE 0x10000ULL
#define CR4_PCIDE 0x20000ULL
#define CR4_OSXSAVE 0x40000ULL
#define CR4_SMEP 0x100000ULL
#define CR4_SMAP 0x200000ULL
#define EFER_SCE 0x1ULL
#define EFER_LME 0x100ULL
#define EFER_LMA 0x400ULL
#define EFER_NXE 0x800ULL

/*
 * A segment register's hidden part. attr uses the VMX access-rights layout:
 * bits 0-3 type, 4 S, 5-6 DPL, 7 P, 12 AVL, 13 L, 14 D/B, 15 G, 16 unusable.
 * limit is the expanded byte limit (G already applied).
 */
struct cpu_seg {
	uint64_t base;
	uint32_t limit;
	uint16_t sel;
	uint32_t attr;
};
#define SEG_ATTR_TYPE 0xfu
#define SEG_ATTR_S 0x10u
#define SEG_ATTR_DPL_SHIFT 5
#define SEG_ATTR_P 0x80u
#define SEG_ATTR_L 0x2000u
#define SEG_ATTR_DB 0x4000u
#define SEG_ATTR_G 0x8000u
#define SEG_ATTR_UNUSABLE 0x10000u

struct cpu_dtable {
	uint64_t base;
	uint16_t limit;
};

/* One 128-bit XMM register. */
union cpu_xmm {
	uint8_t b[16];
	uint16_t w[8];
	uint32_t d[4];
	uint64_t q[2];
	float f[4];
	double df[2];
};

/*
 * x87 and SSE state, kept in the form FXSAVE stores (so FXSAVE/FXRSTOR and
 * snapshots are copies): st[i] is the 80-bit value of physical register
 * (top + i) % 8, i.e. ST(i).
 */
struct cpu_fpu {
	uint16_t fcw, fsw; /* fsw bits 11-13 hold TOP */
	uint16_t ftw;	   /* full tag word, 2 bits per physical register */
	uint16_t fop;
	uint64_t fip, fdp;
	uint32_t mxcsr;
	uint8_t st[8][10]; /* ST(0)..ST(7), 80-bit little-endian */
	union cpu_xmm xmm[16];
};

/* The software TLB: direct-mapped, one entry per 4 KiB linear page. */
#define TLB_BITS 10 /* 4 MiB reach: fewer conflict misses (code vs. data pages) */
#define TLB_SIZE (1u << TLB_BITS)
#define TLB_INVALID 1ULL /* a tag no page-aligned address matches */

/*
 * tag_r/tag_w/tag_x hold the page's linear address when that access is
 * allowed at the privilege the entry was filled for and the page is RAM
 * (host pointer = addend + linear address); else TLB_INVALID and the access
 * takes the slow path (fill, fault, MMIO, write to a page holding decoded
 * code). Two arrays: user (CPL 3) and supervisor accesses.
 */
struct tlb_entry {
	uint64_t tag_r, tag_w, tag_x;
	uintptr_t addend;
	uint64_t gpa; /* guest-physical page */
	bool global;
	uint8_t page_shift; /* 12, or 21/22/30 for a large page (INVLPG drops all of it) */
};

/* Why cpu_run() returned. */
enum cpu_exit {
	CPU_EXIT_BUDGET,   /* ran its instruction budget, or cpu->exit_request was set */
	CPU_EXIT_HLT,	   /* HLT with nothing to deliver: sleep until an interrupt */
	CPU_EXIT_SHUTDOWN, /* triple fault: the VM crashes (cpu->exit_why says more) */
	CPU_EXIT_ERROR,	   /* an instruction the CPU cannot execute (exit_why) */
	CPU_EXIT_INIT,	   /* INIT was received: the monitor resets this vCPU */
};

/*
 * What the monitor provides. pio_* and mmio_* return false when no device
 * claims the access (reads then see all-ones). ctx is cpu->env_ctx.
 */
struct cpu_env {
	bool (*pio_read)(void *ctx, uint16_t port, void *data, unsigned len);
	bool (*pio_write)(void *ctx, uint16_t port, const void *data, unsigned len);
	bool (*mmio_read)(void *ctx, uint64_t gpa, void *data, unsigned len);
	bool (*mmio_write)(void *ctx, uint64_t gpa, const void *data, unsigned len);
	/* CPUID leaf/subleaf -> eax, ebx, ecx, edx (the one CPUID model). */
	void (*cpuid)(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t out[4]);
	/* MSRs the CPU does not own (APIC base, x2APIC, TSC deadline, pv MSRs):
	 * 0, or -1 for #GP. */
	int (*rdmsr)(void *ctx, uint32_t msr, uint64_t *val);
	int (*wrmsr)(void *ctx, uint32_t msr, uint64_t val);
	/* The highest-priority deliverable external interrupt: its vector,
	 * acknowledged (moved to in-service), or -1. Called only when RFLAGS.IF
	 * is set and no interrupt shadow applies. */
	int (*intr_ack)(void *ctx);
	/* The guest's TSC (fixed frequency, from the host clock). */
	uint64_t (*rdtsc)(void *ctx);
	/* MOV to CR8 / from CR8: the local APIC's TPR (bits 7:4 = CR8). */
	void (*set_cr8)(void *ctx, uint64_t cr8);
	uint64_t (*get_cr8)(void *ctx);
};

/* Bits of cpu->events (atomic; set by any thread, consumed by the vCPU). */
#define CPU_EV_INTR 0x1u /* an external interrupt may be pending: ask intr_ack */
#define CPU_EV_NMI 0x2u
#define CPU_EV_INIT 0x4u
#define CPU_EV_EXIT 0x8u /* leave cpu_run() soon (stop, pause, timer due) */

struct cpu_block_cache; /* cache.c */

struct cpu {
	/* Architectural state. */
	uint64_t gpr[16];
	uint64_t rip;
	uint64_t rflags; /* arithmetic flags are lazy: use cpu_get/set_rflags */
	struct cpu_seg seg[SEG_COUNT];
	struct cpu_dtable gdtr, idtr;
	uint64_t cr0, cr2, cr3, cr4, efer;
	uint64_t dr[8];
	uint64_t xcr0;
	struct cpu_fpu fpu;

	/* MSRs the CPU owns. */
	uint64_t star, lstar, cstar, fmask, kernel_gs_base;
	uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
	uint64_t pat, tsc_aux, misc_enable, tsc_offset;
	uint64_t mtrr_def_type, mtrr_fixed[11], mtrr_var[16];

	/* Lazy flags (flags.c): the last arithmetic result and its operands. */
	uint64_t lf_res, lf_src1, lf_src2;
	uint32_t lf_op;	  /* enum in flags.c; 0: rflags holds the flags */
	uint32_t lf_size; /* operand size in bytes */

	/* Derived mode, recomputed on any change of CR0, EFER, CS (cpu_update_mode). */
	uint8_t cpl;
	uint8_t code_bits; /* 16, 32 or 64: default operand/address size of CS */
	bool long_mode;	   /* EFER.LMA */
	bool paging;

	/* Execution control. */
	uint64_t next_rip;     /* set before a handler runs; branches change it */
	uint8_t intr_shadow;   /* STI / MOV SS: no interrupt before the next insn */
	bool halted;
	bool nmi_blocked;      /* from NMI delivery until the next IRET (except.c) */
	bool nmi_pending;      /* an NMI arrived while blocked: raised again at IRET */
	jmp_buf fault_jmp;     /* cpu_fault() longjmps here (run.c) */
	uint64_t insn_count;   /* instructions retired (statistics, profiling) */
	atomic_uint events;    /* CPU_EV_*: raised by other threads */
	char exit_why[256];    /* for CPU_EXIT_SHUTDOWN / CPU_EXIT_ERROR */

	/* The exception cpu_fault() recorded (except.c), and the one being
	 * delivered (for #DF / triple fault escalation), or -1. */
	int exc_vector;
	uint32_t exc_error;
	bool exc_has_error;
	uint8_t exc_kind; /* enum deliver_kind (except.h) */
	int delivering;

	/* Memory. */
	const struct guest_mem *mem;
	struct tlb_entry tlb[2][TLB_SIZE]; /* [0] supervisor, [1] user */
	struct cpu_block_cache *cache;

	/* Shared among the vCPUs of a VM: which guest-physical pages hold decoded
	 * code (one byte each, atomic), and their write generation. */
	struct cpu_code_map *code_map;

	const struct cpu_env *env;
	void *env_ctx;
	uint32_t apic_id;
};

/*
 * Lifecycle (run.c). cpu_init sets the state of a processor after RESET
 * (real mode, CS:IP = f000:fff0); the monitor then sets the boot state it
 * wants. code_map is shared by all vCPUs of one VM (cpu_code_map_new).
 */
struct cpu_code_map *cpu_code_map_new(const struct guest_mem *mem);
void cpu_code_map_free(struct cpu_code_map *map);
int cpu_init(struct cpu *cpu, const struct guest_mem *mem, struct cpu_code_map *map,
	     const struct cpu_env *env, void *env_ctx, uint32_t apic_id);
void cpu_destroy(struct cpu *cpu);
void cpu_reset(struct cpu *cpu); /* RESET / INIT state */
/* Start-up IPI: real mode at vector << 12. */
void cpu_sipi(struct cpu *cpu, uint8_t vector);

/* Runs until an exit or `budget` instructions; returns enum cpu_exit. */
enum cpu_exit cpu_run(struct cpu *cpu, uint64_t budget);

/* Other threads: make cpu_run() return soon / look for an interrupt. */
void cpu_kick(struct cpu *cpu, unsigned int ev);

/* The monitor wrote guest memory (DMA, loader): drop code decoded from it. */
void cpu_code_written(struct cpu_code_map *map, uint64_t gpa, uint64_t len);

/*
 * State changes the monitor and the handlers make through these, so the
 * derived mode, TLB and lazy flags stay right.
 */
uint64_t cpu_get_rflags(struct cpu *cpu);
void cpu_set_rflags(struct cpu *cpu, uint64_t rflags);
void cpu_update_mode(struct cpu *cpu);
void cpu_tlb_flush(struct cpu *cpu, bool include_global);
void cpu_tlb_flush_page(struct cpu *cpu, uint64_t lin);

/*
 * Faults, from any handler or memory access: records the exception and
 * longjmps to the run loop, which restores RIP to the faulting instruction
 * and delivers it. Traps (int n, int3, into) go through cpu_raise_trap,
 * which delivers with RIP = next_rip.
 */
_Noreturn void cpu_fault(struct cpu *cpu, int vector, uint32_t error_code);
_Noreturn void cpu_fault_pf(struct cpu *cpu, uint64_t lin, uint32_t error_code);
_Noreturn void cpu_raise_trap(struct cpu *cpu, int vector);
/* An instruction the CPU cannot run: CPU_EXIT_ERROR with the reason. */
_Noreturn void cpu_unimplemented(struct cpu *cpu, const char *what);

/* Register dump for crash reports (stderr). */
void cpu_dump(const struct cpu *cpu);

#endif
