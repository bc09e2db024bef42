/*
 * Decoded-block cache (per vCPU) and code map (per VM).
 *
 * Code map: per guest-physical RAM page a state byte (0: never code,
 * 1: code, no block decoded since the last write, 2: blocks decoded at the
 * current generation) and a write generation. A write to a state-2 page bumps
 * the generation (blocks from it become stale, seen when entered); a page
 * going from 0 to code moves the epoch (every vCPU flushes its TLB so no
 * fast-write entry for it survives).
 *
 * Block cache: an arena of blocks and a hash on (gpa, code_bits); when the
 * arena is full everything is dropped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cpu/block.h"
#include "cpu/cache.h"
#include "cpu/decode.h"
#include "cpu/mem.h"
#include "cpu/mmu.h"

struct cpu_code_map {
	struct {
		uint64_t gpa, size, first;
	} reg[GMEM_MAX_REGIONS];
	unsigned nreg;
	uint64_t npages;
	_Atomic uint8_t *state;
	_Atomic uint32_t *gen;
	_Atomic uint64_t epoch;
};

#define HASH_BITS 16 /* Linux decodes 100k+ blocks: keep the chains short */
#define HASH_SIZE (1u << HASH_BITS)
#define ARENA_SIZE (64u << 20)
#define BLOCK_BYTES(n) (sizeof(struct cpu_block) + (n) * sizeof(struct insn))

struct cpu_block_cache {
	struct cpu_block *hash[HASH_SIZE];
	uint8_t *arena;
	size_t used;
	uint64_t epoch;
	uint64_t flushes; /* arena flushes: blocks (and their successor links) gone */
	/* Blocks not cached (code outside RAM, an instruction across pages). */
	union {
		struct cpu_block b;
		uint8_t bytes[BLOCK_BYTES(BLOCK_MAX_INSNS)];
	} scratch;
};

static int64_t page_index(const struct cpu_code_map *map, uint64_t gpa)
{
	if (!map)
		return -1;
	for (unsigned i = 0; i < map->nreg; i++)
		if (gpa - map->reg[i].gpa < map->reg[i].size)
			return (int64_t)(map->reg[i].first + ((gpa - map->reg[i].gpa) >> 12));
	return -1;
}

struct cpu_code_map *cpu_code_map_new(const struct guest_mem *mem)
{
	struct cpu_code_map *map = calloc(1, sizeof(*map));
	if (!map)
		return NULL;
	for (unsigned i = 0; i < mem->nregions && i < GMEM_MAX_REGIONS; i++) {
		map->reg[i].gpa = mem->regions[i].gpa;
		map->reg[i].size = mem->regions[i].size;
		map->reg[i].first = map->npages;
		map->npages += (mem->regions[i].size + 4095) >> 12;
		map->nreg++;
	}
	map->state = calloc(map->npages + 1, sizeof(*map->state));
	map->gen = calloc(map->npages + 1, sizeof(*map->gen));
	if (!map->state || !map->gen) {
		cpu_code_map_free(map);
		return NULL;
	}
	return map;
}

void cpu_code_map_free(struct cpu_code_map *map)
{
	if (!map)
		return;
	free((void *)map->state);
	free((void *)map->gen);
	free(map);
}

bool code_map_test(const struct cpu_code_map *map, uint64_t gpa)
{
	int64_t i = page_index(map, gpa);
	return i >= 0 && atomic_load_explicit(&map->state[i], memory_order_relaxed) != 0;
}

void code_map_write(struct cpu_code_map *map, uint64_t gpa, uint64_t len)
{
	if (!map || !len)
		return;
	for (uint64_t p = gpa & ~4095ULL; p < gpa + len; p += 4096) {
		int64_t i = page_index(map, p);
		if (i < 0)
			continue;
		uint8_t two = 2;
		if (atomic_compare_exchange_strong(&map->state[i], &two, 1))
			atomic_fetch_add(&map->gen[i], 1);
		if (p + 4096 < p)
			break;
	}
}

void cpu_code_written(struct cpu_code_map *map, uint64_t gpa, uint64_t len)
{
	code_map_write(map, gpa, len);
}

uint64_t code_map_epoch(const struct cpu_code_map *map)
{
	return map ? atomic_load_explicit(&map->epoch, memory_order_relaxed) : 0;
}

struct cpu_block_cache *block_cache_new(void)
{
	struct cpu_block_cache *bc = calloc(1, sizeof(*bc));
	if (!bc)
		return NULL;
	bc->arena = mmap(NULL, ARENA_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (bc->arena == MAP_FAILED) {
		free(bc);
		return NULL;
	}
	return bc;
}

void block_cache_free(struct cpu_block_cache *bc)
{
	if (!bc)
		return;
	munmap(bc->arena, ARENA_SIZE);
	free(bc);
}

bool block_cache_epoch_changed(struct cpu *cpu)
{
	uint64_t e = code_map_epoch(cpu->code_map);
	if (e == cpu->cache->epoch)
		return false;
	cpu->cache->epoch = e;
	return true;
}

static unsigned hash_of(uint64_t gpa, unsigned bits)
{
	uint64_t h = (gpa ^ bits) * 0x9e3779b97f4a7c15ULL;
	return (unsigned)(h >> (64 - HASH_BITS));
}

/* Decodes up to BLOCK_MAX_INSNS from bytes[0..avail) into b; at least one. */
static void decode_run(struct cpu *cpu, struct cpu_block *b, const uint8_t *bytes, unsigned avail,
		       uint64_t lin)
{
	unsigned off = 0, n = 0, bits = cpu->code_bits;
	while (n < BLOCK_MAX_INSNS) {
		struct insn *in = &b->insn[n];
		int r = insn_decode(in, bytes + off, avail - off, bits);
		if (r == 0) {
			if (n > 0)
				break;
			/* The first instruction crosses the page: join both pages. */
			uint8_t buf[16];
			unsigned have = avail - off, more, avail2;
			uint64_t gpa2;
			memcpy(buf, bytes + off, have);
			const uint8_t *p2 = cpu_fetch_ptr(cpu, lin + have, &avail2, &gpa2);
			more = 15 - have < avail2 ? 15 - have : avail2;
			memcpy(buf + have, p2, more);
			r = insn_decode(in, buf, have + more, bits);
			if (r == 0) { /* cannot happen: 15 bytes are there */
				in->fn = exec_ud;
				in->len = 1;
			}
			b->genp = NULL; /* not cacheable: two pages */
			n = 1;
			break;
		}
		in->fn = exec_int_specialize(in, bits);
		n++;
		if (r < 0 || insn_ends_block(in))
			break;
		off += (unsigned)r;
		if (off >= avail)
			break;
	}
	b->n = (uint16_t)n;
}

struct cpu_block *block_get(struct cpu *cpu, uint64_t lin)
{
	struct cpu_block_cache *bc = cpu->cache;
	struct cpu_code_map *map = cpu->code_map;
	unsigned avail;
	uint64_t gpa;
	const uint8_t *bytes;
	const struct tlb_entry *e = mmu_tlb_entry(cpu, cpu->cpl == 3, lin);

	/* 64-bit code (no CS limit) on a page the TLB allows fetches from: the
	 * mapping is known; else the full fetch path (limits, walk, faults). */
	if (cpu->code_bits == 64 && e->tag_x == (lin & ~0xfffULL)) {
		avail = 4096 - (unsigned)(lin & 0xfff);
		gpa = e->gpa | (lin & 0xfff);
		bytes = (const uint8_t *)(e->addend + (uintptr_t)lin);
	} else {
		bytes = cpu_fetch_ptr(cpu, lin, &avail, &gpa);
	}
	int64_t idx = page_index(map, gpa);
	unsigned bits = cpu->code_bits;
	struct cpu_block *b, **pp;

	if (idx < 0) {
		b = &bc->scratch.b;
		b->genp = NULL;
		b->gpa = gpa;
		b->code_bits = (uint8_t)bits;
		b->succ[0] = b->succ[1] = NULL;
		decode_run(cpu, b, bytes, avail, lin);
		return b;
	}
	unsigned h = hash_of(gpa, bits);
	for (pp = &bc->hash[h]; (b = *pp) != NULL; pp = &b->next) {
		if (b->gpa != gpa || b->code_bits != bits)
			continue;
		if (!block_stale(b)) {
			if (pp != &bc->hash[h]) { /* move to the front: hot blocks first */
				*pp = b->next;
				b->next = bc->hash[h];
				bc->hash[h] = b;
			}
			return b;
		}
		*pp = b->next; /* stale: unlink (its memory waits for the next flush) */
		break;
	}

	/* Mark the page as code before reading its bytes (see cache.h). */
	if (atomic_exchange(&map->state[idx], 2) == 0) {
		/* New code page: other vCPUs flush their TLBs at their next block;
		 * this one drops the fast-write entry the fetch may just have made. */
		uint64_t ep = atomic_fetch_add(&map->epoch, 1);
		if (bc->epoch == ep)
			bc->epoch = ep + 1;
		cpu_tlb_flush_page(cpu, lin);
	}
	uint32_t gen = atomic_load(&map->gen[idx]);

	if (bc->used + BLOCK_BYTES(BLOCK_MAX_INSNS) > ARENA_SIZE) {
		memset(bc->hash, 0, sizeof(bc->hash));
		bc->used = 0;
		bc->flushes++;
	}
	b = (struct cpu_block *)(bc->arena + bc->used);
	b->genp = &map->gen[idx];
	b->gen = gen;
	b->gpa = gpa;
	b->code_bits = (uint8_t)bits;
	b->succ[0] = b->succ[1] = NULL;
	b->succ_lin[0] = b->succ_lin[1] = 0;
	decode_run(cpu, b, bytes, avail, lin);
	if (!b->genp) { /* straddling instruction: run it from scratch, uncached */
		struct cpu_block *s = &bc->scratch.b;
		memcpy(s, b, BLOCK_BYTES(1));
		return s;
	}
	bc->used += (BLOCK_BYTES(b->n) + 15) & ~(size_t)15;
	b->next = bc->hash[h];
	bc->hash[h] = b;
	return b;
}

struct cpu_block *block_next_slow(struct cpu *cpu, struct cpu_block *prev, uint64_t lin)
{
	struct cpu_block_cache *bc = cpu->cache;
	uint64_t flushes = bc->flushes;
	struct cpu_block *b = block_get(cpu, lin);

	if (prev && b->genp && bc->flushes == flushes) {
		/* Two links: a conditional branch's both ways; the newest first. */
		prev->succ[1] = prev->succ[0];
		prev->succ_lin[1] = prev->succ_lin[0];
		prev->succ[0] = b;
		prev->succ_lin[0] = lin;
	}
	return b;
}
