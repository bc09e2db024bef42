/*
 * The virtio-pci modern transport (virtio 1.2, 4.1): a PCI function with
 * vendor 0x1af4, device 0x1040 + type, revision 1, and one 32-bit memory
 * BAR (BAR0, VIRTIO_PCI_BAR_SIZE bytes) holding every structure:
 *
 *   0x0000  common configuration (struct virtio_pci_common_cfg, 0x3c bytes)
 *   0x1000  ISR status (1 byte, read-to-clear; lowers INTx)
 *   0x2000  device-specific configuration (d->config_size bytes)
 *   0x3000  notifications: queue q at 0x3000 + 4 * q (multiplier 4,
 *           queue_notify_off = q); a KVM ioeventfd per queue, and an MMIO
 *           write that reaches the monitor does the same
 *   0x4000  MSI-X table (num_queues + 1 vectors), 0x5000 its PBA
 *
 * Capabilities: MSI-X, then vendor capabilities for common (1), notify (2),
 * ISR (3), device (4, when config_size > 0) and PCI configuration access
 * (5). Interrupts: MSI-X through KVM GSI routing + one irqfd per vector
 * (KVM_SIGNAL_MSI when an irqfd cannot be attached), with the function
 * and per-vector masks and the PBA; INTx (level, ISR bits) while MSI-X is
 * disabled.
 *
 * Threads and locks: guest accesses come from vCPU threads, kicks run on
 * the event thread. The transport lock serialises the device's activate,
 * reset, queue_notify and config_read/config_write; a second lock guards
 * interrupt state so signal_used/signal_config/set_broken can be called
 * from any thread, with or without the transport lock held (devices never
 * take either). Order: pci_bus.lock, transport lock, interrupt lock,
 * gsi_router.lock.
 */
#ifndef EMBER_VMM_VIRTIO_PCI_H
#define EMBER_VMM_VIRTIO_PCI_H

#include <stddef.h>
#include <stdint.h>

struct pci_bus;
struct vm;
struct event_loop;
struct virtio_device;

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040
#define VIRTIO_PCI_SUBSYS_ID 0x1100 /* >= 0x40 for a non-transitional device (4.1.2.1) */
#define VIRTIO_PCI_REVISION 1

#define VIRTIO_PCI_BAR 0
#define VIRTIO_PCI_BAR_SIZE 0x8000
#define VIRTIO_PCI_REGION 0x1000
#define VIRTIO_PCI_COMMON_OFF 0x0000
#define VIRTIO_PCI_COMMON_LEN 0x3c
#define VIRTIO_PCI_ISR_OFF 0x1000
#define VIRTIO_PCI_DEVICE_OFF 0x2000
#define VIRTIO_PCI_NOTIFY_OFF 0x3000
#define VIRTIO_PCI_NOTIFY_MULTIPLIER 4
#define VIRTIO_PCI_MSIX_TABLE_OFF 0x4000
#define VIRTIO_PCI_MSIX_PBA_OFF 0x5000

/* Vendor capability cfg_type (4.1.4). */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG 3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG 5

/* struct virtio_pci_common_cfg offsets. */
#define VIRTIO_PCI_COMMON_DFSELECT 0x00
#define VIRTIO_PCI_COMMON_DF 0x04
#define VIRTIO_PCI_COMMON_GFSELECT 0x08
#define VIRTIO_PCI_COMMON_GF 0x0c
#define VIRTIO_PCI_COMMON_MSIX 0x10
#define VIRTIO_PCI_COMMON_NUMQ 0x12
#define VIRTIO_PCI_COMMON_STATUS 0x14
#define VIRTIO_PCI_COMMON_CFGGENERATION 0x15
#define VIRTIO_PCI_COMMON_Q_SELECT 0x16
#define VIRTIO_PCI_COMMON_Q_SIZE 0x18
#define VIRTIO_PCI_COMMON_Q_MSIX 0x1a
#define VIRTIO_PCI_COMMON_Q_ENABLE 0x1c
#define VIRTIO_PCI_COMMON_Q_NOFF 0x1e
#define VIRTIO_PCI_COMMON_Q_DESCLO 0x20
#define VIRTIO_PCI_COMMON_Q_AVAILLO 0x28
#define VIRTIO_PCI_COMMON_Q_USEDLO 0x30
#define VIRTIO_PCI_COMMON_Q_NDATA 0x38
#define VIRTIO_PCI_COMMON_Q_RESET 0x3a

/* Device status (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER 0x02
#define VIRTIO_STATUS_DRIVER_OK 0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

#define VIRTIO_PCI_ISR_QUEUE 0x1
#define VIRTIO_PCI_ISR_CONFIG 0x2
#define VIRTIO_MSI_NO_VECTOR 0xffff

/*
 * Puts d on pb as a virtio-pci function. d must have its ops, features,
 * num_queues (1..VIRTIO_MAX_QUEUES), queue_max[] (powers of two) and
 * config_size (<= VIRTIO_PCI_REGION) filled; the transport fills d->mem,
 * d->events, d->transport and the signal/broken callbacks. With el NULL
 * (unit tests) no ioeventfd is registered and a kick calls
 * ops->queue_notify on the kicking vCPU thread. Before the vCPUs run. 0,
 * or -errno with one line in err.
 */
int virtio_pci_add(struct pci_bus *pb, struct vm *vm, struct event_loop *el,
		   struct virtio_device *d, char *err, size_t errlen);

/*
 * After the vCPUs stopped (the event thread may still run): unplugs d and
 * frees the transport; d itself stays the caller's.
 */
void virtio_pci_remove(struct virtio_device *d);

#endif
