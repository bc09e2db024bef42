#include "vmm/x86/syscall_fixup.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "core/log.h"
#include "vmm/x86/emulate_mmu.h"

#define MSR_STAR 0xc0000081u
#define MSR_LSTAR 0xc0000082u
#define MSR_FMASK 0xc0000084u
#define EFER_LMA (1ull << 10)
#define INT3 0xcc

static int get_msr(int fd, uint32_t index, uint64_t *value)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m = {.hdr.nmsrs = 1, .e.index = index};

	if (ioctl(fd, KVM_GET_MSRS, &m) != 1)
		return -EIO;
	*value = m.e.data;
	return 0;
}

static struct mmu_mode mode_of(const struct kvm_sregs *s)
{
	return (struct mmu_mode){.cr0 = s->cr0, .cr3 = s->cr3, .cr4 = s->cr4, .efer = s->efer,
				 .cpl = s->cs.dpl};
}

/* Reads len bytes at guest-virtual la as the kernel would (supervisor), page by page. */
static int read_virt(const struct guest_mem *mem, const struct mmu_mode *mode, uint64_t la,
		     void *buf, size_t len)
{
	uint8_t *out = buf;

	while (len) {
		size_t chunk = 4096 - (la & 4095);
		uint64_t gpa;
		uint32_t pf;
		const uint8_t *src;

		if (chunk > len)
			chunk = len;
		if (mmu_translate(mem, mode, la, MMU_IMPLICIT_SV, &gpa, &pf))
			return -EFAULT;
		src = gmem_ptr(mem, gpa, chunk);
		if (!src)
			return -EFAULT;
		memcpy(out, src, chunk);
		out += chunk;
		la += chunk;
		len -= chunk;
	}
	return 0;
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

/* How long the instruction at the handler is, when ember can step over it; 0 if not. */
static uint8_t coverable(const uint8_t *b)
{
	static const uint8_t endbr64[4] = {0xf3, 0x0f, 0x1e, 0xfa};

	if (b[0] == 0x90)
		return 1;
	if (!memcmp(b, endbr64, sizeof(endbr64)))
		return 4;
	return 0;
}

static void unpatch(struct syscall_fixup *f, const struct guest_mem *mem)
{
	uint8_t *p = f->pf_entry ? gmem_ptr(mem, f->pf_gpa, 1) : NULL;

	if (p && *p == INT3)
		*p = f->orig;
	f->pf_entry = 0;
}

void syscall_fixup_track(struct syscall_fixup *f, int vcpu_fd, const struct guest_mem *mem,
			 uint32_t vcpu_id)
{
	struct kvm_sregs s;
	struct mmu_mode mode;
	uint8_t gate[16], head[4], *p;
	uint64_t entry, gpa;
	uint32_t pf;

	if (!f->on || f->exits++ % SYSCALL_FIXUP_RECHECK)
		return;
	if (ioctl(vcpu_fd, KVM_GET_SREGS, &s) || !(s.efer & EFER_LMA) || s.idt.limit < 14 * 16 + 15)
		return;
	mode = mode_of(&s);
	if (read_virt(mem, &mode, s.idt.base + 14 * 16, gate, sizeof(gate)))
		return;
	entry = (uint64_t)gate[0] | (uint64_t)gate[1] << 8 | (uint64_t)gate[6] << 16 |
		(uint64_t)gate[7] << 24 | (uint64_t)gate[8] << 32 | (uint64_t)gate[9] << 40 |
		(uint64_t)gate[10] << 48 | (uint64_t)gate[11] << 56;
	if (!(gate[5] & 0x80) || entry == f->pf_entry)
		return;
	if (mmu_translate(mem, &mode, entry, MMU_IMPLICIT_SV, &gpa, &pf))
		return;
	p = gmem_ptr(mem, gpa, 1);
	if (!p || read_virt(mem, &mode, entry, head, sizeof(head)))
		return;
	if (head[0] == INT3) /* another vCPU's patch (the IDT is shared) */
		return;
	if (!coverable(head)) {
		if (!f->warned)
			log_warn("vcpu %u: the guest's page-fault handler at 0x%llx does not start "
				 "with nop or endbr64: user-mode syscalls cannot be finished on "
				 "this host",
				 vcpu_id, (unsigned long long)entry);
		f->warned = true;
		return;
	}
	unpatch(f, mem);
	f->orig = head[0];
	f->skip = coverable(head);
	f->pf_entry = entry;
	f->pf_gpa = gpa;
	*p = INT3;
}

/* The int3 at the handler's first byte, from any vCPU: it is in guest RAM, not in f. */
static bool ours(const struct guest_mem *mem, const struct kvm_sregs *s, uint64_t rip,
		 uint8_t *skip)
{
	struct mmu_mode mode = mode_of(s);
	uint8_t gate[16], b[5];
	uint64_t entry;

	if (s->idt.limit < 14 * 16 + 15 ||
	    read_virt(mem, &mode, s->idt.base + 14 * 16, gate, sizeof(gate)))
		return false;
	entry = (uint64_t)gate[0] | (uint64_t)gate[1] << 8 | (uint64_t)gate[6] << 16 |
		(uint64_t)gate[7] << 24 | (uint64_t)gate[8] << 32 | (uint64_t)gate[9] << 40 |
		(uint64_t)gate[10] << 48 | (uint64_t)gate[11] << 56;
	if (rip != entry || read_virt(mem, &mode, rip, b, sizeof(b)) || b[0] != INT3)
		return false;
	/* What the int3 covers: a nop, or the first byte of endbr64. */
	*skip = (b[1] == 0x0f && b[2] == 0x1e && b[3] == 0xfa) ? 4 : 1;
	return true;
}

int syscall_fixup_emulation_exit(struct syscall_fixup *f, int vcpu_fd,
				 const struct guest_mem *mem)
{
	struct syscall_fixup_frame fr;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct mmu_mode mode;
	uint64_t lstar, star, fmask;
	uint8_t skip;

	if (!f->on)
		return 0;
	if (ioctl(vcpu_fd, KVM_GET_REGS, &regs) || ioctl(vcpu_fd, KVM_GET_SREGS, &sregs))
		return -errno;
	if (!ours(mem, &sregs, regs.rip, &skip))
		return 0;
	mode = mode_of(&sregs);
	if (read_virt(mem, &mode, regs.rsp, &fr, sizeof(fr)) || get_msr(vcpu_fd, MSR_LSTAR, &lstar))
		return -EIO;
	if (syscall_fixup_is_half_syscall(&fr, lstar)) {
		if (get_msr(vcpu_fd, MSR_STAR, &star) || get_msr(vcpu_fd, MSR_FMASK, &fmask))
			return -EIO;
		syscall_fixup_apply(&regs, &sregs, &fr, lstar, star, fmask);
		if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs))
			return -errno;
		f->fixed++;
	} else {
		regs.rip += skip; /* an ordinary fault: past what the int3 covers */
	}
	return ioctl(vcpu_fd, KVM_SET_REGS, &regs) ? -errno : 1;
}
