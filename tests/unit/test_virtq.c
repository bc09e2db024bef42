#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "unit/virtq_fake.h"
#include "vmm/virtio/queue.h"

static struct vq_fake f;
static struct virtq_chain c;

static void setup(void)
{
	vq_fake_init(&f, 16);
	memset(&c, 0, sizeof(c));
}

static void teardown(void)
{
	vq_fake_free(&f);
}

TestSuite(virtq, .init = setup, .fini = teardown);

/* The host address of guest-physical gpa in the fake RAM. */
static void *hva(uint64_t gpa)
{
	return f.ram + gpa;
}

static void expect_broken(void)
{
	uint16_t before = f.q.last_avail;

	cr_assert_eq(virtq_pop(&f.q, &c), -EINVAL);
	cr_assert_not_null(f.q.error);
	/* A failed pop consumes nothing, and fails again the same way. */
	cr_assert_eq(f.q.last_avail, before);
	cr_assert_eq(virtq_pop(&f.q, &c), -EINVAL);
}

Test(virtq, empty_queue_pops_nothing)
{
	cr_assert_eq(virtq_pending(&f.q), 0);
	cr_assert_eq(virtq_pop(&f.q, &c), 0);
}

Test(virtq, not_ready_queue_pops_nothing)
{
	struct vq_fake_seg s = {.len = 8};

	vq_fake_add_chain(&f, &s, 1);
	f.q.ready = false;
	cr_assert_eq(virtq_pop(&f.q, &c), 0);
	cr_assert_eq(virtq_pending(&f.q), 0);
}

Test(virtq, readable_and_writable_chain)
{
	const char req[] = "request";
	struct vq_fake_seg s[] = {
	    {.data = req, .len = sizeof(req)},
	    {.len = 100},
	    {.len = 512, .write = true},
	    {.len = 1, .write = true},
	};
	uint16_t head = vq_fake_add_chain(&f, s, 4);

	cr_assert_eq(virtq_pending(&f.q), 1);
	cr_assert_eq(virtq_pop(&f.q, &c), 1);
	cr_assert_eq(c.head, head);
	cr_assert_eq(c.nout, 2);
	cr_assert_eq(c.nin, 2);
	cr_assert_eq(c.out_len, sizeof(req) + 100);
	cr_assert_eq(c.in_len, 513);
	cr_assert_eq(c.out[0].iov_base, hva(f.seg_gpa[0]));
	cr_assert_eq(c.out[0].iov_len, sizeof(req));
	cr_assert_str_eq(c.out[0].iov_base, "request");
	cr_assert_eq(c.out[1].iov_base, hva(f.seg_gpa[1]));
	cr_assert_eq(c.in[0].iov_base, hva(f.seg_gpa[2]));
	cr_assert_eq(c.in[0].iov_len, 512);
	cr_assert_eq(c.in[1].iov_base, hva(f.seg_gpa[3]));
	cr_assert_eq(c.in[1].iov_len, 1);
	cr_assert_eq(virtq_pending(&f.q), 0);
	cr_assert_eq(virtq_pop(&f.q, &c), 0);
}

Test(virtq, used_ring_records_head_and_length)
{
	struct vq_fake_seg s[] = {{.len = 16}, {.len = 64, .write = true}};
	uint16_t h1 = vq_fake_add_chain(&f, s, 2);
	uint16_t h2 = vq_fake_add_chain(&f, s, 2);
	uint32_t id, len;

	cr_assert_eq(virtq_pop(&f.q, &c), 1);
	cr_assert_eq(c.head, h1);
	cr_assert_eq(virtq_pop(&f.q, &c), 1);
	cr_assert_eq(c.head, h2);
	/* Completed out of order, as a device may. */
	cr_assert_eq(virtq_push(&f.q, h2, 7), 0);
	cr_assert_eq(vq_fake_used_idx(&f), 1);
	cr_assert_eq(virtq_push(&f.q, h1, 64), 0);
	cr_assert_eq(vq_fake_used_idx(&f), 2);
	vq_fake_used(&f, 0, &id, &len);
	cr_assert_eq(id, h2);
	cr_assert_eq(len, 7);
	vq_fake_used(&f, 1, &id, &len);
	cr_assert_eq(id, h1);
	cr_assert_eq(len, 64);
}

Test(virtq, push_rejects_head_out_of_range)
{
	cr_assert_eq(virtq_push(&f.q, 16, 0), -EINVAL);
	cr_assert_eq(vq_fake_used_idx(&f), 0);
}

Test(virtq, max_length_chain)
{
	struct vq_fake_seg s[VIRTQ_CHAIN_MAX];

	teardown();
	vq_fake_init(&f, 256);
	for (int i = 0; i < VIRTQ_CHAIN_MAX; i++)
		s[i] = (struct vq_fake_seg){.len = 4 + i, .write = i >= 100};
	vq_fake_add_chain(&f, s, VIRTQ_CHAIN_MAX);
	cr_assert_eq(virtq_pop(&f.q, &c), 1);
	cr_assert_eq(c.nout, 100);
	cr_assert_eq(c.nin, VIRTQ_CHAIN_MAX - 100);
	for (int i = 0; i < VIRTQ_CHAIN_MAX; i++) {
		struct iovec *v = i < 100 ? &c.out[i] : &c.in[i - 100];

		cr_assert_eq(v->iov_base, hva(f.seg_gpa[i]));
		cr_assert_eq(v->iov_len, 4 + i);
	}
}

Test(virtq, chain_longer_than_chain_max_is_broken)
{
	struct vq_fake_seg s[VIRTQ_CHAIN_MAX];

	teardown();
	vq_fake_init(&f, 512);
	for (int i = 0; i < VIRTQ_CHAIN_MAX; i++)
		s[i] = (struct vq_fake_seg){.len = 4};
	/* 256 linked descriptors, then one more linked after them. */
	vq_fake_add_chain(&f, s, VIRTQ_CHAIN_MAX);
	vq_fake_set_desc(&f, 255, f.seg_gpa[255], 4, VIRTQ_DESC_F_NEXT, 256);
	vq_fake_set_desc(&f, 256, f.seg_gpa[0], 4, 0, 0);
	expect_broken();
}

Test(virtq, zero_length_descriptor_gives_no_iovec)
{
	/* Its address is not even RAM: it is never used. */
	vq_fake_set_desc(&f, 0, 0x1000, 8, VIRTQ_DESC_F_NEXT, 1);
	vq_fake_set_desc(&f, 1, 1ull << 60, 0, VIRTQ_DESC_F_NEXT, 2);
	vq_fake_set_desc(&f, 2, 0x2000, 8, VIRTQ_DESC_F_WRITE, 0);
	vq_fake_publish(&f, 0);
	cr_assert_eq(virtq_pop(&f.q, &c), 1);
	cr_assert_eq(c.nout, 1);
	cr_assert_eq(c.nin, 1);
	cr_assert_eq(c.out_len, 8);
}

Test(virtq, indirect_chain)
{
	struct vq_fake_seg s[] = {
	    {.data = "hdr", .len = 4},
	    {.len = 4096, .write = true},
	    {.len = 1, .write = true},
	};
	uint16_t head;

	f.q.indirect = true;
	head = vq_fake_add_indirect(&f, s, 3);
	cr_assert_eq(virtq_pop(&f.q, &c), 1);
	cr_assert_eq(c.head, head);
	cr_assert_eq(c.nout, 1);
	cr_assert_eq(c.nin, 2);
	cr_assert_str_eq(c.out[0].iov_base, "hdr");
	cr_assert_eq(c.in[0].iov_base, hva(f.seg_gpa[1]));
	cr_assert_eq(c.in[0].iov_len, 4096);
	cr_assert_eq(c.in_len, 4097);
	cr_assert_eq(virtq_push(&f.q, head, 4097), 0);
}

Test(virtq, direct_descriptors_then_indirect_table)
{
	uint64_t table = vq_fake_alloc(&f, 32);

	f.q.indirect = true;
	vq_fake_set_desc(&f, 3, 0x3000, 10, VIRTQ_DESC_F_NEXT, 5);
	vq_fake_set_desc(&f, 5, table, 32, VIRTQ_DESC_F_INDIRECT, 0);
	vq_fake_set_desc_at(&f, table, 0, 0x4000, 20, VIRTQ_DESC_F_NEXT, 1);
	vq_fake_set_desc_at(&f, table, 1, 0x5000, 30, VIRTQ_DESC_F_WRITE, 0);
	vq_fake_publish(&f, 3);
	cr_assert_eq(virtq_pop(&f.q, &c), 1);
	cr_assert_eq(c.nout, 2);
	cr_assert_eq(c.nin, 1);
	cr_assert_eq(c.out_len, 30);
	cr_assert_eq(c.in_len, 30);
	cr_assert_eq(c.in[0].iov_base, hva(0x5000));
}

Test(virtq, unpop_returns_the_same_chain)
{
	struct vq_fake_seg s = {.len = 8, .write = true};
	uint16_t head = vq_fake_add_chain(&f, &s, 1);

	cr_assert_eq(virtq_pop(&f.q, &c), 1);
	virtq_unpop(&f.q);
	cr_assert_eq(virtq_pending(&f.q), 1);
	memset(&c, 0, sizeof(c));
	cr_assert_eq(virtq_pop(&f.q, &c), 1);
	cr_assert_eq(c.head, head);
	cr_assert_eq(c.in_len, 8);
}

Test(virtq, indices_wrap_at_65536)
{
	struct vq_fake_seg s[] = {{.len = 8}, {.len = 8, .write = true}};
	uint16_t heads[6];
	uint32_t id, len;

	vq_fake_start_at(&f, 65533);
	for (int i = 0; i < 6; i++)
		heads[i] = vq_fake_add_chain(&f, s, 2);
	cr_assert_eq(f.avail_idx, 3);
	cr_assert_eq(virtq_pending(&f.q), 6);
	for (int i = 0; i < 6; i++) {
		cr_assert_eq(virtq_pop(&f.q, &c), 1);
		cr_assert_eq(c.head, heads[i]);
		cr_assert_eq(virtq_push(&f.q, c.head, i), 0);
	}
	cr_assert_eq(virtq_pop(&f.q, &c), 0);
	cr_assert_eq(f.q.last_avail, 3);
	cr_assert_eq(vq_fake_used_idx(&f), 3);
	for (int i = 0; i < 6; i++) {
		vq_fake_used(&f, (uint16_t)(65533 + i), &id, &len);
		cr_assert_eq(id, heads[i]);
		cr_assert_eq(len, i);
	}
}

Test(virtq, full_queue_of_pending_chains)
{
	struct vq_fake_seg s = {.len = 8};

	vq_fake_start_at(&f, 65530);
	for (int i = 0; i < 16; i++)
		vq_fake_add_chain(&f, &s, 1);
	cr_assert_eq(virtq_pending(&f.q), 16);
	for (int i = 0; i < 16; i++)
		cr_assert_eq(virtq_pop(&f.q, &c), 1);
	cr_assert_eq(virtq_pop(&f.q, &c), 0);
}

/* Notifications */

static void push_one(void)
{
	struct vq_fake_seg s = {.len = 8, .write = true};

	vq_fake_add_chain(&f, &s, 1);
	cr_assert_eq(virtq_pop(&f.q, &c), 1);
	cr_assert_eq(virtq_push(&f.q, c.head, 8), 0);
}

Test(virtq, notify_unless_no_interrupt)
{
	push_one();
	cr_assert(virtq_should_notify(&f.q));
	vq_fake_set_avail_flags(&f, VIRTQ_AVAIL_F_NO_INTERRUPT);
	push_one();
	cr_assert_not(virtq_should_notify(&f.q));
	vq_fake_set_avail_flags(&f, 0);
	push_one();
	cr_assert(virtq_should_notify(&f.q));
}

Test(virtq, event_idx_notifies_when_used_event_is_crossed)
{
	f.q.event_idx = true;
	/* The first decision after a reset always notifies. */
	push_one();
	cr_assert(virtq_should_notify(&f.q));
	/* The driver wants an interrupt once used->idx passes 3 (i.e. at 4). */
	vq_fake_set_used_event(&f, 3);
	push_one(); /* used 2 */
	cr_assert_not(virtq_should_notify(&f.q));
	push_one(); /* used 3 */
	cr_assert_not(virtq_should_notify(&f.q));
	push_one(); /* used 4: crosses entry 3 */
	cr_assert(virtq_should_notify(&f.q));
	/* Nothing new pushed: no interrupt. */
	cr_assert_not(virtq_should_notify(&f.q));
	/* used_event behind us: no interrupt. */
	push_one();
	cr_assert_not(virtq_should_notify(&f.q));
}

Test(virtq, event_idx_batch_crossing_used_event)
{
	f.q.event_idx = true;
	push_one();
	cr_assert(virtq_should_notify(&f.q));
	vq_fake_set_used_event(&f, 2);
	/* Three pushes in one batch (used 1 -> 4) cross entry 2. */
	push_one();
	push_one();
	push_one();
	cr_assert(virtq_should_notify(&f.q));
}

Test(virtq, event_idx_ignores_no_interrupt_flag)
{
	f.q.event_idx = true;
	vq_fake_set_avail_flags(&f, VIRTQ_AVAIL_F_NO_INTERRUPT);
	push_one();
	cr_assert(virtq_should_notify(&f.q));
	vq_fake_set_used_event(&f, 1);
	push_one();
	cr_assert(virtq_should_notify(&f.q));
}

Test(virtq, event_idx_across_wraparound)
{
	f.q.event_idx = true;
	vq_fake_start_at(&f, 65534);
	push_one(); /* used 65535 */
	cr_assert(virtq_should_notify(&f.q));
	vq_fake_set_used_event(&f, 0);
	push_one(); /* used 0 */
	cr_assert_not(virtq_should_notify(&f.q));
	push_one(); /* used 1: crosses entry 0 */
	cr_assert(virtq_should_notify(&f.q));
}

Test(virtq, event_idx_reset_notifies_again)
{
	f.q.event_idx = true;
	push_one();
	cr_assert(virtq_should_notify(&f.q));
	vq_fake_set_used_event(&f, 100);
	virtq_reset(&f.q);
	cr_assert_eq(f.q.last_avail, 0);
	cr_assert_eq(f.q.used_idx, 0);
	cr_assert(f.q.ready);
	cr_assert_eq(f.q.size, 16);
	/* The driver starts over too; used_event 100 is not crossed, yet the
	 * first decision after the reset notifies. */
	vq_fake_start_at(&f, 0);
	push_one();
	cr_assert(virtq_should_notify(&f.q));
	push_one();
	cr_assert_not(virtq_should_notify(&f.q));
}

Test(virtq, event_idx_sets_avail_event_when_empty)
{
	struct vq_fake_seg s = {.len = 8};

	f.q.event_idx = true;
	vq_fake_start_at(&f, 500);
	cr_assert_eq(virtq_pop(&f.q, &c), 0);
	cr_assert_eq(vq_fake_avail_event(&f), 500);
	vq_fake_add_chain(&f, &s, 1);
	vq_fake_add_chain(&f, &s, 1);
	cr_assert_eq(virtq_pop(&f.q, &c), 1);
	cr_assert_eq(virtq_pop(&f.q, &c), 1);
	cr_assert_eq(virtq_pop(&f.q, &c), 0);
	cr_assert_eq(vq_fake_avail_event(&f), 502);
}

Test(virtq, without_event_idx_avail_event_untouched)
{
	vq_fake_start_at(&f, 500);
	cr_assert_eq(virtq_pop(&f.q, &c), 0);
	cr_assert_eq(vq_fake_avail_event(&f), 0);
}

/* Hostile rings: each is -EINVAL, consumes nothing, and never crashes. */

Test(virtq, avail_idx_more_than_size_ahead)
{
	vq_fake_set_avail_idx(&f, 17);
	cr_assert_eq(virtq_pending(&f.q), 0);
	expect_broken();
}

Test(virtq, avail_idx_behind_last_avail)
{
	vq_fake_start_at(&f, 100);
	vq_fake_set_avail_idx(&f, 99);
	expect_broken();
}

Test(virtq, head_out_of_range)
{
	vq_fake_publish(&f, 16);
	expect_broken();
}

Test(virtq, next_out_of_range)
{
	vq_fake_set_desc(&f, 0, 0x1000, 8, VIRTQ_DESC_F_NEXT, 16);
	vq_fake_publish(&f, 0);
	expect_broken();
}

Test(virtq, loop_of_two)
{
	vq_fake_set_desc(&f, 0, 0x1000, 8, VIRTQ_DESC_F_NEXT, 1);
	vq_fake_set_desc(&f, 1, 0x1000, 8, VIRTQ_DESC_F_NEXT, 0);
	vq_fake_publish(&f, 0);
	expect_broken();
}

Test(virtq, loop_of_zero_length_descriptors)
{
	vq_fake_set_desc(&f, 4, 0, 0, VIRTQ_DESC_F_NEXT, 4);
	vq_fake_publish(&f, 4);
	expect_broken();
}

Test(virtq, loop_in_large_queue_stops_at_chain_max)
{
	teardown();
	vq_fake_init(&f, 32768);
	for (uint32_t i = 0; i < 32768; i++)
		vq_fake_set_desc(&f, i, 0, 0, VIRTQ_DESC_F_NEXT, (i + 1) % 32768);
	vq_fake_publish(&f, 0);
	expect_broken();
}

Test(virtq, buffer_outside_ram)
{
	vq_fake_set_desc(&f, 0, VQ_FAKE_RAM_SIZE, 8, 0, 0);
	vq_fake_publish(&f, 0);
	expect_broken();
}

Test(virtq, buffer_crossing_end_of_ram)
{
	vq_fake_set_desc(&f, 0, VQ_FAKE_RAM_SIZE - 4, 8, VIRTQ_DESC_F_WRITE, 0);
	vq_fake_publish(&f, 0);
	expect_broken();
}

Test(virtq, buffer_wrapping_address_space)
{
	vq_fake_set_desc(&f, 0, UINT64_MAX - 3, 8, 0, 0);
	vq_fake_publish(&f, 0);
	expect_broken();
}

Test(virtq, buffer_in_second_segment_outside)
{
	vq_fake_set_desc(&f, 0, 0x1000, 8, VIRTQ_DESC_F_NEXT, 1);
	vq_fake_set_desc(&f, 1, 0x2000, UINT32_MAX, VIRTQ_DESC_F_WRITE, 0);
	vq_fake_publish(&f, 0);
	expect_broken();
}

Test(virtq, readable_after_writable)
{
	vq_fake_set_desc(&f, 0, 0x1000, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	vq_fake_set_desc(&f, 1, 0x2000, 8, 0, 0);
	vq_fake_publish(&f, 0);
	expect_broken();
}

Test(virtq, chain_total_over_4gib)
{
	struct gmem_region r[2];

	/* Two 3 GiB descriptors: add a fake region that maps nothing real. */
	r[0] = f.mem.regions[0];
	r[1] = (struct gmem_region){.gpa = 1ull << 40, .size = 3ull << 30, .hva = f.ram};
	gmem_init_fake(&f.mem, r, 2);
	vq_fake_set_desc(&f, 0, 1ull << 40, 3u << 30, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	vq_fake_set_desc(&f, 1, 1ull << 40, 3u << 30, VIRTQ_DESC_F_WRITE, 0);
	vq_fake_publish(&f, 0);
	expect_broken();
}

Test(virtq, indirect_not_negotiated)
{
	struct vq_fake_seg s = {.len = 8};

	vq_fake_add_indirect(&f, &s, 1);
	expect_broken();
	f.q.indirect = true;
	cr_assert_eq(virtq_pop(&f.q, &c), 1);
}

Test(virtq, indirect_with_next)
{
	uint64_t table = vq_fake_alloc(&f, 16);

	f.q.indirect = true;
	vq_fake_set_desc_at(&f, table, 0, 0x1000, 8, 0, 0);
	vq_fake_set_desc(&f, 0, table, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	vq_fake_set_desc(&f, 1, 0x1000, 8, 0, 0);
	vq_fake_publish(&f, 0);
	expect_broken();
}

Test(virtq, nested_indirect)
{
	uint64_t t1 = vq_fake_alloc(&f, 16), t2 = vq_fake_alloc(&f, 16);

	f.q.indirect = true;
	vq_fake_set_desc_at(&f, t2, 0, 0x1000, 8, 0, 0);
	vq_fake_set_desc_at(&f, t1, 0, t2, 16, VIRTQ_DESC_F_INDIRECT, 0);
	vq_fake_set_desc(&f, 0, t1, 16, VIRTQ_DESC_F_INDIRECT, 0);
	vq_fake_publish(&f, 0);
	expect_broken();
}

static void indirect_table_case(uint64_t addr, uint32_t len)
{
	f.q.indirect = true;
	vq_fake_set_desc(&f, 0, addr, len, VIRTQ_DESC_F_INDIRECT, 0);
	vq_fake_publish(&f, 0);
	expect_broken();
}

Test(virtq, indirect_len_zero)
{
	indirect_table_case(vq_fake_alloc(&f, 16), 0);
}

Test(virtq, indirect_len_not_multiple_of_16)
{
	indirect_table_case(vq_fake_alloc(&f, 32), 24);
}

Test(virtq, indirect_table_beyond_ram)
{
	indirect_table_case(VQ_FAKE_RAM_SIZE - 16, 32);
}

Test(virtq, indirect_table_wrapping_address_space)
{
	indirect_table_case(UINT64_MAX - 15, 32);
}

Test(virtq, indirect_next_out_of_table)
{
	uint64_t table = vq_fake_alloc(&f, 32);

	f.q.indirect = true;
	vq_fake_set_desc_at(&f, table, 0, 0x1000, 8, VIRTQ_DESC_F_NEXT, 1);
	vq_fake_set_desc_at(&f, table, 1, 0x1000, 8, VIRTQ_DESC_F_NEXT, 2);
	/* Entry 2 lies just past the table: it must not be read. */
	vq_fake_set_desc_at(&f, table, 2, 0x1000, 8, 0, 0);
	vq_fake_set_desc(&f, 0, table, 32, VIRTQ_DESC_F_INDIRECT, 0);
	vq_fake_publish(&f, 0);
	expect_broken();
}

Test(virtq, indirect_loop)
{
	uint64_t table = vq_fake_alloc(&f, 48);

	f.q.indirect = true;
	vq_fake_set_desc_at(&f, table, 0, 0x1000, 8, VIRTQ_DESC_F_NEXT, 1);
	vq_fake_set_desc_at(&f, table, 1, 0x1000, 8, VIRTQ_DESC_F_NEXT, 2);
	vq_fake_set_desc_at(&f, table, 2, 0x1000, 8, VIRTQ_DESC_F_NEXT, 1);
	vq_fake_set_desc(&f, 0, table, 48, VIRTQ_DESC_F_INDIRECT, 0);
	vq_fake_publish(&f, 0);
	expect_broken();
}

Test(virtq, indirect_chain_longer_than_chain_max)
{
	uint32_t n = VIRTQ_CHAIN_MAX + 1;
	uint64_t table = vq_fake_alloc(&f, 16 * n);

	f.q.indirect = true;
	for (uint32_t i = 0; i < n; i++)
		vq_fake_set_desc_at(&f, table, i, 0x1000, 8, i + 1 < n ? VIRTQ_DESC_F_NEXT : 0,
				    (uint16_t)(i + 1));
	vq_fake_set_desc(&f, 0, table, 16 * n, VIRTQ_DESC_F_INDIRECT, 0);
	vq_fake_publish(&f, 0);
	expect_broken();
}

Test(virtq, indirect_readable_after_writable)
{
	uint64_t table = vq_fake_alloc(&f, 32);

	f.q.indirect = true;
	vq_fake_set_desc_at(&f, table, 0, 0x1000, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	vq_fake_set_desc_at(&f, table, 1, 0x1000, 8, 0, 0);
	vq_fake_set_desc(&f, 0, table, 32, VIRTQ_DESC_F_INDIRECT, 0);
	vq_fake_publish(&f, 0);
	expect_broken();
}

Test(virtq, writable_direct_then_readable_indirect)
{
	uint64_t table = vq_fake_alloc(&f, 16);

	f.q.indirect = true;
	vq_fake_set_desc_at(&f, table, 0, 0x1000, 8, 0, 0);
	vq_fake_set_desc(&f, 0, 0x2000, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	vq_fake_set_desc(&f, 1, table, 16, VIRTQ_DESC_F_INDIRECT, 0);
	vq_fake_publish(&f, 0);
	expect_broken();
}

Test(virtq, broken_chain_after_good_one)
{
	struct vq_fake_seg s = {.len = 8};

	vq_fake_add_chain(&f, &s, 1);
	vq_fake_publish(&f, 200);
	cr_assert_eq(virtq_pop(&f.q, &c), 1);
	expect_broken();
}

/* Ring placement (virtq_validate) */

Test(virtq, validate_accepts_fake_layout)
{
	cr_assert_eq(virtq_validate(&f.q), 0);
}

Test(virtq, validate_size)
{
	uint16_t bad[] = {0, 3, 24, 65535};

	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f.q.size = bad[i];
		cr_assert_eq(virtq_validate(&f.q), -EINVAL, "size %u", bad[i]);
		cr_assert_eq(virtq_pop(&f.q, &c), -EINVAL, "size %u", bad[i]);
	}
	f.q.size = 1;
	cr_assert_eq(virtq_validate(&f.q), 0);
}

Test(virtq, validate_max_size)
{
	teardown();
	vq_fake_init(&f, 32768);
	cr_assert_eq(virtq_validate(&f.q), 0);
}

Test(virtq, validate_alignment)
{
	f.q.desc_gpa += 8;
	cr_assert_eq(virtq_validate(&f.q), -EINVAL);
	f.q.desc_gpa -= 8;
	f.q.avail_gpa += 1;
	cr_assert_eq(virtq_validate(&f.q), -EINVAL);
	f.q.avail_gpa -= 1;
	f.q.used_gpa += 2;
	cr_assert_eq(virtq_validate(&f.q), -EINVAL);
	cr_assert_eq(virtq_push(&f.q, 0, 0), -EINVAL);
	f.q.used_gpa -= 2;
	cr_assert_eq(virtq_validate(&f.q), 0);
}

Test(virtq, validate_rings_inside_ram)
{
	uint64_t gpas[] = {VQ_FAKE_RAM_SIZE, VQ_FAKE_RAM_SIZE - 32, UINT64_MAX - 15, 1ull << 50};

	for (unsigned int i = 0; i < sizeof(gpas) / sizeof(gpas[0]); i++) {
		struct virtq q = f.q;

		q.desc_gpa = gpas[i];
		cr_assert_eq(virtq_validate(&q), -EINVAL);
		q = f.q;
		q.avail_gpa = gpas[i] & ~1ull;
		cr_assert_eq(virtq_validate(&q), -EINVAL);
		q = f.q;
		q.used_gpa = gpas[i] & ~3ull;
		cr_assert_eq(virtq_validate(&q), -EINVAL);
	}
	/* The event fields are part of each ring: one byte short fails. */
	f.q.avail_gpa = VQ_FAKE_RAM_SIZE - VIRTQ_AVAIL_BYTES(16) + 2;
	cr_assert_eq(virtq_validate(&f.q), -EINVAL);
	f.q.avail_gpa -= 2;
	cr_assert_eq(virtq_validate(&f.q), 0);
}

Test(virtq, no_memory)
{
	f.q.mem = NULL;
	cr_assert_eq(virtq_validate(&f.q), -EINVAL);
	cr_assert_eq(virtq_pop(&f.q, &c), -EINVAL);
}
