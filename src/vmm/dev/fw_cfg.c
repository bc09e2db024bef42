#include "vmm/dev/fw_cfg.h"

#include <string.h>

#define OFF_SEL (FW_CFG_PORT_SEL - FW_CFG_PORT_SEL)
#define OFF_DATA (FW_CFG_PORT_DATA - FW_CFG_PORT_SEL)

static void put_le(struct fw_cfg_item *it, uint16_t key, uint64_t v, uint8_t len)
{
	it->key = key;
	it->len = len;
	for (uint8_t i = 0; i < len; i++)
		it->data[i] = (uint8_t)(v >> (8 * i));
}

static const struct fw_cfg_item *find_item(const struct fw_cfg *fc, uint16_t sel)
{
	if (sel & FW_CFG_ARCH_LOCAL)
		return NULL;
	sel &= FW_CFG_ENTRY_MASK;
	for (size_t i = 0; i < FW_CFG_NR_ITEMS; i++)
		if (fc->items[i].key == sel)
			return &fc->items[i];
	return NULL;
}

static void fw_cfg_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct fw_cfg *fc = opaque;

	pthread_mutex_lock(&fc->lock);
	for (uint32_t i = 0; i < len; i++) {
		data[i] = 0;
		if (offset + i != OFF_DATA)
			continue;
		if (fc->cur && fc->offset < fc->cur->len)
			data[i] = fc->cur->data[fc->offset];
		if (fc->offset < UINT32_MAX)
			fc->offset++;
	}
	pthread_mutex_unlock(&fc->lock);
}

/* Only a 16-bit write to the selector does something. */
static void fw_cfg_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct fw_cfg *fc = opaque;

	if (offset != OFF_SEL || len != 2)
		return;
	pthread_mutex_lock(&fc->lock);
	fc->cur = find_item(fc, (uint16_t)(data[0] | data[1] << 8));
	fc->offset = 0;
	pthread_mutex_unlock(&fc->lock);
}

const struct bus_dev_ops fw_cfg_ops = {
    .read = fw_cfg_read,
    .write = fw_cfg_write,
};

int fw_cfg_init(struct fw_cfg *fc, const struct fw_cfg_config *cfg)
{
	struct fw_cfg_item *it = fc->items;
	int err;

	memset(fc, 0, sizeof(*fc));
	err = pthread_mutex_init(&fc->lock, NULL);
	if (err)
		return -err;
	it->key = FW_CFG_SIGNATURE;
	it->len = 4;
	memcpy(it->data, "QEMU", 4);
	put_le(++it, FW_CFG_ID, FW_CFG_ID_TRADITIONAL, 4);
	put_le(++it, FW_CFG_RAM_SIZE, cfg->ram_size, 8);
	put_le(++it, FW_CFG_NB_CPUS, cfg->ncpus, 2);
	put_le(++it, FW_CFG_MAX_CPUS, cfg->max_cpus, 2);
	put_le(++it, FW_CFG_FILE_DIR, 0, 4);	   /* big-endian count: 0 files */
	fc->cur = find_item(fc, FW_CFG_SIGNATURE); /* as QEMU after reset */
	return 0;
}

void fw_cfg_destroy(struct fw_cfg *fc)
{
	pthread_mutex_destroy(&fc->lock);
}
