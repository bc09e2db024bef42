/*
 * Tests for the virtio-pci modern transport (src/vmm/virtio/pci.c), driven
 * through configuration space (ECAM) and BAR0 the way a driver drives it.
 * No /dev/kvm: a fake struct vm with fake guest memory, recording KVM ops
 * (ioeventfd, irqfd, routing, INTx) and a recording virtio device.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/dev/pci.h"
#include "vmm/event.h"
#include "vmm/virtio/device.h"
#include "vmm/virtio/pci.h"
#include "vmm/vm.h"
#include "vmm/x86/layout.h"

#define RAM_SIZE (1u << 20)
#define DEV_FEATURE_BIT 5 /* a device-specific feature the fake offers */
#define MAX_IOEVENTFDS 16
#define MAX_IRQFDS 16

struct kvm_rec {
	struct {
		int fd;
		uint64_t gpa;
		uint32_t len;
	} ioev[MAX_IOEVENTFDS];
	int nioev;
	struct {
		int fd;
		uint32_t gsi;
	} irqfd[MAX_IRQFDS];
	int nirqfd;
	int routing_commits;
	struct kvm_irq_routing_entry msi[32];
	int nmsi;
	int level[64];
	int level_changes;
	int signal_msi;
};

struct fake_dev {
	uint8_t config[8];
	int activates, resets, config_writes, config_reads;
	int notified[VIRTIO_MAX_QUEUES];
	int activate_ret;
};

struct fx {
	struct vm vm;
	uint8_t *ram;
	struct pci_bus *pb;
	struct kvm_rec kvm;
	struct fake_dev fake;
	struct virtio_device d;
	uint32_t devfn;
	uint64_t bar;
};

/* ---- recording KVM ---- */

static int rec_routing(void *ctx, const struct kvm_irq_routing *t)
{
	struct kvm_rec *k = ctx;

	k->routing_commits++;
	k->nmsi = 0;
	for (uint32_t i = 0; i < t->nr; i++)
		if (t->entries[i].type == KVM_IRQ_ROUTING_MSI && k->nmsi < 32)
			k->msi[k->nmsi++] = t->entries[i];
	return 0;
}

static int rec_irqfd(void *ctx, int fd, uint32_t gsi, bool assign)
{
	struct kvm_rec *k = ctx;

	if (assign) {
		cr_assert_lt(k->nirqfd, MAX_IRQFDS);
		k->irqfd[k->nirqfd].fd = fd;
		k->irqfd[k->nirqfd++].gsi = gsi;
		return 0;
	}
	for (int i = 0; i < k->nirqfd; i++) {
		if (k->irqfd[i].fd == fd && k->irqfd[i].gsi == gsi) {
			k->irqfd[i] = k->irqfd[--k->nirqfd];
			return 0;
		}
	}
	cr_assert_fail("irqfd deassign of fd %d gsi %u that was not assigned", fd, gsi);
	return -ENOENT;
}

static int rec_ioeventfd(void *ctx, int fd, uint64_t gpa, uint32_t len, bool assign)
{
	struct kvm_rec *k = ctx;

	if (assign) {
		cr_assert_lt(k->nioev, MAX_IOEVENTFDS);
		k->ioev[k->nioev].fd = fd;
		k->ioev[k->nioev].gpa = gpa;
		k->ioev[k->nioev++].len = len;
		return 0;
	}
	for (int i = 0; i < k->nioev; i++) {
		if (k->ioev[i].fd == fd && k->ioev[i].gpa == gpa && k->ioev[i].len == len) {
			k->ioev[i] = k->ioev[--k->nioev];
			return 0;
		}
	}
	cr_assert_fail("ioeventfd deassign at 0x%llx that was not assigned",
		       (unsigned long long)gpa);
	return -ENOENT;
}

static int rec_signal_msi(void *ctx, uint64_t addr, uint32_t data)
{
	struct kvm_rec *k = ctx;

	(void)addr;
	(void)data;
	k->signal_msi++;
	return 0;
}

static void rec_set_irq(void *ctx, uint32_t gsi, int level)
{
	struct kvm_rec *k = ctx;

	cr_assert_lt(gsi, 64);
	k->level[gsi] = level;
	k->level_changes++;
}

static const struct kvm_irq_ops rec_kvm = {
    .set_gsi_routing = rec_routing,
    .irqfd = rec_irqfd,
    .ioeventfd = rec_ioeventfd,
    .signal_msi = rec_signal_msi,
    .set_irq = rec_set_irq,
};

/* ---- fake device ---- */

static void fake_config_read(struct virtio_device *d, uint32_t off, uint8_t *data, uint32_t len)
{
	struct fake_dev *f = d->priv;

	cr_assert_leq(off + len, sizeof(f->config), "transport let an overrun through");
	f->config_reads++;
	memcpy(data, f->config + off, len);
}

static void fake_config_write(struct virtio_device *d, uint32_t off, const uint8_t *data,
			      uint32_t len)
{
	struct fake_dev *f = d->priv;

	cr_assert_leq(off + len, sizeof(f->config), "transport let an overrun through");
	f->config_writes++;
	memcpy(f->config + off, data, len);
}

static int fake_activate(struct virtio_device *d)
{
	struct fake_dev *f = d->priv;

	f->activates++;
	return f->activate_ret;
}

static void fake_reset(struct virtio_device *d)
{
	struct fake_dev *f = d->priv;

	f->resets++;
}

static void fake_notify(struct virtio_device *d, uint16_t q)
{
	struct fake_dev *f = d->priv;

	cr_assert_lt(q, d->num_queues);
	__atomic_add_fetch(&f->notified[q], 1, __ATOMIC_SEQ_CST);
}

static const struct virtio_device_ops fake_ops = {
    .name = "virtio-fake",
    .type = VIRTIO_ID_BLOCK,
    .config_read = fake_config_read,
    .config_write = fake_config_write,
    .activate = fake_activate,
    .reset = fake_reset,
    .queue_notify = fake_notify,
};

/* ---- fixture and guest-side helpers ---- */

static uint32_t cfg_read(struct fx *f, uint32_t reg, uint32_t len)
{
	uint8_t d[4] = {0};

	pci_bus_config_read(f->pb, f->devfn, reg, d, len);
	return (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
}

static void cfg_write(struct fx *f, uint32_t reg, uint32_t v, uint32_t len)
{
	uint8_t d[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	pci_bus_config_write(f->pb, f->devfn, reg, d, len);
}

static uint64_t bar_read(struct fx *f, uint32_t off, uint32_t len)
{
	uint8_t d[8] = {0};
	uint64_t v = 0;

	cr_assert(bus_read(&f->vm.mmio, f->bar + off, d, len));
	for (uint32_t i = 0; i < len; i++)
		v |= (uint64_t)d[i] << (8 * i);
	return v;
}

static void bar_write(struct fx *f, uint32_t off, uint64_t v, uint32_t len)
{
	uint8_t d[8];

	for (uint32_t i = 0; i < 8; i++)
		d[i] = (uint8_t)(v >> (8 * i));
	cr_assert(bus_write(&f->vm.mmio, f->bar + off, d, len));
}

static uint8_t status(struct fx *f)
{
	return (uint8_t)bar_read(f, VIRTIO_PCI_COMMON_STATUS, 1);
}

static void set_status(struct fx *f, uint8_t s)
{
	bar_write(f, VIRTIO_PCI_COMMON_STATUS, s, 1);
}

static void fx_setup_loop(struct fx *f, uint16_t nq, struct event_loop *el)
{
	struct gmem_region r = {.gpa = 0, .size = RAM_SIZE};
	char err[256] = "";

	memset(f, 0, sizeof(*f));
	f->ram = calloc(1, RAM_SIZE);
	cr_assert_not_null(f->ram);
	r.hva = f->ram;
	gmem_init_fake(&f->vm.mem, &r, 1);
	f->vm.vm_fd = -1;
	bus_init(&f->vm.pio, "pio");
	bus_init(&f->vm.mmio, "mmio");
	cr_assert_eq(pci_bus_create_with(&f->vm, &rec_kvm, &f->kvm, &f->pb), 0);

	f->d.ops = &fake_ops;
	f->d.priv = &f->fake;
	f->d.device_features = 1ULL << DEV_FEATURE_BIT;
	f->d.num_queues = nq;
	for (uint16_t i = 0; i < nq; i++)
		f->d.queue_max[i] = (uint16_t)(256 >> i);
	f->d.config_size = sizeof(f->fake.config);
	memcpy(f->fake.config, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	cr_assert_eq(virtio_pci_add(f->pb, &f->vm, el, &f->d, err, sizeof(err)), 0, "%s", err);
	f->devfn = 1 << 3;
	f->bar = cfg_read(f, PCI_BASE_ADDRESS_0, 4) & ~0xfULL;
	cfg_write(f, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
}

/* No event loop: kicks run ops->queue_notify synchronously. */
static void fx_setup(struct fx *f, uint16_t nq)
{
	fx_setup_loop(f, nq, NULL);
}

static void fx_teardown(struct fx *f)
{
	virtio_pci_remove(&f->d);
	cr_assert_eq(f->kvm.nioev, 0, "ioeventfds left registered");
	cr_assert_eq(f->kvm.nirqfd, 0, "irqfds left attached");
	pci_bus_destroy(f->pb);
	bus_free(&f->vm.pio);
	bus_free(&f->vm.mmio);
	free(f->ram);
}

static void select_features(struct fx *f, uint64_t features)
{
	bar_write(f, VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
	bar_write(f, VIRTIO_PCI_COMMON_GF, (uint32_t)features, 4);
	bar_write(f, VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	bar_write(f, VIRTIO_PCI_COMMON_GF, features >> 32, 4);
}

static uint64_t offered(struct fx *f)
{
	uint64_t lo, hi;

	bar_write(f, VIRTIO_PCI_COMMON_DFSELECT, 0, 4);
	lo = bar_read(f, VIRTIO_PCI_COMMON_DF, 4);
	bar_write(f, VIRTIO_PCI_COMMON_DFSELECT, 1, 4);
	hi = bar_read(f, VIRTIO_PCI_COMMON_DF, 4);
	return hi << 32 | lo;
}

#define F_V1 (1ULL << VIRTIO_F_VERSION_1)
#define F_ALL                                                                                      \
	(F_V1 | 1ULL << VIRTIO_F_RING_EVENT_IDX | 1ULL << VIRTIO_F_RING_INDIRECT_DESC |            \
	 1ULL << DEV_FEATURE_BIT)

/* 3.1.1 steps 1-6: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK. */
static void negotiate(struct fx *f, uint64_t features)
{
	set_status(f, 0);
	set_status(f, VIRTIO_STATUS_ACKNOWLEDGE);
	set_status(f, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	select_features(f, features);
	set_status(f, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
}

/* Rings for queue q in fake RAM: desc at 64K * (q + 1), avail + 4K, used + 8K. */
static void setup_queue(struct fx *f, uint16_t q, uint16_t size)
{
	uint64_t base = 0x10000ULL * (q + 1);

	bar_write(f, VIRTIO_PCI_COMMON_Q_SELECT, q, 2);
	bar_write(f, VIRTIO_PCI_COMMON_Q_SIZE, size, 2);
	bar_write(f, VIRTIO_PCI_COMMON_Q_DESCLO, base, 4);
	bar_write(f, VIRTIO_PCI_COMMON_Q_DESCLO + 4, 0, 4);
	bar_write(f, VIRTIO_PCI_COMMON_Q_AVAILLO, base + 0x4000, 8);
	bar_write(f, VIRTIO_PCI_COMMON_Q_USEDLO, base + 0x8000, 4);
	bar_write(f, VIRTIO_PCI_COMMON_Q_USEDLO + 4, 0, 4);
	bar_write(f, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
}

static void bring_up(struct fx *f)
{
	int activates = f->fake.activates;

	negotiate(f, F_ALL);
	cr_assert(status(f) & VIRTIO_STATUS_FEATURES_OK);
	for (uint16_t q = 0; q < f->d.num_queues; q++)
		setup_queue(f, q, 64);
	set_status(f, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
			  VIRTIO_STATUS_DRIVER_OK);
	cr_assert_eq(f->fake.activates, activates + 1);
}

/* Offset of the n-th capability with ID id (vendor caps: of cfg_type), or 0. */
static uint32_t find_cap(struct fx *f, uint8_t id, int cfg_type)
{
	uint32_t off = cfg_read(f, PCI_CAPABILITY_LIST, 1);
	int guard = 0;

	while (off) {
		cr_assert_geq(off, 0x40);
		cr_assert_eq(off % 4, 0, "capability at 0x%x not dword-aligned", off);
		cr_assert_lt(guard++, 48, "capability list loops");
		if (cfg_read(f, off, 1) == id &&
		    (cfg_type < 0 || cfg_read(f, off + 3, 1) == (uint32_t)cfg_type))
			return off;
		off = cfg_read(f, off + 1, 1);
	}
	return 0;
}

static void enable_msix(struct fx *f, bool mask_all)
{
	uint32_t c = find_cap(f, PCI_CAP_ID_MSIX, -1);
	uint32_t ctrl = cfg_read(f, c + 2, 2);

	cfg_write(f, c + 2, (ctrl & 0x7ff) | 0x8000 | (mask_all ? 0x4000 : 0), 2);
}

static void msix_entry(struct fx *f, uint16_t v, uint64_t addr, uint32_t data, bool masked)
{
	uint32_t e = VIRTIO_PCI_MSIX_TABLE_OFF + 16 * v;

	bar_write(f, e, (uint32_t)addr, 4);
	bar_write(f, e + 4, addr >> 32, 4);
	bar_write(f, e + 8, data, 4);
	bar_write(f, e + 12, masked, 4);
}

static uint64_t eventfd_count(int fd)
{
	eventfd_t v = 0;

	if (eventfd_read(fd, &v))
		return 0;
	return v;
}

static int irqfd_of(struct fx *f, uint32_t gsi)
{
	for (int i = 0; i < f->kvm.nirqfd; i++)
		if (f->kvm.irqfd[i].gsi == gsi)
			return f->kvm.irqfd[i].fd;
	return -1;
}

/* ---- tests ---- */

Test(virtio_pci, ids_class_and_bar)
{
	struct fx f;

	fx_setup(&f, 2);
	cr_assert_eq(cfg_read(&f, PCI_VENDOR_ID, 2), 0x1af4);
	cr_assert_eq(cfg_read(&f, PCI_DEVICE_ID, 2), 0x1042, "0x1040 + block");
	cr_assert_eq(cfg_read(&f, PCI_REVISION_ID, 1), 1);
	cr_assert_eq(cfg_read(&f, PCI_CLASS_DEVICE, 2), 0x0100, "mass storage");
	cr_assert_eq(cfg_read(&f, PCI_SUBSYSTEM_VENDOR_ID, 2), 0x1af4);
	cr_assert_geq(cfg_read(&f, PCI_SUBSYSTEM_ID, 2), 0x40);
	cr_assert_eq(cfg_read(&f, PCI_INTERRUPT_PIN, 1), 1);
	cr_assert_eq(f.bar % VIRTIO_PCI_BAR_SIZE, 0);
	cfg_write(&f, PCI_BASE_ADDRESS_0, 0xffffffff, 4);
	cr_assert_eq(cfg_read(&f, PCI_BASE_ADDRESS_0, 4), (uint32_t)-VIRTIO_PCI_BAR_SIZE,
		     "32-bit non-prefetchable memory BAR of 32 KiB");
	cfg_write(&f, PCI_BASE_ADDRESS_0, (uint32_t)f.bar, 4);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_COMMON_NUMQ, 2), 2);
	fx_teardown(&f);
}

Test(virtio_pci, capability_walk_finds_all)
{
	static const struct {
		int type;
		uint32_t off, len, cap_len;
	} want[] = {
	    {VIRTIO_PCI_CAP_COMMON_CFG, 0x0000, 0x3c, 16},
	    {VIRTIO_PCI_CAP_NOTIFY_CFG, 0x3000, 8, 20},
	    {VIRTIO_PCI_CAP_ISR_CFG, 0x1000, 1, 16},
	    {VIRTIO_PCI_CAP_DEVICE_CFG, 0x2000, 8, 16},
	    {VIRTIO_PCI_CAP_PCI_CFG, 0, 0, 20},
	};
	struct fx f;
	uint32_t c;

	fx_setup(&f, 2);
	cr_assert(cfg_read(&f, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		c = find_cap(&f, PCI_CAP_ID_VNDR, want[i].type);
		cr_assert_neq(c, 0, "no virtio capability of type %d", want[i].type);
		cr_assert_eq(cfg_read(&f, c + 2, 1), want[i].cap_len, "type %d cap_len",
			     want[i].type);
		cr_assert_eq(cfg_read(&f, c + 4, 1), 0, "type %d: BAR0", want[i].type);
		cr_assert_eq(cfg_read(&f, c + 8, 4), want[i].off, "type %d offset", want[i].type);
		cr_assert_eq(cfg_read(&f, c + 12, 4), want[i].len, "type %d length", want[i].type);
		/* Each structure lies inside the BAR. */
		cr_assert_leq(want[i].off + want[i].len, VIRTIO_PCI_BAR_SIZE);
	}
	c = find_cap(&f, PCI_CAP_ID_VNDR, VIRTIO_PCI_CAP_NOTIFY_CFG);
	cr_assert_eq(cfg_read(&f, c + 16, 4), 4, "notify_off_multiplier");
	bar_write(&f, VIRTIO_PCI_COMMON_Q_SELECT, 1, 2);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_COMMON_Q_NOFF, 2), 1, "queue_notify_off = index");

	c = find_cap(&f, PCI_CAP_ID_MSIX, -1);
	cr_assert_neq(c, 0, "no MSI-X capability");
	cr_assert_eq(cfg_read(&f, c + 2, 2), 2, "table size 3 (N - 1), disabled");
	cr_assert_eq(cfg_read(&f, c + 4, 4), VIRTIO_PCI_MSIX_TABLE_OFF | 0, "table in BAR0");
	cr_assert_eq(cfg_read(&f, c + 8, 4), VIRTIO_PCI_MSIX_PBA_OFF | 0, "PBA in BAR0");
	/* Only enable and function mask are writable in Message Control. */
	cfg_write(&f, c + 2, 0xffff, 2);
	cr_assert_eq(cfg_read(&f, c + 2, 2), 0xc002);
	cfg_write(&f, c + 4, 0, 4);
	cr_assert_eq(cfg_read(&f, c + 4, 4), VIRTIO_PCI_MSIX_TABLE_OFF);
	fx_teardown(&f);
}

Test(virtio_pci, offered_features)
{
	struct fx f;

	fx_setup(&f, 1);
	cr_assert_eq(offered(&f), F_ALL);
	bar_write(&f, VIRTIO_PCI_COMMON_DFSELECT, 2, 4);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_COMMON_DF, 4), 0, "select beyond 63 bits reads 0");
	fx_teardown(&f);
}

Test(virtio_pci, driver_without_version_1_is_refused)
{
	struct fx f;

	fx_setup(&f, 1);
	negotiate(&f, F_ALL & ~F_V1);
	cr_assert_not(status(&f) & VIRTIO_STATUS_FEATURES_OK);
	cr_assert_eq(status(&f), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	/* DRIVER_OK without FEATURES_OK: not activated, NEEDS_RESET. */
	set_status(&f, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
	cr_assert_eq(f.fake.activates, 0);
	cr_assert(status(&f) & VIRTIO_STATUS_NEEDS_RESET);
	cr_assert_not(status(&f) & VIRTIO_STATUS_DRIVER_OK);
	fx_teardown(&f);
}

Test(virtio_pci, unoffered_feature_is_refused)
{
	struct fx f;

	fx_setup(&f, 1);
	negotiate(&f, F_V1 | 1ULL << 40);
	cr_assert_not(status(&f) & VIRTIO_STATUS_FEATURES_OK);
	negotiate(&f, F_V1 | 1ULL << (DEV_FEATURE_BIT + 1));
	cr_assert_not(status(&f) & VIRTIO_STATUS_FEATURES_OK);
	negotiate(&f, F_V1 | 1ULL << DEV_FEATURE_BIT);
	cr_assert(status(&f) & VIRTIO_STATUS_FEATURES_OK);
	/* Features are frozen once FEATURES_OK is set. */
	select_features(&f, F_ALL);
	bar_write(&f, VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_COMMON_GF, 4), 1);
	bar_write(&f, VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_COMMON_GF, 4), 1u << DEV_FEATURE_BIT);
	fx_teardown(&f);
}

Test(virtio_pci, queue_setup_fills_virtq_and_activates)
{
	struct fx f;

	fx_setup(&f, 2);
	bar_write(&f, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_COMMON_Q_SIZE, 2), 256, "max size before setup");
	bar_write(&f, VIRTIO_PCI_COMMON_Q_SELECT, 1, 2);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_COMMON_Q_SIZE, 2), 128);
	negotiate(&f, F_V1 | 1ULL << VIRTIO_F_RING_EVENT_IDX);
	setup_queue(&f, 0, 64);
	setup_queue(&f, 1, 128);
	cr_assert(f.d.queues[0].ready);
	cr_assert_eq(f.d.queues[0].size, 64);
	cr_assert_eq(f.d.queues[0].desc_gpa, 0x10000);
	cr_assert_eq(f.d.queues[0].avail_gpa, 0x14000);
	cr_assert_eq(f.d.queues[0].used_gpa, 0x18000);
	cr_assert_eq(f.d.queues[1].desc_gpa, 0x20000);
	cr_assert_eq(f.d.queues[1].size, 128);
	cr_assert(f.d.queues[0].event_idx);
	cr_assert_not(f.d.queues[0].indirect);
	cr_assert_eq(f.d.queues[0].mem, &f.vm.mem);
	bar_write(&f, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_COMMON_Q_DESCLO, 8), 0x10000);
	/* An enabled queue's configuration is frozen. */
	bar_write(&f, VIRTIO_PCI_COMMON_Q_DESCLO, 0x30000, 4);
	bar_write(&f, VIRTIO_PCI_COMMON_Q_SIZE, 16, 2);
	cr_assert_eq(f.d.queues[0].desc_gpa, 0x10000);
	cr_assert_eq(f.d.queues[0].size, 64);
	cr_assert_eq(f.fake.activates, 0);

	set_status(&f, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			   VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	cr_assert_eq(f.fake.activates, 1);
	cr_assert_eq(f.d.driver_features, F_V1 | 1ULL << VIRTIO_F_RING_EVENT_IDX);
	cr_assert(virtio_has_feature(&f.d, VIRTIO_F_VERSION_1));
	cr_assert_eq(status(&f), 0x0f);
	fx_teardown(&f);
}

Test(virtio_pci, bad_queue_address_needs_reset)
{
	struct fx f;

	fx_setup(&f, 1);
	negotiate(&f, F_V1);
	bar_write(&f, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	bar_write(&f, VIRTIO_PCI_COMMON_Q_SIZE, 64, 2);
	bar_write(&f, VIRTIO_PCI_COMMON_Q_DESCLO, RAM_SIZE - 16, 8); /* table runs out of RAM */
	bar_write(&f, VIRTIO_PCI_COMMON_Q_AVAILLO, 0x4000, 8);
	bar_write(&f, VIRTIO_PCI_COMMON_Q_USEDLO, 0x8000, 8);
	bar_write(&f, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	cr_assert_not(f.d.queues[0].ready);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	cr_assert(status(&f) & VIRTIO_STATUS_NEEDS_RESET);
	/* Reset clears NEEDS_RESET. */
	set_status(&f, 0);
	cr_assert_eq(status(&f), 0);
	fx_teardown(&f);
}

Test(virtio_pci, bad_queue_size_needs_reset)
{
	static const uint16_t bad[] = {0, 48, 512, 0xffff};
	struct fx f;

	fx_setup(&f, 1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		negotiate(&f, F_V1);
		setup_queue(&f, 0, bad[i]);
		cr_assert_not(f.d.queues[0].ready, "size %u accepted", bad[i]);
		cr_assert(status(&f) & VIRTIO_STATUS_NEEDS_RESET, "size %u", bad[i]);
	}
	negotiate(&f, F_V1);
	setup_queue(&f, 0, 256);
	cr_assert(f.d.queues[0].ready);
	cr_assert_not(status(&f) & VIRTIO_STATUS_NEEDS_RESET);
	fx_teardown(&f);
}

Test(virtio_pci, reset_clears_state)
{
	struct fx f;

	fx_setup(&f, 2);
	bring_up(&f);
	bar_write(&f, VIRTIO_PCI_COMMON_MSIX, 0, 2);
	bar_write(&f, VIRTIO_PCI_COMMON_Q_SELECT, 1, 2);
	bar_write(&f, VIRTIO_PCI_COMMON_Q_MSIX, 2, 2);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_COMMON_Q_MSIX, 2), 2);
	int resets = f.fake.resets;

	set_status(&f, 0);
	cr_assert_eq(f.fake.resets, resets + 1);
	cr_assert_eq(status(&f), 0);
	cr_assert_not(f.d.queues[0].ready);
	cr_assert_not(f.d.queues[1].ready);
	cr_assert_eq(f.d.driver_features, 0);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_COMMON_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	bar_write(&f, VIRTIO_PCI_COMMON_Q_SELECT, 1, 2);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_COMMON_Q_SIZE, 2), 128, "back to the maximum");
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_COMMON_Q_DESCLO, 8), 0);
	bar_write(&f, VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_COMMON_GF, 4), 0);
	/* Kicks after the reset reach nobody. */
	bar_write(&f, VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	cr_assert_eq(f.fake.notified[0], 0);
	/* And the device comes up again. */
	bring_up(&f);
	cr_assert_eq(f.fake.activates, 2);
	fx_teardown(&f);
}

static int notified(struct fx *f, int q)
{
	return __atomic_load_n(&f->fake.notified[q], __ATOMIC_SEQ_CST);
}

/* Waits up to 2 s for the event thread to run queue q's notify n times. */
static void wait_notified(struct fx *f, int q, int n)
{
	for (int i = 0; i < 2000 && notified(f, q) < n; i++)
		usleep(1000);
	cr_assert_eq(notified(f, q), n, "queue %d: %d kicks, want %d", q, notified(f, q), n);
}

static int ioeventfd_at(struct fx *f, uint64_t gpa)
{
	for (int i = 0; i < f->kvm.nioev; i++)
		if (f->kvm.ioev[i].gpa == gpa)
			return f->kvm.ioev[i].fd;
	return -1;
}

Test(virtio_pci, notify_through_ioeventfd_and_mmio)
{
	struct event_loop el;
	struct fx f;
	uint64_t old;
	uint8_t d[4];
	int fd0, fd1;

	cr_assert_eq(event_loop_init(&el), 0);
	cr_assert_eq(event_loop_start(&el), 0);
	fx_setup_loop(&f, 2, &el);
	/* Memory decoding is on: one ioeventfd per queue at its notify address. */
	cr_assert_eq(f.kvm.nioev, 2);
	fd0 = ioeventfd_at(&f, f.bar + 0x3000);
	fd1 = ioeventfd_at(&f, f.bar + 0x3004);
	cr_assert_geq(fd0, 0);
	cr_assert_geq(fd1, 0);
	cr_assert_eq(f.kvm.ioev[0].len, 0, "any access length");

	/* Before DRIVER_OK a kick does nothing. */
	cr_assert_eq(eventfd_write(fd1, 1), 0);
	usleep(20000);
	cr_assert_eq(notified(&f, 1), 0);
	bring_up(&f);
	/* What KVM does on a guest write: the event thread runs queue_notify. */
	cr_assert_eq(eventfd_write(fd1, 1), 0);
	wait_notified(&f, 1, 1);
	cr_assert_eq(eventfd_write(fd0, 1), 0);
	wait_notified(&f, 0, 1);
	/* A kick that exits to the monitor instead goes the same way. */
	bar_write(&f, VIRTIO_PCI_NOTIFY_OFF + 4, 1, 4);
	wait_notified(&f, 1, 2);
	bar_write(&f, VIRTIO_PCI_NOTIFY_OFF + 8, 2, 2); /* no queue 2 */
	bar_write(&f, VIRTIO_PCI_NOTIFY_OFF + 0xffc, 2, 2);
	usleep(20000);
	cr_assert_eq(notified(&f, 0) + notified(&f, 1), 3);

	/* The guest moves the BAR: the ioeventfds follow. */
	old = f.bar;
	cfg_write(&f, PCI_BASE_ADDRESS_0, 0xd0000000, 4);
	f.bar = 0xd0000000;
	cr_assert_eq(f.kvm.nioev, 2);
	cr_assert_eq(ioeventfd_at(&f, 0xd0003000), fd0);
	cr_assert_eq(ioeventfd_at(&f, 0xd0003004), fd1);
	cr_assert_eq(status(&f), 0x0f, "the device answers at the new address");
	bus_read(&f.vm.mmio, old + VIRTIO_PCI_COMMON_STATUS, d, 1);
	cr_assert_eq(d[0], 0xff, "and not at the old one");
	/* Decoding off: no ioeventfd. */
	cfg_write(&f, PCI_COMMAND, 0, 2);
	cr_assert_eq(f.kvm.nioev, 0);
	fx_teardown(&f);
	event_loop_destroy(&el);
}

/* Without an event loop nothing would read an ioeventfd: kicks must exit instead. */
Test(virtio_pci, no_event_loop_no_ioeventfd)
{
	struct fx f;

	fx_setup(&f, 2);
	cr_assert_eq(f.kvm.nioev, 0);
	bring_up(&f);
	bar_write(&f, VIRTIO_PCI_NOTIFY_OFF + 4, 1, 2);
	cr_assert_eq(f.fake.notified[1], 1);
	fx_teardown(&f);
}

Test(virtio_pci, isr_read_to_clear_and_intx_level)
{
	struct fx f;
	uint32_t gsi;

	fx_setup(&f, 1);
	gsi = cfg_read(&f, PCI_INTERRUPT_LINE, 1);
	cr_assert_eq(gsi, LAYOUT_PCI_GSI_BASE + 1);
	f.d.signal_used(&f.d, 0);
	cr_assert_eq(f.kvm.level[gsi], 0, "no interrupt before DRIVER_OK");
	bring_up(&f);
	f.d.signal_used(&f.d, 0);
	cr_assert_eq(f.kvm.level[gsi], 1);
	cr_assert(cfg_read(&f, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	f.d.signal_used(&f.d, 0);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_ISR_OFF, 1), VIRTIO_PCI_ISR_QUEUE);
	cr_assert_eq(f.kvm.level[gsi], 0, "lowered by the read");
	cr_assert_not(cfg_read(&f, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_ISR_OFF, 1), 0, "read-to-clear");
	f.d.signal_config(&f.d);
	cr_assert_eq(f.kvm.level[gsi], 1);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_ISR_OFF, 4), VIRTIO_PCI_ISR_CONFIG);
	cr_assert_eq(f.kvm.level[gsi], 0);
	/* Writes to the ISR are ignored. */
	f.d.signal_used(&f.d, 0);
	bar_write(&f, VIRTIO_PCI_ISR_OFF, 0, 1);
	cr_assert_eq(f.kvm.level[gsi], 1);
	/* INTx Disable in the command register drops the line, clearing it restores it. */
	cfg_write(&f, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_INTX_DISABLE, 2);
	cr_assert_eq(f.kvm.level[gsi], 0);
	cfg_write(&f, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	cr_assert_eq(f.kvm.level[gsi], 1);
	/* A reset drops it too. */
	set_status(&f, 0);
	cr_assert_eq(f.kvm.level[gsi], 0);
	fx_teardown(&f);
}

Test(virtio_pci, msix_delivery_masking_and_pba)
{
	struct fx f;
	int fd;
	uint32_t gsi = 0;

	fx_setup(&f, 2);
	bring_up(&f);
	bar_write(&f, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
	bar_write(&f, VIRTIO_PCI_COMMON_Q_MSIX, 1, 2);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_COMMON_Q_MSIX, 2), 1);
	bar_write(&f, VIRTIO_PCI_COMMON_Q_MSIX, 3, 2);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR,
		     "3 vectors: 3 is out of range");
	bar_write(&f, VIRTIO_PCI_COMMON_Q_MSIX, 1, 2);
	bar_write(&f, VIRTIO_PCI_COMMON_MSIX, 0, 2);

	/* Entries start masked; Linux enables MSI-X, then programs and unmasks. */
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_MSIX_TABLE_OFF + 16 + 12, 4), 1);
	enable_msix(&f, false);
	msix_entry(&f, 1, 0xfee01000, 0x4051, true);
	cr_assert_eq(f.kvm.routing_commits, 0, "masked entries are not routed");
	bar_write(&f, VIRTIO_PCI_MSIX_TABLE_OFF + 16 + 12, 0, 4); /* unmask */
	cr_assert_eq(f.kvm.routing_commits, 1);
	cr_assert_eq(f.kvm.nmsi, 1);
	cr_assert_eq(f.kvm.msi[0].u.msi.address_lo, 0xfee01000);
	cr_assert_eq(f.kvm.msi[0].u.msi.data, 0x4051);
	gsi = f.kvm.msi[0].gsi;
	cr_assert_geq(gsi, 24);
	fd = irqfd_of(&f, gsi);
	cr_assert_geq(fd, 0, "irqfd attached to the vector's GSI");
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_MSIX_TABLE_OFF + 16, 8), 0xfee01000);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_MSIX_TABLE_OFF + 24, 4), 0x4051);

	f.d.signal_used(&f.d, 0);
	cr_assert_eq(eventfd_count(fd), 1);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_ISR_OFF, 1), 0, "no ISR bit with MSI-X");
	f.d.signal_used(&f.d, 1); /* queue 1 has NO_VECTOR */
	cr_assert_eq(eventfd_count(fd), 0);

	/* Per-vector mask: pending in the PBA, delivered on unmask. */
	bar_write(&f, VIRTIO_PCI_MSIX_TABLE_OFF + 16 + 12, 1, 4);
	f.d.signal_used(&f.d, 0);
	cr_assert_eq(eventfd_count(fd), 0);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_MSIX_PBA_OFF, 8), 1u << 1);
	bar_write(&f, VIRTIO_PCI_MSIX_TABLE_OFF + 16 + 12, 0, 4);
	cr_assert_eq(eventfd_count(fd), 1);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_MSIX_PBA_OFF, 8), 0);

	/* Function mask. */
	enable_msix(&f, true);
	f.d.signal_used(&f.d, 0);
	cr_assert_eq(eventfd_count(fd), 0);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_MSIX_PBA_OFF, 4), 1u << 1);
	enable_msix(&f, false);
	cr_assert_eq(eventfd_count(fd), 1);

	/* A changed address while unmasked is re-routed at once. */
	bar_write(&f, VIRTIO_PCI_MSIX_TABLE_OFF + 24, 0x4052, 4);
	cr_assert_eq(f.kvm.msi[0].u.msi.data, 0x4052);

	/* The config vector (0) is masked: config changes stay pending. */
	f.d.signal_config(&f.d);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_MSIX_PBA_OFF, 1), 1);
	cr_assert_eq(f.kvm.level[cfg_read(&f, PCI_INTERRUPT_LINE, 1)], 0, "no INTx with MSI-X");
	cr_assert_eq(f.kvm.signal_msi, 0);
	fx_teardown(&f);
}

Test(virtio_pci, set_broken_after_driver_ok)
{
	struct fx f;
	int fd;

	fx_setup(&f, 1);
	bring_up(&f);
	bar_write(&f, VIRTIO_PCI_COMMON_MSIX, 0, 2);
	enable_msix(&f, false);
	msix_entry(&f, 0, 0xfee00000, 0x4060, false);
	fd = irqfd_of(&f, f.kvm.msi[0].gsi);
	cr_assert_geq(fd, 0);
	f.d.set_broken(&f.d, "test: ring broken");
	cr_assert(status(&f) & VIRTIO_STATUS_NEEDS_RESET);
	cr_assert_eq(eventfd_count(fd), 1, "config change interrupt");
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_ISR_OFF, 1), VIRTIO_PCI_ISR_CONFIG);
	/* A broken device ignores kicks until reset. */
	bar_write(&f, VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	cr_assert_eq(f.fake.notified[0], 0);
	/* The driver cannot set NEEDS_RESET itself, nor clear it. */
	set_status(&f, 0x0f);
	cr_assert(status(&f) & VIRTIO_STATUS_NEEDS_RESET);
	set_status(&f, 0);
	bring_up(&f);
	bar_write(&f, VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	cr_assert_eq(f.fake.notified[0], 1);
	fx_teardown(&f);
}

Test(virtio_pci, activate_failure_needs_reset)
{
	struct fx f;

	fx_setup(&f, 1);
	f.fake.activate_ret = -ENOMEM;
	bring_up(&f);
	cr_assert(status(&f) & VIRTIO_STATUS_NEEDS_RESET);
	bar_write(&f, VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	cr_assert_eq(f.fake.notified[0], 0);
	fx_teardown(&f);
}

Test(virtio_pci, device_config_bounds)
{
	struct fx f;

	fx_setup(&f, 1);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_DEVICE_OFF, 4), 0x44332211);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_DEVICE_OFF + 4, 4), 0x88776655);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_DEVICE_OFF + 6, 2), 0x8877);
	int reads = f.fake.config_reads;

	cr_assert_eq(bar_read(&f, VIRTIO_PCI_DEVICE_OFF + 6, 4), 0, "runs past config_size");
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_DEVICE_OFF + 8, 1), 0);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_DEVICE_OFF + 0xff8, 8), 0);
	cr_assert_eq(f.fake.config_reads, reads, "the device never sees them");
	bar_write(&f, VIRTIO_PCI_DEVICE_OFF + 2, 0xabcd, 2);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_DEVICE_OFF, 4), 0xabcd2211);
	bar_write(&f, VIRTIO_PCI_DEVICE_OFF + 7, 0xffff, 2);
	cr_assert_eq(f.fake.config_writes, 1);
	fx_teardown(&f);
}

Test(virtio_pci, hostile_common_accesses)
{
	struct fx f;

	fx_setup(&f, 2);
	negotiate(&f, F_V1);
	/* queue_select beyond num_queues: size 0, writes and enable ignored. */
	bar_write(&f, VIRTIO_PCI_COMMON_Q_SELECT, 7, 2);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_COMMON_Q_SIZE, 2), 0);
	bar_write(&f, VIRTIO_PCI_COMMON_Q_SIZE, 64, 2);
	bar_write(&f, VIRTIO_PCI_COMMON_Q_DESCLO, 0x1000, 8);
	bar_write(&f, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	bar_write(&f, VIRTIO_PCI_COMMON_Q_MSIX, 0, 2);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_COMMON_Q_SIZE, 2), 0);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_COMMON_Q_DESCLO, 8), 0);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_COMMON_Q_MSIX, 2), 0);
	bar_write(&f, VIRTIO_PCI_COMMON_Q_SELECT, 0xffff, 2);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	cr_assert_not(status(&f) & VIRTIO_STATUS_NEEDS_RESET);

	/* Read-only fields ignore writes. */
	bar_write(&f, VIRTIO_PCI_COMMON_NUMQ, 9, 2);
	bar_write(&f, VIRTIO_PCI_COMMON_DF, 0xffffffff, 4);
	bar_write(&f, VIRTIO_PCI_COMMON_Q_SELECT, 1, 2);
	bar_write(&f, VIRTIO_PCI_COMMON_Q_NOFF, 5, 2);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_COMMON_NUMQ, 2), 2);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_COMMON_Q_NOFF, 2), 1);
	cr_assert_eq(offered(&f), F_ALL);

	/* Byte-wise and 8-byte accesses of 16/32-bit fields. */
	bar_write(&f, VIRTIO_PCI_COMMON_Q_SELECT, 0, 1);
	bar_write(&f, VIRTIO_PCI_COMMON_Q_SELECT + 1, 0, 1);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_COMMON_Q_SIZE + 1, 1), 1, "256 >> 8");
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_COMMON_NUMQ, 8) & 0xffff, 2);
	/* Past the structure but inside its page: reads 0. */
	cr_assert_eq(bar_read(&f, 0x3c, 4), 0);
	cr_assert_eq(bar_read(&f, 0xff8, 8), 0);
	bar_write(&f, 0x100, 0xffffffff, 4);
	/* Straddling two regions, or past the BAR: dropped, all-ones. */
	cr_assert_eq(bar_read(&f, 0xffe, 4), 0xffffffff);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_BAR_SIZE - 2, 4), 0xffffffff);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_BAR_SIZE - 2, 2), 0, "unused space reads 0");
	bar_write(&f, 0xffe, 0, 4);
	cr_assert_eq(status(&f), 0x0b, "nothing changed");
	/* The MSI-X table beyond its 3 entries, and straddling entries. */
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_MSIX_TABLE_OFF + 3 * 16, 4), 0);
	bar_write(&f, VIRTIO_PCI_MSIX_TABLE_OFF + 3 * 16, 0x1234, 4);
	bar_write(&f, VIRTIO_PCI_MSIX_TABLE_OFF + 12, 0, 8);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_MSIX_TABLE_OFF + 12, 4), 1, "still masked");
	bar_write(&f, VIRTIO_PCI_MSIX_PBA_OFF, 0xff, 1);
	cr_assert_eq(bar_read(&f, VIRTIO_PCI_MSIX_PBA_OFF, 8), 0);
	fx_teardown(&f);
}

/* VIRTIO_PCI_CAP_PCI_CFG: BAR access through configuration space (4.1.4.9). */
Test(virtio_pci, pci_cfg_access_capability)
{
	struct fx f;
	uint32_t c;

	fx_setup(&f, 1);
	c = find_cap(&f, PCI_CAP_ID_VNDR, VIRTIO_PCI_CAP_PCI_CFG);
	cr_assert_neq(c, 0);
	cfg_write(&f, c + 4, 0, 1);
	cfg_write(&f, c + 8, VIRTIO_PCI_COMMON_NUMQ, 4);
	cfg_write(&f, c + 12, 2, 4);
	cr_assert_eq(cfg_read(&f, c + 16, 2), 1, "num_queues through the window");
	/* A write: device_status = ACKNOWLEDGE. */
	cfg_write(&f, c + 8, VIRTIO_PCI_COMMON_STATUS, 4);
	cfg_write(&f, c + 12, 1, 4);
	cfg_write(&f, c + 16, VIRTIO_STATUS_ACKNOWLEDGE, 1);
	cr_assert_eq(status(&f), VIRTIO_STATUS_ACKNOWLEDGE);
	/* Bad length, misaligned offset, other BAR, offset past the BAR: nothing happens. */
	cfg_write(&f, c + 12, 3, 4);
	cfg_write(&f, c + 16, 0, 4);
	cfg_write(&f, c + 12, 2, 4);
	cfg_write(&f, c + 8, VIRTIO_PCI_COMMON_STATUS + 1, 4);
	cfg_write(&f, c + 16, 0, 4);
	cfg_write(&f, c + 8, VIRTIO_PCI_BAR_SIZE, 4);
	cfg_write(&f, c + 16, 0, 4);
	cfg_write(&f, c + 4, 2, 1);
	cfg_write(&f, c + 8, VIRTIO_PCI_COMMON_STATUS, 4);
	cfg_write(&f, c + 12, 1, 4);
	cfg_write(&f, c + 16, 0, 4);
	cr_assert_eq(status(&f), VIRTIO_STATUS_ACKNOWLEDGE);
	fx_teardown(&f);
}

Test(virtio_pci, rejects_bad_devices)
{
	struct fx f;
	struct virtio_device d = {.ops = &fake_ops, .num_queues = 1, .queue_max = {256}};
	char err[256];

	fx_setup(&f, 1);
	d.num_queues = 0;
	cr_assert_eq(virtio_pci_add(f.pb, &f.vm, NULL, &d, err, sizeof(err)), -EINVAL);
	cr_assert_not_null(strstr(err, "virtio-fake"), "%s", err);
	d.num_queues = VIRTIO_MAX_QUEUES + 1;
	cr_assert_eq(virtio_pci_add(f.pb, &f.vm, NULL, &d, err, sizeof(err)), -EINVAL);
	d.num_queues = 1;
	d.queue_max[0] = 100;
	cr_assert_eq(virtio_pci_add(f.pb, &f.vm, NULL, &d, err, sizeof(err)), -EINVAL);
	cr_assert_not_null(strstr(err, "power of two"), "%s", err);
	d.queue_max[0] = 256;
	d.config_size = VIRTIO_PCI_REGION + 1;
	cr_assert_eq(virtio_pci_add(f.pb, &f.vm, NULL, &d, err, sizeof(err)), -EINVAL);
	cr_assert_null(d.transport);
	cr_assert_eq(cfg_read(&f, 0, 4), 0x10421af4, "the first device is untouched");
	fx_teardown(&f);
}

Test(virtio_pci, two_devices_share_the_routing_table)
{
	struct fx f;
	struct fake_dev fake2 = {0};
	struct virtio_device d2 = {
	    .ops = &fake_ops, .priv = &fake2, .num_queues = 1, .queue_max = {64}};
	char err[256];

	fx_setup(&f, 1);
	cr_assert_eq(virtio_pci_add(f.pb, &f.vm, NULL, &d2, err, sizeof(err)), 0, "%s", err);
	bring_up(&f);
	enable_msix(&f, false);
	msix_entry(&f, 0, 0xfee00000, 0x4070, false);
	cr_assert_eq(f.kvm.nmsi, 1);
	/* The second device, slot 2. */
	f.devfn = 2 << 3;
	f.bar = cfg_read(&f, PCI_BASE_ADDRESS_0, 4) & ~0xfULL;
	cfg_write(&f, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	enable_msix(&f, false);
	msix_entry(&f, 1, 0xfee02000, 0x4071, false);
	cr_assert_eq(f.kvm.nmsi, 2, "both devices' routes in one table");
	cr_assert_neq(f.kvm.msi[0].gsi, f.kvm.msi[1].gsi);
	virtio_pci_remove(&d2);
	cr_assert_eq(f.kvm.nmsi, 1, "removal drops its route");
	f.devfn = 1 << 3;
	fx_teardown(&f);
}

/* A queue that failed validation broke the device: DRIVER_OK does not activate it. */
Test(virtio_pci, no_activation_after_bad_queue)
{
	struct fx f;

	fx_setup(&f, 1);
	negotiate(&f, F_V1);
	setup_queue(&f, 0, 3);
	set_status(&f, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			   VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	cr_assert_eq(f.fake.activates, 0);
	cr_assert(status(&f) & VIRTIO_STATUS_NEEDS_RESET);
	bar_write(&f, VIRTIO_PCI_NOTIFY_OFF, 0, 2);
	cr_assert_eq(f.fake.notified[0], 0);
	fx_teardown(&f);
}
