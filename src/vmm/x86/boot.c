#include "vmm/x86/boot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/x86/bzimage.h"
#include "vmm/x86/layout.h"
#include "vmm/x86/linux_opts.h"
#include "vmm/x86/multiboot.h"
#include "vmm/x86/pvh.h"

#define KiB 1024ULL
#define MiB (1024ULL * 1024)
#define PAGE_SIZE 4096ULL

/* Bigger kernel files are refused rather than read into memory. */
#define BOOT_KERNEL_FILE_MAX (2048ULL * MiB)

void boot_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

struct boot_size_str boot_size(uint64_t bytes)
{
	struct boot_size_str r;

	if (bytes >= MiB && bytes % MiB == 0)
		snprintf(r.s, sizeof(r.s), "%llu MiB", (unsigned long long)(bytes / MiB));
	else if (bytes >= MiB)
		snprintf(r.s, sizeof(r.s), "%.1f MiB", (double)bytes / MiB);
	else if (bytes >= KiB && bytes % KiB == 0)
		snprintf(r.s, sizeof(r.s), "%llu KiB", (unsigned long long)(bytes / KiB));
	else
		snprintf(r.s, sizeof(r.s), "%llu bytes", (unsigned long long)bytes);
	return r;
}

const char *boot_kernel_name(const struct boot_args *args)
{
	return args->kernel_name ? args->kernel_name : "(memory)";
}

const char *boot_initrd_name(const struct boot_args *args)
{
	return args->initrd_name ? args->initrd_name : "(memory)";
}

uint64_t boot_low_end(const struct guest_mem *mem)
{
	return gmem_region_end(mem, 0);
}

int boot_check_ram(const struct guest_mem *mem, char *err, size_t errlen)
{
	uint64_t low = boot_low_end(mem);

	if (low >= BOOT_MIN_RAM)
		return 0;
	boot_errf(err, errlen, "guest RAM: %s below 4 GiB is less than ember's minimum of %s",
		  boot_size(low).s, boot_size(BOOT_MIN_RAM).s);
	return -ENOMEM;
}

int boot_check_cmdline(const char *cmdline, uint64_t limit, char *err, size_t errlen)
{
	size_t len = strlen(cmdline ? cmdline : "");

	if (len > limit) {
		boot_errf(err, errlen,
			  "cmdline: %zu bytes is longer than the kernel's limit of %llu bytes "
			  "(cmdline_size)",
			  len, (unsigned long long)limit);
		return -E2BIG;
	}
	if (len >= LAYOUT_CMDLINE_MAX) {
		boot_errf(err, errlen,
			  "cmdline: %zu bytes is longer than ember's limit of %llu bytes", len,
			  LAYOUT_CMDLINE_MAX - 1);
		return -E2BIG;
	}
	return 0;
}

int boot_write_cmdline(const struct guest_mem *mem, const char *cmdline, char *err, size_t errlen)
{
	const char *s = cmdline ? cmdline : "";

	if (gmem_write(mem, LAYOUT_CMDLINE, s, strlen(s) + 1)) {
		boot_errf(err, errlen, "cmdline: guest RAM does not cover 0x%llx", LAYOUT_CMDLINE);
		return -ENOMEM;
	}
	return 0;
}

static bool ranges_overlap(uint64_t a, uint64_t a_end, uint64_t b, uint64_t b_end)
{
	return a < b_end && b < a_end;
}

/* Highest page-aligned start for `size` bytes ending at or below `end`. */
static bool place_below(uint64_t end, uint64_t size, uint64_t floor, uint64_t *gpa)
{
	uint64_t start;

	if (end < size)
		return false;
	start = (end - size) & ~(PAGE_SIZE - 1);
	if (start < floor)
		return false;
	*gpa = start;
	return true;
}

int boot_place_initrd(const struct guest_mem *mem, const struct boot_args *args,
		      uint64_t kernel_start, uint64_t kernel_end, uint64_t last_byte_max,
		      uint64_t *gpa, char *err, size_t errlen)
{
	uint64_t size = args->initrd_size;
	uint64_t top = boot_low_end(mem);
	uint64_t start;

	if (last_byte_max < UINT64_MAX && last_byte_max + 1 < top)
		top = last_byte_max + 1;
	/* First choice: the top of low RAM; if the kernel is there, right below it. */
	if (place_below(top, size, LAYOUT_KERNEL_START, &start) &&
	    !ranges_overlap(start, start + size, kernel_start, kernel_end)) {
		*gpa = start;
		return 0;
	}
	if (kernel_start < top && place_below(kernel_start, size, LAYOUT_KERNEL_START, &start)) {
		*gpa = start;
		return 0;
	}
	boot_errf(err, errlen,
		  "initrd %s: %s does not fit in guest RAM below 0x%llx next to the kernel at "
		  "[0x%llx, 0x%llx) (%s of RAM)",
		  boot_initrd_name(args), boot_size(size).s, (unsigned long long)top,
		  (unsigned long long)kernel_start, (unsigned long long)kernel_end,
		  boot_size(mem->ram_size).s);
	return -ENOMEM;
}

/* --- files --- */

/* Opens a regular, non-empty file; 0 with *fd and *size, or -errno. */
static int open_input(const char *what, const char *path, int *fd, uint64_t *size, char *err,
		      size_t errlen)
{
	struct stat st;
	int ret;

	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0) {
		ret = -errno;
		goto err_msg;
	}
	if (fstat(*fd, &st)) {
		ret = -errno;
		goto err_close;
	}
	if (S_ISDIR(st.st_mode)) {
		ret = -EISDIR;
		goto err_close;
	}
	if (!S_ISREG(st.st_mode)) {
		close(*fd);
		boot_errf(err, errlen, "%s %s: not a regular file", what, path);
		return -EINVAL;
	}
	if (st.st_size == 0) {
		close(*fd);
		boot_errf(err, errlen, "%s %s: file is empty", what, path);
		return -EINVAL;
	}
	*size = (uint64_t)st.st_size;
	return 0;

err_close:
	close(*fd);
err_msg:
	boot_errf(err, errlen, "%s %s: %s", what, path, strerror(-ret));
	return ret;
}

/* Reads exactly len bytes; a file that shrank since fstat() is an error. */
static int read_exact(const char *what, const char *path, int fd, uint8_t *dst, uint64_t len,
		      char *err, size_t errlen)
{
	uint64_t done = 0;

	while (done < len) {
		size_t chunk = len - done > (1ULL << 30) ? (1ULL << 30) : len - done;
		ssize_t n = pread(fd, dst + done, chunk, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int ret = -errno;

			boot_errf(err, errlen, "%s %s: %s", what, path, strerror(-ret));
			return ret;
		}
		if (n == 0) {
			boot_errf(err, errlen, "%s %s: file shrank to %llu bytes while being read",
				  what, path, (unsigned long long)done);
			return -EIO;
		}
		done += (uint64_t)n;
	}
	return 0;
}

static int read_kernel(const char *path, uint8_t **data, size_t *len, char *err, size_t errlen)
{
	uint64_t size;
	int fd, ret;

	ret = open_input("kernel", path, &fd, &size, err, errlen);
	if (ret)
		return ret;
	if (size > BOOT_KERNEL_FILE_MAX) {
		boot_errf(err, errlen, "kernel %s: %s file is larger than ember's limit of %s",
			  path, boot_size(size).s, boot_size(BOOT_KERNEL_FILE_MAX).s);
		ret = -EFBIG;
		goto out;
	}
	*data = malloc(size);
	if (!*data) {
		boot_errf(err, errlen, "kernel %s: cannot allocate %s to read it", path,
			  boot_size(size).s);
		ret = -ENOMEM;
		goto out;
	}
	ret = read_exact("kernel", path, fd, *data, size, err, errlen);
	if (ret) {
		free(*data);
		*data = NULL;
		goto out;
	}
	*len = size;
out:
	close(fd);
	return ret;
}

int boot_load(struct guest_mem *mem, const struct boot_config *cfg, struct boot_entry *entry,
	      char *err, size_t errlen)
{
	struct boot_args args = {
	    .kernel_name = cfg->kernel_path,
	    .initrd_name = cfg->initrd_path,
	    .cmdline = cfg->cmdline,
	    .rsdp_gpa = cfg->rsdp_gpa,
	};
	uint8_t *kernel = NULL;
	char *cmdline = NULL, added[sizeof(entry->opts_added)] = "";
	size_t kernel_len = 0;
	int initrd_fd = -1;
	uint8_t *dst;
	int ret;

	if (!cfg->kernel_path) {
		boot_errf(err, errlen, "kernel: no kernel path given");
		return -EINVAL;
	}
	ret = read_kernel(cfg->kernel_path, &kernel, &kernel_len, err, errlen);
	if (ret)
		return ret;
	if (cfg->linux_opts && linux_opts_is_linux(kernel, kernel_len)) {
		size_t cap = strlen(cfg->cmdline ? cfg->cmdline : "") + strlen(cfg->linux_opts) + 2;

		cmdline = malloc(cap);
		if (!cmdline || linux_opts_append(cfg->cmdline, cfg->linux_opts, cmdline, cap,
						  added, sizeof(added))) {
			boot_errf(err, errlen, "cmdline: out of memory");
			ret = -ENOMEM;
			goto out;
		}
		args.cmdline = cmdline;
	}
	if (cfg->initrd_path) {
		ret = open_input("initrd", cfg->initrd_path, &initrd_fd, &args.initrd_size, err,
				 errlen);
		if (ret)
			goto out;
	}
	/* The loaders only place the initrd; it is read straight into guest RAM. */
	/* As QEMU: a multiboot header wins over ELF (kvm-unit-tests are ELF32 + multiboot). */
	if (multiboot_probe(kernel, kernel_len, NULL) && !bzimage_probe(kernel, kernel_len)) {
		ret = multiboot_load(mem, kernel, kernel_len, &args, entry, err, errlen);
	} else if (pvh_probe(kernel, kernel_len)) {
		ret = pvh_load(mem, kernel, kernel_len, &args, entry, err, errlen);
	} else if (bzimage_probe(kernel, kernel_len)) {
		ret = bzimage_load(mem, kernel, kernel_len, &args, entry, err, errlen);
	} else {
		boot_errf(err, errlen,
			  "kernel %s: not a Linux bzImage (boot protocol 2.12+), an ELF64 "
			  "kernel with a Xen PVH note nor a multiboot kernel",
			  cfg->kernel_path);
		ret = -ENOEXEC;
	}
	if (ret)
		goto out;
	/* The loaders fill *entry whole: what was added goes in after them. */
	memcpy(entry->opts_added, added, sizeof(added));
	if (initrd_fd < 0)
		goto out;
	dst = gmem_ptr(mem, entry->initrd_addr, args.initrd_size);
	if (!dst) { /* the loaders place it inside RAM; never trust that blindly */
		boot_errf(err, errlen, "initrd %s: placed outside guest RAM", cfg->initrd_path);
		ret = -EFAULT;
		goto out;
	}
	ret = read_exact("initrd", cfg->initrd_path, initrd_fd, dst, args.initrd_size, err, errlen);
out:
	if (initrd_fd >= 0)
		close(initrd_fd);
	free(cmdline);
	free(kernel);
	return ret;
}
