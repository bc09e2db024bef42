/* Runs build/ember as a user would and captures what they would see. */
#ifndef EMBER_TESTS_VMTEST_H
#define EMBER_TESTS_VMTEST_H

#include <stdbool.h>
#include <stddef.h>

struct vmtest_result {
	int status;	/* exit status, or 128 + signal */
	bool timed_out; /* sent SIGTERM at the timeout (SIGKILL 10 s later) */
	char *out;	/* stdout: the guest's console */
	char *err;	/* stderr: ember's diagnostics */
};

/* Path under the build directory ($EMBER_BUILD, else ./build). Static buffer per call site. */
const char *vmtest_path(char *buf, size_t len, const char *rel);

/* True when /dev/kvm can be opened; tests that boot guests skip otherwise. */
bool vmtest_have_kvm(void);

/*
 * Runs ember with argv (NULL-terminated, argv[0] ignored: build/ember is
 * used), writing `input` to its stdin (NULL: none). Sends SIGTERM after
 * timeout_s seconds, SIGKILL 10 s after that. Returns 0, or -errno if it could not run at all.
 */
int vmtest_run(struct vmtest_result *r, const char *const *argv, const char *input,
	       unsigned timeout_s);
void vmtest_free(struct vmtest_result *r);

/* The first line of `text` that starts with `prefix`, as a malloc'd string; NULL if none. */
char *vmtest_line(const char *text, const char *prefix);

/* Skip the current Criterion test with a message when there is no KVM. */
#define VMTEST_REQUIRE_KVM()                                                                       \
	do {                                                                                       \
		if (!vmtest_have_kvm())                                                            \
			cr_skip_test("no usable /dev/kvm on this machine: VM test skipped");       \
	} while (0)

#endif
