#include "vmm/x86/emulate_mmu.h"

#include <errno.h>
#include <string.h>

#define CR0_WP (1ULL << 16)
#define CR0_PG (1ULL << 31)
#define CR4_PSE (1ULL << 4)
#define CR4_PAE (1ULL << 5)
#define CR4_LA57 (1ULL << 12)
#define CR4_SMEP (1ULL << 20)
#define CR4_SMAP (1ULL << 21)
#define EFER_LMA (1ULL << 10)
#define EFER_NXE (1ULL << 11)

#define PTE_P (1ULL << 0)
#define PTE_RW (1ULL << 1)
#define PTE_US (1ULL << 2)
#define PTE_A (1ULL << 5)
#define PTE_D (1ULL << 6)
#define PTE_PS (1ULL << 7)
#define PTE_XD (1ULL << 63)
#define PTE_ADDR 0x000ffffffffff000ULL

/* What the walk gathered on its way down: permissions are ANDed (XD ORed). */
struct walk {
	bool rw, us, xd;
	uint64_t gpa;
	void *leaf; /* host pointer of the last entry, for the dirty bit */
	unsigned int leaf_size;
};

bool mmu_canonical(const struct mmu_mode *mode, uint64_t la)
{
	unsigned int bits = (mode->cr4 & CR4_LA57) ? 57 : 48;
	int64_t s = (int64_t)(la << (64 - bits)) >> (64 - bits);

	return (uint64_t)s == la;
}

/* Reads one entry of `size` bytes and sets its accessed bit (atomically: other vCPUs run). */
static int read_entry(const struct guest_mem *mem, uint64_t gpa, unsigned int size, uint64_t *e,
		      void **host)
{
	void *p = gmem_ptr(mem, gpa, size);

	if (!p)
		return -ENXIO;
	*host = p;
	if (size == 8)
		*e = __atomic_load_n((uint64_t *)p, __ATOMIC_ACQUIRE);
	else
		*e = __atomic_load_n((uint32_t *)p, __ATOMIC_ACQUIRE);
	return 0;
}

static void set_bits(void *host, unsigned int size, uint64_t bits)
{
	if (size == 8)
		__atomic_fetch_or((uint64_t *)host, bits, __ATOMIC_ACQ_REL);
	else
		__atomic_fetch_or((uint32_t *)host, (uint32_t)bits, __ATOMIC_ACQ_REL);
}

static void walk_account(struct walk *w, uint64_t e, bool has_rw_us)
{
	if (has_rw_us) {
		w->rw = w->rw && (e & PTE_RW);
		w->us = w->us && (e & PTE_US);
	}
	w->xd = w->xd || (e & PTE_XD);
}

/*
 * Long mode and PAE: 8-byte entries. `levels` is 5, 4 or 3 (PAE: the top
 * level is the four PDPTEs, which carry no RW/US bits).
 */
static int walk64(const struct guest_mem *mem, const struct mmu_mode *mode, uint64_t la,
		  unsigned int levels, struct walk *w, uint32_t *pf)
{
	bool pae = levels == 3;
	uint64_t table = pae ? (mode->cr3 & 0xffffffe0ULL) : (mode->cr3 & PTE_ADDR);

	for (unsigned int lvl = levels; lvl >= 1; lvl--) {
		unsigned int shift = 12 + 9 * (lvl - 1);
		uint64_t idx = pae && lvl == 3 ? (la >> 30) & 3 : (la >> shift) & 511;
		uint64_t e;
		void *host;

		if (read_entry(mem, table + idx * 8, 8, &e, &host))
			return -ENXIO;
		if (!(e & PTE_P)) {
			*pf = 0;
			return -EFAULT;
		}
		if (pae && lvl == 3) {
			table = e & PTE_ADDR;
			continue;
		}
		walk_account(w, e, true);
		set_bits(host, 8, PTE_A);
		if (lvl > 1 && (e & PTE_PS)) {
			uint64_t page_mask;

			if (lvl > 3) { /* PS is reserved in PML4 and PML5 entries */
				*pf = PF_PRESENT | PF_RSVD;
				return -EFAULT;
			}
			page_mask = (1ULL << shift) - 1;
			w->gpa = ((e & PTE_ADDR) & ~page_mask) | (la & page_mask);
			w->leaf = host;
			w->leaf_size = 8;
			return 0;
		}
		if (lvl == 1) {
			w->gpa = (e & PTE_ADDR) | (la & 0xfff);
			w->leaf = host;
			w->leaf_size = 8;
			return 0;
		}
		table = e & PTE_ADDR;
	}
	return -ENXIO; /* not reached: level 1 always returns */
}

/* 32-bit paging: two levels of 4-byte entries, 4 MiB pages with CR4.PSE. */
static int walk32(const struct guest_mem *mem, const struct mmu_mode *mode, uint64_t la,
		  struct walk *w, uint32_t *pf)
{
	uint64_t pde, pte;
	void *host;

	if (read_entry(mem, (mode->cr3 & 0xfffff000ULL) + ((la >> 22) & 1023) * 4, 4, &pde, &host))
		return -ENXIO;
	if (!(pde & PTE_P)) {
		*pf = 0;
		return -EFAULT;
	}
	walk_account(w, pde, true);
	set_bits(host, 4, PTE_A);
	if ((pde & PTE_PS) && (mode->cr4 & CR4_PSE)) {
		/* PSE-36: PDE bits 20:13 are physical address bits 39:32. */
		w->gpa = (pde & 0xffc00000ULL) | (((pde >> 13) & 0xff) << 32) | (la & 0x3fffff);
		w->leaf = host;
		w->leaf_size = 4;
		return 0;
	}
	if (read_entry(mem, (pde & 0xfffff000ULL) + ((la >> 12) & 1023) * 4, 4, &pte, &host))
		return -ENXIO;
	if (!(pte & PTE_P)) {
		*pf = 0;
		return -EFAULT;
	}
	walk_account(w, pte, true);
	set_bits(host, 4, PTE_A);
	w->gpa = (pte & 0xfffff000ULL) | (la & 0xfff);
	w->leaf = host;
	w->leaf_size = 4;
	return 0;
}

/* The permission checks of the SDM's "Access Rights" section; 0 or a #PF error code. */
static uint32_t check_access(const struct mmu_mode *mode, const struct walk *w, unsigned int access)
{
	bool user = mode->cpl == 3 && !(access & MMU_IMPLICIT_SV);
	bool write = access & MMU_WRITE, fetch = access & MMU_FETCH;

	if (fetch && w->xd && (mode->efer & EFER_NXE))
		return PF_PRESENT;
	if (user) {
		if (!w->us || (write && !w->rw))
			return PF_PRESENT;
		return 0;
	}
	if (write && !w->rw && (mode->cr0 & CR0_WP))
		return PF_PRESENT;
	if (w->us && fetch && (mode->cr4 & CR4_SMEP))
		return PF_PRESENT;
	if (w->us && !fetch && (mode->cr4 & CR4_SMAP) && (!mode->ac || (access & MMU_IMPLICIT_SV)))
		return PF_PRESENT;
	return 0;
}

int mmu_translate(const struct guest_mem *mem, const struct mmu_mode *mode, uint64_t la,
		  unsigned int access, uint64_t *gpa, uint32_t *pf_error)
{
	struct walk w = {.rw = true, .us = true};
	uint32_t pf = 0;
	int ret;

	*pf_error = 0;
	if (!(mode->cr0 & CR0_PG)) {
		*gpa = la & 0xffffffffULL;
		if (mode->efer & EFER_LMA)
			*gpa = la;
		return 0;
	}
	if (mode->efer & EFER_LMA)
		ret = walk64(mem, mode, la, (mode->cr4 & CR4_LA57) ? 5 : 4, &w, &pf);
	else if (mode->cr4 & CR4_PAE)
		ret = walk64(mem, mode, la & 0xffffffffULL, 3, &w, &pf);
	else
		ret = walk32(mem, mode, la & 0xffffffffULL, &w, &pf);
	if (ret == 0)
		pf = check_access(mode, &w, access);
	if (ret == -ENXIO)
		return ret;
	if (ret == -EFAULT || pf) {
		pf |= (access & MMU_WRITE) ? PF_WRITE : 0;
		pf |= (mode->cpl == 3 && !(access & MMU_IMPLICIT_SV)) ? PF_USER : 0;
		pf |= (access & MMU_FETCH) ? PF_FETCH : 0;
		*pf_error = pf;
		return -EFAULT;
	}
	if (access & MMU_WRITE)
		set_bits(w.leaf, w.leaf_size, PTE_D);
	*gpa = w.gpa;
	return 0;
}

int mmu_read_sv(const struct guest_mem *mem, const struct mmu_mode *mode, uint64_t la, void *buf,
		size_t len)
{
	uint8_t *out = buf;

	while (len) {
		size_t chunk = 4096 - (la & 4095);
		const uint8_t *src;
		uint64_t gpa;
		uint32_t pf;

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
