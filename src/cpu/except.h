/*
 * Exception and interrupt delivery (except.c): the IDT in real, protected
 * and long mode, privilege changes through the TSS (and IST), error codes,
 * #DF on a fault while delivering, shutdown (triple fault) on a fault while
 * delivering #DF.
 *
 * Flow: a handler or memory access calls cpu_fault() (cpu.h), which records
 * exc_* in struct cpu and longjmps to cpu->fault_jmp in cpu_run() (run.c).
 * cpu_run() then calls cpu_exception_deliver(); a fault during delivery
 * longjmps to the same place again and cpu_exception_deliver() escalates.
 */
#ifndef EMBER_CPU_EXCEPT_H
#define EMBER_CPU_EXCEPT_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu/cpu.h"

enum deliver_kind {
	DELIVER_FAULT,	  /* return address: the faulting instruction (cpu->rip) */
	DELIVER_TRAP,	  /* int3, into, int1: return address cpu->next_rip */
	DELIVER_SOFT_INT, /* int n: gate DPL checked against CPL; next_rip */
	DELIVER_EXT,	  /* external interrupt or NMI: cpu->rip (between insns) */
};

/* Marks exc_vector for cpu_unimplemented(): cpu_run() returns CPU_EXIT_ERROR. */
#define EXC_UNIMPLEMENTED (-2)

/*
 * Delivers the exception recorded in cpu->exc_* (after the longjmp).
 * Returns false on a triple fault (cpu->exit_why filled): cpu_run() returns
 * CPU_EXIT_SHUTDOWN. May itself fault (and longjmp) while delivering.
 */
bool cpu_exception_deliver(struct cpu *cpu);

/* An external interrupt (vector from env->intr_ack) between instructions. */
void cpu_interrupt_deliver(struct cpu *cpu, uint8_t vector);
void cpu_nmi_deliver(struct cpu *cpu);

/* int n / int3 / into from handlers: kind DELIVER_SOFT_INT or DELIVER_TRAP. */
_Noreturn void cpu_raise_soft(struct cpu *cpu, int vector, enum deliver_kind kind);

#endif
