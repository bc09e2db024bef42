#include "vmm/memory.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "vmm/x86/layout.h"

static int map_region(struct gmem_region *r, uint64_t gpa, uint64_t size)
{
	/* NORESERVE: the guest's RAM costs host memory only once touched. */
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return -errno;
	madvise(p, size, MADV_MERGEABLE);
	r->gpa = gpa;
	r->size = size;
	r->hva = p;
	return 0;
}

int gmem_init(struct guest_mem *m, uint64_t ram_size)
{
	uint64_t low = ram_size < LAYOUT_LOWMEM_END ? ram_size : LAYOUT_LOWMEM_END;
	int err;

	memset(m, 0, sizeof(*m));
	if (ram_size == 0)
		return -EINVAL;
	err = map_region(&m->regions[0], 0, low);
	if (err)
		return err;
	m->nregions = 1;
	if (ram_size > low) {
		err = map_region(&m->regions[1], LAYOUT_HIGHMEM_START, ram_size - low);
		if (err) {
			gmem_free(m);
			return err;
		}
		m->nregions = 2;
	}
	m->ram_size = ram_size;
	return 0;
}

void gmem_free(struct guest_mem *m)
{
	for (unsigned int i = 0; i < m->nregions; i++)
		munmap(m->regions[i].hva, m->regions[i].size);
	memset(m, 0, sizeof(*m));
}

void gmem_init_fake(struct guest_mem *m, const struct gmem_region *regions, unsigned int n)
{
	memset(m, 0, sizeof(*m));
	for (unsigned int i = 0; i < n && i < GMEM_MAX_REGIONS; i++) {
		m->regions[i] = regions[i];
		m->ram_size += regions[i].size;
		m->nregions++;
	}
}

static const struct gmem_region *find_region(const struct guest_mem *m, uint64_t gpa)
{
	for (unsigned int i = 0; i < m->nregions; i++) {
		const struct gmem_region *r = &m->regions[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->size)
			return r;
	}
	return NULL;
}

void *gmem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	const struct gmem_region *r = find_region(m, gpa);
	uint64_t off;

	if (!r)
		return NULL;
	off = gpa - r->gpa;
	/* Written so that no sum can overflow. */
	if (len > r->size - off)
		return NULL;
	return r->hva + off;
}

int gmem_write(const struct guest_mem *m, uint64_t gpa, const void *src, size_t len)
{
	void *p = gmem_ptr(m, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}

int gmem_read(const struct guest_mem *m, uint64_t gpa, void *dst, size_t len)
{
	const void *p = gmem_ptr(m, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

uint64_t gmem_region_end(const struct guest_mem *m, uint64_t gpa)
{
	const struct gmem_region *r = find_region(m, gpa);

	return r ? r->gpa + r->size : 0;
}
