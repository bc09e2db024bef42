#include "vmm/x86/cpu_boot.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/vcpu.h"
#include "vmm/x86/layout.h"

#define CR0_PE 0x1ULL
#define CR0_ET 0x10ULL
#define CR0_NE 0x20ULL
#define CR0_PG 0x80000000ULL
#define CR4_PAE 0x20ULL
#define EFER_LME 0x100ULL
#define EFER_LMA 0x400ULL

#define PTE_P 0x1ULL
#define PTE_RW 0x2ULL
#define PTE_PS 0x80ULL

/* Descriptor from access flags (byte 5 + flags nibble), base and limit. */
static uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
	return ((uint64_t)(base & 0xff000000) << 32) | ((uint64_t)(flags & 0xf0ff) << 40) |
	       ((uint64_t)(limit & 0xf0000) << 32) | ((uint64_t)(base & 0x00ffffff) << 16) |
	       (uint64_t)(limit & 0xffff);
}

static struct kvm_segment seg_from_gdt(uint64_t d, uint16_t sel)
{
	struct kvm_segment s = {
		.base = ((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24),
		.limit = (uint32_t)((d & 0xffff) | (((d >> 48) & 0xf) << 16)),
		.selector = sel,
		.type = (d >> 40) & 0xf,
		.present = (d >> 47) & 1,
		.dpl = (d >> 45) & 3,
		.db = (d >> 54) & 1,
		.s = (d >> 44) & 1,
		.l = (d >> 53) & 1,
		.g = (d >> 55) & 1,
	};

	if (s.g)
		s.limit = (s.limit << 12) | 0xfff;
	return s;
}

static void gdt_build(uint64_t gdt[5], bool long_mode)
{
	gdt[0] = 0;
	gdt[1] = 0;
	gdt[2] = gdt_entry(long_mode ? 0xa09b : 0xc09b, 0, 0xfffff); /* code */
	gdt[3] = gdt_entry(0xc093, 0, 0xfffff);			       /* data */
	gdt[4] = gdt_entry(0x008b, 0, 0x67);			       /* busy TSS */
}

int cpu_boot_tables(const struct guest_mem *mem, bool long_mode)
{
	uint64_t gdt[5];
	uint64_t *pml4, *pdpt, *pd;

	gdt_build(gdt, long_mode);
	if (gmem_write(mem, LAYOUT_GDT, gdt, sizeof(gdt)))
		return -EFAULT;
	if (!long_mode)
		return 0;
	pml4 = gmem_ptr(mem, LAYOUT_PML4, 4096);
	pdpt = gmem_ptr(mem, LAYOUT_PDPT, 4096);
	pd = gmem_ptr(mem, LAYOUT_PD, 4 * 4096);
	if (!pml4 || !pdpt || !pd)
		return -EFAULT;
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = LAYOUT_PDPT | PTE_P | PTE_RW;
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (LAYOUT_PD + i * 4096) | PTE_P | PTE_RW;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | PTE_P | PTE_RW | PTE_PS;
	return 0;
}

int cpu_boot_regs(struct vcpu *vcpu, bool long_mode, uint64_t entry, uint64_t boot_info,
		  uint32_t eax)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = {.rflags = 0x2, .rip = entry, .rax = eax};
	uint64_t gdt[5];

	int ret = vcpu_get_sregs(vcpu, &sregs);

	if (ret)
		return ret;
	gdt_build(gdt, long_mode);
	sregs.gdt.base = LAYOUT_GDT;
	sregs.gdt.limit = sizeof(gdt) - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cs = seg_from_gdt(gdt[2], BOOT_GDT_CS);
	sregs.ds = seg_from_gdt(gdt[3], BOOT_GDT_DS);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.tr = seg_from_gdt(gdt[4], BOOT_GDT_TSS);
	sregs.cr0 = CR0_PE | CR0_ET | CR0_NE;
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (long_mode) {
		sregs.cr0 |= CR0_PG;
		sregs.cr3 = LAYOUT_PML4;
		sregs.cr4 = CR4_PAE;
		sregs.efer = EFER_LME | EFER_LMA;
		regs.rsi = boot_info;
	} else {
		regs.rbx = boot_info;
	}
	ret = vcpu_set_sregs(vcpu, &sregs);
	return ret ? ret : vcpu_set_regs(vcpu, &regs);
}

#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

static void lapic_set_delivery(struct kvm_lapic_state *l, int reg, uint32_t mode)
{
	uint32_t v;

	memcpy(&v, &l->regs[reg], 4);
	v = (v & ~0x700u) | (mode << 8);
	memcpy(&l->regs[reg], &v, 4);
}

int cpu_init_common(int vcpu_fd)
{
	struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};
	struct kvm_lapic_state lapic;

	if (ioctl(vcpu_fd, KVM_SET_FPU, &fpu))
		return -errno;
	if (ioctl(vcpu_fd, KVM_GET_LAPIC, &lapic))
		return -errno;
	/* As the BIOS leaves them: the 8259 through LINT0, NMIs on LINT1. */
	lapic_set_delivery(&lapic, APIC_LVT0, APIC_MODE_EXTINT);
	lapic_set_delivery(&lapic, APIC_LVT1, APIC_MODE_NMI);
	if (ioctl(vcpu_fd, KVM_SET_LAPIC, &lapic))
		return -errno;
	return 0;
}
