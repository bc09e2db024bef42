/*
 * PCI bus 0 and its host bridge: configuration space through mechanism #1
 * (ports 0xcf8 address / 0xcfc-0xcff data) and through ECAM at
 * LAYOUT_PCI_ECAM (described by the ACPI MCFG table), and memory BARs
 * in the 32-bit window LAYOUT_PCI_MMIO_START..END.
 *
 * Function 0 of up to 32 devices; device 0 is the host bridge. Each
 * function has a 256-byte configuration space with a write mask (bits the
 * guest may change); the extended space (ECAM offsets 0x100-0xfff) reads 0.
 * Absent devices and functions read all-ones.
 *
 * BARs: the bus claims the whole BAR window on vm->mmio once, and routes
 * an access to the BAR that currently decodes it (memory space enabled in
 * the command register and the BAR's address inside the window). So when
 * the guest moves a BAR, the mapping follows without changing vm->mmio at
 * run time. A BAR moved outside the window is not decoded (logged).
 * Device ops see offsets into the BAR.
 *
 * Threads: configuration and BAR accesses come from vCPU threads. One
 * mutex (pci_bus.lock) guards the 0xcf8 register, every configuration
 * space and the BAR mappings; BAR accesses look the BAR up under it and
 * call the device after unlocking. The pci_device_ops hooks run with the
 * bus lock held. Lock order: pci_bus.lock, then device locks, then
 * gsi_router.lock.
 */
#ifndef EMBER_VMM_DEV_PCI_H
#define EMBER_VMM_DEV_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/log.h"
#include "vmm/bus.h"
#include "vmm/x86/gsi.h"

struct vm;

#define PCI_MAX_DEVICES 32
#define PCI_CFG_SIZE 256
#define PCI_ECAM_FN_SIZE 4096
#define PCI_NUM_BARS 6
#define PCI_PORT_CONFIG_ADDRESS 0xcf8
#define PCI_PORT_CONFIG_DATA 0xcfc

/* Configuration space header (type 0) offsets. */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION_ID 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_CLASS_DEVICE 0x0a /* subclass, then class */
#define PCI_CACHE_LINE_SIZE 0x0c
#define PCI_HEADER_TYPE 0x0e
#define PCI_BASE_ADDRESS_0 0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_ROM_ADDRESS 0x30
#define PCI_CAPABILITY_LIST 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d
#define PCI_CAP_START 0x40

#define PCI_COMMAND_MEMORY 0x0002
#define PCI_COMMAND_MASTER 0x0004
#define PCI_COMMAND_PARITY 0x0040
#define PCI_COMMAND_SERR 0x0100
#define PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS_INTERRUPT 0x0008
#define PCI_STATUS_CAP_LIST 0x0010

#define PCI_BAR_MEM_TYPE_64 0x04
#define PCI_BAR_MEM_PREFETCH 0x08
#define PCI_BAR_MEM_MASK (~0xfULL)

#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAP_ID_MSIX 0x11

/* Host bridge: Intel's ID for a virtual host bridge (also cloud-hypervisor's). */
#define PCI_HOST_VENDOR 0x8086
#define PCI_HOST_DEVICE 0x0d57

enum pci_bar_type { PCI_BAR_NONE, PCI_BAR_MEM32, PCI_BAR_MEM64 };

struct pci_bar {
	enum pci_bar_type type;
	bool prefetch;
	uint64_t size; /* power of two, >= 16 */
	const struct bus_dev_ops *ops;
	void *opaque;
	/* Current decode state, under the bus lock. */
	bool mapped;
	uint64_t addr;
};

struct pci_device;

struct pci_device_ops {
	/* After the bus filled data from cfg[]: may change it (live fields). */
	void (*config_read)(struct pci_device *dev, uint32_t off, uint8_t *data, uint32_t len);
	/* After the bus applied a write (through wmask) to cfg[]. */
	void (*config_write)(struct pci_device *dev, uint32_t off, const uint8_t *data,
			     uint32_t len);
	/* BAR `bar` now decodes at addr (mapped) or not at all. */
	void (*bar_remap)(struct pci_device *dev, int bar, bool mapped, uint64_t addr);
};

struct pci_ids {
	uint16_t vendor, device;
	uint16_t subsys_vendor, subsys_id;
	uint8_t revision;
	uint8_t class_code, subclass, prog_if;
};

struct pci_device {
	const char *name; /* for messages */
	const struct pci_device_ops *ops;
	void *opaque;
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE]; /* 1: the guest may write this bit */
	struct pci_bar bars[PCI_NUM_BARS];
	uint8_t cap_end;  /* where pci_device_add_cap puts the next capability */
	uint8_t cap_last; /* offset of the last capability, 0 if none */
	/* Set by pci_bus_add. */
	struct pci_bus *bus;
	uint8_t slot;
	uint32_t gsi; /* INTA's GSI */
};

struct pci_bus {
	struct vm *vm;
	pthread_mutex_t lock;
	uint32_t config_address; /* port 0xcf8 */
	struct pci_device host;
	struct pci_device *devs[PCI_MAX_DEVICES];
	uint64_t mmio_next; /* BAR allocator: next free address in the window */
	/* MSI routing for every device on this bus (one KVM routing table per VM). */
	struct gsi_router gsi;
	const struct kvm_irq_ops *kvm;
	void *kvm_ctx;
	struct ratelimit rl;
};

/*
 * Creates bus 0 with its host bridge and claims ports 0xcf8-0xcff, the ECAM
 * window and the BAR window on vm's buses (before the vCPUs run). Interrupt
 * plumbing goes through gsi_kvm_ops on vm. 0 or -errno.
 */
int pci_bus_create(struct vm *vm, struct pci_bus **out);
/* The same with other KVM ops (unit tests record the calls). */
int pci_bus_create_with(struct vm *vm, const struct kvm_irq_ops *kvm, void *kvm_ctx,
			struct pci_bus **out);
/* After the vCPUs stopped: the bus ranges on vm stay claimed but unused. */
void pci_bus_destroy(struct pci_bus *pb);

/*
 * Plugs dev into the lowest free slot, assigns its BARs from the window
 * (naturally aligned), its INTx GSI (LAYOUT_PCI_GSI_BASE + slot % 8, pin
 * INTA) and interrupt line. Memory decoding starts off, as after a reset.
 * 0, -ENOSPC (no slot or window space) or -EINVAL (bad BAR).
 */
int pci_bus_add(struct pci_bus *pb, struct pci_device *dev);
/* Unplugs dev (its BARs stop decoding first). */
void pci_bus_remove(struct pci_bus *pb, struct pci_device *dev);

/* Configuration access as the guest makes it (bus 0), for ECAM, 0xcfc and tests. */
void pci_bus_config_read(struct pci_bus *pb, uint32_t devfn, uint32_t reg, uint8_t *data,
			 uint32_t len);
void pci_bus_config_write(struct pci_bus *pb, uint32_t devfn, uint32_t reg, const uint8_t *data,
			  uint32_t len);

/* Device setup, before pci_bus_add. */
void pci_device_init(struct pci_device *dev, const char *name, const struct pci_ids *ids,
		     const struct pci_device_ops *ops, void *opaque);
/* 0, or -EINVAL (index taken, size not a power of two >= 16, 64-bit at BAR5). */
int pci_device_set_bar(struct pci_device *dev, int bar, enum pci_bar_type type, bool prefetch,
		       uint64_t size, const struct bus_dev_ops *ops, void *opaque);
/*
 * Appends a capability: body[0] is the ID, body[1] (next) is filled in.
 * The bytes are read-only unless pci_device_set_wmask opens some. Returns
 * its offset in configuration space, or -ENOSPC.
 */
int pci_device_add_cap(struct pci_device *dev, const void *body, uint8_t len);
void pci_device_set_wmask(struct pci_device *dev, uint32_t off, const uint8_t *mask, uint32_t len);

/* Little-endian helpers on cfg[] (callers keep off + width <= 256). */
uint16_t pci_cfg_get16(const struct pci_device *dev, uint32_t off);
uint32_t pci_cfg_get32(const struct pci_device *dev, uint32_t off);
void pci_cfg_set16(struct pci_device *dev, uint32_t off, uint16_t v);
void pci_cfg_set32(struct pci_device *dev, uint32_t off, uint32_t v);

#endif
