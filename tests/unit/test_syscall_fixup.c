#include <criterion/criterion.h>

#include "vmm/x86/emulate_mmu.h"
#include "vmm/x86/syscall_fixup.h"

#define LSTAR 0xffffffff81c00080ull
/* Linux: STAR[47:32] = __KERNEL_CS (0x10), STAR[63:48] = __USER32_CS (0x23). */
#define STAR (0x0023ull << 48 | 0x0010ull << 32)
#define FMASK 0x47700ull /* TF DF IF IOPL NT AC, as Linux sets it */

static const struct syscall_fixup_frame half = {
    .error = PF_PRESENT | PF_USER | PF_FETCH, .rip = LSTAR, .cs = 0x33, .rflags = 0x246,
    .rsp = 0x7ffc8e50e270, .ss = 0x2b};

Test(syscall_fixup, user_fetch_at_lstar_is_a_half_syscall)
{
	struct syscall_fixup_frame f = half;

	cr_assert(syscall_fixup_is_half_syscall(&f, LSTAR));
	f.cs = 0x10;
	cr_assert_not(syscall_fixup_is_half_syscall(&f, LSTAR), "a kernel-mode fault is not");
	f = half;
	f.error = PF_PRESENT | PF_USER;
	cr_assert(syscall_fixup_is_half_syscall(&f, LSTAR), "without NX there is no fetch bit");
	f.error = PF_PRESENT | PF_FETCH;
	cr_assert_not(syscall_fixup_is_half_syscall(&f, LSTAR), "a supervisor access is not");
	f = half;
	f.rip = LSTAR + 3;
	cr_assert_not(syscall_fixup_is_half_syscall(&f, LSTAR), "elsewhere is not");
	cr_assert_not(syscall_fixup_is_half_syscall(&half, 0), "no LSTAR yet");
}

Test(syscall_fixup, apply_enters_the_kernel_as_syscall_would)
{
	struct kvm_regs r = {.rip = 0xffffffff81c00be0, .rsp = 0xfffffe0000002f58,
			     .rcx = 0x49641b, .r11 = 0x246, .rflags = 0x2};
	struct kvm_sregs s = {0};

	syscall_fixup_apply(&r, &s, &half, LSTAR, STAR, FMASK);
	cr_assert_eq(r.rip, LSTAR);
	cr_assert_eq(r.rsp, half.rsp, "syscall keeps the user's stack");
	cr_assert_eq(r.rflags, 0x46ull, "IF (an FMASK bit) cleared, ZF and PF kept");
	cr_assert_eq(r.rcx, 0x49641bull, "RCX (return RIP) is left as the CPU set it");
	cr_assert_eq(r.r11, 0x246ull);
	cr_assert_eq(s.cs.selector, 0x10);
	cr_assert_eq(s.cs.dpl, 0);
	cr_assert(s.cs.l && s.cs.present && s.cs.s);
	cr_assert_eq(s.cs.type, 11);
	cr_assert_eq(s.ss.selector, 0x18);
	cr_assert_eq(s.ss.dpl, 0);
	cr_assert_eq(s.ss.type, 3);
}

Test(syscall_fixup, no_op_lengths)
{
	static const struct {
		uint8_t b[12];
		unsigned int len;
	} cases[] = {
	    {{0x90}, 1},
	    {{0x66, 0x90}, 2},
	    {{0x0f, 0x1f, 0x00}, 3},			     /* nopl (%rax): Linux's NOP3 */
	    {{0x0f, 0x1f, 0x40, 0x00}, 4},		     /* nopl 0(%rax) */
	    {{0x0f, 0x1f, 0x44, 0x00, 0x00}, 5},	     /* nopl 0(%rax,%rax,1) */
	    {{0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00}, 6},	     /* nopw 0(%rax,%rax,1) */
	    {{0x0f, 0x1f, 0x80, 0, 0, 0, 0}, 7},	     /* nopl 0L(%rax) */
	    {{0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0}, 8},	     /* nopl 0L(%rax,%rax,1) */
	    {{0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0}, 10}, /* cs nopw 0L(...) */
	    {{0xf3, 0x0f, 0x1e, 0xfa}, 4},		     /* endbr64 */
	    {{0x0f, 0x01, 0xca}, 0},			     /* clac: not a no-op */
	    {{0xfc}, 0},				     /* cld */
	    {{0x0f, 0x1f, 0x08}, 0},			     /* 0f 1f /1 is not nop */
	    {{0x6a, 0x0e}, 0},				     /* push $14 */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_assert_eq(syscall_fixup_nop_len(cases[i].b, sizeof(cases[i].b)), cases[i].len,
			     "case %zu", i);
	/* A no-op cut short by the buffer is not stepped over. */
	cr_assert_eq(syscall_fixup_nop_len(cases[7].b, 5), 0);
}
