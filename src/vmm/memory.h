/*
 * Guest physical memory: up to two RAM regions (below the 32-bit hole and
 * above 4 GiB), each one anonymous host mapping. Every guest-physical access
 * from the monitor goes through gmem_ptr(), which checks that the whole
 * range [gpa, gpa+len) lies inside one region.
 */
#ifndef EMBER_VMM_MEMORY_H
#define EMBER_VMM_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#define GMEM_MAX_REGIONS 2

struct gmem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
};

struct guest_mem {
	struct gmem_region regions[GMEM_MAX_REGIONS];
	unsigned int nregions;
	uint64_t ram_size; /* sum of region sizes */
	/*
	 * Devices writing guest RAM the guest may execute (DMA into buffers it
	 * gave them) say so here, so the software CPU drops code it decoded
	 * from there. NULL when nobody needs to know (KVM).
	 */
	void (*dma_written)(void *ctx, uint64_t gpa, uint64_t len);
	void *dma_ctx;
};

/* A device is about to write [gpa, gpa+len) of guest RAM on the guest's behalf. */
static inline void gmem_dma_write(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	if (m->dma_written)
		m->dma_written(m->dma_ctx, gpa, len);
}

/*
 * Lays out ram_size bytes: RAM below min(ram_size, LAYOUT_LOWMEM_END) at 0,
 * the rest from 4 GiB up, and maps it. Returns 0 or -errno.
 */
int gmem_init(struct guest_mem *m, uint64_t ram_size);
void gmem_free(struct guest_mem *m);

/*
 * Test helper: describes caller-owned buffers as guest memory (no mapping
 * is made or freed). Used by unit tests with fake guest memory.
 */
void gmem_init_fake(struct guest_mem *m, const struct gmem_region *regions, unsigned int n);

/* Host pointer for [gpa, gpa+len), or NULL unless it lies within one region. */
void *gmem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* Copies into/out of guest memory; 0 or -EFAULT when out of range. */
int gmem_write(const struct guest_mem *m, uint64_t gpa, const void *src, size_t len);
int gmem_read(const struct guest_mem *m, uint64_t gpa, void *dst, size_t len);

/* End (exclusive) of the RAM region containing gpa, or 0 when gpa is not RAM. */
uint64_t gmem_region_end(const struct guest_mem *m, uint64_t gpa);

#endif
