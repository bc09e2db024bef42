#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "vmm/bus.h"

struct rec {
	uint64_t off;
	uint8_t val;
	int writes;
};

static void rec_read(void *o, uint64_t off, uint8_t *d, uint32_t len)
{
	struct rec *r = o;

	r->off = off;
	memset(d, r->val, len);
}

static void rec_write(void *o, uint64_t off, const uint8_t *d, uint32_t len)
{
	struct rec *r = o;

	(void)len;
	r->off = off;
	r->val = d[0];
	r->writes++;
}

static const struct bus_dev_ops rec_ops = {rec_read, rec_write};

Test(bus, dispatches_with_offset_relative_to_base)
{
	struct bus b;
	struct rec a = {.val = 0x11}, c = {.val = 0x22};
	uint8_t d[4];

	bus_init(&b, "pio");
	cr_assert_eq(bus_add(&b, 0x3f8, 8, &rec_ops, &a, "serial"), 0);
	cr_assert_eq(bus_add(&b, 0x60, 1, &rec_ops, &c, "kbd"), 0);
	cr_assert(bus_read(&b, 0x3fd, d, 1));
	cr_assert_eq(a.off, 5);
	cr_assert_eq(d[0], 0x11);
	cr_assert(bus_write(&b, 0x60, (uint8_t[]){0xab}, 1));
	cr_assert_eq(c.val, 0xab);
	cr_assert_eq(c.off, 0);
	bus_free(&b);
}

Test(bus, unclaimed_reads_all_ones_and_writes_are_dropped)
{
	struct bus b;
	struct rec a = {.val = 0};
	uint8_t d[4] = {0};

	bus_init(&b, "pio");
	cr_assert_eq(bus_add(&b, 0x70, 2, &rec_ops, &a, "rtc"), 0);
	cr_assert_not(bus_read(&b, 0x72, d, 4));
	cr_assert_eq(memcmp(d, "\xff\xff\xff\xff", 4), 0);
	cr_assert_not(bus_write(&b, 0x6f, d, 1));
	cr_assert_eq(a.writes, 0);
	cr_assert_not(bus_read(&b, 0, d, 1));
	cr_assert_not(bus_read(&b, UINT64_MAX, d, 1));
	bus_free(&b);
}

Test(bus, rejects_overlaps_empty_and_wrapping_ranges)
{
	struct bus b;
	struct rec a = {0};

	bus_init(&b, "mmio");
	cr_assert_eq(bus_add(&b, 0x1000, 0x100, &rec_ops, &a, "a"), 0);
	cr_assert_eq(bus_add(&b, 0x10ff, 1, &rec_ops, &a, "b"), -EEXIST);
	cr_assert_eq(bus_add(&b, 0xf00, 0x101, &rec_ops, &a, "c"), -EEXIST);
	cr_assert_eq(bus_add(&b, 0x0, 0x10000, &rec_ops, &a, "d"), -EEXIST);
	cr_assert_eq(bus_add(&b, 0x2000, 0, &rec_ops, &a, "e"), -EINVAL);
	cr_assert_eq(bus_add(&b, UINT64_MAX - 1, 4, &rec_ops, &a, "f"), -EINVAL);
	cr_assert_eq(bus_add(&b, 0x1100, 0x100, &rec_ops, &a, "adjacent"), 0);
	cr_assert_eq(bus_add(&b, 0xf00, 0x100, &rec_ops, &a, "below"), 0);
	cr_assert_eq(b.n, 3);
	bus_free(&b);
}

Test(bus, finds_every_range_among_many)
{
	struct bus b;
	struct rec r[200];

	bus_init(&b, "pio");
	/* Added in a scrambled order; lookups must still find each one. */
	for (int i = 0; i < 200; i++) {
		int k = (i * 73) % 200;

		r[k].val = (uint8_t)k;
		cr_assert_eq(bus_add(&b, 0x100 + k * 4, 3, &rec_ops, &r[k], "r"), 0);
	}
	for (int k = 0; k < 200; k++) {
		uint8_t d;

		cr_assert(bus_read(&b, 0x100 + k * 4 + 2, &d, 1));
		cr_assert_eq(d, (uint8_t)k);
		cr_assert_not(bus_read(&b, 0x100 + k * 4 + 3, &d, 1), "gap after range %d", k);
	}
	bus_free(&b);
}

Test(bus, remove_unclaims_only_that_range)
{
	struct bus b;
	struct rec a = {.val = 0x11}, c = {.val = 0x22}, e = {.val = 0x33};
	uint8_t d = 0;

	bus_init(&b, "mmio");
	cr_assert_eq(bus_add(&b, 0x1000, 0x100, &rec_ops, &a, "a"), 0);
	cr_assert_eq(bus_add(&b, 0x2000, 0x100, &rec_ops, &c, "c"), 0);
	cr_assert_eq(bus_add(&b, 0x3000, 0x100, &rec_ops, &e, "e"), 0);
	cr_assert_eq(bus_remove(&b, 0x2010), -ENOENT, "not a range's base");
	cr_assert_eq(bus_remove(&b, 0x4000), -ENOENT);
	cr_assert_eq(bus_remove(&b, 0x2000), 0);
	cr_assert_eq(bus_remove(&b, 0x2000), -ENOENT, "already gone");
	cr_assert_not(bus_read(&b, 0x2010, &d, 1));
	cr_assert_eq(d, 0xff);
	cr_assert(bus_read(&b, 0x1010, &d, 1));
	cr_assert_eq(d, 0x11);
	cr_assert(bus_read(&b, 0x30ff, &d, 1));
	cr_assert_eq(d, 0x33);
	/* The freed space can be claimed again. */
	cr_assert_eq(bus_add(&b, 0x2000, 0x1000, &rec_ops, &c, "c2"), 0);
	cr_assert(bus_read(&b, 0x2fff, &d, 1));
	cr_assert_eq(d, 0x22);
	bus_free(&b);
}
