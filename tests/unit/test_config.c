#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/parse.h"
#include "vmm/config.h"
#include "vmm/console.h"

Test(parse, accepts_plain_numbers_only)
{
	uint64_t v;

	cr_assert_eq(parse_u64("128", &v), 0);
	cr_assert_eq(v, 128);
	cr_assert_eq(parse_u64("0x10", &v), 0);
	cr_assert_eq(v, 16);
	cr_assert_eq(parse_u64("-1", &v), -EINVAL);
	cr_assert_eq(parse_u64(" 1", &v), -EINVAL);
	cr_assert_eq(parse_u64("12abc", &v), -EINVAL);
	cr_assert_eq(parse_u64("", &v), -EINVAL);
	cr_assert_eq(parse_u64("99999999999999999999999", &v), -ERANGE);
}

Test(config, cpus_range_names_the_flag)
{
	struct vm_config c;
	char err[256];

	vm_config_defaults(&c);
	cr_assert_eq(vm_config_check_cpus(&c, 288, err, sizeof(err)), 0);
	c.ncpus = 0;
	cr_assert_eq(vm_config_check_cpus(&c, 288, err, sizeof(err)), -EINVAL);
	cr_assert_str_eq(err, "--cpus: 0 is out of range (1..254 on this host)");
	c.ncpus = 9;
	cr_assert_eq(vm_config_check_cpus(&c, 8, err, sizeof(err)), -EINVAL);
	cr_assert_str_eq(err, "--cpus: 9 is out of range (1..8 on this host)");
}

Test(config, memory_range_names_the_flag)
{
	struct vm_config c;
	char err[256];

	vm_config_defaults(&c);
	cr_assert_eq(c.mem_mib, 128);
	cr_assert_eq(vm_config_check_memory(&c, 1024, err, sizeof(err)), 0);
	c.mem_mib = 0;
	cr_assert_eq(vm_config_check_memory(&c, 1024, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "--memory: 0 MiB is too small"), "%s", err);
	c.mem_mib = 2048;
	cr_assert_eq(vm_config_check_memory(&c, 1024, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "more than the host's 1024 MiB"), "%s", err);
}

Test(config, files_are_checked_with_path_and_reason)
{
	struct vm_config c;
	char err[256], path[] = "/tmp/ember-test-XXXXXX";
	int fd = mkstemp(path);

	vm_config_defaults(&c);
	cr_assert_eq(vm_config_check_files(&c, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "--kernel: missing"), "%s", err);
	c.kernel_path = "/nonexistent/vmlinuz";
	cr_assert_eq(vm_config_check_files(&c, err, sizeof(err)), -ENOENT);
	cr_assert_str_eq(err, "kernel /nonexistent/vmlinuz: No such file or directory");
	c.kernel_path = "/tmp";
	cr_assert_eq(vm_config_check_files(&c, err, sizeof(err)), -EISDIR);
	c.kernel_path = path;
	cr_assert_eq(vm_config_check_files(&c, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "file is empty"), "%s", err);
	cr_assert_eq(write(fd, "x", 1), 1);
	cr_assert_eq(vm_config_check_files(&c, err, sizeof(err)), 0);
	c.initrd_path = "/nonexistent/initrd";
	cr_assert_eq(vm_config_check_files(&c, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "initrd /nonexistent/initrd:"), "%s", err);
	close(fd);
	unlink(path);
}

Test(console, escape_sequence_quits_and_doubled_ctrl_a_passes)
{
	struct console c = {.tty = true};
	uint8_t buf[] = {'a', 0x01, 0x01, 'b', 0x01, 'q', 0x01, 'x', 'z'};
	bool quit;
	size_t n = console_filter(&c, buf, sizeof(buf), &quit);

	cr_assert(quit);
	cr_assert_eq(n, 5);
	cr_assert_eq(memcmp(buf, "a\x01" "b\x01q", 5), 0);
}

Test(console, pipes_pass_through_untouched)
{
	struct console c = {.tty = false};
	uint8_t buf[] = {0x01, 'x'};
	bool quit;

	cr_assert_eq(console_filter(&c, buf, 2, &quit), 2);
	cr_assert_not(quit);
}
