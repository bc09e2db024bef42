#include "vmm/devices.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmm/dev/pci.h"
#include "vmm/virtio/pci.h"
#include "vmm/vm.h"

/* Takes ownership of d: it is destroyed with the others on any failure. */
static int plug(struct devices *ds, struct vm *vm, struct virtio_device *d,
		void (*destroy)(struct virtio_device *), char *err, size_t errlen)
{
	unsigned int i = ds->n++;
	int ret;

	ds->virtio[i] = d;
	ds->destroy[i] = destroy;
	ret = virtio_pci_add(ds->pci, vm, &ds->events, d, err, errlen);
	if (ret == 0)
		ds->plugged[i] = true;
	return ret;
}

/* One create + plug; `what` names the flag for errors create did not word. */
#define ADD_DEVICE(create_call, destroy_fn)                                                        \
	do {                                                                                       \
		struct virtio_device *d_ = NULL;                                                   \
		int r_ = (create_call);                                                            \
		if (r_)                                                                            \
			return r_;                                                                 \
		r_ = plug(ds, vm, d_, destroy_fn, err, errlen);                                    \
		if (r_)                                                                            \
			return r_;                                                                 \
	} while (0)

static int create_all(struct devices *ds, struct vm *vm, const struct vm_config *cfg, char *err,
		      size_t errlen)
{
	for (uint32_t i = 0; i < cfg->ndisks; i++)
		ADD_DEVICE(virtio_blk_create(&cfg->disks[i], &d_, err, errlen), virtio_blk_destroy);
	for (uint32_t i = 0; i < cfg->nnets; i++)
		ADD_DEVICE(virtio_net_create(&cfg->nets[i], &d_, err, errlen), virtio_net_destroy);
	if (cfg->has_vsock)
		ADD_DEVICE(virtio_vsock_create(&cfg->vsock, &d_, err, errlen),
			   virtio_vsock_destroy);
	if (cfg->has_rng)
		ADD_DEVICE(virtio_rng_create(&cfg->rng, &d_, err, errlen), virtio_rng_destroy);
	if (cfg->has_balloon)
		ADD_DEVICE(virtio_balloon_create(&cfg->balloon, &d_, err, errlen),
			   virtio_balloon_destroy);
	return 0;
}

int devices_create(struct devices *ds, struct vm *vm, const struct vm_config *cfg, char *err,
		   size_t errlen)
{
	int ret;

	memset(ds, 0, sizeof(*ds));
	ret = event_loop_init(&ds->events);
	if (ret) {
		snprintf(err, errlen, "event loop: %s", strerror(-ret));
		return ret;
	}
	ds->events_ready = true;
	ret = pci_bus_create(vm, &ds->pci);
	if (ret) {
		snprintf(err, errlen, "PCI bus: %s", strerror(-ret));
		goto err;
	}
	ret = create_all(ds, vm, cfg, err, errlen);
	if (ret)
		goto err;
	return 0;
err:
	devices_destroy(ds);
	return ret;
}

int devices_start(struct devices *ds)
{
	return event_loop_start(&ds->events);
}

void devices_destroy(struct devices *ds)
{
	if (ds->events_ready)
		event_loop_stop(&ds->events);
	for (unsigned int i = 0; i < ds->n; i++) {
		if (ds->plugged[i])
			virtio_pci_remove(ds->virtio[i]);
		if (ds->virtio[i])
			ds->destroy[i](ds->virtio[i]);
	}
	ds->n = 0;
	if (ds->pci)
		pci_bus_destroy(ds->pci);
	ds->pci = NULL;
	if (ds->events_ready)
		event_loop_destroy(&ds->events);
	ds->events_ready = false;
}
