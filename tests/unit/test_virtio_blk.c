#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "unit/virtq_fake.h"
#include "vmm/backend/raw.h"
#include "vmm/event.h"
#include "vmm/virtio/blk.h"

#define IMG_SECTORS 512u /* 256 KiB */
#define IMG_SIZE (IMG_SECTORS * 512u)

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct blk_seg {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

/* One device on a fake queue; file-scope because the signal callbacks get only the device. */
static struct {
	struct vq_fake f;
	struct virtio_device *d;
	char path[64];
	int signals;
	int broken;
} fx;

static void on_signal_used(struct virtio_device *d, uint16_t q)
{
	cr_assert_eq(d, fx.d);
	cr_assert_eq(q, 0);
	__atomic_add_fetch(&fx.signals, 1, __ATOMIC_SEQ_CST);
}

static void on_set_broken(struct virtio_device *d, const char *why)
{
	(void)d;
	cr_assert_not_null(why);
	fx.broken++;
}

static uint8_t pattern(uint64_t off)
{
	return (uint8_t)(off * 13 + (off >> 9) + 3);
}

static void make_image(uint64_t size)
{
	uint8_t *data = malloc(size);
	int fd;

	snprintf(fx.path, sizeof(fx.path), "/tmp/ember-test-blk-XXXXXX");
	fd = mkstemp(fx.path);
	cr_assert_geq(fd, 0);
	for (uint64_t i = 0; i < size; i++)
		data[i] = pattern(i);
	cr_assert_eq(write(fd, data, size), (ssize_t)size);
	close(fd);
	free(data);
}

static void file_read(uint64_t off, void *buf, size_t len)
{
	int fd = open(fx.path, O_RDONLY);

	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static bool file_untouched(uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len);
	bool same = true;

	file_read(off, buf, len);
	for (size_t i = 0; i < len && same; i++)
		same = buf[i] == pattern(off + i);
	free(buf);
	return same;
}

/* Creates the device on a fresh image and activates it with `features` (all offered: ~0). */
static void setup_dev(bool readonly, const char *id, uint64_t features)
{
	struct virtio_blk_config cfg = {.readonly = readonly};
	char err[256] = "";

	memset(&fx, 0, sizeof(fx));
	make_image(IMG_SIZE);
	cfg.path = fx.path;
	if (id)
		snprintf(cfg.id, sizeof(cfg.id), "%s", id);
	cr_assert_eq(virtio_blk_create(&cfg, &fx.d, err, sizeof(err)), 0, "%s", err);
	vq_fake_init(&fx.f, 256);
	fx.d->queues[0] = fx.f.q;
	fx.d->mem = &fx.f.mem;
	fx.d->driver_features = (fx.d->device_features & features) | 1ull << VIRTIO_F_VERSION_1;
	fx.d->signal_used = on_signal_used;
	fx.d->set_broken = on_set_broken;
	cr_assert_eq(fx.d->ops->activate(fx.d), 0);
}

static void setup(void)
{
	setup_dev(false, NULL, ~0ull);
}

static void setup_sync(void)
{
	setenv("EMBER_NO_IO_URING", "1", 1);
	setup();
}

static void setup_ro(void)
{
	setup_dev(true, NULL, ~0ull);
}

static void teardown(void)
{
	virtio_blk_destroy(fx.d);
	vq_fake_free(&fx.f);
	unlink(fx.path);
}

TestSuite(blk, .init = setup, .fini = teardown);
TestSuite(blk_sync, .init = setup_sync, .fini = teardown);
TestSuite(blk_ro, .init = setup_ro, .fini = teardown);

/* Kicks the queue and waits for every request to finish. */
static void kick(void)
{
	fx.d->ops->queue_notify(fx.d, 0);
	virtio_blk_poll(fx.d, true);
}

static struct blk_hdr hdr(uint32_t type, uint64_t sector)
{
	return (struct blk_hdr){.type = type, .sector = sector};
}

/* The used ring's entry for the n-th completion; its head must be `head`. */
static uint32_t used_len_of(uint16_t head)
{
	uint16_t n = vq_fake_used_idx(&fx.f);

	for (uint16_t i = 0; i < n; i++) {
		uint32_t id, len;

		vq_fake_used(&fx.f, i, &id, &len);
		if (id == head)
			return len;
	}
	cr_assert_fail("head %u not in the used ring", head);
	return 0;
}

static uint8_t *guest(uint64_t gpa, uint64_t len)
{
	return vq_fake_ptr(&fx.f, gpa, len);
}

/* A request: header, then data (readable for writes, writable for reads), then status. */
struct req {
	uint16_t head;
	uint64_t data_gpa, status_gpa;
};

static struct req add_rw(uint32_t type, uint64_t sector, uint32_t len, const void *data)
{
	struct blk_hdr h = hdr(type, sector);
	bool write = type == VIRTIO_BLK_T_OUT;
	struct vq_fake_seg s[3] = {
	    {.data = &h, .len = sizeof(h)},
	    {.data = data, .len = len, .write = !write},
	    {.len = 1, .write = true},
	};
	struct req r;

	if (!len) {
		s[1] = s[2];
		r.head = vq_fake_add_chain(&fx.f, s, 2);
		r.data_gpa = 0;
		r.status_gpa = fx.f.seg_gpa[1];
		return r;
	}
	r.head = vq_fake_add_chain(&fx.f, s, 3);
	r.data_gpa = fx.f.seg_gpa[1];
	r.status_gpa = fx.f.seg_gpa[2];
	return r;
}

static uint8_t status_of(const struct req *r)
{
	return *guest(r->status_gpa, 1);
}

static void assert_status(const struct req *r, uint8_t want, uint32_t used)
{
	cr_assert_eq(status_of(r), want, "status %u, expected %u", status_of(r), want);
	cr_assert_eq(used_len_of(r->head), used);
}

/* The device still works: a one-sector read of sector 1. */
static void assert_alive(void)
{
	struct req r = add_rw(VIRTIO_BLK_T_IN, 1, 512, NULL);

	kick();
	assert_status(&r, VIRTIO_BLK_S_OK, 513);
	cr_assert_eq(guest(r.data_gpa, 512)[0], pattern(512));
	cr_assert_eq(fx.broken, 0);
}

Test(blk, config_space_and_features)
{
	uint8_t cfg[VIRTIO_BLK_CFG_SIZE];
	uint64_t cap;
	uint32_t seg_max, blk_size, max_dseg;
	uint64_t f = fx.d->device_features;

	cr_assert_eq(fx.d->ops->type, VIRTIO_ID_BLOCK);
	cr_assert_eq(fx.d->num_queues, 1);
	cr_assert_eq(fx.d->config_size, VIRTIO_BLK_CFG_SIZE);
	fx.d->ops->config_read(fx.d, 0, cfg, sizeof(cfg));
	memcpy(&cap, cfg + VIRTIO_BLK_CFG_CAPACITY, 8);
	memcpy(&seg_max, cfg + VIRTIO_BLK_CFG_SEG_MAX, 4);
	memcpy(&blk_size, cfg + VIRTIO_BLK_CFG_BLK_SIZE, 4);
	memcpy(&max_dseg, cfg + VIRTIO_BLK_CFG_MAX_DISCARD_SEG, 4);
	cr_assert_eq(cap, IMG_SECTORS);
	cr_assert_eq(virtio_blk_capacity(fx.d), IMG_SECTORS);
	cr_assert_eq(seg_max, VIRTQ_CHAIN_MAX - 2);
	cr_assert_eq(blk_size, 512);
	cr_assert_eq(max_dseg, VIRTIO_BLK_MAX_DISCARD_SEG);
	cr_assert_eq(cfg[VIRTIO_BLK_CFG_WZ_MAY_UNMAP], 1);
	cr_assert(f & 1ull << VIRTIO_BLK_F_FLUSH);
	cr_assert(f & 1ull << VIRTIO_BLK_F_SEG_MAX);
	cr_assert(f & 1ull << VIRTIO_BLK_F_BLK_SIZE);
	cr_assert(f & 1ull << VIRTIO_BLK_F_DISCARD);
	cr_assert(f & 1ull << VIRTIO_BLK_F_WRITE_ZEROES);
	cr_assert_not(f & 1ull << VIRTIO_BLK_F_RO);
	cr_assert_not(f & 1ull << VIRTIO_BLK_F_MQ);
	/* Reads past the end and unaligned reads are safe. */
	fx.d->ops->config_read(fx.d, 1, cfg, 2);
	cr_assert_eq(cfg[0], (IMG_SECTORS >> 8) & 0xff);
	fx.d->ops->config_read(fx.d, VIRTIO_BLK_CFG_SIZE - 1, cfg, 4);
}

static void read_write_round_trip(void)
{
	uint8_t data[1536], f[1536];
	struct req w, r;

	for (unsigned int i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 3 + 1);
	w = add_rw(VIRTIO_BLK_T_OUT, 10, sizeof(data), data);
	kick();
	assert_status(&w, VIRTIO_BLK_S_OK, 1);
	file_read(10 * 512, f, sizeof(f));
	cr_assert_arr_eq(f, data, sizeof(data), "the file does not hold the written sectors");
	cr_assert(file_untouched(9 * 512, 512));
	cr_assert(file_untouched(13 * 512, 512));

	r = add_rw(VIRTIO_BLK_T_IN, 10, sizeof(data), NULL);
	kick();
	assert_status(&r, VIRTIO_BLK_S_OK, sizeof(data) + 1);
	cr_assert_arr_eq(guest(r.data_gpa, sizeof(data)), data, sizeof(data));
	cr_assert_geq(fx.signals, 2);
}

Test(blk, read_write_round_trip)
{
	read_write_round_trip();
}

Test(blk_sync, read_write_round_trip)
{
	read_write_round_trip();
}

Test(blk, read_of_last_sector_and_empty_read)
{
	struct req r = add_rw(VIRTIO_BLK_T_IN, IMG_SECTORS - 1, 512, NULL);
	struct req z = add_rw(VIRTIO_BLK_T_IN, IMG_SECTORS, 0, NULL);

	kick();
	assert_status(&r, VIRTIO_BLK_S_OK, 513);
	cr_assert_eq(guest(r.data_gpa, 512)[511], pattern(IMG_SIZE - 1));
	assert_status(&z, VIRTIO_BLK_S_OK, 1);
}

/* Data split across many descriptors, the status sharing the last data buffer. */
Test(blk, scattered_buffers_and_status_in_the_data_descriptor)
{
	struct blk_hdr h = hdr(VIRTIO_BLK_T_IN, 4);
	struct vq_fake_seg s[] = {
	    {.data = &h, .len = 5},
	    {.data = (uint8_t *)&h + 5, .len = 11},
	    {.len = 100, .write = true},
	    {.len = 0, .write = true},
	    {.len = 300, .write = true},
	    {.len = 113, .write = true}, /* 112 data bytes, then the status */
	};
	uint16_t head = vq_fake_add_chain(&fx.f, s, 6);
	uint64_t g2 = fx.f.seg_gpa[2], g4 = fx.f.seg_gpa[4], g5 = fx.f.seg_gpa[5];

	kick();
	cr_assert_eq(*guest(g5 + 112, 1), VIRTIO_BLK_S_OK);
	cr_assert_eq(used_len_of(head), 513);
	cr_assert_eq(guest(g2, 100)[0], pattern(4 * 512));
	cr_assert_eq(guest(g4, 300)[0], pattern(4 * 512 + 100));
	cr_assert_eq(guest(g5, 112)[111], pattern(4 * 512 + 511));
}

/* A write whose header and data share one descriptor. */
Test(blk, header_and_data_in_one_descriptor)
{
	uint8_t buf[16 + 512];
	struct blk_hdr h = hdr(VIRTIO_BLK_T_OUT, 7);
	struct vq_fake_seg s[] = {{.data = buf, .len = sizeof(buf)}, {.len = 1, .write = true}};
	uint8_t f[512];
	uint16_t head;
	uint64_t st;

	memcpy(buf, &h, sizeof(h));
	memset(buf + 16, 0x42, 512);
	head = vq_fake_add_chain(&fx.f, s, 2);
	st = fx.f.seg_gpa[1];
	kick();
	cr_assert_eq(*guest(st, 1), VIRTIO_BLK_S_OK);
	cr_assert_eq(used_len_of(head), 1);
	file_read(7 * 512, f, 512);
	cr_assert_eq(f[0], 0x42);
	cr_assert_eq(f[511], 0x42);
}

Test(blk, indirect_chain)
{
	struct blk_hdr h = hdr(VIRTIO_BLK_T_IN, 2);
	struct vq_fake_seg s[] = {
	    {.data = &h, .len = sizeof(h)},
	    {.len = 1024, .write = true},
	    {.len = 1, .write = true},
	};
	uint16_t head;
	uint64_t data, st;

	fx.d->queues[0].indirect = true;
	head = vq_fake_add_indirect(&fx.f, s, 3);
	data = fx.f.seg_gpa[1];
	st = fx.f.seg_gpa[2];
	kick();
	cr_assert_eq(*guest(st, 1), VIRTIO_BLK_S_OK);
	cr_assert_eq(used_len_of(head), 1025);
	cr_assert_eq(guest(data, 1024)[1023], pattern(2 * 512 + 1023));
}

Test(blk, get_id_default_is_the_file_name)
{
	struct blk_hdr h = hdr(VIRTIO_BLK_T_GET_ID, 0);
	struct vq_fake_seg s[] = {
	    {.data = &h, .len = sizeof(h)},
	    {.len = 20, .write = true},
	    {.len = 1, .write = true},
	};
	const char *base = strrchr(fx.path, '/') + 1;
	uint16_t head = vq_fake_add_chain(&fx.f, s, 3);
	uint64_t id = fx.f.seg_gpa[1], st = fx.f.seg_gpa[2];
	char want[20] = {0};

	memcpy(want, base, strlen(base) < 20 ? strlen(base) : 20);
	kick();
	cr_assert_eq(*guest(st, 1), VIRTIO_BLK_S_OK);
	cr_assert_eq(used_len_of(head), 21);
	cr_assert_arr_eq(guest(id, 20), want, 20);
	cr_assert_eq(strncmp(virtio_blk_id(fx.d), base, 20), 0);
}

Test(blk, get_id_named_padded_and_short_buffer)
{
	struct blk_hdr h = hdr(VIRTIO_BLK_T_GET_ID, 0);
	struct vq_fake_seg s[] = {
	    {.data = &h, .len = sizeof(h)},
	    {.len = 64, .write = true},
	    {.len = 1, .write = true},
	};
	char want[20] = "rootfs";
	uint16_t head;
	uint64_t id, st;

	teardown();
	setup_dev(false, "rootfs", ~0ull);
	head = vq_fake_add_chain(&fx.f, s, 3);
	id = fx.f.seg_gpa[1];
	st = fx.f.seg_gpa[2];
	kick();
	cr_assert_eq(*guest(st, 1), VIRTIO_BLK_S_OK);
	cr_assert_eq(used_len_of(head), 21);
	cr_assert_arr_eq(guest(id, 20), want, 20, "id not NUL-padded to 20 bytes");
	cr_assert_eq(guest(id + 20, 1)[0], 0xee, "wrote past 20 bytes");

	/* Only 4 bytes of room: the id is cut, the status still lands. */
	s[1].len = 4;
	head = vq_fake_add_chain(&fx.f, s, 3);
	id = fx.f.seg_gpa[1];
	st = fx.f.seg_gpa[2];
	kick();
	cr_assert_eq(*guest(st, 1), VIRTIO_BLK_S_OK);
	cr_assert_eq(used_len_of(head), 5);
	cr_assert_arr_eq(guest(id, 4), "root", 4);
}

Test(blk, flush)
{
	uint8_t data[512];
	struct req w, fl;

	memset(data, 0x11, sizeof(data));
	w = add_rw(VIRTIO_BLK_T_OUT, 0, 512, data);
	fl = add_rw(VIRTIO_BLK_T_FLUSH, 0, 0, NULL);
	kick();
	assert_status(&w, VIRTIO_BLK_S_OK, 1);
	assert_status(&fl, VIRTIO_BLK_S_OK, 1);
}

static struct req add_dwz(uint32_t type, const struct blk_seg *segs, unsigned int n)
{
	struct blk_hdr h = hdr(type, 0);
	struct vq_fake_seg s[3] = {
	    {.data = &h, .len = sizeof(h)},
	    {.data = segs, .len = n * (uint32_t)sizeof(*segs)},
	    {.len = 1, .write = true},
	};
	struct req r = {0};

	if (!n) {
		s[1] = s[2];
		r.head = vq_fake_add_chain(&fx.f, s, 2);
		r.status_gpa = fx.f.seg_gpa[1];
		return r;
	}
	r.head = vq_fake_add_chain(&fx.f, s, 3);
	r.status_gpa = fx.f.seg_gpa[2];
	return r;
}

static bool file_zero(uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len);
	bool z = true;

	file_read(off, buf, len);
	for (size_t i = 0; i < len && z; i++)
		z = !buf[i];
	free(buf);
	return z;
}

Test(blk, write_zeroes_and_discard_change_the_file)
{
	struct blk_seg wz[2] = {
	    {.sector = 8, .num_sectors = 8},
	    {.sector = 32, .num_sectors = 1, .flags = VIRTIO_BLK_WZ_FLAG_UNMAP}};
	struct blk_seg dc = {.sector = 64, .num_sectors = 16};
	struct req a = add_dwz(VIRTIO_BLK_T_WRITE_ZEROES, wz, 2);
	struct req b = add_dwz(VIRTIO_BLK_T_DISCARD, &dc, 1);
	struct stat st;
	uint8_t f[512];

	kick();
	assert_status(&a, VIRTIO_BLK_S_OK, 1);
	assert_status(&b, VIRTIO_BLK_S_OK, 1);
	cr_assert(file_zero(8 * 512, 8 * 512));
	cr_assert(file_zero(32 * 512, 512));
	cr_assert(file_untouched(7 * 512, 512));
	cr_assert(file_untouched(16 * 512, 16 * 512));
	cr_assert(file_untouched(33 * 512, 512));
	/* ext4 and tmpfs punch holes: discarded sectors read back as zeroes. */
	file_read(64 * 512, f, 512);
	cr_assert(file_zero(64 * 512, 16 * 512) || f[0] == pattern(64 * 512));
	cr_assert(file_untouched(80 * 512, 512));
	cr_assert_eq(stat(fx.path, &st), 0);
	cr_assert_eq(st.st_size, IMG_SIZE, "the image changed size");
}

Test(blk, hostile_discard_and_write_zeroes)
{
	struct blk_seg many[VIRTIO_BLK_MAX_DISCARD_SEG + 1];
	struct blk_seg unmap = {.sector = 0, .num_sectors = 1, .flags = VIRTIO_BLK_WZ_FLAG_UNMAP};
	struct blk_seg junk_flag = {.sector = 0, .num_sectors = 1, .flags = 0x80};
	struct blk_seg beyond = {.sector = IMG_SECTORS - 1, .num_sectors = 2};
	struct blk_seg wrap = {.sector = UINT64_MAX, .num_sectors = 2};
	struct blk_seg huge = {.sector = 0, .num_sectors = UINT32_MAX};
	struct blk_seg ok_then_bad[2] = {{.sector = 0, .num_sectors = 1},
					 {.sector = IMG_SECTORS, .num_sectors = 1}};
	struct req r[9];
	uint8_t half[24];

	for (unsigned int i = 0; i < VIRTIO_BLK_MAX_DISCARD_SEG + 1; i++)
		many[i] = (struct blk_seg){.sector = i, .num_sectors = 1};
	r[0] = add_dwz(VIRTIO_BLK_T_DISCARD, many, VIRTIO_BLK_MAX_DISCARD_SEG + 1);
	r[1] = add_dwz(VIRTIO_BLK_T_DISCARD, &unmap, 1);
	r[2] = add_dwz(VIRTIO_BLK_T_WRITE_ZEROES, &junk_flag, 1);
	r[3] = add_dwz(VIRTIO_BLK_T_WRITE_ZEROES, &beyond, 1);
	r[4] = add_dwz(VIRTIO_BLK_T_DISCARD, &wrap, 1);
	r[5] = add_dwz(VIRTIO_BLK_T_WRITE_ZEROES, &huge, 1);
	r[6] = add_dwz(VIRTIO_BLK_T_WRITE_ZEROES, ok_then_bad, 2);
	r[7] = add_dwz(VIRTIO_BLK_T_DISCARD, NULL, 0);
	memset(half, 0, sizeof(half));
	{
		struct blk_hdr h = hdr(VIRTIO_BLK_T_WRITE_ZEROES, 0);
		struct vq_fake_seg s[] = {{.data = &h, .len = sizeof(h)},
					  {.data = half, .len = sizeof(half)}, /* 1.5 segments */
					  {.len = 1, .write = true}};

		r[8].head = vq_fake_add_chain(&fx.f, s, 3);
		r[8].status_gpa = fx.f.seg_gpa[2];
	}
	kick();
	assert_status(&r[0], VIRTIO_BLK_S_UNSUPP, 1);
	assert_status(&r[1], VIRTIO_BLK_S_UNSUPP, 1);
	assert_status(&r[2], VIRTIO_BLK_S_UNSUPP, 1);
	assert_status(&r[3], VIRTIO_BLK_S_IOERR, 1);
	assert_status(&r[4], VIRTIO_BLK_S_IOERR, 1);
	assert_status(&r[5], VIRTIO_BLK_S_IOERR, 1);
	assert_status(&r[6], VIRTIO_BLK_S_IOERR, 1);
	assert_status(&r[7], VIRTIO_BLK_S_IOERR, 1);
	assert_status(&r[8], VIRTIO_BLK_S_IOERR, 1);
	cr_assert(file_untouched(0, IMG_SIZE), "a refused request changed the file");
	assert_alive();
}

Test(blk, discard_not_negotiated_is_unsupported)
{
	struct blk_seg seg = {.sector = 0, .num_sectors = 1};
	struct req a, b;

	teardown();
	setup_dev(false, NULL, 1ull << VIRTIO_BLK_F_FLUSH);
	a = add_dwz(VIRTIO_BLK_T_DISCARD, &seg, 1);
	b = add_dwz(VIRTIO_BLK_T_WRITE_ZEROES, &seg, 1);
	kick();
	assert_status(&a, VIRTIO_BLK_S_UNSUPP, 1);
	assert_status(&b, VIRTIO_BLK_S_UNSUPP, 1);
	cr_assert(file_untouched(0, 512));
}

/* FLUSH not negotiated: the device is write-through; writes still work. */
Test(blk, write_through_without_flush)
{
	teardown();
	setup_dev(false, NULL, 0);
	read_write_round_trip();
}

Test(blk_ro, refuses_every_write_and_keeps_the_file)
{
	uint8_t data[512];
	struct blk_seg seg = {.sector = 0, .num_sectors = 8};
	struct req w, d, z, fl, r;
	uint64_t f = fx.d->device_features;

	cr_assert(f & 1ull << VIRTIO_BLK_F_RO);
	cr_assert_not(f & 1ull << VIRTIO_BLK_F_DISCARD);
	cr_assert_not(f & 1ull << VIRTIO_BLK_F_WRITE_ZEROES);
	memset(data, 0, sizeof(data));
	w = add_rw(VIRTIO_BLK_T_OUT, 0, 512, data);
	d = add_dwz(VIRTIO_BLK_T_DISCARD, &seg, 1);
	z = add_dwz(VIRTIO_BLK_T_WRITE_ZEROES, &seg, 1);
	fl = add_rw(VIRTIO_BLK_T_FLUSH, 0, 0, NULL);
	r = add_rw(VIRTIO_BLK_T_IN, 0, 512, NULL);
	kick();
	assert_status(&w, VIRTIO_BLK_S_IOERR, 1);
	assert_status(&d, VIRTIO_BLK_S_IOERR, 1);
	assert_status(&z, VIRTIO_BLK_S_IOERR, 1);
	assert_status(&fl, VIRTIO_BLK_S_OK, 1);
	assert_status(&r, VIRTIO_BLK_S_OK, 513);
	cr_assert_eq(guest(r.data_gpa, 512)[5], pattern(5));
	cr_assert(file_untouched(0, IMG_SIZE), "a read-only image changed");
}

Test(blk, hostile_headers_and_ranges)
{
	uint8_t data[1024];
	struct req r[8];

	memset(data, 0x99, sizeof(data));
	/* Header of 8 bytes. */
	{
		struct blk_hdr h = hdr(VIRTIO_BLK_T_OUT, 0);
		struct vq_fake_seg s[] = {{.data = &h, .len = 8}, {.len = 1, .write = true}};

		r[0].head = vq_fake_add_chain(&fx.f, s, 2);
		r[0].status_gpa = fx.f.seg_gpa[1];
	}
	r[1] = add_rw(VIRTIO_BLK_T_IN, IMG_SECTORS, 512, NULL);	      /* past the end */
	r[2] = add_rw(VIRTIO_BLK_T_OUT, IMG_SECTORS - 1, 1024, data); /* straddles the end */
	r[3] = add_rw(VIRTIO_BLK_T_OUT, UINT64_MAX, 512, data);	      /* sector + len wraps */
	r[4] = add_rw(VIRTIO_BLK_T_IN, UINT64_MAX / 512 + 1, 512, NULL);
	r[5] = add_rw(VIRTIO_BLK_T_OUT, 0, 100, data); /* not whole sectors */
	r[6] = add_rw(VIRTIO_BLK_T_IN, 0, 700, NULL);
	r[7] = add_rw(99, 0, 512, NULL); /* unknown type */
	kick();
	for (int i = 0; i < 7; i++) {
		cr_assert_eq(status_of(&r[i]), VIRTIO_BLK_S_IOERR, "request %d: status %u", i,
			     status_of(&r[i]));
		cr_assert_eq(used_len_of(r[i].head), 1, "request %d", i);
	}
	assert_status(&r[7], VIRTIO_BLK_S_UNSUPP, 1);
	cr_assert(file_untouched(0, IMG_SIZE));
	cr_assert_eq(vq_fake_used_idx(&fx.f), 8);
	cr_assert_eq(fx.broken, 0);
	assert_alive();
}

Test(blk, no_status_byte)
{
	struct blk_hdr h = hdr(VIRTIO_BLK_T_OUT, 0);
	uint8_t data[512];
	struct vq_fake_seg s[] = {{.data = &h, .len = sizeof(h)}, {.data = data, .len = 512}};
	uint16_t head;

	memset(data, 0, sizeof(data));
	head = vq_fake_add_chain(&fx.f, s, 2);
	kick();
	/* No writable byte: nothing written, the buffer handed back with length 0. */
	cr_assert_eq(used_len_of(head), 0);
	cr_assert(file_untouched(0, 512));
	assert_alive();
}

Test(blk, status_in_a_readable_descriptor)
{
	/* header, status (readable): no writable part at all. */
	struct blk_hdr h = hdr(VIRTIO_BLK_T_FLUSH, 0);
	struct vq_fake_seg s[] = {{.data = &h, .len = sizeof(h)}, {.len = 1}};
	uint16_t head = vq_fake_add_chain(&fx.f, s, 2);
	uint64_t st = fx.f.seg_gpa[1];

	kick();
	cr_assert_eq(used_len_of(head), 0);
	cr_assert_eq(*guest(st, 1), 0xee, "the device wrote a readable buffer");
	assert_alive();
}

Test(blk, readable_after_writable_breaks_the_ring_not_the_monitor)
{
	/* header, data (writable), status (readable): the ring itself is wrong. */
	struct blk_hdr h = hdr(VIRTIO_BLK_T_IN, 0);
	struct vq_fake_seg s[] = {
	    {.data = &h, .len = sizeof(h)}, {.len = 512, .write = true}, {.len = 1}};

	vq_fake_add_chain(&fx.f, s, 3);
	kick();
	cr_assert_eq(fx.broken, 1);
	cr_assert_eq(vq_fake_used_idx(&fx.f), 0);
	kick(); /* reported once, then left alone until reset */
	cr_assert_eq(fx.broken, 1);
	cr_assert_eq(vq_fake_used_idx(&fx.f), 0);
}

Test(blk, many_requests_in_flight)
{
	enum { N = 48 };
	static uint8_t data[N][512];
	struct req r[N];

	for (int i = 0; i < N; i++) {
		memset(data[i], i + 1, 512);
		r[i] = i % 2 ? add_rw(VIRTIO_BLK_T_OUT, 100 + (uint64_t)i, 512, data[i])
			     : add_rw(VIRTIO_BLK_T_IN, 200 + (uint64_t)i, 512, NULL);
	}
	fx.d->ops->queue_notify(fx.d, 0);
	virtio_blk_poll(fx.d, true);
	cr_assert_eq(vq_fake_used_idx(&fx.f), N);
	for (int i = 0; i < N; i++) {
		uint8_t f[512];

		if (i % 2) {
			assert_status(&r[i], VIRTIO_BLK_S_OK, 1);
			file_read((100 + (uint64_t)i) * 512, f, 512);
			cr_assert_eq(f[0], i + 1);
		} else {
			assert_status(&r[i], VIRTIO_BLK_S_OK, 513);
			cr_assert_eq(guest(r[i].data_gpa, 512)[0],
				     pattern((200 + (uint64_t)i) * 512));
		}
	}
}

/* More chains than the queue size are posted over time (heads reused): all complete. */
Test(blk, more_requests_than_the_queue_holds)
{
	for (int round = 0; round < 3; round++) {
		struct req r[64];

		fx.f.next_desc = 0;
		for (int i = 0; i < 32; i++)
			r[i] = add_rw(VIRTIO_BLK_T_IN, (uint64_t)i, 512, NULL);
		kick();
		for (int i = 0; i < 32; i++)
			cr_assert_eq(status_of(&r[i]), VIRTIO_BLK_S_OK);
	}
	cr_assert_eq(vq_fake_used_idx(&fx.f), 96);
}

Test(blk, reset_drops_in_flight_requests)
{
	struct req r[8];

	for (int i = 0; i < 8; i++)
		r[i] = add_rw(VIRTIO_BLK_T_IN, (uint64_t)i, 4096, NULL);
	fx.d->ops->queue_notify(fx.d, 0); /* submitted, not completed */
	fx.d->ops->reset(fx.d);
	/* Nothing completed into the ring, no status written, nothing left running. */
	cr_assert_eq(vq_fake_used_idx(&fx.f), 0);
	for (int i = 0; i < 8; i++)
		cr_assert_eq(status_of(&r[i]), 0xee);
	virtio_blk_poll(fx.d, true);
	cr_assert_eq(vq_fake_used_idx(&fx.f), 0);
	/* Notifies while reset do nothing. */
	fx.d->ops->queue_notify(fx.d, 0);
	cr_assert_eq(vq_fake_used_idx(&fx.f), 0);

	/* Re-activated on a fresh ring, it works again. */
	vq_fake_free(&fx.f);
	vq_fake_init(&fx.f, 256);
	fx.d->queues[0] = fx.f.q;
	fx.d->mem = &fx.f.mem;
	cr_assert_eq(fx.d->ops->activate(fx.d), 0);
	assert_alive();
}

Test(blk, other_queue_index_is_ignored)
{
	add_rw(VIRTIO_BLK_T_IN, 0, 512, NULL);
	fx.d->ops->queue_notify(fx.d, 1);
	fx.d->ops->queue_notify(fx.d, 7);
	virtio_blk_poll(fx.d, true);
	cr_assert_eq(vq_fake_used_idx(&fx.f), 0);
}

/* Through the real event loop: completions arrive via the backend's eventfd. */
static void through_event_loop(void)
{
	struct event_loop el;
	uint8_t data[4096];
	struct req w, r;

	cr_assert_eq(event_loop_init(&el), 0);
	fx.d->events = &el;
	cr_assert_eq(fx.d->ops->activate(fx.d), 0);
	cr_assert_eq(event_loop_start(&el), 0);
	memset(data, 0x3c, sizeof(data));
	w = add_rw(VIRTIO_BLK_T_OUT, 20, sizeof(data), data);
	r = add_rw(VIRTIO_BLK_T_IN, 30, 512, NULL);
	fx.d->ops->queue_notify(fx.d, 0);
	for (int i = 0; i < 500 && __atomic_load_n(&fx.signals, __ATOMIC_SEQ_CST) < 1; i++)
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
	for (int i = 0; i < 500 && vq_fake_used_idx(&fx.f) < 2; i++)
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
	event_loop_stop(&el);
	assert_status(&w, VIRTIO_BLK_S_OK, 1);
	assert_status(&r, VIRTIO_BLK_S_OK, 513);
	cr_assert_eq(guest(r.data_gpa, 512)[0], pattern(30 * 512));
	virtio_blk_destroy(fx.d);
	fx.d = NULL;
	event_loop_destroy(&el);
	cr_assert(!file_untouched(20 * 512, 1));
}

Test(blk, completions_through_the_event_loop)
{
	through_event_loop();
}

Test(blk_sync, completions_through_the_event_loop)
{
	through_event_loop();
}

/* ---- parsing and opening ---- */

static void parse_fails(const char *arg, const char *want)
{
	struct virtio_blk_config cfg;
	char err[256] = "";

	cr_assert_eq(virtio_blk_parse(arg, &cfg, err, sizeof(err)), -EINVAL, "'%s' parsed", arg);
	cr_assert(strstr(err, "--disk"), "error does not name the flag: %s", err);
	cr_assert(strstr(err, want), "error '%s' lacks '%s'", err, want);
}

Test(blk_parse, accepts_path_ro_and_id)
{
	struct virtio_blk_config cfg;
	char err[256] = "";

	cr_assert_eq(virtio_blk_parse("/var/img/root.img", &cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(cfg.path, "/var/img/root.img");
	cr_assert_not(cfg.readonly);
	cr_assert_str_eq(cfg.id, "");
	virtio_blk_config_free(&cfg);

	cr_assert_eq(virtio_blk_parse("a.img,ro,id=data-01", &cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(cfg.path, "a.img");
	cr_assert(cfg.readonly);
	cr_assert_str_eq(cfg.id, "data-01");
	virtio_blk_config_free(&cfg);

	cr_assert_eq(virtio_blk_parse("b.img,id=12345678901234567890", &cfg, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_str_eq(cfg.id, "12345678901234567890");
	virtio_blk_config_free(&cfg);
}

Test(blk_parse, rejects_bad_values)
{
	parse_fails("", "empty image path");
	parse_fails(",ro", "empty image path");
	parse_fails("a.img,rw", "unknown option 'rw'");
	parse_fails("a.img,ro,cache=none", "unknown option 'cache=none'");
	parse_fails("a.img,", "empty option");
	parse_fails("a.img,id=", "id=");
	parse_fails("a.img,id=123456789012345678901", "1 to 20 bytes");
	parse_fails("a.img,id=bad\tname", "printable");
}

static void create_fails(const char *path, bool ro, const char *want)
{
	struct virtio_blk_config cfg = {.path = path, .readonly = ro};
	struct virtio_device *d = NULL;
	char err[256] = "";

	cr_assert_lt(virtio_blk_create(&cfg, &d, err, sizeof(err)), 0, "%s opened", path);
	cr_assert(strstr(err, path), "error does not name the file: %s", err);
	cr_assert(strstr(err, want), "error '%s' lacks '%s'", err, want);
	cr_assert_null(d);
}

Test(blk_create, bad_images)
{
	char dir[] = "/tmp/ember-test-blkdir-XXXXXX";
	char small[] = "/tmp/ember-test-blksmall-XXXXXX";
	int fd;

	create_fails("/nonexistent/disk.img", false, "No such file");
	create_fails("/nonexistent/disk.img", true, "No such file");
	cr_assert_not_null(mkdtemp(dir));
	create_fails(dir, true, "directory");
	rmdir(dir);
	fd = mkstemp(small);
	cr_assert_geq(fd, 0);
	create_fails(small, false, "empty");
	cr_assert_eq(ftruncate(fd, 100), 0);
	create_fails(small, false, "smaller than one 512-byte sector");
	close(fd);
	unlink(small);
}

Test(blk, second_writer_is_refused)
{
	create_fails(fx.path, false, "locked");
	create_fails(fx.path, true, "locked");
}

Test(blk_create, size_rounds_down_to_sectors)
{
	char p[] = "/tmp/ember-test-blkodd-XXXXXX";
	struct virtio_blk_config cfg = {.path = p};
	struct virtio_device *d;
	uint8_t buf[1000] = {0};
	char err[256];
	uint64_t cap;
	int fd = mkstemp(p);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	close(fd);
	cr_assert_eq(virtio_blk_create(&cfg, &d, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(virtio_blk_capacity(d), 1);
	d->ops->config_read(d, VIRTIO_BLK_CFG_CAPACITY, (uint8_t *)&cap, 8);
	cr_assert_eq(cap, 1);
	virtio_blk_destroy(d);
	unlink(p);
}
