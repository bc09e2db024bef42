/*
 * Decoded code, kept per vCPU and keyed by guest-physical address, and the
 * VM-wide map of guest-physical pages that hold decoded code (cache.c).
 *
 * Self- and cross-modifying code: a TLB entry never allows fast writes to
 * a page marked in the code map (mmu.c fills tag_w = TLB_INVALID for it),
 * so every write to such a page reaches code_map_write(), which bumps the
 * page's generation; each vCPU's cached blocks record the generation they
 * were decoded at and are dropped when it moved. When a page becomes code,
 * the map's epoch moves and every vCPU flushes its TLB before its next
 * block (so no other vCPU keeps a fast-write entry for it).
 */
#ifndef EMBER_CPU_CACHE_H
#define EMBER_CPU_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu/cpu.h"

/* Does the guest-physical page of gpa hold decoded code? (any vCPU) */
bool code_map_test(const struct cpu_code_map *map, uint64_t gpa);
/* Guest (slow-path) or monitor write to [gpa, gpa+len): invalidates. */
void code_map_write(struct cpu_code_map *map, uint64_t gpa, uint64_t len);
/* Moves whenever a page becomes code. */
uint64_t code_map_epoch(const struct cpu_code_map *map);

#endif
