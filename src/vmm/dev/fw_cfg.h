/*
 * QEMU's firmware configuration interface (fw_cfg), the port-I/O form
 * without DMA: a 16-bit write to the selector port (FW_CFG_PORT_SEL) picks
 * an item and rewinds it; each 8-bit read of the data port
 * (FW_CFG_PORT_DATA) returns its next byte, 0 past the end or for an item
 * that does not exist. The board registers FW_CFG_NR_PORTS ports at
 * FW_CFG_PORT_SEL.
 *
 * Items (docs/specs/fw_cfg.rst in QEMU): the signature "QEMU", the ID
 * (bit 0: the traditional interface; no DMA bit), RAM size (8 bytes LE),
 * number of CPUs and maximum CPUs (2 bytes LE) and an empty file directory
 * (a 4-byte big-endian count of 0). kvm-unit-tests reads FW_CFG_NB_CPUS
 * (SMP bring-up) and FW_CFG_RAM_SIZE (lib/x86/fwcfg.c).
 *
 * Writes to the data port are ignored (as QEMU since 2.4); selector keys
 * with FW_CFG_ARCH_LOCAL set name nothing here.
 */
#ifndef EMBER_VMM_DEV_FW_CFG_H
#define EMBER_VMM_DEV_FW_CFG_H

#include <pthread.h>
#include <stdint.h>

#include "vmm/bus.h"

#define FW_CFG_PORT_SEL 0x510
#define FW_CFG_PORT_DATA 0x511
#define FW_CFG_NR_PORTS 2

#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_ID 0x01
#define FW_CFG_RAM_SIZE 0x03
#define FW_CFG_NB_CPUS 0x05
#define FW_CFG_MAX_CPUS 0x0f
#define FW_CFG_FILE_DIR 0x19
#define FW_CFG_WRITE_CHANNEL 0x4000
#define FW_CFG_ARCH_LOCAL 0x8000
#define FW_CFG_ENTRY_MASK 0x3fff

#define FW_CFG_ID_TRADITIONAL 0x1 /* the port interface; 0x2 would be DMA */

struct fw_cfg_config {
	uint64_t ram_size; /* bytes */
	uint16_t ncpus;
	uint16_t max_cpus;
};

#define FW_CFG_NR_ITEMS 6
#define FW_CFG_ITEM_MAX 8 /* bytes of the longest item */

struct fw_cfg_item {
	uint16_t key;
	uint8_t len;
	uint8_t data[FW_CFG_ITEM_MAX];
};

struct fw_cfg {
	pthread_mutex_t lock; /* guards cur and offset */
	struct fw_cfg_item items[FW_CFG_NR_ITEMS];
	const struct fw_cfg_item *cur; /* NULL: no such item */
	uint32_t offset;
};

extern const struct bus_dev_ops fw_cfg_ops;

int fw_cfg_init(struct fw_cfg *fc, const struct fw_cfg_config *cfg);
void fw_cfg_destroy(struct fw_cfg *fc);

#endif
