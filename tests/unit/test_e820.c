#include <criterion/criterion.h>
#include <errno.h>

#include "vmm/memory.h"
#include "vmm/x86/e820.h"
#include "vmm/x86/layout.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

/* The layout gmem_init() makes, without mapping anything (e820 reads no RAM). */
static void fake_layout(struct guest_mem *m, uint64_t ram)
{
	struct gmem_region r[2] = {
	    {.gpa = 0, .size = ram < LAYOUT_LOWMEM_END ? ram : LAYOUT_LOWMEM_END}};
	unsigned int n = 1;

	if (ram > LAYOUT_LOWMEM_END) {
		r[1] = (struct gmem_region){.gpa = LAYOUT_HIGHMEM_START,
					    .size = ram - LAYOUT_LOWMEM_END};
		n = 2;
	}
	gmem_init_fake(m, r, n);
}

static void expect(const struct e820_entry *e, uint64_t addr, uint64_t size, uint32_t type)
{
	cr_expect_eq(e->addr, addr, "addr 0x%llx, expected 0x%llx", (unsigned long long)e->addr,
		     (unsigned long long)addr);
	cr_expect_eq(e->size, size, "entry at 0x%llx: size 0x%llx, expected 0x%llx",
		     (unsigned long long)e->addr, (unsigned long long)e->size,
		     (unsigned long long)size);
	cr_expect_eq(e->type, type, "entry at 0x%llx: type %u, expected %u",
		     (unsigned long long)e->addr, e->type, type);
}

/* The fixed part below 1 MiB every layout of at least 1 MiB has. */
static void expect_low(const struct e820_entry *e)
{
	expect(&e[0], 0, LAYOUT_EBDA_START, E820_RAM);
	expect(&e[1], LAYOUT_EBDA_START, 0xa0000 - LAYOUT_EBDA_START, E820_RESERVED);
	expect(&e[2], LAYOUT_ACPI_START, LAYOUT_ACPI_END - LAYOUT_ACPI_START, E820_RESERVED);
}

static void expect_sorted_disjoint(const struct e820_entry *e, int n)
{
	for (int i = 1; i < n; i++)
		cr_expect_geq(e[i].addr, e[i - 1].addr + e[i - 1].size,
			      "entry %d overlaps entry %d", i, i - 1);
}

Test(e820, ram_128m)
{
	struct e820_entry e[E820_MAX_BUILT];
	struct guest_mem m;
	int n;

	fake_layout(&m, 128 * MiB);
	n = e820_build(&m, e, E820_MAX_BUILT);
	cr_assert_eq(n, 4);
	expect_low(e);
	expect(&e[3], 1 * MiB, 127 * MiB, E820_RAM);
}

Test(e820, ram_3g_exactly_fills_low)
{
	struct e820_entry e[E820_MAX_BUILT];
	struct guest_mem m;
	int n;

	fake_layout(&m, 3 * GiB);
	n = e820_build(&m, e, E820_MAX_BUILT);
	cr_assert_eq(n, 4, "no high entry for exactly 3 GiB, got %d entries", n);
	expect_low(e);
	expect(&e[3], 1 * MiB, 3 * GiB - 1 * MiB, E820_RAM);
}

Test(e820, ram_3g_plus_1m_goes_above_4g)
{
	struct e820_entry e[E820_MAX_BUILT];
	struct guest_mem m;
	int n;

	fake_layout(&m, 3 * GiB + 1 * MiB);
	n = e820_build(&m, e, E820_MAX_BUILT);
	cr_assert_eq(n, 5);
	expect_low(e);
	expect(&e[3], 1 * MiB, 3 * GiB - 1 * MiB, E820_RAM);
	expect(&e[4], 4 * GiB, 1 * MiB, E820_RAM);
	expect_sorted_disjoint(e, n);
}

Test(e820, ram_8g)
{
	struct e820_entry e[E820_MAX_BUILT];
	struct guest_mem m;
	uint64_t ram = 0;
	int n;

	fake_layout(&m, 8 * GiB);
	n = e820_build(&m, e, E820_MAX_BUILT);
	cr_assert_eq(n, 5);
	expect_low(e);
	expect(&e[3], 1 * MiB, 3 * GiB - 1 * MiB, E820_RAM);
	expect(&e[4], 4 * GiB, 5 * GiB, E820_RAM);
	expect_sorted_disjoint(e, n);
	/* All RAM is reported except what the EBDA, VGA hole and ACPI area take. */
	for (int i = 0; i < n; i++)
		if (e[i].type == E820_RAM)
			ram += e[i].size;
	cr_expect_eq(ram, 8 * GiB - (1 * MiB - LAYOUT_EBDA_START));
}

Test(e820, small_ram_is_clipped)
{
	struct e820_entry e[E820_MAX_BUILT];
	struct guest_mem m;
	int n;

	/* 1 MiB: nothing above 1 MiB, no entry of size 0. */
	fake_layout(&m, 1 * MiB);
	n = e820_build(&m, e, E820_MAX_BUILT);
	cr_assert_eq(n, 3);
	expect_low(e);

	/* 0x90000: only the RAM that exists. */
	fake_layout(&m, 0x90000);
	n = e820_build(&m, e, E820_MAX_BUILT);
	cr_assert_eq(n, 1);
	expect(&e[0], 0, 0x90000, E820_RAM);

	/* 0xf0000: the ACPI entry is cut at the end of RAM. */
	fake_layout(&m, 0xf0000);
	n = e820_build(&m, e, E820_MAX_BUILT);
	cr_assert_eq(n, 3);
	expect(&e[2], LAYOUT_ACPI_START, 0x10000, E820_RESERVED);
}

Test(e820, too_small_output_is_enospc)
{
	struct e820_entry e[3];
	struct guest_mem m;

	fake_layout(&m, 128 * MiB);
	cr_expect_eq(e820_build(&m, e, 3), -ENOSPC);
	cr_expect_eq(e820_build(&m, e, 0), -ENOSPC);
}

Test(e820, no_region_at_zero_is_einval)
{
	struct gmem_region r = {.gpa = LAYOUT_HIGHMEM_START, .size = 1 * GiB};
	struct e820_entry e[E820_MAX_BUILT];
	struct guest_mem m;

	gmem_init_fake(&m, &r, 1);
	cr_expect_eq(e820_build(&m, e, E820_MAX_BUILT), -EINVAL);
}
