/* `ember run`: flags to a vm_config, checks, then the monitor. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "core/log.h"
#include "core/parse.h"
#include "vmm/config.h"
#include "vmm/vmm.h"

#define EXIT_USAGE 2

static void run_usage(FILE *f)
{
	fprintf(f,
		"usage: ember run --kernel PATH [--initrd PATH] [--cmdline STRING]\n"
		"                 [--cpus N] [--memory MIB] [--disk PATH[,ro][,id=NAME]]...\n"
		"                 [--net tap=NAME[,mac=MAC]]... [--vsock cid=N,uds=PATH]\n"
		"                 [--rng] [--balloon [deflate-on-oom]] [--accel auto|kvm|soft]\n"
		"                 [--test-dev] [--verbose]\n"
		"\n"
		"Boots a Linux bzImage, an ELF kernel with a PVH note or a multiboot kernel.\n"
		"The guest's COM1 is stdout (and stdin; Ctrl-A x quits when stdin is a terminal).\n"
		"Exit status 0 when the guest powers off or resets.\n"
		"  --kernel PATH    bzImage (boot protocol 2.12+), PVH ELF or multiboot\n"
		"  --initrd PATH    initial ramdisk\n"
		"  --cmdline STR    kernel command line\n"
		"  --cpus N         vCPUs (default %d)\n"
		"  --memory MIB     guest RAM in MiB (default %d)\n"
		"  --disk PATH[,ro][,id=NAME]  virtio-blk on a raw image (repeatable)\n"
		"  --net tap=NAME[,mac=MAC]    virtio-net on a TAP, created if missing (repeatable)\n"
		"  --vsock cid=N,uds=PATH      virtio-vsock bridged to unix sockets at PATH\n"
		"  --rng                       virtio-rng fed by getrandom(2)\n"
		"  --balloon [deflate-on-oom]  virtio-balloon with statistics\n"
		"  --accel auto|kvm|soft       KVM, ember's software CPU, or KVM when it works (default)\n"
		"  --test-dev                  QEMU's isa-debug-exit (0xf4: exit status (v << 1) | 1)\n"
		"                              and pc-testdev, for kvm-unit-tests\n",
		VM_DEFAULT_CPUS, VM_DEFAULT_MEM_MIB);
}

static int parse_number(const char *flag, const char *arg, uint64_t max, uint64_t *out)
{
	int ret = parse_u64(arg, out);

	if (ret == 0 && *out <= max)
		return 0;
	log_err("%s: '%s' is not a %s", flag, arg,
		ret == -EINVAL ? "number" : "number in range");
	return -EINVAL;
}

static int parse_args(int argc, char **argv, struct vm_config *cfg)
{
	static const struct option opts[] = {
		{"kernel", required_argument, NULL, 'k'}, {"initrd", required_argument, NULL, 'i'},
		{"cmdline", required_argument, NULL, 'c'}, {"cpus", required_argument, NULL, 'p'},
		{"memory", required_argument, NULL, 'm'},  {"verbose", no_argument, NULL, 'v'},
		{"accel", required_argument, NULL, 'a'},
		{"help", no_argument, NULL, 'h'},	   {"disk", required_argument, NULL, 'd'},
		{"net", required_argument, NULL, 'n'},	   {"vsock", required_argument, NULL, 's'},
		{"rng", no_argument, NULL, 'r'},	   {"balloon", optional_argument, NULL, 'b'},
		{"test-dev", no_argument, NULL, 't'},
		{0},
	};
	char err[512];
	uint64_t n;
	int c;

	opterr = 0;
	/* "+": stop at the first non-option, so `--balloon deflate-on-oom` can take its word. */
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			cfg->kernel_path = optarg;
			break;
		case 'i':
			cfg->initrd_path = optarg;
			break;
		case 'c':
			cfg->cmdline = optarg;
			break;
		case 'p':
			if (parse_number("--cpus", optarg, UINT32_MAX, &n))
				return -EINVAL;
			cfg->ncpus = (uint32_t)n;
			break;
		case 'm':
			if (parse_number("--memory", optarg, UINT64_MAX >> 20, &n))
				return -EINVAL;
			cfg->mem_mib = n;
			break;
		case 'v':
			log_set_level(LOG_DEBUG);
			break;
		case 'a':
			if (accel_parse(optarg, &cfg->accel)) {
				log_err("--accel: '%s' is not one of auto, kvm, soft", optarg);
				return -EINVAL;
			}
			break;
		case 'd':
			if (vm_config_add_disk(cfg, optarg, err, sizeof(err)))
				goto bad;
			break;
		case 'n':
			if (vm_config_add_net(cfg, optarg, err, sizeof(err)))
				goto bad;
			break;
		case 's':
			if (vm_config_set_vsock(cfg, optarg, err, sizeof(err)))
				goto bad;
			break;
		case 'r':
			if (vm_config_set_rng(cfg, NULL, err, sizeof(err)))
				goto bad;
			break;
		case 't':
			if (vm_config_set_test_dev(cfg, NULL, err, sizeof(err)))
				goto bad;
			break;
		case 'b':
			/* The value is optional and may be the next word. */
			if (!optarg && optind < argc && argv[optind][0] != '-')
				optarg = argv[optind++];
			if (vm_config_set_balloon(cfg, optarg, err, sizeof(err)))
				goto bad;
			break;
		case 'h':
			run_usage(stdout);
			return 1;
		case ':':
			log_err("%s: needs a value", argv[optind - 1]);
			return -EINVAL;
		default:
			log_err("run: unknown option '%s' (try 'ember run --help')",
				argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		log_err("run: unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	return 0;
bad:
	log_err("%s", err);
	return -EINVAL;
}

int cmd_run(int argc, char **argv)
{
	struct vm_config cfg;
	char err[512];
	int ret;

	vm_config_defaults(&cfg);
	/* $EMBER_ACCEL: the default for --accel (the tests pick one with it). */
	if (getenv("EMBER_ACCEL") && accel_parse(getenv("EMBER_ACCEL"), &cfg.accel)) {
		log_err("EMBER_ACCEL: '%s' is not one of auto, kvm, soft", getenv("EMBER_ACCEL"));
		return EXIT_USAGE;
	}
	ret = parse_args(argc, argv, &cfg);
	if (ret) {
		vm_config_free(&cfg);
		return ret > 0 ? 0 : EXIT_USAGE;
	}
	/* Everything that needs no /dev/kvm is checked first; KVM's own vCPU limit later. */
	if (vm_config_check_files(&cfg, err, sizeof(err)) ||
	    vm_config_check_memory(&cfg, host_mem_mib(), err, sizeof(err)) ||
	    vm_config_check_cpus(&cfg, VM_MAX_CPUS_XAPIC, err, sizeof(err))) {
		log_err("%s", err);
		vm_config_free(&cfg);
		return EXIT_USAGE;
	}
	ret = vmm_run(&cfg);
	vm_config_free(&cfg);
	return ret;
}
