#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "unit/virtq_fake.h"
#include "vmm/virtio/rng.h"

static struct vq_fake f;
static struct virtio_device *dev;
static int signals, broken;

static void on_signal_used(struct virtio_device *d, uint16_t q)
{
	cr_assert_eq(d, dev);
	cr_assert_eq(q, 0);
	signals++;
}

static void on_set_broken(struct virtio_device *d, const char *why)
{
	(void)d;
	cr_assert_not_null(why);
	broken++;
}

static void start(uint32_t max_request)
{
	struct virtio_rng_config cfg = {.max_request = max_request};
	char err[128] = "";

	cr_assert_eq(virtio_rng_create(&cfg, &dev, err, sizeof(err)), 0, "%s", err);
	vq_fake_init(&f, 16);
	dev->queues[0] = f.q;
	dev->mem = &f.mem;
	dev->signal_used = on_signal_used;
	dev->set_broken = on_set_broken;
	signals = broken = 0;
	cr_assert_eq(dev->ops->activate(dev), 0);
}

static void setup(void)
{
	start(0);
}

static void teardown(void)
{
	virtio_rng_destroy(dev);
	vq_fake_free(&f);
}

TestSuite(rng, .init = setup, .fini = teardown);

static uint32_t used_len(uint16_t i, uint16_t want_head)
{
	uint32_t id, len;

	vq_fake_used(&f, i, &id, &len);
	cr_assert_eq(id, want_head);
	return len;
}

/* Bytes still at the fake's 0xee fill: random data leaves about 1 in 256. */
static size_t untouched(const uint8_t *p, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += p[i] == 0xee;
	return c;
}

Test(rng, device_shape)
{
	cr_assert_eq(dev->ops->type, VIRTIO_ID_RNG);
	cr_assert_eq(dev->num_queues, 1);
	cr_assert_eq(dev->config_size, 0);
	cr_assert_eq(dev->device_features, 0);
}

Test(rng, fills_the_buffer)
{
	struct vq_fake_seg s = {.len = 4096, .write = true};
	uint16_t head = vq_fake_add_chain(&f, &s, 1);
	uint8_t *buf = vq_fake_ptr(&f, f.seg_gpa[0], 4096);

	dev->ops->queue_notify(dev, 0);
	cr_assert_eq(vq_fake_used_idx(&f), 1);
	cr_assert_eq(used_len(0, head), 4096);
	cr_assert_lt(untouched(buf, 4096), 64, "the buffer was not filled");
	cr_assert_eq(signals, 1);
}

Test(rng, fills_every_segment_and_ignores_readable_ones)
{
	struct vq_fake_seg s[] = {
	    {.len = 64}, /* readable: not the device's to write */
	    {.len = 100, .write = true},
	    {.len = 0, .write = true},
	    {.len = 900, .write = true},
	};
	uint16_t head = vq_fake_add_chain(&f, s, 4);
	uint8_t *ro = vq_fake_ptr(&f, f.seg_gpa[0], 64);
	uint8_t *a = vq_fake_ptr(&f, f.seg_gpa[1], 100);
	uint8_t *b = vq_fake_ptr(&f, f.seg_gpa[3], 900);

	dev->ops->queue_notify(dev, 0);
	cr_assert_eq(used_len(0, head), 1000);
	cr_assert_eq(untouched(ro, 64), 64);
	cr_assert_lt(untouched(a, 100), 10);
	cr_assert_lt(untouched(b, 900), 30);
}

Test(rng, caps_each_request)
{
	struct vq_fake_seg s = {.len = 4096, .write = true};
	uint16_t head;
	uint8_t *buf;

	teardown();
	start(100);
	head = vq_fake_add_chain(&f, &s, 1);
	buf = vq_fake_ptr(&f, f.seg_gpa[0], 4096);
	dev->ops->queue_notify(dev, 0);
	cr_assert_eq(used_len(0, head), 100);
	cr_assert_lt(untouched(buf, 100), 10);
	cr_assert_eq(untouched(buf + 100, 4096 - 100), 4096 - 100, "wrote past the cap");
}

Test(rng, default_cap_is_64k)
{
	struct vq_fake_seg s = {.len = 100000, .write = true};
	uint16_t head = vq_fake_add_chain(&f, &s, 1);

	dev->ops->queue_notify(dev, 0);
	cr_assert_eq(used_len(0, head), VIRTIO_RNG_MAX_REQUEST);
}

Test(rng, several_chains_and_readable_only_chain)
{
	struct vq_fake_seg w = {.len = 32, .write = true};
	struct vq_fake_seg r = {.len = 32};
	uint16_t h0 = vq_fake_add_chain(&f, &w, 1);
	uint16_t h1 = vq_fake_add_chain(&f, &r, 1);
	uint16_t h2 = vq_fake_add_chain(&f, &w, 1);

	dev->ops->queue_notify(dev, 0);
	cr_assert_eq(vq_fake_used_idx(&f), 3);
	cr_assert_eq(used_len(0, h0), 32);
	cr_assert_eq(used_len(1, h1), 0);
	cr_assert_eq(used_len(2, h2), 32);
	cr_assert_eq(signals, 1);
}

Test(rng, broken_ring_reported_once_and_reset_recovers)
{
	struct vq_fake_seg w = {.len = 32, .write = true};

	vq_fake_set_desc(&f, 0, 0x7fffffff00ull, 32, VIRTQ_DESC_F_WRITE, 0); /* outside RAM */
	vq_fake_publish(&f, 0);
	dev->ops->queue_notify(dev, 0);
	dev->ops->queue_notify(dev, 0);
	cr_assert_eq(broken, 1);
	cr_assert_eq(vq_fake_used_idx(&f), 0);

	dev->ops->reset(dev);
	vq_fake_free(&f);
	vq_fake_init(&f, 16);
	dev->queues[0] = f.q;
	dev->mem = &f.mem;
	cr_assert_eq(dev->ops->activate(dev), 0);
	vq_fake_add_chain(&f, &w, 1);
	dev->ops->queue_notify(dev, 0);
	cr_assert_eq(vq_fake_used_idx(&f), 1);
}

Test(rng, other_queues_ignored)
{
	struct vq_fake_seg w = {.len = 32, .write = true};

	vq_fake_add_chain(&f, &w, 1);
	dev->ops->queue_notify(dev, 1);
	cr_assert_eq(vq_fake_used_idx(&f), 0);
}

Test(rng_parse, takes_no_value)
{
	struct virtio_rng_config cfg;
	char err[128] = "";

	cr_assert_eq(virtio_rng_parse(NULL, &cfg, err, sizeof(err)), 0);
	cr_assert_eq(virtio_rng_parse("", &cfg, err, sizeof(err)), 0);
	cr_assert_eq(virtio_rng_parse("egd", &cfg, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "--rng"), "%s", err);
	cr_assert(strstr(err, "egd"), "%s", err);
}
