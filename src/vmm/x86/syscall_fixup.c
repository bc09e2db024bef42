#include "vmm/x86/syscall_fixup.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "core/log.h"
#include "vmm/x86/emulate_mmu.h"
#include "vmm/x86/msr.h"

#define MSR_STAR 0xc0000081u
#define MSR_LSTAR 0xc0000082u
#define MSR_FMASK 0xc0000084u
#define EFER_LMA (1ull << 10)
#define INT3 0xcc

static struct mmu_mode mode_of(const struct kvm_sregs *s)
{
	return (struct mmu_mode){.cr0 = s->cr0, .cr3 = s->cr3, .cr4 = s->cr4, .efer = s->efer,
				 .cpl = s->cs.dpl};
}

bool syscall_fixup_is_half_syscall(const struct syscall_fixup_frame *fr, uint64_t lstar)
{
	/* No PF_FETCH test: the CPU reports it only with EFER.NXE set. */
	return lstar && fr->rip == lstar && (fr->cs & 3) == 3 && (fr->error & PF_USER);
}

void syscall_fixup_apply(struct kvm_regs *regs, struct kvm_sregs *sregs,
			 const struct syscall_fixup_frame *fr, uint64_t lstar, uint64_t star,
			 uint64_t fmask)
{
	uint16_t cs = (uint16_t)((star >> 32) & 0xfffc);

	sregs->cs = (struct kvm_segment){.selector = cs, .limit = 0xffffffff, .type = 11,
					 .present = 1, .s = 1, .l = 1, .g = 1};
	sregs->ss = (struct kvm_segment){.selector = (uint16_t)(cs + 8), .limit = 0xffffffff,
					 .type = 3, .present = 1, .s = 1, .db = 1, .g = 1};
	/* RCX and R11 were set by the half of syscall that was done. */
	regs->rip = lstar;
	regs->rsp = fr->rsp;
	regs->rflags = (fr->rflags & ~fmask) | 0x2;
}

void syscall_fixup_init(struct syscall_fixup *f, bool on)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	f->on = on;
}

void syscall_fixup_destroy(struct syscall_fixup *f)
{
	pthread_mutex_destroy(&f->lock);
}

unsigned int syscall_fixup_nop_len(const uint8_t *b, size_t n)
{
	static const uint8_t endbr64[4] = {0xf3, 0x0f, 0x1e, 0xfa};
	unsigned int i = 0, mod, rm, len;

	if (n >= 4 && !memcmp(b, endbr64, sizeof(endbr64)))
		return 4;
	/* Operand-size and CS prefixes, as in the kernel's long NOPs. */
	while (i < n && i < 4 && (b[i] == 0x66 || b[i] == 0x2e))
		i++;
	if (i < n && b[i] == 0x90)
		return i + 1;
	/* 0f 1f /0: nopl/nopw with a memory operand that is never accessed. */
	if (i + 2 >= n || b[i] != 0x0f || b[i + 1] != 0x1f || ((b[i + 2] >> 3) & 7) != 0)
		return 0;
	mod = b[i + 2] >> 6;
	rm = b[i + 2] & 7;
	len = i + 3;
	if (mod != 3 && rm == 4)
		len++; /* SIB */
	if (mod == 1)
		len += 1;
	else if (mod == 2 || (mod == 0 && rm == 5))
		len += 4;
	return len <= n ? len : 0;
}

static void unpatch(struct syscall_fixup *f, const struct guest_mem *mem)
{
	uint8_t *p = f->pf_entry ? gmem_ptr(mem, f->pf_gpa, 1) : NULL;

	if (p && *p == INT3)
		*p = f->orig;
	f->pf_entry = 0;
}

static uint64_t gate_offset(const uint8_t *g)
{
	return (uint64_t)g[0] | (uint64_t)g[1] << 8 | (uint64_t)g[6] << 16 | (uint64_t)g[7] << 24 |
	       (uint64_t)g[8] << 32 | (uint64_t)g[9] << 40 | (uint64_t)g[10] << 48 |
	       (uint64_t)g[11] << 56;
}

/* The #PF handler's address from the IDT; 0 when there is none to read. */
static uint64_t pf_handler(const struct guest_mem *mem, const struct kvm_sregs *s)
{
	struct mmu_mode mode = mode_of(s);
	uint8_t gate[16];

	if (!(s->efer & EFER_LMA) || s->idt.limit < 14 * 16 + 15 ||
	    mmu_read_sv(mem, &mode, s->idt.base + 14 * 16, gate, sizeof(gate)) || !(gate[5] & 0x80))
		return 0;
	return gate_offset(gate);
}

/* Called locked: patches the handler at entry when it starts with a no-op. */
static void patch(struct syscall_fixup *f, const struct guest_mem *mem,
		  const struct kvm_sregs *s, uint64_t entry)
{
	struct mmu_mode mode = mode_of(s);
	uint8_t head[16], *p;
	unsigned int len;
	uint64_t gpa;
	uint32_t pf;

	if (mmu_translate(mem, &mode, entry, MMU_IMPLICIT_SV, &gpa, &pf) ||
	    !(p = gmem_ptr(mem, gpa, 1)) || mmu_read_sv(mem, &mode, entry, head, sizeof(head)))
		return;
	if (head[0] == INT3)
		return; /* ours already, or the kernel's own text poke in progress */
	len = syscall_fixup_nop_len(head, sizeof(head));
	if (!len) {
		/* Debug only: Linux's early handler is such, and its real one comes later. */
		if (!f->warned)
			log_debug("syscall fixup: the page-fault handler at 0x%llx does not start "
				  "with a no-op; not patched",
				  (unsigned long long)entry);
		f->warned = true;
		return;
	}
	if (entry != f->pf_entry)
		unpatch(f, mem);
	f->orig = head[0];
	f->skip = (uint8_t)len;
	f->pf_entry = entry;
	f->pf_gpa = gpa;
	*p = INT3;
	log_debug("syscall fixup: int3 on the page-fault handler at 0x%llx (covers %u bytes)",
		  (unsigned long long)entry, len);
}

/* Called locked: false when the guest rewrote the byte (its alternatives run after the IDT is set). */
static bool still_patched(const struct syscall_fixup *f, const struct guest_mem *mem)
{
	const uint8_t *p = gmem_ptr(mem, f->pf_gpa, 1);

	return p && *p == INT3;
}

void syscall_fixup_track(struct syscall_fixup *f, int vcpu_fd, const struct guest_mem *mem,
			 uint32_t *exits)
{
	struct kvm_sregs s;
	uint64_t entry;

	if (!f->on || (*exits)++ % SYSCALL_FIXUP_RECHECK)
		return;
	if (ioctl(vcpu_fd, KVM_GET_SREGS, &s))
		return;
	entry = pf_handler(mem, &s);
	log_debug("syscall fixup: IDT 0x%llx, #PF handler 0x%llx", (unsigned long long)s.idt.base,
		  (unsigned long long)entry);
	pthread_mutex_lock(&f->lock);
	if (entry && (entry != f->pf_entry || !still_patched(f, mem)))
		patch(f, mem, &s, entry);
	pthread_mutex_unlock(&f->lock);
}

int syscall_fixup_emulation_exit(struct syscall_fixup *f, int vcpu_fd,
				 const struct guest_mem *mem)
{
	struct syscall_fixup_frame fr;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct mmu_mode mode;
	uint64_t lstar, star, fmask, entry;
	const uint8_t *p;
	uint8_t skip;

	if (!f->on)
		return 0;
	if (ioctl(vcpu_fd, KVM_GET_REGS, &regs) || ioctl(vcpu_fd, KVM_GET_SREGS, &sregs))
		return -errno;
	pthread_mutex_lock(&f->lock);
	entry = f->pf_entry;
	skip = f->skip;
	p = entry ? gmem_ptr(mem, f->pf_gpa, 1) : NULL;
	pthread_mutex_unlock(&f->lock);
	log_debug("syscall fixup: emulation exit at 0x%llx (patch at 0x%llx)",
		  (unsigned long long)regs.rip, (unsigned long long)entry);
	if (!entry || regs.rip != entry || !p || *p != INT3)
		return 0;
	mode = mode_of(&sregs);
	if (mmu_read_sv(mem, &mode, regs.rsp, &fr, sizeof(fr)) || msr_get(vcpu_fd, MSR_LSTAR, &lstar))
		return -EIO;
	if (syscall_fixup_is_half_syscall(&fr, lstar)) {
		if (msr_get(vcpu_fd, MSR_STAR, &star) || msr_get(vcpu_fd, MSR_FMASK, &fmask))
			return -EIO;
		syscall_fixup_apply(&regs, &sregs, &fr, lstar, star, fmask);
		if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs))
			return -errno;
		__atomic_add_fetch(&f->fixed, 1, __ATOMIC_RELAXED);
	} else {
		regs.rip += skip; /* an ordinary fault: past the no-op the int3 covers */
	}
	return ioctl(vcpu_fd, KVM_SET_REGS, &regs) ? -errno : 1;
}
