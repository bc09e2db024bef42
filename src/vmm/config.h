/* What a user asks of one VM, and the checks that name the bad field. */
#ifndef EMBER_VMM_CONFIG_H
#define EMBER_VMM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/accel/accel.h"
#include "vmm/virtio/balloon.h"
#include "vmm/virtio/blk.h"
#include "vmm/virtio/net.h"
#include "vmm/virtio/rng.h"
#include "vmm/virtio/vsock.h"

#define VM_DEFAULT_CPUS 1
#define VM_DEFAULT_MEM_MIB 128
#define VM_MIN_MEM_MIB 8
/* xAPIC IDs are 8 bits and 0xff is the broadcast ID. */
#define VM_MAX_CPUS_XAPIC 254
/* PCI bus 0 has 31 free slots (slot 0 is the host bridge). */
#define VM_MAX_DISKS 16
#define VM_MAX_NETS 8

struct vm_config {
	const char *kernel_path;
	const char *initrd_path; /* NULL: none */
	const char *cmdline;	 /* NULL: empty */
	uint32_t ncpus;
	uint64_t mem_mib;
	enum accel_kind accel; /* --accel: auto (default), kvm, soft */

	struct virtio_blk_config disks[VM_MAX_DISKS];
	uint32_t ndisks;
	struct virtio_net_config_user nets[VM_MAX_NETS];
	uint32_t nnets;
	bool has_vsock, has_rng, has_balloon;
	struct virtio_vsock_config vsock;
	struct virtio_rng_config rng;
	struct virtio_balloon_config balloon;
	/* --test-dev: QEMU's isa-debug-exit and pc-testdev (kvm-unit-tests) */
	bool test_dev;
};

void vm_config_defaults(struct vm_config *c);
/* Frees what the device option parsers allocated. */
void vm_config_free(struct vm_config *c);

/* Parse one device option into c: --disk, --net, --vsock, --rng, --balloon. */
int vm_config_add_disk(struct vm_config *c, const char *arg, char *err, size_t errlen);
int vm_config_add_net(struct vm_config *c, const char *arg, char *err, size_t errlen);
int vm_config_set_vsock(struct vm_config *c, const char *arg, char *err, size_t errlen);
int vm_config_set_rng(struct vm_config *c, const char *arg, char *err, size_t errlen);
int vm_config_set_balloon(struct vm_config *c, const char *arg, char *err, size_t errlen);
/* --test-dev takes no value: arg must be NULL. */
int vm_config_set_test_dev(struct vm_config *c, const char *arg, char *err, size_t errlen);

/* The kernel and initrd exist, are regular, readable and (kernel) non-empty. */
int vm_config_check_files(const struct vm_config *c, char *err, size_t errlen);

/* Memory between VM_MIN_MEM_MIB and the host's RAM. */
int vm_config_check_memory(const struct vm_config *c, uint64_t host_mem_mib, char *err,
			   size_t errlen);

/* 1 .. min(KVM's limit, VM_MAX_CPUS_XAPIC). */
int vm_config_check_cpus(const struct vm_config *c, uint32_t kvm_max, char *err, size_t errlen);

/* Host RAM in MiB, from sysconf. */
uint64_t host_mem_mib(void);

#endif
