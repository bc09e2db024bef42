/* What a user asks of one VM, and the checks that name the bad field. */
#ifndef EMBER_VMM_CONFIG_H
#define EMBER_VMM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define VM_DEFAULT_CPUS 1
#define VM_DEFAULT_MEM_MIB 128
#define VM_MIN_MEM_MIB 8
/* xAPIC IDs are 8 bits and 0xff is the broadcast ID. */
#define VM_MAX_CPUS_XAPIC 254

struct vm_config {
	const char *kernel_path;
	const char *initrd_path; /* NULL: none */
	const char *cmdline;	 /* NULL: empty */
	uint32_t ncpus;
	uint64_t mem_mib;
};

void vm_config_defaults(struct vm_config *c);

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
