#include "vmm/x86/linux_opts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/x86/bzimage.h"

#define CPUINFO_MAX (1u << 20)

/* Whether `flags` (a "flags\t\t: a b c" line's value) holds `want` as a word. */
static bool has_word(const char *s, size_t len, const char *want)
{
	size_t wl = strlen(want);

	for (size_t i = 0; i + wl <= len; i++) {
		bool start = i == 0 || s[i - 1] == ' ' || s[i - 1] == '\t';
		bool end = i + wl == len || s[i + wl] == ' ' || s[i + wl] == '\n';

		if (start && end && !memcmp(s + i, want, wl))
			return true;
	}
	return false;
}

static bool cpuinfo_has_hw_virt(const char *cpuinfo)
{
	const char *line = strstr(cpuinfo, "\nflags");
	const char *eol;

	if (!line)
		return true; /* unknown layout: assume an ordinary host */
	eol = strchr(line + 1, '\n');
	if (!eol)
		eol = line + strlen(line);
	return has_word(line, (size_t)(eol - line), "vmx") ||
	       has_word(line, (size_t)(eol - line), "svm");
}

static char *read_cpuinfo(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	buf = malloc(CPUINFO_MAX + 1);
	if (!buf) {
		fclose(f);
		return NULL;
	}
	/* The first CPU's block is enough; it comes first. */
	n = fread(buf, 1, CPUINFO_MAX, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

bool linux_opts_host_needs(const char *cpuinfo)
{
	char *own = NULL;
	bool needs;

	if (!cpuinfo && access("/sys/module/kvm_pvm", F_OK) == 0)
		return true;
	if (!cpuinfo)
		cpuinfo = own = read_cpuinfo();
	if (!cpuinfo)
		return false;
	needs = !cpuinfo_has_hw_virt(cpuinfo);
	free(own);
	return needs;
}

bool linux_opts_is_linux(const uint8_t *img, size_t len)
{
	static const char banner[] = "Linux version ";

	if (bzimage_probe(img, len)) {
		/* Only Linux's build fills kernel_version (0x20e), a pointer past 0x200. */
		return len > 0x210 && (img[0x20e] | img[0x20f]) != 0;
	}
	return memmem(img, len, banner, sizeof(banner) - 1) != NULL;
}

/* Whether `cmdline` has a word named like `opt` ("name" or "name=..."). */
static bool sets(const char *cmdline, const char *opt, size_t optlen)
{
	size_t name = strcspn(opt, "=");
	const char *p = cmdline;

	if (name > optlen)
		name = optlen;
	while (*p) {
		size_t wl;

		p += strspn(p, " \t\n");
		wl = strcspn(p, " \t\n");
		if (wl >= name && !memcmp(p, opt, name) && (wl == name || p[name] == '='))
			return true;
		p += wl;
	}
	return false;
}

static int put(char *buf, size_t cap, size_t *at, const char *s, size_t n)
{
	if (*at + n + 1 > cap)
		return -E2BIG;
	memcpy(buf + *at, s, n);
	*at += n;
	buf[*at] = '\0';
	return 0;
}

int linux_opts_append(const char *cmdline, const char *opts, char *out, size_t outlen, char *added,
		      size_t addedlen)
{
	size_t at = 0, aat = 0;
	const char *p = opts;

	cmdline = cmdline ? cmdline : "";
	if (!outlen || put(out, outlen, &at, cmdline, strlen(cmdline)))
		return -E2BIG;
	if (added && addedlen)
		added[0] = '\0';
	while (*p) {
		size_t wl;

		p += strspn(p, " ");
		wl = strcspn(p, " ");
		if (wl && !sets(cmdline, p, wl)) {
			if ((at && put(out, outlen, &at, " ", 1)) || put(out, outlen, &at, p, wl))
				return -E2BIG;
			if (added && ((aat && put(added, addedlen, &aat, " ", 1)) ||
				      put(added, addedlen, &aat, p, wl)))
				return -E2BIG;
		}
		p += wl;
	}
	return 0;
}
