/* virtio-rng action: two 64-byte reads that must differ and not be all zero. */
#include "guest.h"

#define RNG_BYTES 64

/* Fills buf, in as many requests as the device needs; false after a gfail. */
static bool rng_read(struct virtio_dev *v, uint8_t *buf)
{
	uint32_t got = 0;

	for (int tries = 0; got < RNG_BYTES && tries < 64; tries++) {
		struct vbuf b = {(uintptr_t)buf + got, RNG_BYTES - got, true};
		long n = virtq_xfer(&v->q[0], &b, 1, "rng");

		if (n < 0)
			return false;
		if (n > RNG_BYTES - got) {
			gfail("virtio rng used length %ld > buffer %u", n, RNG_BYTES - got);
			return false;
		}
		got += (uint32_t)n;
	}
	if (got < RNG_BYTES)
		gfail("virtio rng only %u bytes after 64 requests", got);
	return got == RNG_BYTES;
}

void virtio_rng_run(struct virtio_ctx *c, struct virtio_dev *v)
{
	uint8_t *buf;
	bool zero = true;

	if (virtio_start(c, v, 0, 1, 16))
		return;
	buf = virtio_alloc(c, 2 * RNG_BYTES);
	if (!buf || !rng_read(v, buf) || !rng_read(v, buf + RNG_BYTES))
		return;
	hexdump_line("guest: rng 0 ", buf, RNG_BYTES);
	hexdump_line("guest: rng 1 ", buf + RNG_BYTES, RNG_BYTES);
	for (unsigned int i = 0; i < 2 * RNG_BYTES; i++)
		zero &= !buf[i];
	if (zero)
		gfail("virtio rng returned only zeroes");
	else if (!memcmp(buf, buf + RNG_BYTES, RNG_BYTES))
		gfail("virtio rng returned the same 64 bytes twice");
	else
		gprintf("guest: rng %u ok\n", v->nth);
}
