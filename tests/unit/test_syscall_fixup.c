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
