/*
 * Tests for the PCI host bridge (src/vmm/dev/pci.c), driven the way a guest
 * drives it: ports 0xcf8/0xcfc and ECAM through the VM's buses, BAR
 * accesses through the MMIO bus. No /dev/kvm: a fake struct vm with only
 * its buses, and recording KVM ops.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "vmm/dev/pci.h"
#include "vmm/vm.h"
#include "vmm/x86/layout.h"

struct rec_dev {
	uint64_t last_off;
	uint32_t last_len;
	int reads, writes;
	uint8_t last_byte;
	int remaps;
	bool mapped;
	uint64_t addr;
	int cfg_writes;
};

struct fixture {
	struct vm vm;
	struct pci_bus *pb;
};

static void rec_read(void *o, uint64_t off, uint8_t *d, uint32_t len)
{
	struct rec_dev *r = o;

	r->reads++;
	r->last_off = off;
	r->last_len = len;
	memset(d, 0x5a, len);
}

static void rec_write(void *o, uint64_t off, const uint8_t *d, uint32_t len)
{
	struct rec_dev *r = o;

	r->writes++;
	r->last_off = off;
	r->last_len = len;
	r->last_byte = d[0];
}

static const struct bus_dev_ops rec_ops = {rec_read, rec_write};

static void rec_remap(struct pci_device *dev, int bar, bool mapped, uint64_t addr)
{
	struct rec_dev *r = dev->opaque;

	if (bar != 0)
		return;
	r->remaps++;
	r->mapped = mapped;
	r->addr = addr;
}

static void rec_cfg_write(struct pci_device *dev, uint32_t off, const uint8_t *d, uint32_t len)
{
	struct rec_dev *r = dev->opaque;

	(void)off;
	(void)d;
	(void)len;
	r->cfg_writes++;
}

static const struct pci_device_ops rec_pci_ops = {
    .config_write = rec_cfg_write,
    .bar_remap = rec_remap,
};

static int fake_routing(void *ctx, const struct kvm_irq_routing *t)
{
	(void)ctx;
	(void)t;
	return 0;
}

static void fake_set_irq(void *ctx, uint32_t gsi, int level)
{
	(void)ctx;
	(void)gsi;
	(void)level;
}

static const struct kvm_irq_ops fake_kvm = {.set_gsi_routing = fake_routing,
					    .set_irq = fake_set_irq};

static void fx_init(struct fixture *f)
{
	memset(&f->vm, 0, sizeof(f->vm));
	f->vm.vm_fd = -1;
	bus_init(&f->vm.pio, "pio");
	bus_init(&f->vm.mmio, "mmio");
	cr_assert_eq(pci_bus_create_with(&f->vm, &fake_kvm, NULL, &f->pb), 0);
}

static void fx_fini(struct fixture *f)
{
	pci_bus_destroy(f->pb);
	cr_assert_eq(f->vm.pio.n, 0, "pci_bus_destroy leaves no port range");
	cr_assert_eq(f->vm.mmio.n, 0, "pci_bus_destroy leaves no MMIO range");
	bus_free(&f->vm.pio);
	bus_free(&f->vm.mmio);
}

static const struct pci_ids test_ids = {
    .vendor = 0x1234,
    .device = 0x5678,
    .subsys_vendor = 0x1af4,
    .subsys_id = 0x1100,
    .revision = 3,
    .class_code = 0x02,
    .subclass = 0x80,
};

static void dev_init(struct pci_device *dev, struct rec_dev *r)
{
	pci_device_init(dev, "test", &test_ids, &rec_pci_ops, r);
	cr_assert_eq(pci_device_set_bar(dev, 0, PCI_BAR_MEM32, false, 0x1000, &rec_ops, r), 0);
}

/* Mechanism #1, as Linux's pci_conf1_read/write do it. */
static uint32_t cf8_addr(uint32_t slot, uint32_t reg)
{
	return 0x80000000U | slot << 11 | (reg & 0xfc);
}

static uint32_t cf8_read(struct fixture *f, uint32_t slot, uint32_t reg, uint32_t len)
{
	uint32_t a = cf8_addr(slot, reg), v = 0;
	uint8_t d[4];

	bus_write(&f->vm.pio, 0xcf8, (uint8_t *)&a, 4);
	cr_assert(bus_read(&f->vm.pio, 0xcfc + (reg & 3), d, len));
	for (uint32_t i = 0; i < len; i++)
		v |= (uint32_t)d[i] << (8 * i);
	return v;
}

static void cf8_write(struct fixture *f, uint32_t slot, uint32_t reg, uint32_t v, uint32_t len)
{
	uint32_t a = cf8_addr(slot, reg);
	uint8_t d[4];

	for (uint32_t i = 0; i < 4; i++)
		d[i] = (uint8_t)(v >> (8 * i));
	bus_write(&f->vm.pio, 0xcf8, (uint8_t *)&a, 4);
	cr_assert(bus_write(&f->vm.pio, 0xcfc + (reg & 3), d, len));
}

static uint64_t ecam_read(struct fixture *f, uint32_t devfn, uint32_t reg, uint32_t len)
{
	uint8_t d[8] = {0};
	uint64_t v = 0;

	cr_assert(bus_read(&f->vm.mmio, LAYOUT_PCI_ECAM + ((uint64_t)devfn << 12) + reg, d, len));
	for (uint32_t i = 0; i < len; i++)
		v |= (uint64_t)d[i] << (8 * i);
	return v;
}

static void ecam_write(struct fixture *f, uint32_t devfn, uint32_t reg, uint32_t v, uint32_t len)
{
	uint8_t d[4];

	for (uint32_t i = 0; i < 4; i++)
		d[i] = (uint8_t)(v >> (8 * i));
	cr_assert(bus_write(&f->vm.mmio, LAYOUT_PCI_ECAM + ((uint64_t)devfn << 12) + reg, d, len));
}

static uint32_t mmio_read32(struct fixture *f, uint64_t addr)
{
	uint8_t d[4];

	bus_read(&f->vm.mmio, addr, d, 4);
	return (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
}

Test(pci, host_bridge_ids_through_cf8_and_ecam)
{
	struct fixture f;

	fx_init(&f);
	cr_assert_eq(cf8_read(&f, 0, PCI_VENDOR_ID, 2), PCI_HOST_VENDOR);
	cr_assert_eq(cf8_read(&f, 0, PCI_DEVICE_ID, 2), PCI_HOST_DEVICE);
	cr_assert_eq(cf8_read(&f, 0, 0, 4), PCI_HOST_DEVICE << 16 | PCI_HOST_VENDOR);
	/* Linux's pci_sanity_check: the class word of a host bridge is 0x0600. */
	cr_assert_eq(cf8_read(&f, 0, PCI_CLASS_DEVICE, 2), 0x0600);
	cr_assert_eq(cf8_read(&f, 0, PCI_HEADER_TYPE, 1), 0);
	cr_assert_eq(ecam_read(&f, 0, PCI_VENDOR_ID, 4), PCI_HOST_DEVICE << 16 | PCI_HOST_VENDOR);
	cr_assert_eq(ecam_read(&f, 0, PCI_CLASS_DEVICE, 2), 0x0600);
	cr_assert_eq(ecam_read(&f, 0, PCI_INTERRUPT_PIN, 1), 0, "no INTx");
	fx_fini(&f);
}

/* arch/x86/pci/direct.c pci_check_type1(). */
Test(pci, linux_type1_probe)
{
	struct fixture f;
	uint32_t v = 0x80000000, back = 0;

	fx_init(&f);
	bus_write(&f.vm.pio, 0xcfb, (uint8_t[]){0x01}, 1); /* must not disturb 0xcf8 */
	bus_read(&f.vm.pio, 0xcf8, (uint8_t *)&back, 4);
	bus_write(&f.vm.pio, 0xcf8, (uint8_t *)&v, 4);
	bus_read(&f.vm.pio, 0xcf8, (uint8_t *)&back, 4);
	cr_assert_eq(back, 0x80000000);
	/* Reserved low bits do not stick. */
	v = 0x80000803;
	bus_write(&f.vm.pio, 0xcf8, (uint8_t *)&v, 4);
	bus_read(&f.vm.pio, 0xcf8, (uint8_t *)&back, 4);
	cr_assert_eq(back, 0x80000800);
	fx_fini(&f);
}

Test(pci, absent_devices_read_all_ones)
{
	struct fixture f;
	uint32_t a = 0x00000000; /* enable bit clear */
	uint8_t d[4];

	fx_init(&f);
	cr_assert_eq(cf8_read(&f, 5, 0, 4), 0xffffffff, "empty slot");
	cr_assert_eq(cf8_read(&f, 31, 0, 2), 0xffff);
	cr_assert_eq(ecam_read(&f, 5 << 3, 0, 4), 0xffffffff);
	cr_assert_eq(ecam_read(&f, (0 << 3) | 1, 0, 4), 0xffffffff, "function 1 of slot 0");
	/* Bus 1 through 0xcf8. */
	a = 0x80010000;
	bus_write(&f.vm.pio, 0xcf8, (uint8_t *)&a, 4);
	bus_read(&f.vm.pio, 0xcfc, d, 4);
	cr_assert_eq(memcmp(d, "\xff\xff\xff\xff", 4), 0, "bus 1");
	/* Enable bit clear: no configuration cycle. */
	a = 0x00000000;
	bus_write(&f.vm.pio, 0xcf8, (uint8_t *)&a, 4);
	bus_read(&f.vm.pio, 0xcfc, d, 4);
	cr_assert_eq(memcmp(d, "\xff\xff\xff\xff", 4), 0);
	fx_fini(&f);
}

Test(pci, add_assigns_slot_bar_and_intx)
{
	struct fixture f;
	struct pci_device a, b;
	struct rec_dev ra = {0}, rb = {0};

	fx_init(&f);
	dev_init(&a, &ra);
	dev_init(&b, &rb);
	cr_assert_eq(pci_bus_add(f.pb, &a), 0);
	cr_assert_eq(pci_bus_add(f.pb, &b), 0);
	cr_assert_eq(a.slot, 1);
	cr_assert_eq(b.slot, 2);
	cr_assert_eq(cf8_read(&f, 1, PCI_VENDOR_ID, 4), 0x56781234);
	cr_assert_eq(cf8_read(&f, 1, PCI_REVISION_ID, 4), 0x02800003, "class 02/80, rev 3");
	cr_assert_eq(cf8_read(&f, 1, PCI_SUBSYSTEM_VENDOR_ID, 4), 0x11001af4);
	cr_assert_eq(cf8_read(&f, 1, PCI_INTERRUPT_PIN, 1), 1, "INTA");
	cr_assert_eq(cf8_read(&f, 1, PCI_INTERRUPT_LINE, 1), LAYOUT_PCI_GSI_BASE + 1);
	cr_assert_eq(cf8_read(&f, 2, PCI_INTERRUPT_LINE, 1), LAYOUT_PCI_GSI_BASE + 2);
	cr_assert_eq(a.gsi, LAYOUT_PCI_GSI_BASE + 1);
	/* BARs in the window, naturally aligned, not overlapping. */
	uint32_t ba = cf8_read(&f, 1, PCI_BASE_ADDRESS_0, 4);
	uint32_t bb = cf8_read(&f, 2, PCI_BASE_ADDRESS_0, 4);

	cr_assert_geq(ba, LAYOUT_PCI_MMIO_START);
	cr_assert_lt(bb, LAYOUT_PCI_MMIO_END);
	cr_assert_eq(ba % 0x1000, 0);
	cr_assert_eq(bb % 0x1000, 0);
	cr_assert_neq(ba, bb);
	cr_assert_eq(cf8_read(&f, 1, PCI_COMMAND, 2), 0, "decode off after reset");
	fx_fini(&f);
}

Test(pci, bar_size_probe)
{
	struct fixture f;
	struct pci_device a;
	struct rec_dev ra = {0};
	uint32_t orig, lo_orig, hi_orig;

	fx_init(&f);
	dev_init(&a, &ra);
	cr_assert_eq(pci_device_set_bar(&a, 2, PCI_BAR_MEM64, true, 0x4000, &rec_ops, &ra), 0);
	cr_assert_eq(pci_bus_add(f.pb, &a), 0);

	orig = cf8_read(&f, 1, PCI_BASE_ADDRESS_0, 4);
	cf8_write(&f, 1, PCI_BASE_ADDRESS_0, 0xffffffff, 4);
	cr_assert_eq(cf8_read(&f, 1, PCI_BASE_ADDRESS_0, 4), 0xfffff000, "4 KiB, 32-bit, non-pref");
	cf8_write(&f, 1, PCI_BASE_ADDRESS_0, orig, 4);
	cr_assert_eq(cf8_read(&f, 1, PCI_BASE_ADDRESS_0, 4), orig);

	lo_orig = cf8_read(&f, 1, PCI_BASE_ADDRESS_0 + 8, 4);
	hi_orig = cf8_read(&f, 1, PCI_BASE_ADDRESS_0 + 12, 4);
	cr_assert_eq(lo_orig & 0xf, 0xc, "64-bit prefetchable");
	cr_assert_eq(hi_orig, 0, "placed below 4 GiB");
	cr_assert_eq((lo_orig & ~0xfU) % 0x4000, 0, "naturally aligned");
	ecam_write(&f, 1 << 3, PCI_BASE_ADDRESS_0 + 8, 0xffffffff, 4);
	ecam_write(&f, 1 << 3, PCI_BASE_ADDRESS_0 + 12, 0xffffffff, 4);
	cr_assert_eq(ecam_read(&f, 1 << 3, PCI_BASE_ADDRESS_0 + 8, 4), 0xffffc00c);
	cr_assert_eq(ecam_read(&f, 1 << 3, PCI_BASE_ADDRESS_0 + 12, 4), 0xffffffff);
	/* Unimplemented BARs and the ROM BAR read 0 after all-ones. */
	cf8_write(&f, 1, PCI_BASE_ADDRESS_0 + 4, 0xffffffff, 4);
	cr_assert_eq(cf8_read(&f, 1, PCI_BASE_ADDRESS_0 + 4, 4), 0);
	cf8_write(&f, 1, PCI_ROM_ADDRESS, 0xffffffff, 4);
	cr_assert_eq(cf8_read(&f, 1, PCI_ROM_ADDRESS, 4), 0);
	fx_fini(&f);
}

Test(pci, read_only_fields_stay)
{
	struct fixture f;
	struct pci_device a;
	struct rec_dev ra = {0};

	fx_init(&f);
	dev_init(&a, &ra);
	cr_assert_eq(pci_bus_add(f.pb, &a), 0);
	cf8_write(&f, 1, PCI_VENDOR_ID, 0xdeadbeef, 4);
	cf8_write(&f, 1, PCI_REVISION_ID, 0xffffffff, 4);
	cf8_write(&f, 1, PCI_SUBSYSTEM_VENDOR_ID, 0, 4);
	cf8_write(&f, 1, PCI_CAPABILITY_LIST, 0xff, 1);
	cf8_write(&f, 1, PCI_INTERRUPT_PIN, 4, 1);
	cf8_write(&f, 1, PCI_HEADER_TYPE, 0x80, 1);
	cr_assert_eq(cf8_read(&f, 1, PCI_VENDOR_ID, 4), 0x56781234);
	cr_assert_eq(cf8_read(&f, 1, PCI_REVISION_ID, 4), 0x02800003);
	cr_assert_eq(cf8_read(&f, 1, PCI_SUBSYSTEM_VENDOR_ID, 4), 0x11001af4);
	cr_assert_eq(cf8_read(&f, 1, PCI_CAPABILITY_LIST, 1), 0);
	cr_assert_eq(cf8_read(&f, 1, PCI_INTERRUPT_PIN, 1), 1);
	cr_assert_eq(cf8_read(&f, 1, PCI_HEADER_TYPE, 1), 0);
	/* Command: only the implemented bits; status: read-only. */
	cf8_write(&f, 1, PCI_COMMAND, 0xffffffff, 4);
	cr_assert_eq(cf8_read(&f, 1, PCI_COMMAND, 4), 0x0546);
	/* Interrupt line is the OS's scratch byte. */
	cf8_write(&f, 1, PCI_INTERRUPT_LINE, 0x0b, 1);
	cr_assert_eq(cf8_read(&f, 1, PCI_INTERRUPT_LINE, 1), 0x0b);
	cr_assert_gt(ra.cfg_writes, 0, "the device hears about writes");
	fx_fini(&f);
}

Test(pci, ecam_extended_space_reads_zero)
{
	struct fixture f;
	struct pci_device a;
	struct rec_dev ra = {0};

	fx_init(&f);
	dev_init(&a, &ra);
	cr_assert_eq(pci_bus_add(f.pb, &a), 0);
	cr_assert_eq(ecam_read(&f, 1 << 3, 0x100, 4), 0, "no extended capabilities");
	cr_assert_eq(ecam_read(&f, 1 << 3, 0xffc, 4), 0);
	ecam_write(&f, 1 << 3, 0x100, 0xffffffff, 4);
	cr_assert_eq(ecam_read(&f, 1 << 3, 0x100, 4), 0);
	cr_assert_eq(ecam_read(&f, 3 << 3, 0x100, 4), 0xffffffff, "absent device");
	/* An 8-byte ECAM read (a movq) is two dwords of configuration space. */
	cr_assert_eq(ecam_read(&f, 1 << 3, 0, 8), 0x0000000056781234ULL);
	/* A read running off the end of the function's 4 KiB. */
	cr_assert_eq(ecam_read(&f, 1 << 3, 0xffe, 4), 0xffff0000);
	fx_fini(&f);
}

Test(pci, bar_decodes_only_with_memory_enabled_and_follows_moves)
{
	struct fixture f;
	struct pci_device a;
	struct rec_dev ra = {0};
	uint32_t bar;

	fx_init(&f);
	dev_init(&a, &ra);
	cr_assert_eq(pci_bus_add(f.pb, &a), 0);
	bar = cf8_read(&f, 1, PCI_BASE_ADDRESS_0, 4);

	cr_assert_eq(mmio_read32(&f, bar + 0x10), 0xffffffff, "decode off");
	cr_assert_eq(ra.reads, 0);

	cf8_write(&f, 1, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	cr_assert_eq(ra.remaps, 1);
	cr_assert(ra.mapped);
	cr_assert_eq(ra.addr, bar);
	cr_assert_eq(mmio_read32(&f, bar + 0x10), 0x5a5a5a5a);
	cr_assert_eq(ra.last_off, 0x10, "offset into the BAR");
	bus_write(&f.vm.mmio, bar + 0xffc, (uint8_t[]){0x77, 0, 0, 0}, 4);
	cr_assert_eq(ra.writes, 1);
	cr_assert_eq(ra.last_byte, 0x77);

	/* A read running past the BAR's end is dropped, not passed on. */
	cr_assert_eq(mmio_read32(&f, bar + 0xffe), 0xffffffff);
	cr_assert_eq(ra.reads, 1);

	/* The guest moves the BAR with decoding on: the mapping follows. */
	cf8_write(&f, 1, PCI_BASE_ADDRESS_0, 0xd0000000, 4);
	cr_assert_eq(ra.remaps, 2);
	cr_assert_eq(ra.addr, 0xd0000000);
	cr_assert_eq(mmio_read32(&f, bar + 0x10), 0xffffffff, "old address");
	cr_assert_eq(mmio_read32(&f, 0xd0000020), 0x5a5a5a5a);
	cr_assert_eq(ra.last_off, 0x20);

	/* Outside the window: not decoded anywhere. */
	cf8_write(&f, 1, PCI_BASE_ADDRESS_0, 0xf0000000, 4);
	cr_assert_not(ra.mapped);
	cr_assert_eq(mmio_read32(&f, 0xd0000020), 0xffffffff);

	/* Back in, then decode off. */
	cf8_write(&f, 1, PCI_BASE_ADDRESS_0, bar, 4);
	cr_assert(ra.mapped);
	cf8_write(&f, 1, PCI_COMMAND, 0, 2);
	cr_assert_not(ra.mapped);
	cr_assert_eq(mmio_read32(&f, bar), 0xffffffff);
	fx_fini(&f);
}

/* Linux sizes BARs with decoding off; a size probe with decoding on must not stick. */
Test(pci, size_probe_with_decode_on_unmaps_then_restores)
{
	struct fixture f;
	struct pci_device a;
	struct rec_dev ra = {0};
	uint32_t bar;

	fx_init(&f);
	dev_init(&a, &ra);
	cr_assert_eq(pci_bus_add(f.pb, &a), 0);
	bar = cf8_read(&f, 1, PCI_BASE_ADDRESS_0, 4);
	cf8_write(&f, 1, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	cf8_write(&f, 1, PCI_BASE_ADDRESS_0, 0xffffffff, 4);
	cr_assert_not(ra.mapped, "0xfffff000 is outside the window");
	cf8_write(&f, 1, PCI_BASE_ADDRESS_0, bar, 4);
	cr_assert(ra.mapped);
	cr_assert_eq(mmio_read32(&f, bar), 0x5a5a5a5a);
	fx_fini(&f);
}

Test(pci, capability_list)
{
	struct fixture f;
	struct pci_device a;
	struct rec_dev ra = {0};
	uint8_t c1[] = {0x09, 0, 3, 0xaa}, c2[] = {0x11, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7};
	int o1, o2;

	fx_init(&f);
	dev_init(&a, &ra);
	o1 = pci_device_add_cap(&a, c1, sizeof(c1));
	o2 = pci_device_add_cap(&a, c2, sizeof(c2));
	cr_assert_eq(o1, 0x40);
	cr_assert_eq(o2, 0x44);
	cr_assert_eq(pci_bus_add(f.pb, &a), 0);
	cr_assert(cf8_read(&f, 1, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	cr_assert_eq(cf8_read(&f, 1, PCI_CAPABILITY_LIST, 1), 0x40);
	cr_assert_eq(cf8_read(&f, 1, 0x40, 2), 0x4409, "id 9, next 0x44");
	cr_assert_eq(cf8_read(&f, 1, 0x44, 2), 0x0011, "id 0x11, end of list");
	cr_assert_eq(cf8_read(&f, 1, 0x43, 1), 0xaa);
	/* Capability bytes are read-only unless opened. */
	cf8_write(&f, 1, 0x43, 0x55, 1);
	cr_assert_eq(cf8_read(&f, 1, 0x43, 1), 0xaa);
	pci_device_set_wmask(&a, 0x43, (uint8_t[]){0x0f}, 1);
	cf8_write(&f, 1, 0x43, 0x55, 1);
	cr_assert_eq(cf8_read(&f, 1, 0x43, 1), 0xa5);
	fx_fini(&f);
}

Test(pci, capabilities_run_out_of_space)
{
	struct pci_device a;
	struct rec_dev ra = {0};
	uint8_t big[168] = {0x09}, more[64] = {0x09};

	dev_init(&a, &ra);
	cr_assert_eq(pci_device_add_cap(&a, big, sizeof(big)), 0x40);
	cr_assert_eq(pci_device_add_cap(&a, more, sizeof(more)), -ENOSPC);
	cr_assert_eq(pci_device_add_cap(&a, more, 16), 0xe8);
	cr_assert_eq(pci_device_add_cap(&a, more, 8), 0xf8);
	cr_assert_eq(pci_device_add_cap(&a, more, 4), -ENOSPC);
}

Test(pci, bad_bars_rejected)
{
	struct pci_device a;
	struct rec_dev ra = {0};

	pci_device_init(&a, "t", &test_ids, NULL, NULL);
	cr_assert_eq(pci_device_set_bar(&a, 0, PCI_BAR_MEM32, false, 0x1800, &rec_ops, &ra),
		     -EINVAL, "not a power of two");
	cr_assert_eq(pci_device_set_bar(&a, 0, PCI_BAR_MEM32, false, 8, &rec_ops, &ra), -EINVAL);
	cr_assert_eq(pci_device_set_bar(&a, 6, PCI_BAR_MEM32, false, 0x1000, &rec_ops, &ra),
		     -EINVAL);
	cr_assert_eq(pci_device_set_bar(&a, 5, PCI_BAR_MEM64, false, 0x1000, &rec_ops, &ra),
		     -EINVAL, "64-bit BAR needs two slots");
	cr_assert_eq(pci_device_set_bar(&a, 0, PCI_BAR_MEM64, false, 0x1000, &rec_ops, &ra), 0);
	cr_assert_eq(pci_device_set_bar(&a, 1, PCI_BAR_MEM32, false, 0x1000, &rec_ops, &ra),
		     -EINVAL, "upper half of BAR0");
	cr_assert_eq(pci_device_set_bar(&a, 0, PCI_BAR_MEM32, false, 0x1000, &rec_ops, &ra),
		     -EINVAL, "taken");
}

Test(pci, bus_fills_up)
{
	static struct pci_device devs[PCI_MAX_DEVICES];
	static struct rec_dev recs[PCI_MAX_DEVICES];
	struct fixture f;
	int i;

	fx_init(&f);
	for (i = 0; i < PCI_MAX_DEVICES - 1; i++) {
		dev_init(&devs[i], &recs[i]);
		cr_assert_eq(pci_bus_add(f.pb, &devs[i]), 0, "device %d", i);
		cr_assert_eq(devs[i].gsi, LAYOUT_PCI_GSI_BASE + (i + 1) % 8);
	}
	dev_init(&devs[i], &recs[i]);
	cr_assert_eq(pci_bus_add(f.pb, &devs[i]), -ENOSPC, "slot 0 is the host bridge");
	/* Removing one frees its slot; its BARs no longer decode. */
	cf8_write(&f, 3, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	cr_assert(recs[2].mapped);
	pci_bus_remove(f.pb, &devs[2]);
	cr_assert_not(recs[2].mapped);
	cr_assert_eq(cf8_read(&f, 3, 0, 4), 0xffffffff);
	cr_assert_eq(pci_bus_add(f.pb, &devs[i]), 0);
	cr_assert_eq(devs[i].slot, 3);
	fx_fini(&f);
}

Test(pci, window_space_runs_out)
{
	struct fixture f;
	struct pci_device a, b;
	struct rec_dev ra = {0}, rb = {0};

	fx_init(&f);
	pci_device_init(&a, "big", &test_ids, NULL, NULL);
	cr_assert_eq(pci_device_set_bar(&a, 0, PCI_BAR_MEM32, false, 1ULL << 28, &rec_ops, &ra), 0);
	cr_assert_eq(pci_device_set_bar(&a, 1, PCI_BAR_MEM32, false, 1ULL << 28, &rec_ops, &ra), 0);
	cr_assert_eq(pci_bus_add(f.pb, &a), 0, "512 MiB fill the window exactly");
	dev_init(&b, &rb);
	cr_assert_eq(pci_bus_add(f.pb, &b), -ENOSPC);
	cr_assert_eq(cf8_read(&f, 2, 0, 4), 0xffffffff, "not plugged after a failure");
	fx_fini(&f);
}

Test(pci, odd_sized_config_accesses)
{
	struct fixture f;
	struct pci_device a;
	struct rec_dev ra = {0};
	uint32_t addr = cf8_addr(1, 0);
	uint8_t d[8];

	fx_init(&f);
	dev_init(&a, &ra);
	cr_assert_eq(pci_bus_add(f.pb, &a), 0);
	bus_write(&f.vm.pio, 0xcf8, (uint8_t *)&addr, 4);
	/* Byte and word reads at every data port offset. */
	bus_read(&f.vm.pio, 0xcfd, d, 1);
	cr_assert_eq(d[0], 0x12);
	bus_read(&f.vm.pio, 0xcfe, d, 2);
	cr_assert_eq(d[0] | d[1] << 8, 0x5678);
	/* A dword at 0xcfe runs past the data port: the rest reads all-ones. */
	bus_read(&f.vm.pio, 0xcfe, d, 4);
	cr_assert_eq(memcmp(d, "\x78\x56\xff\xff", 4), 0);
	/* 16-bit access to the address port is not the address register. */
	bus_write(&f.vm.pio, 0xcf8, (uint8_t[]){0, 0}, 2);
	bus_read(&f.vm.pio, 0xcf8, d, 4);
	cr_assert_eq(d[0] | d[1] << 8 | d[2] << 16 | (uint32_t)d[3] << 24, addr);
	bus_read(&f.vm.pio, 0xcf8, d, 2);
	cr_assert_eq(d[0] & d[1], 0xff);
	/* An ECAM read at the very end of the ECAM window. */
	cr_assert_eq(ecam_read(&f, 0xff, 0xfff, 1), 0xff);
	fx_fini(&f);
}
