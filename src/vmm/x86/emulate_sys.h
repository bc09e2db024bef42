/*
 * The system instructions of the user-space completion (see emulate.h):
 * iret, sysret, swapgs, clac/stac, xgetbv, rdrand/rdseed, rd/wr fs/gs base,
 * rdpid. Called by emu_step() with
 * the prefixes and opcode decoded; each finishes the instruction or
 * reports the exception it raises.
 */
#ifndef EMBER_VMM_X86_EMULATE_SYS_H
#define EMBER_VMM_X86_EMULATE_SYS_H

#include "vmm/x86/emulate.h"

/* 0xcf: iret / iretd / iretq, in protected and long mode. */
enum emu_result emu_iret(struct emu_cpu *cpu, struct emu_insn *in);
/* 0x0f 0x07: sysret / sysretq. */
enum emu_result emu_sysret(struct emu_cpu *cpu, struct emu_insn *in);
/* 0x0f 0x01 (group 7): swapgs and xgetbv; the rest is left to KVM. */
enum emu_result emu_group7(struct emu_cpu *cpu, struct emu_insn *in);
/* 0x0f 0xc7 /6, /7 with a register operand: rdrand, rdseed. */
enum emu_result emu_rdrand(struct emu_cpu *cpu, struct emu_insn *in);

/* 0xf3 0x0f 0xae /0../3 with a register operand: rd/wr fs/gs base. */
enum emu_result emu_fsgsbase(struct emu_cpu *cpu, struct emu_insn *in);
/* 0xf3 0x0f 0xc7 /7 with a register operand: rdpid. */
enum emu_result emu_rdpid(struct emu_cpu *cpu, struct emu_insn *in);

#endif
