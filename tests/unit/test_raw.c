#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/backend/raw.h"

#define IMG_SIZE (256u << 10)

struct done_rec {
	int calls;
	int64_t res;
	int order; /* completion number, from a shared counter */
	int *counter;
};

static void rec_done(struct raw_req *r, int64_t res)
{
	struct done_rec *d = r->opaque;

	d->calls++;
	d->res = res;
	if (d->counter)
		d->order = (*d->counter)++;
}

static uint8_t pattern(uint64_t off)
{
	return (uint8_t)(off * 7 + (off >> 9) + 1);
}

/* A temp image of `size` bytes filled with pattern(); path in buf. */
static void make_image(char *buf, size_t n, uint64_t size)
{
	uint8_t *data = malloc(size ? size : 1);
	int fd;

	snprintf(buf, n, "/tmp/ember-test-raw-XXXXXX");
	fd = mkstemp(buf);
	cr_assert_geq(fd, 0);
	for (uint64_t i = 0; i < size; i++)
		data[i] = pattern(i);
	cr_assert_eq(write(fd, data, size), (ssize_t)size);
	close(fd);
	free(data);
}

static void file_read(const char *path, uint64_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY);

	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

static struct raw_disk *open_ok(const char *path, unsigned int flags)
{
	struct raw_disk *d = NULL;
	char err[256] = "";

	cr_assert_eq(raw_open(path, flags, &d, err, sizeof(err)), 0, "%s", err);
	return d;
}

/* Waits on the eventfd, as the event loop would, until `rec` has completed. */
static void wait_done(struct raw_disk *d, struct done_rec *rec)
{
	for (int i = 0; i < 100 && !rec->calls; i++) {
		struct pollfd p = {.fd = raw_event_fd(d), .events = POLLIN};

		cr_assert_eq(poll(&p, 1, 5000), 1, "no completion signalled on the eventfd");
		raw_complete(d);
	}
	cr_assert_eq(rec->calls, 1);
}

static int64_t run(struct raw_disk *d, struct raw_req *r)
{
	struct done_rec rec = {0};

	r->done = rec_done;
	r->opaque = &rec;
	raw_submit(d, r);
	cr_assert_eq(rec.calls, 0, "callback ran inside raw_submit");
	wait_done(d, &rec);
	return rec.res;
}

static int64_t run_rw(struct raw_disk *d, enum raw_op op, uint64_t off, struct iovec *iov, int n)
{
	struct raw_req r = {.op = op, .offset = off, .iov = iov, .iovcnt = n};

	return run(d, &r);
}

static int64_t run_range(struct raw_disk *d, enum raw_op op, uint64_t off, uint64_t len, bool unmap)
{
	struct raw_req r = {.op = op, .offset = off, .len = len, .unmap = unmap};

	return run(d, &r);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Each test body runs twice: through io_uring and through the synchronous fallback. */
#define BOTH(name)                                                                                 \
	static void name(unsigned int mode);                                                       \
	Test(raw_uring, name)                                                                      \
	{                                                                                          \
		name(0);                                                                           \
	}                                                                                          \
	Test(raw_sync, name)                                                                       \
	{                                                                                          \
		name(RAW_NO_IO_URING);                                                             \
	}                                                                                          \
	static void name(unsigned int mode)

Test(raw, uses_io_uring_unless_told_not_to)
{
	char path[64];
	struct raw_disk *d;

	make_image(path, sizeof(path), IMG_SIZE);
	d = open_ok(path, 0);
	if (!raw_uses_io_uring(d)) {
		raw_close(d);
		unlink(path);
		cr_skip_test("io_uring unavailable on this host");
	}
	raw_close(d);
	d = open_ok(path, RAW_NO_IO_URING);
	cr_assert_not(raw_uses_io_uring(d));
	raw_close(d);
	setenv("EMBER_NO_IO_URING", "1", 1);
	d = open_ok(path, 0);
	cr_assert_not(raw_uses_io_uring(d), "EMBER_NO_IO_URING=1 ignored");
	raw_close(d);
	unlink(path);
}

BOTH(size_and_read)
{
	char path[64];
	uint8_t a[1000], b[3000];
	struct iovec iov[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
	struct raw_disk *d;

	make_image(path, sizeof(path), IMG_SIZE);
	d = open_ok(path, mode);
	cr_assert_eq(raw_size(d), IMG_SIZE);
	cr_assert_geq(raw_block_size(d), 512);
	cr_assert_eq(run_rw(d, RAW_OP_READ, 4096 + 3, iov, 2), 4000);
	for (unsigned int i = 0; i < sizeof(a); i++)
		cr_assert_eq(a[i], pattern(4096 + 3 + i), "byte %u", i);
	for (unsigned int i = 0; i < sizeof(b); i++)
		cr_assert_eq(b[i], pattern(4096 + 3 + 1000 + i), "byte %u", 1000 + i);
	raw_close(d);
	unlink(path);
}

BOTH(write_then_read_back)
{
	char path[64];
	uint8_t w[8192], r[8192], f[8192];
	struct iovec wiov[3] = {{w, 512}, {w + 512, 4096}, {w + 4608, 8192 - 4608}};
	struct iovec riov[1] = {{r, sizeof(r)}};
	struct raw_disk *d;

	for (unsigned int i = 0; i < sizeof(w); i++)
		w[i] = (uint8_t)(i ^ 0x5a);
	make_image(path, sizeof(path), IMG_SIZE);
	d = open_ok(path, mode);
	cr_assert_eq(run_rw(d, RAW_OP_WRITE, 65536, wiov, 3), 8192);
	cr_assert_eq(run_rw(d, RAW_OP_READ, 65536, riov, 1), 8192);
	cr_assert_arr_eq(r, w, sizeof(w));
	file_read(path, 65536, f, sizeof(f));
	cr_assert_arr_eq(f, w, sizeof(w), "the file does not hold what was written");
	file_read(path, 65536 - 512, f, 512);
	for (unsigned int i = 0; i < 512; i++)
		cr_assert_eq(f[i], pattern(65536 - 512 + i), "bytes before the write changed");
	raw_close(d);
	unlink(path);
}

BOTH(dsync_write_and_flush)
{
	char path[64];
	uint8_t w[4096];
	struct iovec iov = {w, sizeof(w)};
	struct raw_req r = {
	    .op = RAW_OP_WRITE, .offset = 0, .iov = &iov, .iovcnt = 1, .dsync = true};
	struct raw_disk *d;

	memset(w, 0xab, sizeof(w));
	make_image(path, sizeof(path), IMG_SIZE);
	d = open_ok(path, mode);
	cr_assert_eq(run(d, &r), 4096);
	cr_assert_eq(run_range(d, RAW_OP_FLUSH, 0, 0, false), 0);
	raw_close(d);
	unlink(path);
}

BOTH(discard_reads_back_zeroes_and_keeps_size)
{
	char path[64];
	uint8_t f[8192];
	struct raw_disk *d;

	make_image(path, sizeof(path), IMG_SIZE);
	d = open_ok(path, mode);
	cr_assert_eq(run_range(d, RAW_OP_DISCARD, 8192, 8192, false), 0);
	raw_close(d);
	cr_assert_eq(file_size(path), IMG_SIZE);
	file_read(path, 8192, f, sizeof(f));
	/* ext4/tmpfs punch holes; a file system that cannot keeps the data (discard is a hint). */
	cr_assert(all_zero(f, sizeof(f)) || f[0] == pattern(8192));
	file_read(path, 4096, f, 4096);
	for (unsigned int i = 0; i < 4096; i++)
		cr_assert_eq(f[i], pattern(4096 + i), "data outside the range changed");
	unlink(path);
}

BOTH(write_zeroes_with_and_without_unmap)
{
	char path[64];
	uint8_t f[4096 + 1024];
	struct raw_disk *d;

	make_image(path, sizeof(path), IMG_SIZE);
	d = open_ok(path, mode);
	cr_assert_eq(run_range(d, RAW_OP_WRITE_ZEROES, 4096, 1024, false), 0);
	cr_assert_eq(run_range(d, RAW_OP_WRITE_ZEROES, 16384, 8192, true), 0);
	/* Partial blocks, unaligned. */
	cr_assert_eq(run_range(d, RAW_OP_WRITE_ZEROES, 40000, 777, true), 0);
	raw_close(d);
	cr_assert_eq(file_size(path), IMG_SIZE);
	file_read(path, 4096, f, 1024);
	cr_assert(all_zero(f, 1024));
	file_read(path, 4096 + 1024, f, 1);
	cr_assert_eq(f[0], pattern(4096 + 1024));
	file_read(path, 16384, f, 4096);
	cr_assert(all_zero(f, 4096));
	file_read(path, 40000 - 1, f, 779);
	cr_assert_eq(f[0], pattern(40000 - 1));
	cr_assert(all_zero(f + 1, 777));
	cr_assert_eq(f[778], pattern(40000 + 777));
	unlink(path);
}

/* tmpfs has no FALLOC_FL_ZERO_RANGE: write-zeroes falls back to writing zeroes. */
BOTH(write_zeroes_falls_back_to_writing)
{
	int mfd = memfd_create("ember-raw", 0);
	char path[64];
	uint8_t buf[3 << 20];
	struct raw_disk *d;

	cr_assert_geq(mfd, 0);
	memset(buf, 0x77, sizeof(buf));
	cr_assert_eq(write(mfd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", mfd);
	d = open_ok(path, mode);
	/* More than one 1 MiB chunk of zeroes, unaligned. */
	cr_assert_eq(run_range(d, RAW_OP_WRITE_ZEROES, 100, (2 << 20) + 300, false), 0);
	cr_assert_eq(run_range(d, RAW_OP_WRITE_ZEROES, 100, 10, false), 0);
	raw_close(d);
	cr_assert_eq(pread(mfd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	cr_assert_eq(buf[99], 0x77);
	cr_assert(all_zero(buf + 100, (2 << 20) + 300));
	cr_assert_eq(buf[100 + (2 << 20) + 300], 0x77);
	close(mfd);
}

BOTH(read_past_end_of_file_reads_zeroes)
{
	char path[64];
	uint8_t r[4096];
	struct iovec iov = {r, sizeof(r)};
	struct raw_disk *d;

	make_image(path, sizeof(path), 8192);
	d = open_ok(path, mode);
	cr_assert_eq(truncate(path, 6144), 0); /* shrinks under us */
	memset(r, 0xcc, sizeof(r));
	cr_assert_eq(run_rw(d, RAW_OP_READ, 4096, &iov, 1), 4096);
	for (unsigned int i = 0; i < 2048; i++)
		cr_assert_eq(r[i], pattern(4096 + i));
	cr_assert(all_zero(r + 2048, 2048));
	raw_close(d);
	unlink(path);
}

BOTH(readonly_refuses_writes_and_leaves_the_file)
{
	char path[64];
	uint8_t w[512], f[512];
	struct iovec iov = {w, sizeof(w)};
	struct raw_disk *d;

	memset(w, 0, sizeof(w));
	make_image(path, sizeof(path), IMG_SIZE);
	d = open_ok(path, mode | RAW_READONLY);
	cr_assert(raw_readonly(d));
	cr_assert_eq(run_rw(d, RAW_OP_WRITE, 0, &iov, 1), -EROFS);
	cr_assert_eq(run_range(d, RAW_OP_DISCARD, 0, 4096, false), -EROFS);
	cr_assert_eq(run_range(d, RAW_OP_WRITE_ZEROES, 0, 4096, true), -EROFS);
	cr_assert_eq(run_rw(d, RAW_OP_READ, 0, &iov, 1), 512);
	cr_assert_eq(w[1], pattern(1));
	raw_close(d);
	file_read(path, 0, f, sizeof(f));
	for (unsigned int i = 0; i < 512; i++)
		cr_assert_eq(f[i], pattern(i));
	unlink(path);
}

BOTH(bad_offsets_fail_through_the_callback)
{
	char path[64];
	uint8_t w[512];
	struct iovec iov = {w, sizeof(w)};
	struct raw_disk *d;

	make_image(path, sizeof(path), IMG_SIZE);
	d = open_ok(path, mode);
	cr_assert_eq(run_rw(d, RAW_OP_WRITE, UINT64_MAX - 100, &iov, 1), -EINVAL);
	cr_assert_eq(run_range(d, RAW_OP_DISCARD, 4096, UINT64_MAX, false), -EINVAL);
	/* Beyond what the file system allows (ext4: 16 TiB): a kernel error, passed on. */
	cr_assert_lt(run_rw(d, RAW_OP_WRITE, (uint64_t)INT64_MAX - 1024, &iov, 1), 0);
	cr_assert_eq(run_rw(d, RAW_OP_READ, 0, &iov, 1), 512, "the disk died after errors");
	raw_close(d);
	unlink(path);
}

BOTH(many_in_flight_and_flush_comes_last)
{
	enum { N = 300 }; /* more than the ring holds */
	static uint8_t bufs[N][512];
	static struct iovec iov[N];
	static struct raw_req reqs[N + 1];
	static struct done_rec recs[N + 1];
	int counter = 0;
	char path[64];
	struct raw_disk *d;

	make_image(path, sizeof(path), N * 512);
	d = open_ok(path, mode);
	for (int i = 0; i < N; i++) {
		memset(bufs[i], i & 0xff, 512);
		iov[i] = (struct iovec){bufs[i], 512};
		reqs[i] = (struct raw_req){.op = RAW_OP_WRITE,
					   .offset = (uint64_t)i * 512,
					   .iov = &iov[i],
					   .iovcnt = 1,
					   .done = rec_done,
					   .opaque = &recs[i]};
		recs[i].counter = &counter;
		raw_submit(d, &reqs[i]);
	}
	reqs[N] = (struct raw_req){.op = RAW_OP_FLUSH, .done = rec_done, .opaque = &recs[N]};
	recs[N].counter = &counter;
	raw_submit(d, &reqs[N]);
	cr_assert_eq(raw_inflight(d), N + 1);
	raw_drain(d);
	cr_assert_eq(raw_inflight(d), 0);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(recs[i].calls, 1);
		cr_assert_eq(recs[i].res, 512);
	}
	cr_assert_eq(recs[N].calls, 1);
	cr_assert_eq(recs[N].res, 0);
	cr_assert_eq(recs[N].order, N, "the flush completed before writes submitted ahead of it");
	raw_close(d);
	for (int i = 0; i < N; i++) {
		uint8_t f[512];

		file_read(path, (uint64_t)i * 512, f, 512);
		cr_assert_eq(f[0], i & 0xff);
		cr_assert_eq(f[511], i & 0xff);
	}
	unlink(path);
}

static void open_fails(const char *path, unsigned int flags, const char *want)
{
	struct raw_disk *d = NULL;
	char err[256] = "";

	cr_assert_lt(raw_open(path, flags, &d, err, sizeof(err)), 0, "%s opened", path);
	cr_assert(strstr(err, path), "error does not name the file: %s", err);
	cr_assert(strstr(err, want), "error '%s' lacks '%s'", err, want);
}

Test(raw, open_errors_name_the_file_and_reason)
{
	char path[64];
	char dir[] = "/tmp/ember-test-rawdir-XXXXXX";

	open_fails("/nonexistent/ember.img", 0, "No such file");
	cr_assert_not_null(mkdtemp(dir));
	open_fails(dir, 0, "directory");
	open_fails(dir, RAW_READONLY, "directory");
	rmdir(dir);
	make_image(path, sizeof(path), 0);
	open_fails(path, 0, "empty");
	unlink(path);
	open_fails("/dev/null", 0, "not a regular file");
}

Test(raw, unreadable_file)
{
	char path[64];

	if (geteuid() == 0)
		cr_skip_test("root reads any file");
	make_image(path, sizeof(path), 4096);
	chmod(path, 0);
	open_fails(path, RAW_READONLY, "Permission denied");
	unlink(path);
}

Test(raw, lock_keeps_a_second_writer_out)
{
	char path[64];
	struct raw_disk *a, *b;

	make_image(path, sizeof(path), 4096);
	a = open_ok(path, 0);
	open_fails(path, 0, "locked");
	open_fails(path, RAW_READONLY, "locked");
	raw_close(a);
	/* Readers share. */
	a = open_ok(path, RAW_READONLY);
	b = open_ok(path, RAW_READONLY);
	open_fails(path, 0, "locked");
	raw_close(a);
	raw_close(b);
	a = open_ok(path, 0); /* the lock went with the close */
	raw_close(a);
	unlink(path);
}

/* Slow operations (fallocate runs in io_uring's workers) still complete before a later flush. */
BOTH(flush_waits_for_slow_operations)
{
	enum { N = 16 };
	struct raw_req reqs[N + 1];
	struct done_rec recs[N + 1];
	int counter = 0;
	char path[64];
	struct raw_disk *d;

	memset(reqs, 0, sizeof(reqs));
	memset(recs, 0, sizeof(recs));
	make_image(path, sizeof(path), 4096);
	cr_assert_eq(truncate(path, 64ull << 20), 0);
	d = open_ok(path, mode);
	for (int i = 0; i <= N; i++) {
		reqs[i] = (struct raw_req){.op = i < N ? RAW_OP_WRITE_ZEROES : RAW_OP_FLUSH,
					   .offset = (uint64_t)i << 22,
					   .len = 4u << 20,
					   .done = rec_done,
					   .opaque = &recs[i]};
		recs[i].counter = &counter;
		raw_submit(d, &reqs[i]);
	}
	raw_drain(d);
	for (int i = 0; i < N; i++)
		cr_assert_eq(recs[i].res, 0);
	cr_assert_eq(recs[N].res, 0);
	cr_assert_eq(recs[N].order, N, "the flush overtook earlier requests");
	raw_close(d);
	unlink(path);
}

/* Plugged requests all complete, with their own data, once unplugged (nested pairs too). */
BOTH(plugged_requests_complete_after_unplug)
{
	char path[64];
	uint8_t buf[4][512];
	struct iovec iov[4];
	struct raw_req r[4];
	struct done_rec rec[4] = {{0}};
	struct raw_disk *d;

	make_image(path, sizeof(path), IMG_SIZE);
	d = open_ok(path, mode);
	raw_plug(d);
	raw_plug(d);
	for (int i = 0; i < 4; i++) {
		iov[i] = (struct iovec){buf[i], sizeof(buf[i])};
		r[i] = (struct raw_req){.op = RAW_OP_READ, .offset = 512u * (unsigned int)i * 3,
					.iov = &iov[i], .iovcnt = 1, .done = rec_done,
					.opaque = &rec[i]};
		raw_submit(d, &r[i]);
	}
	raw_unplug(d);
	cr_assert_eq(raw_inflight(d), 4);
	raw_unplug(d);
	for (int i = 0; i < 4; i++) {
		wait_done(d, &rec[i]);
		cr_assert_eq(rec[i].res, 512);
		for (unsigned int j = 0; j < 512; j++)
			cr_assert_eq(buf[i][j], pattern(512u * (unsigned int)i * 3 + j), "req %d byte %u",
				     i, j);
	}
	cr_assert_eq(raw_inflight(d), 0);
	raw_close(d);
	unlink(path);
}
