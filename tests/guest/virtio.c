/*
 * A small polling virtio 1.x driver over the modern PCI transport, enough
 * for the virtio actions of README.md: find the devices on bus 0, map their
 * common/notify/ISR/device capabilities, negotiate, set up split queues in
 * a fixed scratch area of RAM, and hand each device to its action. No
 * interrupts: queues have VRING_AVAIL_F_NO_INTERRUPT set and are polled.
 */
#include "guest.h"

/* Scratch RAM for rings and buffers: above the image, below any initrd. */
#define VIRTIO_MEM_BASE 0x400000ull
#define VIRTIO_MEM_END 0x800000ull

#define VIRTIO_VENDOR 0x1af4
#define VIRTIO_DEV_MODERN 0x1040
#define PCI_STATUS 0x06
#define PCI_STATUS_CAPS 0x10
#define PCI_CAP_PTR 0x34
#define PCI_CAP_VENDOR 0x09

/* virtio_pci_cap cfg_type */
#define CAP_COMMON 1
#define CAP_NOTIFY 2
#define CAP_ISR 3
#define CAP_DEVICE 4

/* Common configuration layout (virtio 1.2, 4.1.4.3). */
#define CC_DFSELECT 0
#define CC_DF 4
#define CC_GFSELECT 8
#define CC_GF 12
#define CC_NUMQ 18
#define CC_STATUS 20
#define CC_Q_SELECT 22
#define CC_Q_SIZE 24
#define CC_Q_MSIX 26
#define CC_Q_ENABLE 28
#define CC_Q_NOFF 30
#define CC_Q_DESC 32
#define CC_Q_DRIVER 40
#define CC_Q_DEVICE 48

#define ST_ACK 1
#define ST_DRIVER 2
#define ST_DRIVER_OK 4
#define ST_FEATURES_OK 8
#define ST_NEEDS_RESET 64
#define ST_FAILED 128

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY 1
#define NO_VECTOR 0xffff
#define RESET_POLLS 1000000

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

static inline void mb(void)
{
	__asm__ volatile("mfence" ::: "memory");
}

static uint8_t rd8(uint64_t a)
{
	return *(volatile uint8_t *)phys(a);
}

static uint16_t rd16(uint64_t a)
{
	return *(volatile uint16_t *)phys(a);
}

static void wr8(uint64_t a, uint8_t v)
{
	*(volatile uint8_t *)phys(a) = v;
}

static void wr16(uint64_t a, uint16_t v)
{
	*(volatile uint16_t *)phys(a) = v;
}

/* 64-bit fields as two 32-bit accesses, low half first (allowed by 4.1.3.1). */
static void wr64(uint64_t a, uint64_t v)
{
	mmio_write32(a, (uint32_t)v);
	mmio_write32(a + 4, (uint32_t)(v >> 32));
}

void *virtio_alloc(struct virtio_ctx *c, uint64_t len)
{
	uint64_t a = c->mem_next;

	len = (len + 4095) & ~4095ull;
	if (a + len > c->mem_end) {
		gfail("virtio out of scratch memory (%lu bytes wanted)", len);
		return NULL;
	}
	c->mem_next = a + len;
	memset(phys(a), 0, len);
	return phys(a);
}

uint32_t virtio_cfg32(const struct virtio_dev *v, unsigned int off)
{
	return mmio_read32(v->devcfg + off);
}

uint64_t virtio_cfg64(const struct virtio_dev *v, unsigned int off)
{
	return virtio_cfg32(v, off) | (uint64_t)virtio_cfg32(v, off + 4) << 32;
}

void virtio_cfg_write32(const struct virtio_dev *v, unsigned int off, uint32_t val)
{
	mmio_write32(v->devcfg + off, val);
}

static uint64_t device_features(const struct virtio_dev *v)
{
	uint64_t f;

	mmio_write32(v->common + CC_DFSELECT, 0);
	f = mmio_read32(v->common + CC_DF);
	mmio_write32(v->common + CC_DFSELECT, 1);
	return f | (uint64_t)mmio_read32(v->common + CC_DF) << 32;
}

bool virtio_offered(struct virtio_dev *v, unsigned int bit)
{
	return device_features(v) >> bit & 1;
}

void virtio_reset(struct virtio_dev *v)
{
	wr8(v->common + CC_STATUS, 0);
	for (int i = 0; i < RESET_POLLS && rd8(v->common + CC_STATUS); i++)
		cpu_relax();
	if (rd8(v->common + CC_STATUS))
		gfail("virtio %02x reset: status stays 0x%x", v->slot, rd8(v->common + CC_STATUS));
}

static int queue_setup(struct virtio_ctx *c, struct virtio_dev *v, uint16_t i, uint16_t qsize)
{
	struct virtq *q = &v->q[i];
	uint16_t max;

	wr16(v->common + CC_Q_SELECT, i);
	max = rd16(v->common + CC_Q_SIZE);
	if (!max || (max & (max - 1))) {
		gfail("virtio %02x queue %u size %u", v->slot, i, max);
		return -1;
	}
	*q = (struct virtq){.index = i, .size = max < qsize ? max : qsize};
	void *desc = virtio_alloc(c, 16ull * q->size);
	void *avail = virtio_alloc(c, 6 + 2ull * q->size);
	void *used = virtio_alloc(c, 6 + 8ull * q->size);

	if (!desc || !avail || !used)
		return -1;
	q->desc = (uintptr_t)desc;
	q->avail = (uintptr_t)avail;
	q->used = (uintptr_t)used;
	*(uint16_t *)avail = VRING_AVAIL_F_NO_INTERRUPT;
	wr16(v->common + CC_Q_SIZE, q->size);
	wr16(v->common + CC_Q_MSIX, NO_VECTOR);
	wr64(v->common + CC_Q_DESC, q->desc);
	wr64(v->common + CC_Q_DRIVER, q->avail);
	wr64(v->common + CC_Q_DEVICE, q->used);
	q->notify = v->notify + (uint64_t)rd16(v->common + CC_Q_NOFF) * v->notify_mult;
	wr16(v->common + CC_Q_ENABLE, 1);
	return 0;
}

int virtio_start(struct virtio_ctx *c, struct virtio_dev *v, uint64_t want, unsigned int nq,
		 uint16_t qsize)
{
	uint64_t offered;

	virtio_reset(v);
	wr8(v->common + CC_STATUS, ST_ACK);
	wr8(v->common + CC_STATUS, ST_ACK | ST_DRIVER);
	offered = device_features(v);
	if (!(offered >> VIRTIO_F_VERSION_1 & 1)) {
		gfail("virtio %02x does not offer VERSION_1 (features 0x%lx)", v->slot, offered);
		return -1;
	}
	v->features = (offered & want) | 1ull << VIRTIO_F_VERSION_1;
	mmio_write32(v->common + CC_GFSELECT, 0);
	mmio_write32(v->common + CC_GF, (uint32_t)v->features);
	mmio_write32(v->common + CC_GFSELECT, 1);
	mmio_write32(v->common + CC_GF, (uint32_t)(v->features >> 32));
	wr8(v->common + CC_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK);
	if (!(rd8(v->common + CC_STATUS) & ST_FEATURES_OK)) {
		gfail("virtio %02x FEATURES_OK did not stick (features 0x%lx)", v->slot,
		      v->features);
		return -1;
	}
	if (rd16(v->common + CC_NUMQ) < nq) {
		gfail("virtio %02x has %u queues, want %u", v->slot, rd16(v->common + CC_NUMQ), nq);
		return -1;
	}
	for (uint16_t i = 0; i < nq; i++)
		if (queue_setup(c, v, i, qsize))
			return -1;
	v->nq = nq;
	wr8(v->common + CC_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK);
	uint8_t st = rd8(v->common + CC_STATUS);

	if (st & (ST_NEEDS_RESET | ST_FAILED) || !(st & ST_DRIVER_OK)) {
		gfail("virtio %02x status 0x%x after DRIVER_OK", v->slot, st);
		return -1;
	}
	return 0;
}

static void kick(struct virtq *q)
{
	mb();
	wr16(q->notify, q->index);
}

void virtq_publish(struct virtq *q, uint16_t head)
{
	volatile uint16_t *ring = phys(q->avail + 4);

	ring[q->avail_idx % q->size] = head;
	mb();
	q->avail_idx++;
	*(volatile uint16_t *)phys(q->avail + 2) = q->avail_idx;
}

static void avail_push(struct virtq *q, uint16_t head)
{
	virtq_publish(q, head);
	kick(q);
}

void virtq_notify(struct virtq *q)
{
	mb(); /* our avail->idx store before the load of used->flags */
	if (!(*(volatile uint16_t *)phys(q->used) & VRING_USED_F_NO_NOTIFY))
		wr16(q->notify, q->index);
}

/* Descriptors first.. (wrapping at the queue size), linked, the last without NEXT. */
static void desc_fill(struct virtq *q, uint16_t first, const struct vbuf *b, unsigned int n)
{
	struct vring_desc *d = phys(q->desc);
	uint16_t at = first;

	for (unsigned int i = 0; i < n; i++) {
		uint16_t next = (uint16_t)((at + 1) % q->size);

		d[at] = (struct vring_desc){
		    .addr = b[i].addr,
		    .len = b[i].len,
		    .flags = (uint16_t)((b[i].device_writes ? VRING_DESC_F_WRITE : 0) |
					(i + 1 < n ? VRING_DESC_F_NEXT : 0)),
		    .next = next,
		};
		at = next;
	}
}

uint16_t virtq_add(struct virtq *q, const struct vbuf *b, unsigned int n)
{
	uint16_t head = q->next_desc;

	desc_fill(q, head, b, n);
	q->next_desc = (uint16_t)((head + n) % q->size);
	avail_push(q, head);
	return head;
}

void virtq_post(struct virtq *q, uint16_t first, const struct vbuf *b, unsigned int n)
{
	desc_fill(q, first, b, n);
	virtq_publish(q, first);
}

void virtq_repost(struct virtq *q, uint16_t head)
{
	avail_push(q, head);
}

bool virtq_poll(struct virtq *q, uint32_t *head, uint32_t *len)
{
	volatile uint32_t *ring = phys(q->used + 4);
	unsigned int at = q->used_idx % q->size;

	if (*(volatile uint16_t *)phys(q->used + 2) == q->used_idx)
		return false;
	mb();
	*head = ring[at * 2];
	*len = ring[at * 2 + 1];
	q->used_idx++;
	return true;
}

bool virtq_wait(struct virtq *q, uint32_t *head, uint32_t *len, uint64_t cycles)
{
	uint64_t start = rdtsc();

	while (!virtq_poll(q, head, len))
		if (rdtsc() - start > cycles)
			return false;
		else
			cpu_relax();
	return true;
}

long virtq_xfer(struct virtq *q, const struct vbuf *b, unsigned int n, const char *what)
{
	uint16_t head = virtq_add(q, b, n);
	uint32_t id, len;

	if (!virtq_wait(q, &id, &len, VIRTIO_TIMEOUT)) {
		gfail("virtio %s: no reply on queue %u", what, q->index);
		return -1;
	}
	if (id != head) {
		gfail("virtio %s: used id %u, expected %u", what, id, head);
		return -1;
	}
	return len;
}

void hexdump_line(const char *prefix, const uint8_t *p, unsigned int n)
{
	gprintf("%s", prefix);
	for (unsigned int i = 0; i < n; i++)
		gprintf("%02x", p[i]);
	serial_putc('\n');
}

/* Finds the four capabilities; -1 (gfail'd) if one is missing. */
static int caps_find(struct virtio_dev *v)
{
	struct pci_bus *pb = v->pb;
	uint8_t at = pci_read8(pb, v->slot, PCI_CAP_PTR) & 0xfc;

	if (!(pci_read16(pb, v->slot, PCI_STATUS) & PCI_STATUS_CAPS))
		at = 0;
	for (int guard = 0; at && guard < 48; guard++) {
		uint8_t id = pci_read8(pb, v->slot, at), type = pci_read8(pb, v->slot, at + 3);
		uint8_t bar = pci_read8(pb, v->slot, at + 4);
		uint32_t off = pci_read32(pb, v->slot, at + 8);
		uint64_t *slot = NULL;

		if (id == PCI_CAP_VENDOR) {
			if (type == CAP_COMMON)
				slot = &v->common;
			else if (type == CAP_NOTIFY)
				slot = &v->notify;
			else if (type == CAP_ISR)
				slot = &v->isr;
			else if (type == CAP_DEVICE)
				slot = &v->devcfg;
		}
		if (slot && !*slot) {
			uint64_t base = pci_bar(pb, v->slot, bar);

			if (!base) {
				gfail("virtio %02x cap type %u: BAR %u unusable", v->slot, type,
				      bar);
				return -1;
			}
			*slot = base + off;
			if (type == CAP_NOTIFY)
				v->notify_mult = pci_read32(pb, v->slot, at + 16);
		}
		at = pci_read8(pb, v->slot, at + 1) & 0xfc;
	}
	/* A device-specific capability only where the type has a config (4.1.4.6). */
	if (!v->common || !v->notify || !v->isr || (!v->devcfg && v->type != VIRTIO_ID_RNG)) {
		gfail("virtio %02x missing capability (common 0x%lx notify 0x%lx isr 0x%lx "
		      "device 0x%lx)",
		      v->slot, v->common, v->notify, v->isr, v->devcfg);
		return -1;
	}
	return 0;
}

/* The scratch area must be RAM, clear of the image and the initrd. */
static bool scratch_ok(const struct boot_info *bi, uint64_t lo, uint64_t hi)
{
	bool ram = false;

	for (unsigned int i = 0; i < bi->nmem; i++)
		if (bi->mem[i].type == E820_RAM && bi->mem[i].start <= lo && hi <= bi->mem[i].end)
			ram = true;
	if (!ram || (uintptr_t)__image_end > lo)
		return false;
	return !bi->initrd_size || bi->initrd_addr >= hi || bi->initrd_addr + bi->initrd_size <= lo;
}

/* The benchmarks run on the first device of their type only: one figure per run. */
static const struct {
	const char *word;
	unsigned int type;
	void (*run)(struct virtio_ctx *c, struct virtio_dev *v);
	bool first_only;
} actions[] = {
    {"virtio-blk", VIRTIO_ID_BLK, virtio_blk_run, false},
    {"virtio-rng", VIRTIO_ID_RNG, virtio_rng_run, false},
    {"virtio-net", VIRTIO_ID_NET, virtio_net_run, false},
    {"virtio-vsock", VIRTIO_ID_VSOCK, virtio_vsock_run, false},
    {"virtio-balloon", VIRTIO_ID_BALLOON, virtio_balloon_run, false},
    {"bench-blk", VIRTIO_ID_BLK, bench_blk_run, true},
    {"bench-net", VIRTIO_ID_NET, bench_net_run, true},
};
#define NACTIONS (sizeof(actions) / sizeof(actions[0]))

/* Probes every virtio function on the bus; prints one line per device. */
static unsigned int virtio_probe(struct virtio_ctx *c, struct virtio_dev *devs, unsigned int max)
{
	unsigned int n = 0, count[32] = {0};

	for (unsigned int i = 0; i < c->pb.nfn && n < max; i++) {
		const struct pci_fn *f = &c->pb.fn[i];
		struct virtio_dev *v = &devs[n];

		if (f->vendor != VIRTIO_VENDOR || f->device < VIRTIO_DEV_MODERN ||
		    f->device >= VIRTIO_DEV_MODERN + 32)
			continue;
		*v = (struct virtio_dev){
		    .pb = &c->pb, .slot = f->dev, .type = f->device - VIRTIO_DEV_MODERN};
		v->nth = count[v->type]++;
		if (caps_find(v))
			continue;
		gprintf("guest: virtio pci 00:%02x.0 type=%u common=0x%lx\n", v->slot, v->type,
			v->common);
		n++;
	}
	return n;
}

void virtio_run(const struct boot_info *bi, const struct acpi_info *ai)
{
	static struct virtio_ctx ctx;
	static struct virtio_dev devs[PCI_MAX_FNS];
	struct virtio_ctx *c = &ctx;
	bool any = false;

	for (unsigned int a = 0; a < NACTIONS; a++)
		any |= cmdline_has(bi->cmdline, actions[a].word);
	if (!any)
		return;
	if (!scratch_ok(bi, VIRTIO_MEM_BASE, VIRTIO_MEM_END)) {
		gfail("virtio scratch 0x%llx-0x%llx is not free RAM", VIRTIO_MEM_BASE,
		      VIRTIO_MEM_END);
		return;
	}
	*c = (struct virtio_ctx){.bi = bi,
				 .mem_next = VIRTIO_MEM_BASE,
				 .mem_end = VIRTIO_MEM_END,
				 .seed = (uint32_t)cmdline_num(bi->cmdline, "seed=", 1)};
	pci_init(&c->pb, ai->rsdp);
	gprintf("guest: virtio pci ecam=0x%lx functions=%u\n", c->pb.ecam, c->pb.nfn);

	unsigned int n = virtio_probe(c, devs, PCI_MAX_FNS);

	for (unsigned int a = 0; a < NACTIONS; a++) {
		unsigned int found = 0;

		if (!cmdline_has(bi->cmdline, actions[a].word))
			continue;
		for (unsigned int i = 0; i < n; i++) {
			if (devs[i].type != actions[a].type || (found && actions[a].first_only))
				continue;
			found++;
			actions[a].run(c, &devs[i]);
			virtio_reset(&devs[i]);
		}
		if (!found)
			gfail("%s no device", actions[a].word);
	}
	gprintf("guest: virtio done\n");
}
