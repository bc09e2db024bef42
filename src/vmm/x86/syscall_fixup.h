/*
 * Finishes `syscall` from guest CPL 3 on hosts whose KVM gets it half
 * right. On the software nested KVM of HOST-KVM.md (PVM), a `syscall`
 * executed by guest user code sets RCX, R11 and RIP = IA32_LSTAR but
 * leaves the vCPU at CPL 3: the kernel's entry code is then fetched in
 * user mode, a page fault (user, instruction fetch) is delivered at LSTAR,
 * and the process dies. No exit reaches the monitor on the way, and this
 * KVM ignores guest-debug breakpoints, so ember watches where such faults
 * arrive: it puts an `int3` on the first byte of the guest's page-fault
 * handler (IDT vector 14) when the instruction there is a no-op (Linux's
 * ASM_CLAC without SMAP, which ember turns off on such hosts, or an
 * `endbr64`). The kernel rewrites its own text while it boots
 * (alternatives), so the patch is checked again with the IDT and put back
 * when the byte is no longer int3. KVM cannot run that int3 and exits; ember then either turns
 * the fault back into the syscall the user made (CS and SS from IA32_STAR
 * at CPL 0, RSP and RFLAGS from the fault frame, RFLAGS masked by
 * IA32_FMASK, RIP = LSTAR) or, for any other fault, steps over the
 * instruction it covered.
 *
 * The IDT can change (Linux switches from its early one), so vector 14 is
 * read again every SYSCALL_FIXUP_RECHECK exits and the patch follows it.
 */
#ifndef EMBER_VMM_X86_SYSCALL_FIXUP_H
#define EMBER_VMM_X86_SYSCALL_FIXUP_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/memory.h"

#define SYSCALL_FIXUP_RECHECK 256

/* One per VM: the IDT, and so the patch, is shared by its vCPUs. */
struct syscall_fixup {
	bool on;
	pthread_mutex_t lock; /* covers the fields below */
	uint64_t pf_entry;    /* guest-virtual address patched; 0 = none */
	uint64_t pf_gpa;      /* and where that byte is in guest RAM */
	uint8_t orig;	      /* the byte the int3 replaced */
	uint8_t skip;	      /* length of the no-op instruction it starts */
	bool warned;
	uint64_t fixed; /* syscalls finished */
};

void syscall_fixup_init(struct syscall_fixup *f, bool on);
void syscall_fixup_destroy(struct syscall_fixup *f);

/*
 * Length of the instruction at b (n bytes) when it is one ember may step
 * over: a no-op (nop, the multi-byte nopl/nopw forms, endbr64); 0 if not.
 */
unsigned int syscall_fixup_nop_len(const uint8_t *b, size_t n);

/* The fault frame a #PF pushes in long mode, lowest address first. */
struct syscall_fixup_frame {
	uint64_t error, rip, cs, rflags, rsp, ss;
};

/* Whether a #PF frame is a half-done syscall: a user-mode fault with RIP = LSTAR. */
bool syscall_fixup_is_half_syscall(const struct syscall_fixup_frame *fr, uint64_t lstar);

/* Registers as the CPU would leave them after the user's `syscall` (SDM: SYSCALL). */
void syscall_fixup_apply(struct kvm_regs *regs, struct kvm_sregs *sregs,
			 const struct syscall_fixup_frame *fr, uint64_t lstar, uint64_t star,
			 uint64_t fmask);

/*
 * After an exit, every SYSCALL_FIXUP_RECHECK of them (*exits counts this
 * vCPU's): patches the current #PF handler, or moves the patch to it.
 */
void syscall_fixup_track(struct syscall_fixup *f, int vcpu_fd, const struct guest_mem *mem,
			 uint32_t *exits);

/*
 * KVM could not emulate an instruction: when it is ember's int3, handles
 * the fault as above and returns 1; 0 when it is not ours; -errno when the
 * vCPU could not be read or written.
 */
int syscall_fixup_emulation_exit(struct syscall_fixup *f, int vcpu_fd,
				 const struct guest_mem *mem);

#endif
