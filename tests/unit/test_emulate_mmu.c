/* Guest page-table walks of the user-space instruction completion, on fake guest memory. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "vmm/x86/emulate_mmu.h"

#define RAM_SIZE (1u << 20)
#define P 1ULL
#define RW 2ULL
#define US 4ULL
#define A 0x20ULL
#define D 0x40ULL
#define PS 0x80ULL
#define XD (1ULL << 63)

static uint8_t ram[RAM_SIZE] __attribute__((aligned(4096)));
static struct guest_mem mem;

static void setup(void)
{
	struct gmem_region r = {0, RAM_SIZE, ram};

	memset(ram, 0, sizeof(ram));
	gmem_init_fake(&mem, &r, 1);
}

TestSuite(emulate_mmu, .init = setup);

static uint64_t *e64(uint64_t table, uint64_t idx)
{
	return (uint64_t *)(ram + table + idx * 8);
}

static uint32_t *e32(uint64_t table, uint64_t idx)
{
	return (uint32_t *)(ram + table + idx * 4);
}

static const struct mmu_mode long4 = {.cr0 = 0x80010001, .cr3 = 0x1000, .cr4 = 0x20, .efer = 0xd00};

/* 4-level: 0x7f0000201abc -> PML4[254] PDPT[0] PD[1] PT[1] -> page 0x9000. */
static void map_4level(uint64_t leaf_flags)
{
	*e64(0x1000, 254) = 0x2000 | P | RW | US;
	*e64(0x2000, 0) = 0x3000 | P | RW | US;
	*e64(0x3000, 1) = 0x4000 | P | RW | US;
	*e64(0x4000, 1) = 0x9000 | leaf_flags;
}

Test(emulate_mmu, four_level_walk_sets_accessed_and_dirty)
{
	uint64_t gpa;
	uint32_t pf;

	map_4level(P | RW);
	cr_assert_eq(mmu_translate(&mem, &long4, 0x7f0000201abcULL, 0, &gpa, &pf), 0);
	cr_assert_eq(gpa, 0x9abc);
	cr_assert(*e64(0x1000, 254) & A);
	cr_assert(*e64(0x4000, 1) & A);
	cr_assert_eq(*e64(0x4000, 1) & D, 0, "a read leaves the dirty bit alone");
	cr_assert_eq(mmu_translate(&mem, &long4, 0x7f0000201abcULL, MMU_WRITE, &gpa, &pf), 0);
	cr_assert(*e64(0x4000, 1) & D);
}

Test(emulate_mmu, user_access_to_a_supervisor_page_faults)
{
	struct mmu_mode user = long4;
	uint64_t gpa;
	uint32_t pf;

	map_4level(P | RW);
	user.cpl = 3;
	cr_assert_eq(mmu_translate(&mem, &user, 0x7f0000201000ULL, MMU_WRITE, &gpa, &pf), -EFAULT);
	cr_assert_eq(pf, PF_PRESENT | PF_WRITE | PF_USER);
	/* Descriptor-table reads are supervisor accesses whatever the CPL. */
	cr_assert_eq(mmu_translate(&mem, &user, 0x7f0000201000ULL, MMU_IMPLICIT_SV, &gpa, &pf), 0);
}

Test(emulate_mmu, not_present_entry_at_any_level_faults)
{
	uint64_t gpa;
	uint32_t pf;

	map_4level(P | RW);
	*e64(0x3000, 1) = 0; /* the PD entry */
	cr_assert_eq(mmu_translate(&mem, &long4, 0x7f0000201000ULL, 0, &gpa, &pf), -EFAULT);
	cr_assert_eq(pf, 0);
}

Test(emulate_mmu, write_to_read_only_page_obeys_cr0_wp)
{
	struct mmu_mode nowp = long4;
	uint64_t gpa;
	uint32_t pf;

	map_4level(P);
	cr_assert_eq(mmu_translate(&mem, &long4, 0x7f0000201000ULL, MMU_WRITE, &gpa, &pf), -EFAULT);
	cr_assert_eq(pf, PF_PRESENT | PF_WRITE);
	nowp.cr0 &= ~0x10000ULL;
	cr_assert_eq(mmu_translate(&mem, &nowp, 0x7f0000201000ULL, MMU_WRITE, &gpa, &pf), 0);
}

Test(emulate_mmu, nx_and_smep_stop_fetches)
{
	struct mmu_mode smep = long4;
	uint64_t gpa;
	uint32_t pf;

	map_4level(P | XD);
	cr_assert_eq(mmu_translate(&mem, &long4, 0x7f0000201000ULL, MMU_FETCH, &gpa, &pf), -EFAULT);
	cr_assert_eq(pf, PF_PRESENT | PF_FETCH);
	map_4level(P | US);
	cr_assert_eq(mmu_translate(&mem, &long4, 0x7f0000201000ULL, MMU_FETCH, &gpa, &pf), 0);
	smep.cr4 |= 1ULL << 20;
	cr_assert_eq(mmu_translate(&mem, &smep, 0x7f0000201000ULL, MMU_FETCH, &gpa, &pf), -EFAULT);
}

Test(emulate_mmu, one_gib_and_two_mib_pages)
{
	uint64_t gpa;
	uint32_t pf;

	*e64(0x1000, 0) = 0x2000 | P | RW;
	*e64(0x2000, 1) = 0x40000000ULL | P | RW | PS; /* 1 GiB at 1 GiB */
	*e64(0x2000, 0) = 0x3000 | P | RW;
	*e64(0x3000, 3) = 0x200000ULL | P | RW | PS; /* 2 MiB: 0x600000 -> 0x200000 */
	cr_assert_eq(mmu_translate(&mem, &long4, 0x40123456ULL, 0, &gpa, &pf), 0);
	cr_assert_eq(gpa, 0x40123456ULL);
	cr_assert_eq(mmu_translate(&mem, &long4, 0x6abcdeULL, 0, &gpa, &pf), 0);
	cr_assert_eq(gpa, 0x2abcdeULL);
}

Test(emulate_mmu, ps_in_a_pml4_entry_is_a_reserved_bit_fault)
{
	uint64_t gpa;
	uint32_t pf;

	*e64(0x1000, 0) = 0x2000 | P | RW | PS;
	cr_assert_eq(mmu_translate(&mem, &long4, 0x1000, 0, &gpa, &pf), -EFAULT);
	cr_assert_eq(pf, PF_PRESENT | PF_RSVD);
}

Test(emulate_mmu, five_level_paging_with_la57)
{
	struct mmu_mode la57 = long4;
	uint64_t la = (2ULL << 48) | 0x123; /* PML5[2], then index 0 down */
	uint64_t gpa;
	uint32_t pf;

	la57.cr4 |= 1ULL << 12;
	*e64(0x1000, 2) = 0x2000 | P | RW;
	*e64(0x2000, 0) = 0x3000 | P | RW;
	*e64(0x3000, 0) = 0x4000 | P | RW;
	*e64(0x4000, 0) = 0x5000 | P | RW;
	*e64(0x5000, 0) = 0x9000 | P | RW;
	cr_assert_eq(mmu_translate(&mem, &la57, la, 0, &gpa, &pf), 0);
	cr_assert_eq(gpa, 0x9123);
	cr_assert(mmu_canonical(&la57, la));
	cr_assert_not(mmu_canonical(&long4, la), "not canonical with 48-bit addresses");
}

Test(emulate_mmu, pae_three_levels)
{
	struct mmu_mode pae = {.cr0 = 0x80000001, .cr3 = 0x1000, .cr4 = 0x20};
	uint64_t gpa;
	uint32_t pf;

	*e64(0x1000, 3) = 0x2000 | P; /* PDPTE for 0xc0000000.. */
	*e64(0x2000, 0) = 0x3000 | P | RW;
	*e64(0x3000, 5) = 0x7000 | P | RW;
	cr_assert_eq(mmu_translate(&mem, &pae, 0xc0005010ULL, MMU_WRITE, &gpa, &pf), 0);
	cr_assert_eq(gpa, 0x7010);
}

Test(emulate_mmu, legacy_32bit_paging_with_4mib_pages)
{
	struct mmu_mode p32 = {.cr0 = 0x80000001, .cr3 = 0x1000, .cr4 = 0x10};
	uint64_t gpa;
	uint32_t pf;

	*e32(0x1000, 0x300) = 0x00400000u | P | RW | PS; /* 0xc0000000 -> 4 MiB */
	*e32(0x1000, 1) = 0x2000 | P | RW;
	*e32(0x2000, 2) = 0x8000 | P;
	cr_assert_eq(mmu_translate(&mem, &p32, 0xc0012345ULL, 0, &gpa, &pf), 0);
	cr_assert_eq(gpa, 0x412345ULL);
	cr_assert_eq(mmu_translate(&mem, &p32, 0x402abcULL, 0, &gpa, &pf), 0);
	cr_assert_eq(gpa, 0x8abc);
	cr_assert(*e32(0x2000, 2) & A);
}

Test(emulate_mmu, paging_off_is_identity)
{
	struct mmu_mode off = {.cr0 = 1};
	uint64_t gpa;
	uint32_t pf;

	cr_assert_eq(mmu_translate(&mem, &off, 0x12345, MMU_WRITE, &gpa, &pf), 0);
	cr_assert_eq(gpa, 0x12345);
}

Test(emulate_mmu, table_outside_ram_is_enxio)
{
	struct mmu_mode m = long4;
	uint64_t gpa;
	uint32_t pf;

	m.cr3 = 0x80000000ULL;
	cr_assert_eq(mmu_translate(&mem, &m, 0x1000, 0, &gpa, &pf), -ENXIO);
}
