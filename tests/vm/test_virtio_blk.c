/*
 * virtio-blk (--disk), seen from the test guest: id, capacity and read-only
 * flag; sector 0 as the host wrote it; a seeded pattern written to sectors
 * 1..8 of a writable disk lands in the image file at the right offsets
 * (after a flush); a write to a read-only disk fails with IOERR in the guest
 * and leaves its file byte for byte as it was.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vm/vmtest.h"

#define TIMEOUT_S 120
#define SECTOR 512
#define DISK_SECTORS 2049 /* 1 MiB + sector 0 */

/* The guest's pattern (tests/guest/README.md, "virtio-blk"). */
static uint8_t pattern(uint32_t seed, uint32_t s, uint32_t i)
{
	uint32_t x = seed * 1000003u + s * 4099u + i;

	return (uint8_t)((x * 2654435761u) >> 24);
}

static char *make_image(const char *sector0, uint8_t fill, uint8_t **content)
{
	char *path = strdup("/tmp/ember-blk-XXXXXX");
	size_t len = (size_t)DISK_SECTORS * SECTOR;
	uint8_t *buf = malloc(len);
	int fd = mkstemp(path);

	cr_assert(fd >= 0 && buf);
	memset(buf, fill, len);
	memset(buf, 0, SECTOR);
	memcpy(buf, sector0, strlen(sector0));
	cr_assert_eq(write(fd, buf, len), (ssize_t)len);
	close(fd);
	*content = buf;
	return path;
}

static uint8_t *read_file(const char *path, size_t len)
{
	uint8_t *buf = calloc(1, len + 1);
	FILE *f = fopen(path, "rb");

	cr_assert(f && buf, "open %s", path);
	cr_assert_eq(fread(buf, 1, len + 1, f), len, "%s changed size", path);
	fclose(f);
	return buf;
}

/* The first line containing `needle` (e.g. " id=rw "), malloc'd; NULL if none. */
static char *line_with(const char *text, const char *needle)
{
	const char *at = strstr(text, needle);
	const char *start, *end;

	if (!at)
		return NULL;
	for (start = at; start > text && start[-1] != '\n'; start--)
		;
	end = strchr(at, '\n');
	return strndup(start, end ? (size_t)(end - start) : strlen(start));
}

static void assert_line(const struct vmtest_result *r, const char *want)
{
	char *line = vmtest_line(r->out, want);

	cr_assert_not_null(line, "no line '%s'; console:\n%s\nstderr:\n%s", want, r->out, r->err);
	cr_assert_str_eq(line, want, "console:\n%s", r->out);
	free(line);
}

/* The guest's number for the disk with this id, from its "id=" line. */
static unsigned int disk_number(const struct vmtest_result *r, const char *id, int ro)
{
	char needle[64], *line;
	unsigned int n;
	char want[160];

	snprintf(needle, sizeof(needle), " id=%s ", id);
	line = line_with(r->out, needle);
	cr_assert_not_null(line, "no guest line for disk %s; console:\n%s\nstderr:\n%s", id, r->out,
			   r->err);
	cr_assert_eq(sscanf(line, "guest: blk %u ", &n), 1, "%s", line);
	snprintf(want, sizeof(want), "guest: blk %u id=%s capacity=%u ro=%d", n, id, DISK_SECTORS,
		 ro);
	cr_assert_str_eq(line, want);
	free(line);
	return n;
}

Test(virtio_blk, pattern_reaches_the_file_and_ro_disk_is_untouched, .timeout = 300)
{
	uint8_t *rw0, *ro0;
	char *rw = make_image("ember rw disk, sector zero\n", 0x00, &rw0);
	char *ro = make_image("ember ro disk\n", 0xa5, &ro0);
	uint32_t seed = (uint32_t)time(NULL) % 100000 + (uint32_t)getpid() % 1000;
	char cmdline[128], rwarg[256], roarg[256], want[160];
	struct vmtest_result r;

	VMTEST_REQUIRE_ACCEL();
	snprintf(cmdline, sizeof(cmdline), "virtio-blk seed=%u", seed);
	snprintf(rwarg, sizeof(rwarg), "%s,id=rw", rw);
	snprintf(roarg, sizeof(roarg), "%s,ro,id=ro", ro);
	char pvh[4096];
	const char *argv[] = {
	    "ember",	 "run",	  "--kernel", vmtest_path(pvh, sizeof(pvh), "guest/pvh-guest.elf"),
	    "--cmdline", cmdline, "--disk",   rwarg,
	    "--disk",	 roarg,	  NULL};

	cr_assert_eq(vmtest_run(&r, argv, NULL, TIMEOUT_S), 0);
	cr_assert_not(r.timed_out, "timed out; console:\n%s\nstderr:\n%s", r.out, r.err);

	unsigned int nrw = disk_number(&r, "rw", 0), nro = disk_number(&r, "ro", 1);

	snprintf(want, sizeof(want), "guest: blk %u sector0=ember rw disk, sector zero", nrw);
	assert_line(&r, want);
	snprintf(want, sizeof(want), "guest: blk %u pattern ok sectors=1-8 seed=%u flush=1", nrw,
		 seed);
	assert_line(&r, want);
	snprintf(want, sizeof(want), "guest: blk %u sector0=ember ro disk", nro);
	assert_line(&r, want);
	snprintf(want, sizeof(want), "guest: blk %u write refused", nro);
	assert_line(&r, want);
	char *fail = vmtest_line(r.out, "guest: FAIL");
	cr_assert_null(fail, "%s\nconsole:\n%s\nstderr:\n%s", fail, r.out, r.err);
	assert_line(&r, "guest: ok");
	cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);

	/* The pattern is in the file at sectors 1..8; the rest is as written. */
	uint8_t *after = read_file(rw, (size_t)DISK_SECTORS * SECTOR);

	cr_assert_eq(memcmp(after, rw0, SECTOR), 0, "sector 0 of the rw disk changed");
	for (uint32_t s = 1; s <= 8; s++)
		for (uint32_t i = 0; i < SECTOR; i++)
			cr_assert_eq(after[s * SECTOR + i], pattern(seed, s, i),
				     "rw disk sector %u byte %u: 0x%02x, want 0x%02x", s, i,
				     after[s * SECTOR + i], pattern(seed, s, i));
	cr_assert_eq(
	    memcmp(after + 9 * SECTOR, rw0 + 9 * SECTOR, (size_t)(DISK_SECTORS - 9) * SECTOR), 0,
	    "rw disk changed beyond sector 8");
	free(after);
	after = read_file(ro, (size_t)DISK_SECTORS * SECTOR);
	cr_assert_eq(memcmp(after, ro0, (size_t)DISK_SECTORS * SECTOR), 0,
		     "the read-only disk's file changed");
	free(after);
	vmtest_free(&r);
	unlink(rw);
	unlink(ro);
	free(rw);
	free(ro);
	free(rw0);
	free(ro0);
}
