#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>

#include "vmm/memory.h"
#include "vmm/x86/layout.h"

Test(memory, small_ram_is_one_region_at_zero)
{
	struct guest_mem m;

	cr_assert_eq(gmem_init(&m, 128 << 20), 0);
	cr_assert_eq(m.nregions, 1);
	cr_assert_eq(m.regions[0].gpa, 0);
	cr_assert_eq(m.regions[0].size, 128 << 20);
	cr_assert_not_null(gmem_ptr(&m, (128 << 20) - 8, 8));
	cr_assert_null(gmem_ptr(&m, (128 << 20) - 7, 8));
	gmem_free(&m);
}

Test(memory, ram_above_3g_moves_above_4g)
{
	struct guest_mem m;
	uint64_t ram = 4ULL << 30;

	cr_assert_eq(gmem_init(&m, ram), 0);
	cr_assert_eq(m.nregions, 2);
	cr_assert_eq(m.regions[0].size, LAYOUT_LOWMEM_END);
	cr_assert_eq(m.regions[1].gpa, LAYOUT_HIGHMEM_START);
	cr_assert_eq(m.regions[1].size, ram - LAYOUT_LOWMEM_END);
	cr_assert_null(gmem_ptr(&m, LAYOUT_LOWMEM_END, 1), "the hole is not RAM");
	cr_assert_not_null(gmem_ptr(&m, LAYOUT_HIGHMEM_START + (1ULL << 30) - 1, 1));
	cr_assert_eq(gmem_region_end(&m, 0x1000), LAYOUT_LOWMEM_END);
	cr_assert_eq(gmem_region_end(&m, LAYOUT_LOWMEM_END), 0);
	gmem_free(&m);
}

Test(memory, ranges_that_cross_or_wrap_are_refused)
{
	static uint8_t lo[4096], hi[4096];
	struct gmem_region r[2] = {{0, sizeof(lo), lo}, {0x10000, sizeof(hi), hi}};
	struct guest_mem m;
	uint8_t buf[16];

	gmem_init_fake(&m, r, 2);
	cr_assert_eq(m.ram_size, 8192);
	cr_assert_null(gmem_ptr(&m, 4090, 16), "crosses the end of a region");
	cr_assert_null(gmem_ptr(&m, 8, UINT64_MAX), "length wraps");
	cr_assert_null(gmem_ptr(&m, UINT64_MAX, 2));
	cr_assert_eq(gmem_write(&m, 0x10000 + 4088, "12345678", 8), 0);
	cr_assert_eq(gmem_read(&m, 0x10000 + 4088, buf, 8), 0);
	cr_assert_eq(memcmp(buf, "12345678", 8), 0);
	cr_assert_eq(gmem_read(&m, 0x10000 + 4089, buf, 8), -EFAULT);
	cr_assert_eq(gmem_write(&m, 0x5000, buf, 1), -EFAULT);
}

Test(memory, zero_size_is_refused)
{
	struct guest_mem m;

	cr_assert_eq(gmem_init(&m, 0), -EINVAL);
}
