/*
 * Port-I/O and MMIO buses. Devices claim [base, base+len); an access is
 * dispatched with the offset into the claimed range. The range table is
 * sorted and searched by bisection. It is built before any vCPU runs and
 * read-only afterwards, so lookups take no lock; devices lock themselves.
 */
#ifndef EMBER_VMM_BUS_H
#define EMBER_VMM_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bus_dev_ops {
	/* len is 1, 2, 4 or 8; data is little-endian guest bytes. */
	void (*read)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len);
	void (*write)(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len);
};

struct bus_range {
	uint64_t base;
	uint64_t len;
	const struct bus_dev_ops *ops;
	void *opaque;
	const char *name;
};

struct bus {
	const char *name; /* "pio" or "mmio", for messages */
	struct bus_range *ranges;
	size_t n, cap;
};

void bus_init(struct bus *bus, const char *name);
void bus_free(struct bus *bus);

/* 0, -EINVAL (empty or wrapping range), -EEXIST (overlap), -ENOMEM. */
int bus_add(struct bus *bus, uint64_t base, uint64_t len, const struct bus_dev_ops *ops,
	    void *opaque, const char *name);

/*
 * Removes the range that starts at base: 0 or -ENOENT. Like bus_add, only
 * while no vCPU runs (setup, its unwinding, teardown).
 */
int bus_remove(struct bus *bus, uint64_t base);

const struct bus_range *bus_find(const struct bus *bus, uint64_t addr);

/*
 * Dispatch an access. Returns false when no device claims addr; then a read
 * has filled data with all-ones. An access that starts inside a range but
 * runs past its end is passed to the device, which checks offsets itself.
 */
bool bus_read(const struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len);
bool bus_write(const struct bus *bus, uint64_t addr, const uint8_t *data, uint32_t len);

#endif
