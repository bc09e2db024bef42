#include "vmm/dev/quiet.h"

#include <string.h>

static void quiet_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	const struct quiet *q = opaque;

	(void)offset;
	memset(data, q->value, len);
}

static void quiet_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	(void)opaque;
	(void)offset;
	(void)data;
	(void)len;
}

const struct bus_dev_ops quiet_ops = {
    .read = quiet_read,
    .write = quiet_write,
};

void quiet_init(struct quiet *q, uint8_t value)
{
	q->value = value;
}
