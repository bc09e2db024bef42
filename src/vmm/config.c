#include "vmm/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void vm_config_defaults(struct vm_config *c)
{
	memset(c, 0, sizeof(*c));
	c->ncpus = VM_DEFAULT_CPUS;
	c->mem_mib = VM_DEFAULT_MEM_MIB;
}

void vm_config_free(struct vm_config *c)
{
	for (uint32_t i = 0; i < c->ndisks; i++)
		virtio_blk_config_free(&c->disks[i]);
	c->ndisks = 0;
}

int vm_config_add_disk(struct vm_config *c, const char *arg, char *err, size_t errlen)
{
	struct virtio_blk_config *d;
	int ret;

	if (c->ndisks == VM_MAX_DISKS) {
		snprintf(err, errlen, "--disk: at most %d disks", VM_MAX_DISKS);
		return -EINVAL;
	}
	d = &c->disks[c->ndisks];
	ret = virtio_blk_parse(arg, d, err, errlen);
	if (ret)
		return ret;
	c->ndisks++;
	for (uint32_t i = 0; i + 1 < c->ndisks; i++) {
		const struct virtio_blk_config *o = &c->disks[i];

		if (d->id[0] && !strcmp(o->id, d->id)) {
			snprintf(err, errlen, "--disk: id=%s: duplicate id (also used by %s)", d->id,
				 o->path);
			return -EINVAL;
		}
		if (!strcmp(o->path, d->path)) {
			snprintf(err, errlen, "--disk: %s: the same image is given twice", d->path);
			return -EINVAL;
		}
	}
	return 0;
}

int vm_config_add_net(struct vm_config *c, const char *arg, char *err, size_t errlen)
{
	struct virtio_net_config_user *n;
	int ret;

	if (c->nnets == VM_MAX_NETS) {
		snprintf(err, errlen, "--net: at most %d interfaces", VM_MAX_NETS);
		return -EINVAL;
	}
	n = &c->nets[c->nnets];
	ret = virtio_net_parse(arg, n, err, errlen);
	if (ret)
		return ret;
	for (uint32_t i = 0; i < c->nnets; i++) {
		const struct virtio_net_config_user *o = &c->nets[i];

		if (!strcmp(o->tap, n->tap)) {
			snprintf(err, errlen, "--net: tap=%s: duplicate TAP", n->tap);
			return -EINVAL;
		}
		if (n->has_mac && o->has_mac && !memcmp(o->mac, n->mac, 6)) {
			snprintf(err, errlen, "--net: tap=%s: duplicate MAC (also on tap=%s)", n->tap,
				 o->tap);
			return -EINVAL;
		}
	}
	c->nnets++;
	return 0;
}

int vm_config_set_vsock(struct vm_config *c, const char *arg, char *err, size_t errlen)
{
	if (c->has_vsock) {
		snprintf(err, errlen, "--vsock: given twice; a VM has one vsock device");
		return -EINVAL;
	}
	if (virtio_vsock_parse(arg, &c->vsock, err, errlen))
		return -EINVAL;
	c->has_vsock = true;
	return 0;
}

int vm_config_set_test_dev(struct vm_config *c, const char *arg, char *err, size_t errlen)
{
	if (arg) {
		snprintf(err, errlen, "--test-dev: takes no value (got '%s')", arg);
		return -EINVAL;
	}
	c->test_dev = true;
	return 0;
}

int vm_config_set_rng(struct vm_config *c, const char *arg, char *err, size_t errlen)
{
	if (virtio_rng_parse(arg, &c->rng, err, errlen))
		return -EINVAL;
	c->has_rng = true;
	return 0;
}

int vm_config_set_balloon(struct vm_config *c, const char *arg, char *err, size_t errlen)
{
	if (c->has_balloon) {
		snprintf(err, errlen, "--balloon: given twice");
		return -EINVAL;
	}
	if (virtio_balloon_parse(arg, &c->balloon, err, errlen))
		return -EINVAL;
	c->has_balloon = true;
	return 0;
}

static int check_file(const char *field, const char *path, int allow_empty, char *err,
		      size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "%s %s: %s", field, path, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st)) {
		snprintf(err, errlen, "%s %s: %s", field, path, strerror(errno));
		close(fd);
		return -errno;
	}
	close(fd);
	if (S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s %s: is a directory, not a file", field, path);
		return -EISDIR;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s %s: not a regular file", field, path);
		return -EINVAL;
	}
	if (!allow_empty && st.st_size == 0) {
		snprintf(err, errlen, "%s %s: file is empty", field, path);
		return -EINVAL;
	}
	return 0;
}

int vm_config_check_files(const struct vm_config *c, char *err, size_t errlen)
{
	int ret;

	if (!c->kernel_path || !*c->kernel_path) {
		snprintf(err, errlen, "--kernel: missing; give the path of a bzImage or PVH ELF");
		return -EINVAL;
	}
	ret = check_file("kernel", c->kernel_path, 0, err, errlen);
	if (ret)
		return ret;
	if (c->initrd_path)
		ret = check_file("initrd", c->initrd_path, 1, err, errlen);
	return ret;
}

uint64_t host_mem_mib(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);

	if (pages <= 0 || size <= 0)
		return 0;
	return (uint64_t)pages * (uint64_t)size >> 20;
}

int vm_config_check_memory(const struct vm_config *c, uint64_t host_mib, char *err,
			   size_t errlen)
{
	if (c->mem_mib < VM_MIN_MEM_MIB) {
		snprintf(err, errlen, "--memory: %llu MiB is too small (minimum %d MiB)",
			 (unsigned long long)c->mem_mib, VM_MIN_MEM_MIB);
		return -EINVAL;
	}
	if (host_mib && c->mem_mib > host_mib) {
		snprintf(err, errlen, "--memory: %llu MiB is more than the host's %llu MiB of RAM",
			 (unsigned long long)c->mem_mib, (unsigned long long)host_mib);
		return -EINVAL;
	}
	return 0;
}

int vm_config_check_cpus(const struct vm_config *c, uint32_t kvm_max, char *err, size_t errlen)
{
	uint32_t max = kvm_max < VM_MAX_CPUS_XAPIC ? kvm_max : VM_MAX_CPUS_XAPIC;

	if (c->ncpus == 0 || c->ncpus > max) {
		snprintf(err, errlen, "--cpus: %u is out of range (1..%u on this host)", c->ncpus,
			 max);
		return -EINVAL;
	}
	return 0;
}
