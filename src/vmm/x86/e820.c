#include "vmm/x86/e820.h"

#include <errno.h>

#include "vmm/x86/layout.h"

#define E820_EBDA_END 0xa0000ULL

/*
 * The ACPI tables at LAYOUT_ACPI_START are marked reserved (type 2), not
 * ACPI reclaimable (type 3): they sit in the legacy BIOS area that Linux
 * reserves anyway and that guests scan for the RSDP, so "reclaimable" would
 * only invite an OS to reuse 128 KiB that firmware conventionally keeps.
 * Firecracker and SeaBIOS keep this area out of usable RAM too.
 */
static int e820_add(struct e820_entry *out, size_t max, size_t *n, uint64_t start, uint64_t end,
		    uint64_t ram_end, uint32_t type)
{
	if (end > ram_end)
		end = ram_end;
	if (start >= end)
		return 0;
	if (*n >= max)
		return -ENOSPC;
	out[*n].addr = start;
	out[*n].size = end - start;
	out[*n].type = type;
	(*n)++;
	return 0;
}

static const struct gmem_region *e820_low_region(const struct guest_mem *mem)
{
	for (unsigned int i = 0; i < mem->nregions; i++)
		if (mem->regions[i].gpa == 0 && mem->regions[i].size)
			return &mem->regions[i];
	return NULL;
}

int e820_build(const struct guest_mem *mem, struct e820_entry *out, size_t max)
{
	const struct gmem_region *low = e820_low_region(mem);
	size_t n = 0;
	int err;

	if (!low)
		return -EINVAL;
	err = e820_add(out, max, &n, 0, LAYOUT_EBDA_START, low->size, E820_RAM);
	if (!err)
		err = e820_add(out, max, &n, LAYOUT_EBDA_START, E820_EBDA_END, low->size,
			       E820_RESERVED);
	if (!err)
		err = e820_add(out, max, &n, LAYOUT_ACPI_START, LAYOUT_ACPI_END, low->size,
			       E820_RESERVED);
	if (!err)
		err = e820_add(out, max, &n, LAYOUT_KERNEL_START, low->size, low->size, E820_RAM);
	/* gmem keeps regions in address order; the high one starts at 4 GiB. */
	for (unsigned int i = 0; !err && i < mem->nregions; i++) {
		const struct gmem_region *r = &mem->regions[i];

		if (r == low || r->size == 0)
			continue;
		err = e820_add(out, max, &n, r->gpa, r->gpa + r->size, UINT64_MAX, E820_RAM);
	}
	if (err)
		return err;
	/* A region list out of order or overlapping is a caller bug: say so. */
	for (size_t i = 1; i < n; i++)
		if (out[i].addr < out[i - 1].addr + out[i - 1].size)
			return -EINVAL;
	return (int)n;
}
