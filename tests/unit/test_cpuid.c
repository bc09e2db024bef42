#include <criterion/criterion.h>
#include <stdlib.h>

#include "vmm/x86/cpuid.h"

/* A host-like table: AMD-style leaves plus leaf 0xB, as KVM reports them. */
static struct kvm_cpuid2 *fake_supported(void)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 8 * sizeof(struct kvm_cpuid_entry2));
	struct kvm_cpuid_entry2 *e = c->entries;

	e[0] = (struct kvm_cpuid_entry2){.function = 0, .eax = 0xd};
	e[1] = (struct kvm_cpuid_entry2){.function = 1, .ebx = 0x00020800, .ecx = 0x7ed8320b,
					 .edx = 0x178bfbff};
	e[2] = (struct kvm_cpuid_entry2){.function = 0xb, .index = 0,
					 .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .ebx = 2};
	e[3] = (struct kvm_cpuid_entry2){.function = 0xb, .index = 1,
					 .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .ebx = 64};
	e[4] = (struct kvm_cpuid_entry2){.function = 0x80000000, .eax = 0x8000001e};
	e[5] = (struct kvm_cpuid_entry2){.function = 0x80000008, .eax = 0x3030, .ecx = 0x703f};
	e[6] = (struct kvm_cpuid_entry2){.function = 0x8000001e, .eax = 7, .ebx = 0x107};
	e[7] = (struct kvm_cpuid_entry2){.function = 0x80000001, .edx = 0x2fd3fbff};
	c->nent = 8;
	return c;
}

static const struct kvm_cpuid_entry2 *get(const struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == idx)
			return &c->entries[i];
	return NULL;
}

Test(cpuid, id_shift)
{
	cr_assert_eq(cpuid_id_shift(1), 0);
	cr_assert_eq(cpuid_id_shift(2), 1);
	cr_assert_eq(cpuid_id_shift(3), 2);
	cr_assert_eq(cpuid_id_shift(4), 2);
	cr_assert_eq(cpuid_id_shift(254), 8);
}

Test(cpuid, each_vcpu_sees_its_apic_id_and_the_package_size)
{
	struct kvm_cpuid2 *base = fake_supported();

	for (uint32_t id = 0; id < 6; id++) {
		struct kvm_cpuid2 *c = cpuid_for_vcpu(base, id, 6);
		const struct kvm_cpuid_entry2 *l1 = get(c, 1, 0), *b0 = get(c, 0xb, 0),
					      *b1 = get(c, 0xb, 1), *b2 = get(c, 0xb, 2);

		cr_assert_eq(l1->ebx >> 24, id);
		cr_assert_eq((l1->ebx >> 16) & 0xff, 8, "logical count rounds up to 2^shift");
		cr_assert_eq(l1->ebx & 0xffff, 0x0800, "clflush size kept");
		cr_assert(l1->edx & (1u << 28), "HTT set for SMP");
		cr_assert(l1->ecx & (1u << 31), "hypervisor bit");
		cr_assert_eq(b0->ebx, 1, "one thread per core");
		cr_assert_eq(b0->edx, id);
		cr_assert_eq((b0->ecx >> 8) & 0xff, 1, "SMT level");
		cr_assert_eq(b1->eax, 3);
		cr_assert_eq(b1->ebx, 6, "six cores");
		cr_assert_eq((b1->ecx >> 8) & 0xff, 2, "core level");
		cr_assert_eq(b2->ecx >> 8 & 0xff, 0, "no further level");
		cr_assert_eq(get(c, 0x80000008, 0)->ecx & 0xff, 5);
		cr_assert_eq((get(c, 0x80000008, 0)->ecx >> 12) & 0xf, 3);
		cr_assert_eq(get(c, 0x8000001e, 0)->eax, id);
		free(c);
	}
	free(base);
}

Test(cpuid, one_gib_pages_are_hidden)
{
	struct kvm_cpuid2 *base = fake_supported();
	struct kvm_cpuid2 *c = cpuid_for_vcpu(base, 0, 1);

	cr_assert_not(get(c, 0x80000001, 0)->edx & (1u << 26));
	cr_assert_eq(get(c, 0x80000001, 0)->edx, 0x2fd3fbff & ~(1u << 26), "other bits kept");
	free(c);
	free(base);
}

Test(cpuid, single_vcpu_has_no_htt)
{
	struct kvm_cpuid2 *base = fake_supported();
	struct kvm_cpuid2 *c = cpuid_for_vcpu(base, 0, 1);

	cr_assert_not(get(c, 1, 0)->edx & (1u << 28));
	cr_assert_eq((get(c, 1, 0)->ebx >> 16) & 0xff, 1);
	cr_assert_eq(get(c, 0xb, 1)->ebx, 1);
	free(c);
	free(base);
}
