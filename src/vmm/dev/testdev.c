#include "vmm/dev/testdev.h"

#include <string.h>
#include <sys/mman.h>

#include "core/log.h"

#define PAGE_SIZE 4096ULL

static void zero_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	(void)opaque;
	(void)offset;
	memset(data, 0, len);
}

static uint32_t le_value(const uint8_t *data, uint32_t len)
{
	uint32_t v = 0;

	for (uint32_t i = 0; i < len && i < 4; i++)
		v |= (uint32_t)data[i] << (8 * i);
	return v;
}

static void exit_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct testdev *td = opaque;
	uint32_t v = le_value(data, len);
	int status = testdev_exit_status(v);

	(void)offset;
	log_info("test device: guest wrote 0x%x to the debug-exit port, exit status %d", v, status);
	if (td->cfg.exit)
		td->cfg.exit(td->cfg.ctx, status);
}

const struct bus_dev_ops testdev_exit_ops = {
    .read = zero_read,
    .write = exit_write,
};

/* Byte lanes of the 32-bit register; bytes past it read 0 and are dropped. */
static void ioport_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct testdev *td = opaque;

	pthread_mutex_lock(&td->lock);
	for (uint32_t i = 0; i < len; i++)
		data[i] = offset + i < 4 ? (uint8_t)(td->ioport >> (8 * (offset + i))) : 0;
	pthread_mutex_unlock(&td->lock);
}

static void ioport_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct testdev *td = opaque;

	pthread_mutex_lock(&td->lock);
	for (uint32_t i = 0; i < len; i++) {
		uint64_t lane = offset + i;

		if (lane >= 4)
			continue;
		td->ioport &= ~(0xffu << (8 * lane));
		td->ioport |= (uint32_t)data[i] << (8 * lane);
	}
	pthread_mutex_unlock(&td->lock);
}

const struct bus_dev_ops testdev_ioport_ops = {
    .read = ioport_read,
    .write = ioport_write,
};

static void flush_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct testdev *td = opaque;
	uint64_t gpa = le_value(data, len) & ~(PAGE_SIZE - 1);
	void *hva;

	if (offset != 0 || len != 4 || !td->cfg.mem)
		return;
	hva = gmem_ptr(td->cfg.mem, gpa, PAGE_SIZE);
	if (!hva)
		return;
	/* Guest RAM is page-aligned anonymous memory: this only drops the mapping. */
	if (mprotect(hva, PAGE_SIZE, PROT_NONE) == 0)
		mprotect(hva, PAGE_SIZE, PROT_READ | PROT_WRITE);
}

const struct bus_dev_ops testdev_flush_ops = {
    .read = zero_read,
    .write = flush_write,
};

static void irq_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct testdev *td = opaque;

	/* Byte accesses only, as QEMU (a wider one sets its first line). */
	if (len == 0 || offset >= TESTDEV_NR_IRQS || !td->cfg.set_irq)
		return;
	td->cfg.set_irq(td->cfg.irq_ctx, (uint32_t)offset, data[0] != 0);
}

const struct bus_dev_ops testdev_irq_ops = {
    .read = zero_read,
    .write = irq_write,
};

static void iomem_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct testdev *td = opaque;

	pthread_mutex_lock(&td->lock);
	for (uint32_t i = 0; i < len; i++)
		data[i] = offset + i < TESTDEV_IOMEM_LEN ? td->iomem[offset + i] : 0xff;
	pthread_mutex_unlock(&td->lock);
}

static void iomem_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct testdev *td = opaque;

	pthread_mutex_lock(&td->lock);
	for (uint32_t i = 0; i < len; i++)
		if (offset + i < TESTDEV_IOMEM_LEN)
			td->iomem[offset + i] = data[i];
	pthread_mutex_unlock(&td->lock);
}

const struct bus_dev_ops testdev_iomem_ops = {
    .read = iomem_read,
    .write = iomem_write,
};

int testdev_init(struct testdev *td, const struct testdev_config *cfg)
{
	int err;

	memset(td, 0, sizeof(*td));
	err = pthread_mutex_init(&td->lock, NULL);
	if (err)
		return -err;
	td->cfg = *cfg;
	return 0;
}

void testdev_destroy(struct testdev *td)
{
	pthread_mutex_destroy(&td->lock);
}
