#include "vmm/x86/cpuid.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define CPUID_MAX_ENTRIES 512 /* room for the topology leaves we add */

struct kvm_cpuid2 *cpuid_get_supported(int kvm_fd)
{
	uint32_t nent = 128;

	for (;;) {
		struct kvm_cpuid2 *c =
			calloc(1, sizeof(*c) + nent * sizeof(struct kvm_cpuid_entry2));

		if (!c)
			return NULL;
		c->nent = nent;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		free(c);
		if (errno != E2BIG || nent >= CPUID_MAX_ENTRIES / 2)
			return NULL;
		nent *= 2;
	}
}

uint32_t cpuid_id_shift(uint32_t ncpus)
{
	uint32_t shift = 0;

	while ((1u << shift) < ncpus)
		shift++;
	return shift;
}

static struct kvm_cpuid_entry2 *find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function != fn)
			continue;
		if (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == idx)
			return e;
	}
	return NULL;
}

static void remove_leaf(struct kvm_cpuid2 *c, uint32_t fn)
{
	uint32_t out = 0;

	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function != fn)
			c->entries[out++] = c->entries[i];
	c->nent = out;
}

/*
 * Leaves 0xB and 0x1F: level 0 is SMT (one thread per core), level 1 the
 * cores of the package; every further subleaf is invalid. The subleaf
 * count is bounded by the table's capacity.
 */
static void set_topology_leaf(struct kvm_cpuid2 *c, uint32_t fn, uint32_t apic_id,
			      uint32_t ncpus)
{
	remove_leaf(c, fn);
	for (uint32_t sub = 0; sub < 3 && c->nent < CPUID_MAX_ENTRIES; sub++) {
		struct kvm_cpuid_entry2 *e = &c->entries[c->nent++];

		memset(e, 0, sizeof(*e));
		e->function = fn;
		e->index = sub;
		e->flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
		e->edx = apic_id;
		if (sub == 0) {
			e->eax = 0;
			e->ebx = 1;
			e->ecx = (1u << 8) | sub;
		} else if (sub == 1) {
			e->eax = cpuid_id_shift(ncpus);
			e->ebx = ncpus;
			e->ecx = (2u << 8) | sub;
		} else {
			e->ecx = sub;
		}
	}
}

struct kvm_cpuid2 *cpuid_for_vcpu(const struct kvm_cpuid2 *base, uint32_t apic_id, uint32_t ncpus)
{
	size_t size = sizeof(*base) + CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *c = calloc(1, size);
	struct kvm_cpuid_entry2 *e;
	uint32_t max_basic = 0, shift = cpuid_id_shift(ncpus);

	if (!c)
		return NULL;
	c->nent = base->nent < CPUID_MAX_ENTRIES ? base->nent : CPUID_MAX_ENTRIES;
	memcpy(c->entries, base->entries, c->nent * sizeof(struct kvm_cpuid_entry2));

	if ((e = find(c, 0, 0)))
		max_basic = e->eax;
	if ((e = find(c, 1, 0))) {
		uint32_t logical = ncpus > 1 ? (1u << shift) : 1;

		e->ebx = (apic_id << 24) | ((logical & 0xff) << 16) | (e->ebx & 0xffff);
		if (ncpus > 1)
			e->edx |= 1u << 28; /* HTT: the logical count field is valid */
		else
			e->edx &= ~(1u << 28);
		e->ecx |= 1u << 31; /* running under a hypervisor */
	}
	for (uint32_t sub = 0; sub < 8; sub++) {
		e = find(c, 4, sub);
		if (!e || !(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX))
			break;
		/* Cores per package - 1; each cache shared by one thread. */
		e->eax = (e->eax & 0x3fff) | (((1u << shift) - 1) << 26);
	}
	if (max_basic >= 0xb)
		set_topology_leaf(c, 0xb, apic_id, ncpus);
	if (max_basic >= 0x1f)
		set_topology_leaf(c, 0x1f, apic_id, ncpus);
	/*
	 * 1 GiB pages: software-nested KVM (PVM) shadows guest page tables with
	 * 4 KiB/2 MiB pages and faults on a 1 GiB PDPTE with a reserved-bit
	 * error, even though KVM_GET_SUPPORTED_CPUID offers the feature.
	 */
	if ((e = find(c, 0x80000001, 0)))
		e->edx &= ~(1u << 26);
	if ((e = find(c, 0x80000008, 0)))
		e->ecx = (e->ecx & ~0xf0ffu) | (shift << 12) | ((ncpus - 1) & 0xff);
	if ((e = find(c, 0x8000001e, 0))) {
		e->eax = apic_id;
		e->ebx = apic_id & 0xff; /* core id; one thread per core */
		e->ecx = 0;
	}
	return c;
}
