/* Paging, TLB and segmentation (mmu.c) on fake guest memory. */
#include "sys_fixture.h"

TestSuite(mmu, .init = fx_setup, .fini = fx_teardown);

#define LIN 0x400000ULL
#define GPA 0x500000ULL

static void user_mode(void)
{
	fx_seg(SEG_CS, SEL_UCODE64);
	fx_seg(SEG_SS, SEL_UDATA);
	cpu_update_mode(g_fx->cpu);
	cr_assert_eq(g_fx->cpu->cpl, 3);
}

Test(mmu, real_mode_segments_and_limits)
{
	struct cpu *c = g_fx->cpu;

	seg_load(c, SEG_DS, 0x123);
	cr_assert_eq(c->seg[SEG_DS].base, 0x1230);
	cr_assert_eq(FX_TRY(cpu_write16(c, SEG_DS, 0x10, 0xbeef)), -1);
	cr_assert_eq(fx_r16(0x1240), 0xbeef);
	cr_assert_eq(FX_TRY(cpu_read16(c, SEG_DS, 0xffff)), EXC_GP);
	cr_assert_eq(FX_TRY(cpu_read16(c, SEG_SS, 0xffff)), EXC_SS);
	cr_assert_eq(FX_TRY(cpu_read8(c, SEG_DS, 0xffff)), -1);
}

Test(mmu, long_mode_walk_sets_accessed_then_dirty)
{
	struct cpu *c = g_fx->cpu;
	uint64_t pte, pde, v = 0;

	fx_long_mode();
	fx_map64(LIN, GPA, PTE_P | PTE_W);
	fx_w64(GPA + 8, 0x1122334455667788ULL);
	pte = fx_entry64(LIN, 1);
	pde = fx_entry64(LIN, 2);
	cr_assert_eq(FX_TRY(v = cpu_read64(c, SEG_DS, LIN + 8)), -1);
	cr_assert_eq(v, 0x1122334455667788ULL);
	cr_assert(fx_r64(pte) & PTE_A);
	cr_assert(fx_r64(pde) & PTE_A);
	cr_assert(fx_r64(c->cr3 & ~0xfffULL) & PTE_A);
	cr_assert_not(fx_r64(pte) & PTE_D);
	/* The first write sets D even though the read filled the TLB. */
	cr_assert_eq(FX_TRY(cpu_write32(c, SEG_DS, LIN + 16, 7)), -1);
	cr_assert(fx_r64(pte) & PTE_D);
	cr_assert_not(fx_r64(pde) & PTE_D);
	cr_assert_eq(fx_r32(GPA + 16), 7);
}

Test(mmu, page_fault_error_codes_and_cr2)
{
	struct cpu *c = g_fx->cpu;

	fx_long_mode();
	fx_map64(LIN, GPA, PTE_P | PTE_W);		  /* supervisor RW */
	fx_map64(LIN + 0x1000, GPA, PTE_P | PTE_U);	  /* user RO */
	fx_map64(LIN + 0x2000, GPA, PTE_P | PTE_W | PTE_U); /* user RW */

	cr_assert_eq(FX_TRY(cpu_read8(c, SEG_DS, 0x600123)), EXC_PF);
	cr_assert_eq(c->exc_error, 0);
	cr_assert_eq(c->cr2, 0x600123);
	cr_assert_eq(FX_TRY(cpu_write8(c, SEG_DS, 0x600123, 1)), EXC_PF);
	cr_assert_eq(c->exc_error, PF_W);
	/* Supervisor write to a read-only page: CR0.WP decides. */
	cr_assert_eq(FX_TRY(cpu_write8(c, SEG_DS, LIN + 0x1000, 1)), EXC_PF);
	cr_assert_eq(c->exc_error, PF_P | PF_W);
	c->cr0 &= ~CR0_WP;
	cpu_tlb_flush(c, true);
	cr_assert_eq(FX_TRY(cpu_write8(c, SEG_DS, LIN + 0x1000, 1)), -1);
	c->cr0 |= CR0_WP;
	cpu_tlb_flush(c, true);

	user_mode();
	cr_assert_eq(FX_TRY(cpu_read8(c, SEG_DS, 0x600000)), EXC_PF);
	cr_assert_eq(c->exc_error, PF_U);
	cr_assert_eq(FX_TRY(cpu_read8(c, SEG_DS, LIN)), EXC_PF);
	cr_assert_eq(c->exc_error, PF_P | PF_U);
	cr_assert_eq(FX_TRY(cpu_write8(c, SEG_DS, LIN + 0x1000, 1)), EXC_PF);
	cr_assert_eq(c->exc_error, PF_P | PF_W | PF_U);
	cr_assert_eq(c->cr2, LIN + 0x1000);
	cr_assert_eq(FX_TRY(cpu_read8(c, SEG_DS, LIN + 0x1000)), -1);
	cr_assert_eq(FX_TRY(cpu_write8(c, SEG_DS, LIN + 0x2000, 1)), -1);
	/* Implicit supervisor accesses (descriptor tables) from CPL 3. */
	{
		uint8_t b;

		cr_assert_eq(FX_TRY(cpu_read_lin(c, LIN, &b, 1, true)), -1);
	}
}

Test(mmu, nx_fetch_and_fetch_bit)
{
	struct cpu *c = g_fx->cpu;
	unsigned avail;
	uint64_t gpa;

	fx_long_mode();
	fx_map64(LIN, GPA, PTE_P | PTE_W | PTE_NX);
	fx_map64(LIN + 0x1000, GPA, PTE_P | PTE_W);
	cr_assert_eq(FX_TRY(cpu_fetch_ptr(c, LIN + 5, &avail, &gpa)), EXC_PF);
	cr_assert_eq(c->exc_error, PF_P | PF_I);
	cr_assert_eq(c->cr2, LIN + 5);
	cr_assert_eq(FX_TRY(cpu_read8(c, SEG_DS, LIN)), -1);
	cr_assert_eq(FX_TRY(cpu_fetch_ptr(c, LIN + 0x1ff0, &avail, &gpa)), -1);
	cr_assert_eq(avail, 16);
	cr_assert_eq(gpa, GPA + 0xff0);
	/* Not present fetch: I/D set because NXE is on. */
	cr_assert_eq(FX_TRY(cpu_fetch_ptr(c, 0x700000, &avail, &gpa)), EXC_PF);
	cr_assert_eq(c->exc_error, PF_I);
	/* Without NXE (and SMEP) the fetch bit is not reported; XD is reserved. */
	c->efer &= ~EFER_NXE;
	cpu_tlb_flush(c, true);
	cr_assert_eq(FX_TRY(cpu_fetch_ptr(c, 0x700000, &avail, &gpa)), EXC_PF);
	cr_assert_eq(c->exc_error, 0);
	cr_assert_eq(FX_TRY(cpu_read8(c, SEG_DS, LIN)), EXC_PF);
	cr_assert_eq(c->exc_error, PF_P | PF_RSVD);
}

Test(mmu, smep_and_smap)
{
	struct cpu *c = g_fx->cpu;
	unsigned avail;
	uint64_t gpa;

	fx_long_mode();
	fx_map64(LIN, GPA, PTE_P | PTE_W | PTE_U);
	c->cr4 |= CR4_SMEP | CR4_SMAP;
	cpu_tlb_flush(c, true);
	cr_assert_eq(FX_TRY(cpu_fetch_ptr(c, LIN, &avail, &gpa)), EXC_PF);
	cr_assert_eq(c->exc_error, PF_P | PF_I);
	cr_assert_eq(FX_TRY(cpu_read8(c, SEG_DS, LIN)), EXC_PF);
	cr_assert_eq(c->exc_error, PF_P);
	cr_assert_eq(FX_TRY(cpu_write8(c, SEG_DS, LIN, 1)), EXC_PF);
	cr_assert_eq(c->exc_error, PF_P | PF_W);
	c->rflags |= FL_AC; /* stac */
	cr_assert_eq(FX_TRY(cpu_read8(c, SEG_DS, LIN)), -1);
	cr_assert_eq(FX_TRY(cpu_write8(c, SEG_DS, LIN, 1)), -1);
	/* Implicit supervisor accesses ignore AC. */
	{
		uint8_t b;

		cr_assert_eq(FX_TRY(cpu_read_lin(c, LIN, &b, 1, true)), EXC_PF);
	}
	c->rflags &= ~FL_AC; /* clac: the fast path must not keep allowing it */
	cr_assert_eq(FX_TRY(cpu_read8(c, SEG_DS, LIN)), EXC_PF);
}

Test(mmu, reserved_bits)
{
	struct cpu *c = g_fx->cpu;

	fx_long_mode();
	fx_map64(LIN, GPA | (1ULL << 50), PTE_P | PTE_W);
	cr_assert_eq(FX_TRY(cpu_write8(c, SEG_DS, LIN, 1)), EXC_PF);
	cr_assert_eq(c->exc_error, PF_P | PF_RSVD | PF_W);
	/* PS in a PML4 entry is reserved. */
	fx_w64(c->cr3 & ~0xfffULL, fx_r64(c->cr3 & ~0xfffULL) | PTE_PS);
	cpu_tlb_flush(c, true);
	cr_assert_eq(FX_TRY(cpu_read8(c, SEG_DS, 0x1000)), EXC_PF);
	cr_assert_eq(c->exc_error, PF_P | PF_RSVD);
}

Test(mmu, large_pages_2m_1g)
{
	struct cpu *c = g_fx->cpu;
	uint8_t v = 0;
	uint64_t gpa;

	fx_long_mode();
	fx_w64(fx_entry64(0x40000000ULL, 3), 0 | PTE_P | PTE_W | PTE_PS); /* 1 GiB -> 0 */
	fx_w64(fx_entry64(0x80200000ULL, 2), 0x600000 | PTE_P | PTE_W | PTE_PS);
	g_fx->ram[0x123456] = 0x5a;
	g_fx->ram[0x612345] = 0xa5;
	cr_assert_eq(FX_TRY(v = cpu_read8(c, SEG_DS, 0x40123456ULL)), -1);
	cr_assert_eq(v, 0x5a);
	cr_assert_eq(FX_TRY(v = cpu_read8(c, SEG_DS, 0x80212345ULL)), -1);
	cr_assert_eq(v, 0xa5);
	cr_assert_eq(cpu_translate(c, 0x80212345ULL, &gpa), 0);
	cr_assert_eq(gpa, 0x612345);
	cr_assert_eq(cpu_translate(c, 0x90000000ULL, &gpa), -1);
	/* A large-page address with bits in the reserved range. */
	fx_w64(fx_entry64(0x80400000ULL, 2), 0x610000 | PTE_P | PTE_W | PTE_PS);
	cr_assert_eq(FX_TRY(cpu_read8(c, SEG_DS, 0x80400000ULL)), EXC_PF);
	cr_assert_eq(c->exc_error, PF_P | PF_RSVD);
}

Test(mmu, translate_has_no_side_effects)
{
	struct cpu *c = g_fx->cpu;
	uint64_t gpa;

	fx_long_mode();
	fx_map64(LIN, GPA, PTE_P | PTE_W);
	cr_assert_eq(cpu_translate(c, LIN + 0x10, &gpa), 0);
	cr_assert_eq(gpa, GPA + 0x10);
	cr_assert_not(fx_r64(fx_entry64(LIN, 1)) & PTE_A);
}

/* 32-bit paging: 4 KiB pages and PSE 4 MiB pages. */
Test(mmu, legacy_32bit_paging)
{
	struct cpu *c = g_fx->cpu;
	uint64_t pd = fx_alloc_page(), pt = fx_alloc_page();
	uint32_t v = 0;

	fx_prot32();
	fx_w32(pd + (LIN >> 22) * 4, (uint32_t)pt | 0x7);
	fx_w32(pt + ((LIN >> 12) & 0x3ff) * 4, (uint32_t)GPA | 0x3);
	fx_w32(pd + (0x800000 >> 22) * 4, 0xc00000 | 0x83); /* 4 MiB page */
	fx_w32(pd + (0xc00000 >> 22) * 4, 0x400000 | 0x83 | (1u << 21));
	fx_w32(GPA + 4, 0xcafe);
	fx_w32(0xc01004, 0xf00d);
	c->cr3 = pd;
	c->cr4 = CR4_PSE;
	c->cr0 |= CR0_PG | CR0_WP;
	cpu_update_mode(c);
	cpu_tlb_flush(c, true);
	cr_assert_eq(FX_TRY(v = cpu_read32(c, SEG_DS, LIN + 4)), -1);
	cr_assert_eq(v, 0xcafe);
	cr_assert_eq(fx_r32(pd + (LIN >> 22) * 4) & 0x20, 0x20);
	cr_assert_eq(fx_r32(pt + ((LIN >> 12) & 0x3ff) * 4) & 0x60, 0x20);
	cr_assert_eq(FX_TRY(cpu_write32(c, SEG_DS, LIN + 4, 1)), -1);
	cr_assert_eq(fx_r32(pt + ((LIN >> 12) & 0x3ff) * 4) & 0x60, 0x60);
	cr_assert_eq(FX_TRY(v = cpu_read32(c, SEG_DS, 0x801004)), -1);
	cr_assert_eq(v, 0xf00d);
	cr_assert_eq(FX_TRY(cpu_read32(c, SEG_DS, 0xc00000)), EXC_PF);
	cr_assert_eq(c->exc_error, PF_P | PF_RSVD);
	cr_assert_eq(FX_TRY(cpu_read32(c, SEG_DS, 0x1000000)), EXC_PF);
	cr_assert_eq(c->exc_error, 0);
	/* No fetch bit without NXE/SMEP. */
	{
		unsigned avail;
		uint64_t gpa;

		cr_assert_eq(FX_TRY(cpu_fetch_ptr(c, 0x1000000, &avail, &gpa)), EXC_PF);
		cr_assert_eq(c->exc_error, 0);
	}
}

/* PAE: PDPTEs, 2 MiB page, NX. */
Test(mmu, pae_paging)
{
	struct cpu *c = g_fx->cpu;
	uint64_t pdpt = fx_alloc_page(), pd = fx_alloc_page(), pt = fx_alloc_page();
	uint32_t v = 0;
	unsigned avail;
	uint64_t gpa;

	fx_prot32();
	fx_w64(pdpt, pd | 1);
	fx_w64(pd + ((LIN >> 21) & 0x1ff) * 8, pt | 7);
	fx_w64(pt + ((LIN >> 12) & 0x1ff) * 8, GPA | 3 | PTE_NX);
	fx_w64(pd + ((0x800000 >> 21) & 0x1ff) * 8, 0x600000 | 0x83);
	fx_w32(GPA, 0x1234);
	fx_w32(0x600010, 0x4321);
	c->cr3 = pdpt;
	c->cr4 = CR4_PAE;
	c->efer = EFER_NXE;
	c->cr0 |= CR0_PG;
	cpu_update_mode(c);
	cpu_tlb_flush(c, true);
	cr_assert_eq(FX_TRY(v = cpu_read32(c, SEG_DS, LIN)), -1);
	cr_assert_eq(v, 0x1234);
	cr_assert_eq(FX_TRY(v = cpu_read32(c, SEG_DS, 0x800010)), -1);
	cr_assert_eq(v, 0x4321);
	cr_assert_eq(FX_TRY(cpu_fetch_ptr(c, LIN, &avail, &gpa)), EXC_PF);
	cr_assert_eq(c->exc_error, PF_P | PF_I);
	cr_assert_eq(FX_TRY(cpu_read32(c, SEG_DS, 0x40000000)), EXC_PF); /* PDPTE 1 absent */
	cr_assert_eq(c->exc_error, 0);
}

Test(mmu, tlb_stale_until_invlpg_and_cr3)
{
	struct cpu *c = g_fx->cpu;
	uint64_t pte;
	uint8_t v = 0;

	fx_long_mode();
	fx_map64(LIN, GPA, PTE_P | PTE_W);
	pte = fx_entry64(LIN, 1);
	g_fx->ram[GPA] = 1;
	g_fx->ram[GPA + 0x1000] = 2;
	cr_assert_eq(FX_TRY(v = cpu_read8(c, SEG_DS, LIN)), -1);
	cr_assert_eq(v, 1);
	fx_w64(pte, (GPA + 0x1000) | PTE_P | PTE_W);
	cr_assert_eq(FX_TRY(v = cpu_read8(c, SEG_DS, LIN)), -1);
	cr_assert_eq(v, 1, "a TLB keeps the old translation until invalidated");
	cpu_tlb_flush_page(c, LIN);
	cr_assert_eq(FX_TRY(v = cpu_read8(c, SEG_DS, LIN)), -1);
	cr_assert_eq(v, 2);

	/* Global pages survive a CR3 write, others do not. */
	fx_map64(LIN + 0x1000, GPA, PTE_P | PTE_W | PTE_G);
	cr_assert_eq(FX_TRY(v = cpu_read8(c, SEG_DS, LIN + 0x1000)), -1);
	cr_assert_eq(v, 1);
	fx_w64(pte, GPA | PTE_P | PTE_W);
	fx_map64(LIN + 0x1000, GPA + 0x1000, PTE_P | PTE_W | PTE_G);
	{
		/* mov cr3, rax */
		static const uint8_t code[] = { 0x0f, 0x22, 0xd8 };

		fx_code(0x10000, code, sizeof(code));
		c->rip = 0x10000;
		c->gpr[R_RAX] = c->cr3;
		cr_assert_eq(fx_step(), -1);
	}
	cr_assert_eq(FX_TRY(v = cpu_read8(c, SEG_DS, LIN)), -1);
	cr_assert_eq(v, 1);
	cr_assert_eq(FX_TRY(v = cpu_read8(c, SEG_DS, LIN + 0x1000)), -1);
	cr_assert_eq(v, 1, "global entry kept across MOV CR3");
	cpu_tlb_flush(c, true);
	cr_assert_eq(FX_TRY(v = cpu_read8(c, SEG_DS, LIN + 0x1000)), -1);
	cr_assert_eq(v, 2);
}

Test(mmu, invlpg_drops_a_whole_large_page)
{
	struct cpu *c = g_fx->cpu;
	uint64_t pde;
	uint8_t v = 0;

	fx_long_mode();
	pde = fx_entry64(0x80000000ULL, 2);
	fx_w64(pde, 0x600000 | PTE_P | PTE_W | PTE_PS);
	g_fx->ram[0x605000] = 1;
	g_fx->ram[0x805000] = 2;
	cr_assert_eq(FX_TRY(v = cpu_read8(c, SEG_DS, 0x80005000ULL)), -1);
	cr_assert_eq(v, 1);
	fx_w64(pde, 0x800000 | PTE_P | PTE_W | PTE_PS);
	cpu_tlb_flush_page(c, 0x80000000ULL); /* another 4 KiB of the same 2 MiB page */
	cr_assert_eq(FX_TRY(v = cpu_read8(c, SEG_DS, 0x80005000ULL)), -1);
	cr_assert_eq(v, 2);
}

Test(mmu, page_crossing_write_checks_both_pages)
{
	struct cpu *c = g_fx->cpu;
	uint64_t v = 0;

	fx_long_mode();
	fx_map64(LIN, GPA, PTE_P | PTE_W);
	fx_map64(LIN + 0x1000, GPA + 0x1000, PTE_P);
	cr_assert_eq(FX_TRY(cpu_write64(c, SEG_DS, LIN + 0xffc, ~0ULL)), EXC_PF);
	cr_assert_eq(c->cr2, LIN + 0x1000);
	cr_assert_eq(c->exc_error, PF_P | PF_W);
	cr_assert_eq(fx_r32(GPA + 0xffc), 0);
	fx_map64(LIN + 0x1000, GPA + 0x1000, PTE_P | PTE_W);
	cpu_tlb_flush_page(c, LIN + 0x1000);
	cr_assert_eq(FX_TRY(cpu_write64(c, SEG_DS, LIN + 0xffc, 0x1122334455667788ULL)), -1);
	cr_assert_eq(FX_TRY(v = cpu_read64(c, SEG_DS, LIN + 0xffc)), -1);
	cr_assert_eq(v, 0x1122334455667788ULL);
	cr_assert_eq(fx_r32(GPA + 0x1000), 0x11223344);
}

Test(mmu, mmio_goes_to_env)
{
	struct cpu *c = g_fx->cpu;
	uint32_t v = 0;

	fx_long_mode();
	fx_map64(LIN, FX_MMIO, PTE_P | PTE_W);
	g_fx->mmio_val = 0xdeadbeef;
	cr_assert_eq(FX_TRY(v = cpu_read32(c, SEG_DS, LIN + 0x20)), -1);
	cr_assert_eq(v, 0xdeadbeef);
	cr_assert_eq(g_fx->mmio_gpa, FX_MMIO + 0x20);
	cr_assert_eq(FX_TRY(cpu_write32(c, SEG_DS, LIN + 0xb0, 0)), -1);
	cr_assert_eq(g_fx->mmio_gpa, FX_MMIO + 0xb0);
	cr_assert_eq(g_fx->nmmio, 2);
	/* Never a fast tag: the next access reaches the device again. */
	cr_assert_eq(FX_TRY(v = cpu_read32(c, SEG_DS, LIN + 0x20)), -1);
	cr_assert_eq(g_fx->nmmio, 3);
	cr_assert_null(cpu_rmw_ptr(c, SEG_DS, LIN, 4));
	{
		unsigned avail;
		uint64_t gpa;

		cr_assert_eq(FX_TRY(cpu_fetch_ptr(c, LIN, &avail, &gpa)), EXC_UNIMPLEMENTED);
	}
}

Test(mmu, canonical_checks_in_64bit_mode)
{
	struct cpu *c = g_fx->cpu;

	fx_long_mode();
	cr_assert_eq(FX_TRY(cpu_read8(c, SEG_DS, 0x0000800000000000ULL)), EXC_GP);
	cr_assert_eq(c->exc_error, 0);
	cr_assert_eq(FX_TRY(cpu_read8(c, SEG_SS, 0x0000800000000000ULL)), EXC_SS);
	cr_assert_eq(FX_TRY(cpu_read64(c, SEG_DS, 0x00007ffffffffffcULL)), EXC_GP);
	/* FS base applies; DS base does not. */
	c->seg[SEG_FS].base = LIN;
	c->seg[SEG_DS].base = 0x12345;
	fx_map64(LIN, GPA, PTE_P | PTE_W);
	cr_assert_eq(cpu_linear(c, SEG_FS, 8, 1, false), LIN + 8);
	cr_assert_eq(cpu_linear(c, SEG_DS, 8, 1, false), 8);
}

Test(mmu, protected_mode_segment_checks)
{
	struct cpu *c = g_fx->cpu;

	fx_prot32();
	/* Read-only data, expand-down, null selector. */
	fx_w64(FX_GDT + 0x50, fx_desc(0x10000, 0xfff, 0x91, 0x4));	   /* RO data */
	fx_w64(FX_GDT + 0x48, fx_desc(0x20000, 0xfff, 0x97, 0x0));	   /* expand-down 16-bit */
	c->gdtr.limit = 0x57;
	cr_assert_eq(FX_TRY(seg_load(c, SEG_ES, 0x50)), -1);
	cr_assert_eq(FX_TRY(cpu_read8(c, SEG_ES, 0x10)), -1);
	cr_assert_eq(FX_TRY(cpu_write8(c, SEG_ES, 0x10, 1)), EXC_GP);
	cr_assert_eq(FX_TRY(cpu_read8(c, SEG_ES, 0x1000)), EXC_GP);
	cr_assert_eq(FX_TRY(seg_load(c, SEG_ES, 0x48)), -1);
	cr_assert_eq(FX_TRY(cpu_read8(c, SEG_ES, 0xfff)), EXC_GP);
	cr_assert_eq(FX_TRY(cpu_write16(c, SEG_ES, 0x1000, 1)), -1);
	cr_assert_eq(FX_TRY(cpu_write16(c, SEG_ES, 0xffff, 1)), EXC_GP);
	cr_assert_eq(fx_r16(0x21000), 1);
	cr_assert_eq(FX_TRY(seg_load(c, SEG_ES, 0)), -1);
	cr_assert_eq(FX_TRY(cpu_read8(c, SEG_ES, 0)), EXC_GP);
	cr_assert_eq(c->exc_error, 0);
	/* CS: execute/read code is readable, never writable. */
	cr_assert_eq(FX_TRY(cpu_read8(c, SEG_CS, 0)), -1);
	cr_assert_eq(FX_TRY(cpu_write8(c, SEG_CS, 0, 1)), EXC_GP);
}

Test(mmu, rmw_ptr_and_stack)
{
	struct cpu *c = g_fx->cpu;
	uint32_t *p;

	fx_long_mode();
	fx_map64(LIN, GPA, PTE_P | PTE_W);
	p = cpu_rmw_ptr(c, SEG_DS, LIN + 4, 4);
	cr_assert_not_null(p);
	*p = 99;
	cr_assert_eq(fx_r32(GPA + 4), 99);
	cr_assert(fx_r64(fx_entry64(LIN, 1)) & PTE_D);
	cr_assert_null(cpu_rmw_ptr(c, SEG_DS, LIN + 0xffe, 4));
	c->gpr[R_RSP] = 0x8000;
	cpu_push(c, 0x1122334455667788ULL, 8);
	cr_assert_eq(c->gpr[R_RSP], 0x7ff8);
	cr_assert_eq(fx_r64(0x7ff8), 0x1122334455667788ULL);
	cr_assert_eq(cpu_pop(c, 2), 0x7788);
	cr_assert_eq(c->gpr[R_RSP], 0x7ffa);
}

Test(mmu, stack_wraps_at_16_bits)
{
	struct cpu *c = g_fx->cpu; /* real mode after reset */

	c->gpr[R_RSP] = 0x12340000;
	cpu_push(c, 0xabcd, 2);
	cr_assert_eq(c->gpr[R_RSP], 0x1234fffe);
	cr_assert_eq(fx_r16(0xfffe), 0xabcd);
}
