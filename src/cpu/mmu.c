/*
 * Paging (none, 32-bit with PSE, PAE, 4-level), the software TLB, and guest
 * memory accesses through segmentation (mem.h).
 *
 * The TLB only ever holds fast tags (tag_r/w/x) for accesses that need no
 * further check: the slow path walks the page tables every time, so an entry
 * that holds no fast tag is harmless and MMIO or special pages simply never
 * get one.
 */
#include "cpu/mmu.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cpu/cache.h"
#include "cpu/except.h"

/* The one VM-wide lock for locked accesses that cannot be done atomically on
 * a host pointer (page-crossing, MMIO). */
static pthread_mutex_t slow_lock = PTHREAD_MUTEX_INITIALIZER;

enum acc { ACC_R, ACC_W, ACC_X };

/* The result of a page walk: the leaf's effective permissions. */
struct walk {
	uint64_t gpa; /* of the byte at lin */
	unsigned shift; /* page size */
	bool user, rw, nx, global, dirty;
	/* Host pointers to the entries used (for A/D), and their width. */
	void *ent[5];
	unsigned nent;
	bool wide;
};

#define ADDR_MASK (((1ULL << MMU_PHYS_BITS) - 1) & ~0xfffULL)
#define RSVD_HIGH (((1ULL << 52) - 1) & ~((1ULL << MMU_PHYS_BITS) - 1))
#define PTE_P 0x1ULL
#define PTE_RW 0x2ULL
#define PTE_US 0x4ULL
#define PTE_A 0x20ULL
#define PTE_D 0x40ULL
#define PTE_PS 0x80ULL
#define PTE_G 0x100ULL
#define PTE_XD (1ULL << 63)

static void *pt_ptr(struct cpu *cpu, uint64_t gpa, unsigned size)
{
	return gmem_ptr(cpu->mem, gpa, size);
}

static uint64_t pt_load(void *p, bool wide)
{
	if (!p)
		return 0; /* tables outside RAM read as not present */
	if (wide)
		return __atomic_load_n((uint64_t *)p, __ATOMIC_RELAXED);
	return __atomic_load_n((uint32_t *)p, __ATOMIC_RELAXED);
}

static void pt_set_bits(void *p, bool wide, uint64_t bits)
{
	if (wide)
		__atomic_fetch_or((uint64_t *)p, bits, __ATOMIC_RELAXED);
	else
		__atomic_fetch_or((uint32_t *)p, (uint32_t)bits, __ATOMIC_RELAXED);
}

/* Fold one entry's permission bits into the walk. */
static void fold(struct walk *w, uint64_t e, bool nxe)
{
	w->user &= (e & PTE_US) != 0;
	w->rw &= (e & PTE_RW) != 0;
	if (nxe && (e & PTE_XD))
		w->nx = true;
}

/* 32-bit paging. Returns 0, or a #PF error code base (PF_P/PF_RSVD) | 0x100
 * when the walk fails (0x100 so a not-present fault is non-zero). */
static unsigned walk32(struct cpu *cpu, uint64_t lin, struct walk *w)
{
	uint64_t pde_gpa = (cpu->cr3 & 0xfffff000ULL) + ((lin >> 22) & 0x3ff) * 4;
	void *pp = pt_ptr(cpu, pde_gpa, 4);
	uint64_t pde = pt_load(pp, false), pte;

	w->wide = false;
	if (!(pde & PTE_P))
		return 0x100;
	w->ent[w->nent++] = pp;
	fold(w, pde, false);
	if ((pde & PTE_PS) && (cpu->cr4 & CR4_PSE)) {
		if (pde & (1u << 21))
			return 0x100 | PF_RSVD | PF_P;
		w->shift = 22;
		w->gpa = (pde & 0xffc00000ULL) | ((pde >> 13) & 0xffULL) << 32 |
			 (lin & 0x3fffff);
		w->global = (pde & PTE_G) != 0;
		w->dirty = (pde & PTE_D) != 0;
		return 0;
	}
	pp = pt_ptr(cpu, (pde & 0xfffff000ULL) + ((lin >> 12) & 0x3ff) * 4, 4);
	pte = pt_load(pp, false);
	if (!(pte & PTE_P))
		return 0x100;
	w->ent[w->nent++] = pp;
	fold(w, pte, false);
	w->shift = 12;
	w->gpa = (pte & 0xfffff000ULL) | (lin & 0xfff);
	w->global = (pte & PTE_G) != 0;
	w->dirty = (pte & PTE_D) != 0;
	return 0;
}

/* PAE and 4-level paging. */
static unsigned walk64(struct cpu *cpu, uint64_t lin, struct walk *w)
{
	bool nxe = (cpu->efer & EFER_NXE) != 0;
	uint64_t rsvd = RSVD_HIGH | (nxe ? 0 : PTE_XD);
	uint64_t table, e;
	int level;
	void *pp;

	w->wide = true;
	if (cpu->long_mode) {
		table = cpu->cr3 & ADDR_MASK;
		level = 4;
	} else {
		/* PAE: the PDPTE (real CPUs load these at MOV CR3; reserved bits in
		 * them are reported here as a reserved-bit #PF). */
		pp = pt_ptr(cpu, (cpu->cr3 & 0xffffffe0ULL) + ((lin >> 30) & 3) * 8, 8);
		e = pt_load(pp, true);
		if (!(e & PTE_P))
			return 0x100;
		if (e & (RSVD_HIGH | PTE_XD | 0x1e6ULL))
			return 0x100 | PF_RSVD | PF_P;
		table = e & ADDR_MASK;
		level = 2;
	}
	for (;; level--) {
		unsigned shift = 12 + 9 * (level - 1);

		pp = pt_ptr(cpu, table + ((lin >> shift) & 0x1ff) * 8, 8);
		e = pt_load(pp, true);
		if (!(e & PTE_P))
			return 0x100;
		if (e & rsvd)
			return 0x100 | PF_RSVD | PF_P;
		w->ent[w->nent++] = pp;
		fold(w, e, nxe);
		if (level == 4 && (e & PTE_PS))
			return 0x100 | PF_RSVD | PF_P;
		if (level == 1 || ((level == 2 || level == 3) && (e & PTE_PS))) {
			uint64_t size = 1ULL << shift;

			if (level > 1 && (e & (size - 1) & ~0x1fffULL))
				return 0x100 | PF_RSVD | PF_P; /* large-page address bits */
			w->shift = shift;
			w->gpa = (e & ADDR_MASK & ~(size - 1)) | (lin & (size - 1));
			w->global = (e & PTE_G) != 0;
			w->dirty = (e & PTE_D) != 0;
			return 0;
		}
		table = e & ADDR_MASK;
	}
}

/*
 * The translation of lin for one access. user: a CPL-3 access (not an
 * implicit supervisor one); implicit: descriptor tables, TSS, IDT (SMAP
 * applies regardless of EFLAGS.AC). Sets the A/D bits. Returns 0, or the
 * #PF error code | 0x100.
 */
static unsigned translate(struct cpu *cpu, uint64_t lin, enum acc acc, bool user, bool implicit,
			  struct walk *w)
{
	unsigned r, err;

	memset(w, 0, sizeof(*w));
	w->user = w->rw = true;
	if (!cpu->paging) {
		w->gpa = lin;
		w->shift = 12;
		w->dirty = true;
		return 0;
	}
	r = (cpu->cr4 & CR4_PAE) ? walk64(cpu, lin, w) : walk32(cpu, lin, w);
	err = (acc == ACC_W ? PF_W : 0) | (user ? PF_U : 0);
	if (acc == ACC_X && ((cpu->efer & EFER_NXE) || (cpu->cr4 & CR4_SMEP)))
		err |= PF_I;
	if (r)
		return 0x100 | err | (r & 0xff);
	/* Permissions. */
	if (user) {
		if (!w->user || (acc == ACC_W && !w->rw) || (acc == ACC_X && w->nx))
			return 0x100 | err | PF_P;
	} else {
		if (acc == ACC_W && !w->rw && (cpu->cr0 & CR0_WP))
			return 0x100 | err | PF_P;
		if (acc == ACC_X && (w->nx || (w->user && (cpu->cr4 & CR4_SMEP))))
			return 0x100 | err | PF_P;
		if (acc != ACC_X && w->user && (cpu->cr4 & CR4_SMAP) &&
		    (implicit || !(cpu->rflags & FL_AC)))
			return 0x100 | err | PF_P;
	}
	/* Accessed on every level used, dirty on the leaf for a write, atomically:
	 * other vCPUs share the tables. */
	for (unsigned i = 0; i < w->nent; i++)
		if (!(pt_load(w->ent[i], w->wide) & PTE_A))
			pt_set_bits(w->ent[i], w->wide, PTE_A);
	if (acc == ACC_W && !w->dirty) {
		pt_set_bits(w->ent[w->nent - 1], w->wide, PTE_D);
		w->dirty = true;
	}
	return 0;
}

/* Fills the TLB entry of lin for privilege class `user` from a walk. */
static void tlb_fill(struct cpu *cpu, uint64_t lin, bool user, const struct walk *w,
		     uint8_t *host_page)
{
	struct tlb_entry *e = mmu_tlb_entry(cpu, user, lin);
	uint64_t page = lin & ~0xfffULL, gpa = w->gpa & ~0xfffULL;
	bool smap = cpu->paging && w->user && (cpu->cr4 & CR4_SMAP);
	bool smep = cpu->paging && w->user && (cpu->cr4 & CR4_SMEP);
	bool wp = (cpu->cr0 & CR0_WP) != 0;
	bool r, wr, x;

	if (user) {
		r = w->user;
		wr = w->user && w->rw;
		x = w->user && !w->nx;
	} else {
		r = !smap;
		wr = !smap && (w->rw || !wp);
		x = !w->nx && !smep;
	}
	if (!w->dirty || (cpu->code_map && code_map_test(cpu->code_map, gpa)))
		wr = false;
	if (!host_page)
		r = wr = x = false;
	e->tag_r = r ? page : TLB_INVALID;
	e->tag_w = wr ? page : TLB_INVALID;
	e->tag_x = x ? page : TLB_INVALID;
	e->addend = (uintptr_t)host_page - (uintptr_t)page;
	e->gpa = gpa;
	e->global = w->global && (cpu->cr4 & CR4_PGE) && cpu->paging;
	e->page_shift = (uint8_t)w->shift;
}

/*
 * Slow path: translate lin (faulting as the CPU would), fill the TLB, return
 * the host pointer of the byte at lin, or NULL for MMIO (*gpa set).
 */
static uint8_t *xlate(struct cpu *cpu, uint64_t lin, enum acc acc, bool implicit, uint64_t *gpa)
{
	bool user = cpu->cpl == 3 && !implicit;
	struct walk w;
	unsigned err = translate(cpu, lin, acc, user, implicit, &w);
	uint8_t *host;

	if (err)
		cpu_fault_pf(cpu, lin, err & 0xff);
	*gpa = w.gpa;
	host = gmem_ptr(cpu->mem, w.gpa & ~0xfffULL, 4096);
	tlb_fill(cpu, lin, user, &w, host);
	return host ? host + (w.gpa & 0xfff) : NULL;
}

static void mmio_read(struct cpu *cpu, uint64_t gpa, uint8_t *dst, unsigned len)
{
	while (len) {
		unsigned n = 8;

		while (n > len || (gpa & (n - 1)))
			n >>= 1;
		if (!cpu->env || !cpu->env->mmio_read ||
		    !cpu->env->mmio_read(cpu->env_ctx, gpa, dst, n))
			memset(dst, 0xff, n);
		gpa += n;
		dst += n;
		len -= n;
	}
}

static void mmio_write(struct cpu *cpu, uint64_t gpa, const uint8_t *src, unsigned len)
{
	while (len) {
		unsigned n = 8;

		while (n > len || (gpa & (n - 1)))
			n >>= 1;
		if (cpu->env && cpu->env->mmio_write)
			cpu->env->mmio_write(cpu->env_ctx, gpa, src, n);
		gpa += n;
		src += n;
		len -= n;
	}
}

static void slow_read(struct cpu *cpu, uint64_t lin, void *dst, unsigned len, bool implicit)
{
	uint8_t *d = dst;

	while (len) {
		unsigned n = 4096 - (unsigned)(lin & 0xfff);
		uint64_t gpa;
		uint8_t *h;

		if (n > len)
			n = len;
		h = xlate(cpu, lin, ACC_R, implicit, &gpa);
		if (h)
			memcpy(d, h, n);
		else
			mmio_read(cpu, gpa, d, n);
		lin += n;
		d += n;
		len -= n;
	}
}

/* Both pages are checked (and dirtied) before either is written. */
static void slow_write(struct cpu *cpu, uint64_t lin, const void *src, unsigned len, bool implicit)
{
	const uint8_t *s = src;
	unsigned n0 = 4096 - (unsigned)(lin & 0xfff);
	uint64_t gpa[2];
	uint8_t *h[2];
	unsigned n[2];

	if (n0 >= len) {
		n[0] = len;
		n[1] = 0;
	} else {
		n[0] = n0;
		n[1] = len - n0;
	}
	h[0] = xlate(cpu, lin, ACC_W, implicit, &gpa[0]);
	if (n[1])
		h[1] = xlate(cpu, lin + n[0], ACC_W, implicit, &gpa[1]);
	for (int i = 0; i < 2 && n[i]; i++) {
		if (h[i]) {
			memcpy(h[i], s, n[i]);
			if (cpu->code_map && code_map_test(cpu->code_map, gpa[i]))
				code_map_write(cpu->code_map, gpa[i], n[i]);
		} else {
			mmio_write(cpu, gpa[i], s, n[i]);
		}
		s += n[i];
	}
}

/* ---- Segmentation ---- */

_Noreturn static void seg_fault(struct cpu *cpu, int seg)
{
	cpu_fault(cpu, seg == SEG_SS ? EXC_SS : EXC_GP, 0);
}

uint64_t cpu_linear(struct cpu *cpu, int seg, uint64_t off, unsigned len, bool write)
{
	const struct cpu_seg *s = &cpu->seg[seg];
	uint64_t last;

	if (cpu->code_bits == 64) {
		uint64_t lin = off + ((seg == SEG_FS || seg == SEG_GS) ? s->base : 0);

		if (!mmu_canonical(lin) || !mmu_canonical(lin + len - 1))
			seg_fault(cpu, seg);
		return lin;
	}
	if ((cpu->cr0 & CR0_PE) && !(cpu->rflags & FL_VM)) {
		unsigned type = s->attr & SEG_ATTR_TYPE;

		if (s->attr & SEG_ATTR_UNUSABLE)
			seg_fault(cpu, seg);
		if (type & 8) { /* code: never writable, readable if bit 1 */
			if (write || !(type & 2))
				seg_fault(cpu, seg);
		} else if (write && !(type & 2)) {
			seg_fault(cpu, seg);
		}
	}
	last = off + len - 1;
	if ((s->attr & (SEG_ATTR_TYPE & ~3u)) == 4) { /* expand-down data */
		uint64_t top = (s->attr & SEG_ATTR_DB) ? 0xffffffffULL : 0xffffULL;

		if (off <= s->limit || last > top || last < off)
			seg_fault(cpu, seg);
	} else if (last > s->limit || last < off) {
		seg_fault(cpu, seg);
	}
	return (uint32_t)(s->base + off);
}

/* ---- Linear-address accesses ---- */

/* Supervisor entries never hold fast tags for SMAP-protected pages, so an
 * implicit access may take them whatever EFLAGS.AC says. */
void cpu_read_lin(struct cpu *cpu, uint64_t lin, void *dst, unsigned len, bool supervisor)
{
	const struct tlb_entry *e = mmu_tlb_entry(cpu, cpu->cpl == 3 && !supervisor, lin);

	if (e->tag_r == (lin & ~0xfffULL) && (lin & 0xfff) + len <= 4096) {
		memcpy(dst, (void *)(e->addend + (uintptr_t)lin), len);
		return;
	}
	slow_read(cpu, lin, dst, len, supervisor);
}

void cpu_write_lin(struct cpu *cpu, uint64_t lin, const void *src, unsigned len, bool supervisor)
{
	const struct tlb_entry *e = mmu_tlb_entry(cpu, cpu->cpl == 3 && !supervisor, lin);

	if (e->tag_w == (lin & ~0xfffULL) && (lin & 0xfff) + len <= 4096) {
		memcpy((void *)(e->addend + (uintptr_t)lin), src, len);
		return;
	}
	slow_write(cpu, lin, src, len, supervisor);
}

/* ---- Segment:offset accesses ---- */

void cpu_read(struct cpu *cpu, int seg, uint64_t off, void *dst, unsigned len)
{
	uint64_t lin = mmu_linear(cpu, seg, off, len, false);
	void *p = mmu_fast_r(cpu, lin, len);

	if (p)
		memcpy(dst, p, len);
	else
		slow_read(cpu, lin, dst, len, false);
}

void cpu_write(struct cpu *cpu, int seg, uint64_t off, const void *src, unsigned len)
{
	uint64_t lin = mmu_linear(cpu, seg, off, len, true);
	void *p = mmu_fast_w(cpu, lin, len);

	if (p)
		memcpy(p, src, len);
	else
		slow_write(cpu, lin, src, len, false);
}

#define DEF_RW(bits)                                                                       \
	uint##bits##_t cpu_read##bits(struct cpu *cpu, int seg, uint64_t off)              \
	{                                                                                  \
		return mmu_read##bits(cpu, seg, off);                                      \
	}                                                                                  \
	void cpu_write##bits(struct cpu *cpu, int seg, uint64_t off, uint##bits##_t v)     \
	{                                                                                  \
		mmu_write##bits(cpu, seg, off, v);                                         \
	}
DEF_RW(8)
DEF_RW(16)
DEF_RW(32)
DEF_RW(64)

uint64_t cpu_read_sz(struct cpu *cpu, int seg, uint64_t off, unsigned size)
{
	switch (size) {
	case 1:
		return cpu_read8(cpu, seg, off);
	case 2:
		return cpu_read16(cpu, seg, off);
	case 4:
		return cpu_read32(cpu, seg, off);
	default:
		return cpu_read64(cpu, seg, off);
	}
}

void cpu_write_sz(struct cpu *cpu, int seg, uint64_t off, uint64_t v, unsigned size)
{
	switch (size) {
	case 1:
		cpu_write8(cpu, seg, off, (uint8_t)v);
		break;
	case 2:
		cpu_write16(cpu, seg, off, (uint16_t)v);
		break;
	case 4:
		cpu_write32(cpu, seg, off, (uint32_t)v);
		break;
	default:
		cpu_write64(cpu, seg, off, v);
		break;
	}
}

void *cpu_rmw_ptr(struct cpu *cpu, int seg, uint64_t off, unsigned len)
{
	uint64_t lin = mmu_linear(cpu, seg, off, len, true), gpa;
	void *p = mmu_fast_w(cpu, lin, len);
	uint8_t *h;

	if (p)
		return p;
	if ((lin & 0xfff) + len > 4096)
		return NULL;
	h = xlate(cpu, lin, ACC_W, false, &gpa);
	/* Pages holding code take the slow write path, which invalidates. */
	if (!h || (cpu->code_map && code_map_test(cpu->code_map, gpa)))
		return NULL;
	return h;
}

void cpu_lock_slow(struct cpu *cpu)
{
	(void)cpu;
	pthread_mutex_lock(&slow_lock);
}

void cpu_unlock_slow(struct cpu *cpu)
{
	(void)cpu;
	pthread_mutex_unlock(&slow_lock);
}

const uint8_t *cpu_fetch_ptr(struct cpu *cpu, uint64_t lin, unsigned *avail, uint64_t *gpa)
{
	const struct tlb_entry *e;
	unsigned n = 4096 - (unsigned)(lin & 0xfff);
	uint8_t *h;

	if (cpu->code_bits == 64) {
		if (!mmu_canonical(lin))
			cpu_fault(cpu, EXC_GP, 0);
	} else {
		const struct cpu_seg *cs = &cpu->seg[SEG_CS];
		uint64_t off = (uint32_t)(lin - cs->base);

		if (off > cs->limit)
			cpu_fault(cpu, EXC_GP, 0);
		if (cs->limit - off + 1 < n)
			n = (unsigned)(cs->limit - off + 1);
	}
	e = mmu_tlb_entry(cpu, cpu->cpl == 3, lin);
	if (e->tag_x == (lin & ~0xfffULL)) {
		*avail = n;
		*gpa = e->gpa | (lin & 0xfff);
		return (const uint8_t *)(e->addend + (uintptr_t)lin);
	}
	h = xlate(cpu, lin, ACC_X, false, gpa);
	if (!h) {
		char why[96];

		snprintf(why, sizeof(why), "code fetch from MMIO at gpa %#llx (linear %#llx)",
			 (unsigned long long)*gpa, (unsigned long long)lin);
		cpu_unimplemented(cpu, why);
	}
	*avail = n;
	return h;
}

/* A permission failure still has a translation; a failed walk has none. */
int cpu_translate(struct cpu *cpu, uint64_t lin, uint64_t *gpa)
{
	struct walk w;

	memset(&w, 0, sizeof(w));
	w.user = w.rw = true;
	if (cpu->paging) {
		unsigned r = (cpu->cr4 & CR4_PAE) ? walk64(cpu, lin, &w) : walk32(cpu, lin, &w);

		if (r)
			return -1;
	} else {
		w.gpa = lin;
	}
	*gpa = w.gpa;
	return 0;
}

/* ---- TLB maintenance ---- */

static void tlb_kill(struct tlb_entry *e)
{
	e->tag_r = e->tag_w = e->tag_x = TLB_INVALID;
	e->global = false;
}

void cpu_tlb_flush(struct cpu *cpu, bool include_global)
{
	for (int u = 0; u < 2; u++)
		for (unsigned i = 0; i < TLB_SIZE; i++)
			if (include_global || !cpu->tlb[u][i].global)
				tlb_kill(&cpu->tlb[u][i]);
}

static uint64_t entry_lin(const struct tlb_entry *e)
{
	if (e->tag_r != TLB_INVALID)
		return e->tag_r;
	if (e->tag_w != TLB_INVALID)
		return e->tag_w;
	return e->tag_x;
}

void cpu_tlb_flush_page(struct cpu *cpu, uint64_t lin)
{
	for (int u = 0; u < 2; u++) {
		tlb_kill(mmu_tlb_entry(cpu, u, lin));
		/* Entries from a large page anywhere in the TLB. */
		for (unsigned i = 0; i < TLB_SIZE; i++) {
			struct tlb_entry *e = &cpu->tlb[u][i];
			uint64_t el = entry_lin(e);

			if (el != TLB_INVALID && e->page_shift > 12 &&
			    ((el ^ lin) >> e->page_shift) == 0)
				tlb_kill(e);
		}
	}
}

/* ---- Stack ---- */

static uint64_t stack_mask(const struct cpu *cpu)
{
	if (cpu->code_bits == 64)
		return ~0ULL;
	return (cpu->seg[SEG_SS].attr & SEG_ATTR_DB) ? 0xffffffffULL : 0xffffULL;
}

void cpu_push(struct cpu *cpu, uint64_t v, unsigned size)
{
	uint64_t mask = stack_mask(cpu);
	uint64_t sp = (cpu->gpr[R_RSP] - size) & mask;

	cpu_write_sz(cpu, SEG_SS, sp, v, size);
	cpu->gpr[R_RSP] = (cpu->gpr[R_RSP] & ~mask) | sp;
}

uint64_t cpu_pop(struct cpu *cpu, unsigned size)
{
	uint64_t mask = stack_mask(cpu);
	uint64_t sp = cpu->gpr[R_RSP] & mask;
	uint64_t v = cpu_read_sz(cpu, SEG_SS, sp, size);

	cpu->gpr[R_RSP] = (cpu->gpr[R_RSP] & ~mask) | ((sp + size) & mask);
	return v;
}
