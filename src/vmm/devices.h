/*
 * The VM's paravirtual devices: the event thread, PCI bus 0 and one
 * virtio-pci function per --disk, --net, --vsock, --rng, --balloon.
 */
#ifndef EMBER_VMM_DEVICES_H
#define EMBER_VMM_DEVICES_H

#include <stddef.h>

#include "vmm/config.h"
#include "vmm/event.h"

struct vm;
struct pci_bus;
struct virtio_device;

#define DEVICES_MAX (VM_MAX_DISKS + VM_MAX_NETS + 3)

struct devices {
	struct event_loop events;
	bool events_ready;
	struct pci_bus *pci;
	struct virtio_device *virtio[DEVICES_MAX];
	void (*destroy[DEVICES_MAX])(struct virtio_device *d);
	bool plugged[DEVICES_MAX];
	unsigned int n;
};

/*
 * Opens every backend (image, TAP, socket) and plugs the devices into a new
 * PCI bus. Before the vCPUs run. 0, or -errno with one line in err; a
 * user's mistake (missing image, TAP refused) returns -EINVAL... or the errno.
 */
int devices_create(struct devices *ds, struct vm *vm, const struct vm_config *cfg, char *err,
		   size_t errlen);
int devices_start(struct devices *ds);
/* After the vCPUs stopped: stops the event thread, unplugs and frees. */
void devices_destroy(struct devices *ds);

#endif
