#include "vmm/dev/pci.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/vm.h"
#include "vmm/x86/layout.h"

#define PCI_HOST_SLOT 0
#define PCI_CONFIG_ENABLE 0x80000000U
/* Bits of 0xcf8 that hold state: enable, bus, device, function, dword register. */
#define PCI_CONFIG_ADDRESS_MASK 0x80fffffcU
#define PCI_INTX_PIN_A 1
#define PCI_BAR_MIN_SIZE 16
/* Command bits a guest may set: memory space, bus master, parity, SERR, INTx disable. */
#define PCI_COMMAND_WMASK                                                                          \
	(PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_PARITY | PCI_COMMAND_SERR |         \
	 PCI_COMMAND_INTX_DISABLE)

uint16_t pci_cfg_get16(const struct pci_device *dev, uint32_t off)
{
	return (uint16_t)(dev->cfg[off] | dev->cfg[off + 1] << 8);
}

uint32_t pci_cfg_get32(const struct pci_device *dev, uint32_t off)
{
	return (uint32_t)pci_cfg_get16(dev, off) | (uint32_t)pci_cfg_get16(dev, off + 2) << 16;
}

void pci_cfg_set16(struct pci_device *dev, uint32_t off, uint16_t v)
{
	dev->cfg[off] = (uint8_t)v;
	dev->cfg[off + 1] = (uint8_t)(v >> 8);
}

void pci_cfg_set32(struct pci_device *dev, uint32_t off, uint32_t v)
{
	pci_cfg_set16(dev, off, (uint16_t)v);
	pci_cfg_set16(dev, off + 2, (uint16_t)(v >> 16));
}

static void pci_wmask_set16(struct pci_device *dev, uint32_t off, uint16_t v)
{
	dev->wmask[off] = (uint8_t)v;
	dev->wmask[off + 1] = (uint8_t)(v >> 8);
}

static void pci_wmask_set32(struct pci_device *dev, uint32_t off, uint32_t v)
{
	pci_wmask_set16(dev, off, (uint16_t)v);
	pci_wmask_set16(dev, off + 2, (uint16_t)(v >> 16));
}

void pci_device_init(struct pci_device *dev, const char *name, const struct pci_ids *ids,
		     const struct pci_device_ops *ops, void *opaque)
{
	memset(dev, 0, sizeof(*dev));
	dev->name = name;
	dev->ops = ops;
	dev->opaque = opaque;
	pci_cfg_set16(dev, PCI_VENDOR_ID, ids->vendor);
	pci_cfg_set16(dev, PCI_DEVICE_ID, ids->device);
	dev->cfg[PCI_REVISION_ID] = ids->revision;
	dev->cfg[PCI_CLASS_PROG] = ids->prog_if;
	dev->cfg[PCI_CLASS_DEVICE] = ids->subclass;
	dev->cfg[PCI_CLASS_DEVICE + 1] = ids->class_code;
	dev->cfg[PCI_HEADER_TYPE] = 0; /* type 0, single function */
	pci_cfg_set16(dev, PCI_SUBSYSTEM_VENDOR_ID, ids->subsys_vendor);
	pci_cfg_set16(dev, PCI_SUBSYSTEM_ID, ids->subsys_id);
	pci_wmask_set16(dev, PCI_COMMAND, PCI_COMMAND_WMASK);
	dev->wmask[PCI_CACHE_LINE_SIZE] = 0xff;
	dev->wmask[PCI_INTERRUPT_LINE] = 0xff; /* a scratch register for the OS */
	dev->cap_end = PCI_CAP_START;
}

static bool pci_bar_is_upper_half(const struct pci_device *dev, int bar)
{
	return bar > 0 && dev->bars[bar - 1].type == PCI_BAR_MEM64;
}

int pci_device_set_bar(struct pci_device *dev, int bar, enum pci_bar_type type, bool prefetch,
		       uint64_t size, const struct bus_dev_ops *ops, void *opaque)
{
	uint32_t off = PCI_BASE_ADDRESS_0 + 4 * (uint32_t)bar;
	uint64_t mask = ~(size - 1);

	if (bar < 0 || bar >= PCI_NUM_BARS || dev->bars[bar].type != PCI_BAR_NONE ||
	    pci_bar_is_upper_half(dev, bar) || !ops)
		return -EINVAL;
	if (size < PCI_BAR_MIN_SIZE || (size & (size - 1)))
		return -EINVAL;
	if (type == PCI_BAR_MEM32 && size > (1ULL << 31))
		return -EINVAL;
	if (type == PCI_BAR_MEM64 && (bar == PCI_NUM_BARS - 1 || dev->bars[bar + 1].type))
		return -EINVAL;
	if (type != PCI_BAR_MEM32 && type != PCI_BAR_MEM64)
		return -EINVAL;
	dev->bars[bar] = (struct pci_bar){
	    .type = type, .prefetch = prefetch, .size = size, .ops = ops, .opaque = opaque};
	/* The size probe works through the mask: all-ones reads back ~(size - 1). */
	pci_cfg_set32(dev, off,
		      (type == PCI_BAR_MEM64 ? PCI_BAR_MEM_TYPE_64 : 0) |
			  (prefetch ? PCI_BAR_MEM_PREFETCH : 0));
	pci_wmask_set32(dev, off, (uint32_t)(mask & PCI_BAR_MEM_MASK));
	if (type == PCI_BAR_MEM64)
		pci_wmask_set32(dev, off + 4, (uint32_t)(mask >> 32));
	return 0;
}

int pci_device_add_cap(struct pci_device *dev, const void *body, uint8_t len)
{
	uint32_t off = (dev->cap_end + 3U) & ~3U;

	if (len < 2 || off + len > PCI_CFG_SIZE)
		return -ENOSPC;
	memcpy(&dev->cfg[off], body, len);
	dev->cfg[off + 1] = 0;
	if (dev->cap_last)
		dev->cfg[dev->cap_last + 1] = (uint8_t)off;
	else
		dev->cfg[PCI_CAPABILITY_LIST] = (uint8_t)off;
	pci_cfg_set16(dev, PCI_STATUS, pci_cfg_get16(dev, PCI_STATUS) | PCI_STATUS_CAP_LIST);
	dev->cap_last = (uint8_t)off;
	dev->cap_end = (uint8_t)(off + len < PCI_CFG_SIZE ? off + len : 0xff);
	return (int)off;
}

void pci_device_set_wmask(struct pci_device *dev, uint32_t off, const uint8_t *mask, uint32_t len)
{
	for (uint32_t i = 0; i < len && off + i < PCI_CFG_SIZE; i++)
		dev->wmask[off + i] = mask[i];
}

static uint64_t pci_bar_address(const struct pci_device *dev, int bar)
{
	uint32_t off = PCI_BASE_ADDRESS_0 + 4 * (uint32_t)bar;
	uint64_t addr = pci_cfg_get32(dev, off) & PCI_BAR_MEM_MASK;

	if (dev->bars[bar].type == PCI_BAR_MEM64)
		addr |= (uint64_t)pci_cfg_get32(dev, off + 4) << 32;
	return addr;
}

static bool pci_in_window(uint64_t addr, uint64_t size)
{
	return addr >= LAYOUT_PCI_MMIO_START && addr <= LAYOUT_PCI_MMIO_END - size;
}

/* All address bits set: the value of a size probe, not a placement. */
static bool pci_bar_probing(const struct pci_device *dev, int bar)
{
	uint32_t off = PCI_BASE_ADDRESS_0 + 4 * (uint32_t)bar;
	uint32_t mask = pci_cfg_get32(dev, off) & (uint32_t)PCI_BAR_MEM_MASK;

	return mask == ((uint32_t)dev->wmask[off] | (uint32_t)dev->wmask[off + 1] << 8 |
			(uint32_t)dev->wmask[off + 2] << 16 | (uint32_t)dev->wmask[off + 3] << 24);
}

/* Caller holds the bus lock. Brings each BAR's decode state in line with cfg[]. */
static void pci_update_mappings(struct pci_bus *pb, struct pci_device *dev, bool force_off)
{
	bool decode = !force_off && (pci_cfg_get16(dev, PCI_COMMAND) & PCI_COMMAND_MEMORY);

	for (int i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &dev->bars[i];
		uint64_t addr;
		bool map;

		if (b->type == PCI_BAR_NONE)
			continue;
		addr = pci_bar_address(dev, i);
		map = decode && pci_in_window(addr, b->size);
		if (decode && !map && (b->mapped || addr != b->addr) && !pci_bar_probing(dev, i))
			log_ratelimited(&pb->rl, LOG_WARN,
					"pci 00:%02x.0 (%s): BAR%d at 0x%llx is outside the PCI "
					"window 0x%llx-0x%llx: not decoded",
					dev->slot, dev->name, i, (unsigned long long)addr,
					(unsigned long long)LAYOUT_PCI_MMIO_START,
					(unsigned long long)LAYOUT_PCI_MMIO_END - 1);
		if (map == b->mapped && (!map || addr == b->addr)) {
			b->addr = addr;
			continue;
		}
		b->mapped = map;
		b->addr = addr;
		if (dev->ops && dev->ops->bar_remap)
			dev->ops->bar_remap(dev, i, map, addr);
	}
}

/* Caller holds the bus lock. */
static void pci_dev_config_read(struct pci_device *dev, uint32_t reg, uint8_t *data, uint32_t len)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < len; i++) {
		data[i] = reg + i < PCI_CFG_SIZE ? dev->cfg[reg + i] : 0;
		n += reg + i < PCI_CFG_SIZE;
	}
	if (n && dev->ops && dev->ops->config_read)
		dev->ops->config_read(dev, reg, data, n);
}

static bool pci_overlaps(uint32_t reg, uint32_t len, uint32_t start, uint32_t end)
{
	return reg < end && reg + len > start;
}

/* Caller holds the bus lock. */
static void pci_dev_config_write(struct pci_bus *pb, struct pci_device *dev, uint32_t reg,
				 const uint8_t *data, uint32_t len)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < len && reg + i < PCI_CFG_SIZE; i++, n++) {
		uint8_t m = dev->wmask[reg + i];

		dev->cfg[reg + i] = (uint8_t)((dev->cfg[reg + i] & ~m) | (data[i] & m));
	}
	if (!n)
		return;
	if (pci_overlaps(reg, n, PCI_COMMAND, PCI_COMMAND + 2) ||
	    pci_overlaps(reg, n, PCI_BASE_ADDRESS_0, PCI_BASE_ADDRESS_0 + 4 * PCI_NUM_BARS))
		pci_update_mappings(pb, dev, false);
	if (dev->ops && dev->ops->config_write)
		dev->ops->config_write(dev, reg, data, n);
}

static struct pci_device *pci_lookup(struct pci_bus *pb, uint32_t devfn)
{
	if ((devfn & 7) != 0 || (devfn >> 3) >= PCI_MAX_DEVICES)
		return NULL;
	return pb->devs[devfn >> 3];
}

void pci_bus_config_read(struct pci_bus *pb, uint32_t devfn, uint32_t reg, uint8_t *data,
			 uint32_t len)
{
	struct pci_device *dev;

	pthread_mutex_lock(&pb->lock);
	dev = pci_lookup(pb, devfn);
	if (!dev || reg >= PCI_ECAM_FN_SIZE)
		memset(data, 0xff, len);
	else
		pci_dev_config_read(dev, reg, data, len);
	pthread_mutex_unlock(&pb->lock);
}

void pci_bus_config_write(struct pci_bus *pb, uint32_t devfn, uint32_t reg, const uint8_t *data,
			  uint32_t len)
{
	struct pci_device *dev;

	pthread_mutex_lock(&pb->lock);
	dev = pci_lookup(pb, devfn);
	if (dev && reg < PCI_ECAM_FN_SIZE)
		pci_dev_config_write(pb, dev, reg, data, len);
	pthread_mutex_unlock(&pb->lock);
}

static uint32_t le_get(const uint8_t *d, uint32_t len)
{
	uint32_t v = 0;

	for (uint32_t i = 0; i < len && i < 4; i++)
		v |= (uint32_t)d[i] << (8 * i);
	return v;
}

/*
 * Mechanism #1. 0xcf8 is the address register for 32-bit accesses only;
 * narrower accesses there are other chipset registers (Linux's type-1
 * probe writes a byte to 0xcfb) and are ignored. 0xcfc-0xcff is a window
 * on the selected dword.
 */
static void pci_cf8_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	struct pci_bus *pb = opaque;
	uint32_t addr, n;

	memset(data, 0xff, len);
	if (off < 4) {
		if (off == 0 && len == 4) {
			pthread_mutex_lock(&pb->lock);
			addr = pb->config_address;
			pthread_mutex_unlock(&pb->lock);
			for (int i = 0; i < 4; i++)
				data[i] = (uint8_t)(addr >> (8 * i));
		}
		return;
	}
	pthread_mutex_lock(&pb->lock);
	addr = pb->config_address;
	pthread_mutex_unlock(&pb->lock);
	if (!(addr & PCI_CONFIG_ENABLE) || ((addr >> 16) & 0xff) != 0)
		return;
	n = len < 8 - (uint32_t)off ? len : 8 - (uint32_t)off;
	pci_bus_config_read(pb, (addr >> 8) & 0xff, (addr & 0xfc) + (uint32_t)(off - 4), data, n);
}

static void pci_cf8_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct pci_bus *pb = opaque;
	uint32_t addr, n;

	if (off < 4) {
		if (off == 0 && len == 4) {
			pthread_mutex_lock(&pb->lock);
			pb->config_address = le_get(data, 4) & PCI_CONFIG_ADDRESS_MASK;
			pthread_mutex_unlock(&pb->lock);
		}
		return;
	}
	pthread_mutex_lock(&pb->lock);
	addr = pb->config_address;
	pthread_mutex_unlock(&pb->lock);
	if (!(addr & PCI_CONFIG_ENABLE) || ((addr >> 16) & 0xff) != 0)
		return;
	n = len < 8 - (uint32_t)off ? len : 8 - (uint32_t)off;
	pci_bus_config_write(pb, (addr >> 8) & 0xff, (addr & 0xfc) + (uint32_t)(off - 4), data, n);
}

static const struct bus_dev_ops pci_cf8_ops = {pci_cf8_read, pci_cf8_write};

/* ECAM: offset = bus << 20 | device << 15 | function << 12 | register; bus 0 only. */
static void pci_ecam_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	uint32_t reg = (uint32_t)(off & (PCI_ECAM_FN_SIZE - 1));
	uint32_t n = len < PCI_ECAM_FN_SIZE - reg ? len : PCI_ECAM_FN_SIZE - reg;

	memset(data, 0xff, len);
	if (off >= LAYOUT_PCI_ECAM_SIZE)
		return;
	pci_bus_config_read(opaque, (uint32_t)(off >> 12) & 0xff, reg, data, n);
}

static void pci_ecam_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	uint32_t reg = (uint32_t)(off & (PCI_ECAM_FN_SIZE - 1));
	uint32_t n = len < PCI_ECAM_FN_SIZE - reg ? len : PCI_ECAM_FN_SIZE - reg;

	if (off >= LAYOUT_PCI_ECAM_SIZE)
		return;
	pci_bus_config_write(opaque, (uint32_t)(off >> 12) & 0xff, reg, data, n);
}

static const struct bus_dev_ops pci_ecam_ops = {pci_ecam_read, pci_ecam_write};

struct pci_bar_hit {
	const struct bus_dev_ops *ops;
	void *opaque;
	uint64_t off;
};

/* The BAR decoding [addr, addr+len), copied out under the lock. */
static bool pci_window_find(struct pci_bus *pb, uint64_t addr, uint32_t len,
			    struct pci_bar_hit *hit)
{
	bool found = false;

	pthread_mutex_lock(&pb->lock);
	for (int s = 0; s < PCI_MAX_DEVICES && !found; s++) {
		struct pci_device *dev = pb->devs[s];

		for (int i = 0; dev && i < PCI_NUM_BARS && !found; i++) {
			const struct pci_bar *b = &dev->bars[i];

			if (!b->mapped || addr - b->addr >= b->size)
				continue;
			found = true;
			if (len > b->size - (addr - b->addr))
				break; /* runs past the BAR: dropped below */
			*hit = (struct pci_bar_hit){b->ops, b->opaque, addr - b->addr};
		}
	}
	pthread_mutex_unlock(&pb->lock);
	if (found && !hit->ops)
		log_ratelimited(&pb->rl, LOG_WARN,
				"pci: %u-byte access at 0x%llx runs past the end of its BAR", len,
				(unsigned long long)addr);
	return found && hit->ops;
}

static void pci_window_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	struct pci_bus *pb = opaque;
	struct pci_bar_hit hit = {0};

	if (!pci_window_find(pb, LAYOUT_PCI_MMIO_START + off, len, &hit) || !hit.ops->read) {
		memset(data, 0xff, len);
		return;
	}
	hit.ops->read(hit.opaque, hit.off, data, len);
}

static void pci_window_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct pci_bus *pb = opaque;
	struct pci_bar_hit hit = {0};

	if (pci_window_find(pb, LAYOUT_PCI_MMIO_START + off, len, &hit) && hit.ops->write)
		hit.ops->write(hit.opaque, hit.off, data, len);
}

static const struct bus_dev_ops pci_window_ops = {pci_window_read, pci_window_write};

static void pci_host_init(struct pci_device *host)
{
	static const struct pci_ids ids = {
	    .vendor = PCI_HOST_VENDOR,
	    .device = PCI_HOST_DEVICE,
	    .class_code = 0x06, /* bridge */
	    .subclass = 0x00,	/* host bridge: Linux's type-1 sanity check looks for it */
	};

	pci_device_init(host, "host bridge", &ids, NULL, NULL);
	host->wmask[PCI_INTERRUPT_LINE] = 0; /* no interrupt */
}

int pci_bus_create_with(struct vm *vm, const struct kvm_irq_ops *kvm, void *kvm_ctx,
			struct pci_bus **out)
{
	struct pci_bus *pb = calloc(1, sizeof(*pb));
	int ret;

	if (!pb)
		return -ENOMEM;
	pb->vm = vm;
	pb->kvm = kvm;
	pb->kvm_ctx = kvm_ctx;
	pb->rl = (struct ratelimit)RATELIMIT_INIT(5000, 10);
	pb->mmio_next = LAYOUT_PCI_MMIO_START;
	pthread_mutex_init(&pb->lock, NULL);
	gsi_router_init(&pb->gsi, kvm, kvm_ctx);
	pci_host_init(&pb->host);
	pb->host.bus = pb;
	pb->host.slot = PCI_HOST_SLOT;
	pb->devs[PCI_HOST_SLOT] = &pb->host;

	ret = bus_add(&vm->pio, PCI_PORT_CONFIG_ADDRESS, 8, &pci_cf8_ops, pb, "pci-config");
	if (ret)
		goto err_free;
	ret = bus_add(&vm->mmio, LAYOUT_PCI_ECAM, LAYOUT_PCI_ECAM_SIZE, &pci_ecam_ops, pb,
		      "pci-ecam");
	if (ret)
		goto err_pio;
	ret = bus_add(&vm->mmio, LAYOUT_PCI_MMIO_START, LAYOUT_PCI_MMIO_END - LAYOUT_PCI_MMIO_START,
		      &pci_window_ops, pb, "pci-bars");
	if (ret)
		goto err_ecam;
	*out = pb;
	return 0;

err_ecam:
	bus_remove(&vm->mmio, LAYOUT_PCI_ECAM);
err_pio:
	bus_remove(&vm->pio, PCI_PORT_CONFIG_ADDRESS);
err_free:
	gsi_router_destroy(&pb->gsi);
	pthread_mutex_destroy(&pb->lock);
	free(pb);
	return ret;
}

int pci_bus_create(struct vm *vm, struct pci_bus **out)
{
	return pci_bus_create_with(vm, vm->accel->irq_ops, vm, out);
}

void pci_bus_destroy(struct pci_bus *pb)
{
	if (!pb)
		return;
	bus_remove(&pb->vm->mmio, LAYOUT_PCI_MMIO_START);
	bus_remove(&pb->vm->mmio, LAYOUT_PCI_ECAM);
	bus_remove(&pb->vm->pio, PCI_PORT_CONFIG_ADDRESS);
	gsi_router_destroy(&pb->gsi);
	pthread_mutex_destroy(&pb->lock);
	free(pb);
}

/* Caller holds the bus lock. Places every BAR, or none (-ENOSPC). */
static int pci_assign_bars(struct pci_bus *pb, struct pci_device *dev)
{
	uint64_t next = pb->mmio_next;
	uint64_t addr[PCI_NUM_BARS] = {0};

	for (int i = 0; i < PCI_NUM_BARS; i++) {
		const struct pci_bar *b = &dev->bars[i];

		if (b->type == PCI_BAR_NONE)
			continue;
		next = (next + b->size - 1) & ~(b->size - 1);
		if (!pci_in_window(next, b->size))
			return -ENOSPC;
		addr[i] = next;
		next += b->size;
	}
	for (int i = 0; i < PCI_NUM_BARS; i++) {
		uint32_t off = PCI_BASE_ADDRESS_0 + 4 * (uint32_t)i;
		uint32_t flags;

		if (dev->bars[i].type == PCI_BAR_NONE)
			continue;
		flags = pci_cfg_get32(dev, off) & 0xf;
		pci_cfg_set32(dev, off, (uint32_t)addr[i] | flags);
		if (dev->bars[i].type == PCI_BAR_MEM64)
			pci_cfg_set32(dev, off + 4, (uint32_t)(addr[i] >> 32));
		dev->bars[i].addr = addr[i];
		dev->bars[i].mapped = false;
	}
	pb->mmio_next = next;
	return 0;
}

int pci_bus_add(struct pci_bus *pb, struct pci_device *dev)
{
	int slot, ret;

	pthread_mutex_lock(&pb->lock);
	for (slot = 1; slot < PCI_MAX_DEVICES && pb->devs[slot]; slot++)
		;
	if (slot == PCI_MAX_DEVICES) {
		ret = -ENOSPC;
		goto out;
	}
	ret = pci_assign_bars(pb, dev);
	if (ret)
		goto out;
	dev->bus = pb;
	dev->slot = (uint8_t)slot;
	dev->gsi = LAYOUT_PCI_GSI_BASE + (uint32_t)slot % LAYOUT_PCI_GSI_COUNT;
	dev->cfg[PCI_INTERRUPT_LINE] = (uint8_t)dev->gsi;
	dev->cfg[PCI_INTERRUPT_PIN] = PCI_INTX_PIN_A;
	pb->devs[slot] = dev;
out:
	pthread_mutex_unlock(&pb->lock);
	return ret;
}

void pci_bus_remove(struct pci_bus *pb, struct pci_device *dev)
{
	pthread_mutex_lock(&pb->lock);
	if (dev->slot < PCI_MAX_DEVICES && pb->devs[dev->slot] == dev) {
		pci_update_mappings(pb, dev, true);
		pb->devs[dev->slot] = NULL;
	}
	pthread_mutex_unlock(&pb->lock);
}
