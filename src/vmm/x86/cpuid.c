#include "vmm/x86/cpuid.h"

#include <errno.h>
#include <stdbool.h>
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

/* ---- The software CPU's model: exactly what src/cpu implements. ---- */

#define SOFT_CPUID_ENTRIES 32

static void put(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx, bool indexed, uint32_t eax,
		uint32_t ebx, uint32_t ecx, uint32_t edx)
{
	struct kvm_cpuid_entry2 *e = &c->entries[c->nent++];

	memset(e, 0, sizeof(*e));
	e->function = fn;
	e->index = idx;
	e->flags = indexed ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
	e->eax = eax;
	e->ebx = ebx;
	e->ecx = ecx;
	e->edx = edx;
}

static uint32_t str4(const char *s)
{
	return (uint32_t)(uint8_t)s[0] | (uint32_t)(uint8_t)s[1] << 8 |
	       (uint32_t)(uint8_t)s[2] << 16 | (uint32_t)(uint8_t)s[3] << 24;
}

struct kvm_cpuid2 *cpuid_soft_model(void)
{
	static const char brand[49] = "ember software x86-64 CPU";
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + SOFT_CPUID_ENTRIES *
						       sizeof(struct kvm_cpuid_entry2));

	if (!c)
		return NULL;
	/* "GenuineIntel": Linux then takes the TSC and APIC timer rates from leaf 0x15. */
	put(c, 0, 0, false, 0x16, str4("Genu"), str4("ntel"), str4("ineI"));
	put(c, 1, 0, false, SOFT_CPUID_1_EAX, SOFT_CPUID_1_EBX, SOFT_CPUID_1_ECX,
	    SOFT_CPUID_1_EDX);
	put(c, 7, 0, true, 0, SOFT_CPUID_7_EBX, SOFT_CPUID_7_ECX, SOFT_CPUID_7_EDX);
	put(c, 0xb, 0, true, 0, 0, 0, 0); /* topology: cpuid_for_vcpu fills it */
	put(c, 0xd, 0, true, SOFT_CPUID_D0_EAX, SOFT_CPUID_D0_SIZE, SOFT_CPUID_D0_SIZE, 0);
	put(c, 0xd, 1, true, SOFT_CPUID_D1_EAX, 0, 0, 0);
	/* TSC = 25 MHz crystal * 40 = 1 GHz; the local APIC timer counts at the crystal rate. */
	put(c, 0x15, 0, false, 1, SOFT_TSC_HZ / SOFT_CRYSTAL_HZ, SOFT_CRYSTAL_HZ, 0);
	put(c, 0x16, 0, false, SOFT_TSC_HZ / 1000000, SOFT_TSC_HZ / 1000000,
	    SOFT_CRYSTAL_HZ / 1000000, 0);
	put(c, 0x80000000, 0, false, 0x80000008, 0, 0, 0);
	put(c, 0x80000001, 0, false, 0, 0, SOFT_CPUID_81_ECX, SOFT_CPUID_81_EDX);
	for (uint32_t i = 0; i < 3; i++) {
		uint32_t r[4];

		for (int j = 0; j < 4; j++)
			r[j] = str4(brand + 16 * i + 4 * j);
		put(c, 0x80000002 + i, 0, false, r[0], r[1], r[2], r[3]);
	}
	put(c, 0x80000007, 0, false, 0, 0, 0, 1u << 8); /* invariant TSC */
	put(c, 0x80000008, 0, false, 0x302e, 0, 0, 0);	/* 46 physical (as src/cpu checks), 48 linear bits */
	return c;
}

int cpuid_lookup(const struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx, uint32_t out[4])
{
	for (uint32_t i = 0; i < c->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function != fn)
			continue;
		if ((e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e->index != idx)
			continue;
		out[0] = e->eax;
		out[1] = e->ebx;
		out[2] = e->ecx;
		out[3] = e->edx;
		return 0;
	}
	out[0] = out[1] = out[2] = out[3] = 0;
	return -1;
}
