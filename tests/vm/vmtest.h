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

/*
 * True when ember can run a guest with the accelerator the tests were asked
 * for ($EMBER_ACCEL, as ember reads it: auto and soft always, kvm when
 * /dev/kvm opens); tests that boot guests skip otherwise.
 */
bool vmtest_have_accel(void);

/*
 * Runs ember with argv (NULL-terminated, argv[0] ignored: build/ember is
 * used), writing `input` to its stdin (NULL: none). Sends SIGTERM after
 * timeout_s seconds, SIGKILL 10 s after that. Returns 0, or -errno if it could not run at all.
 */
int vmtest_run(struct vmtest_result *r, const char *const *argv, const char *input,
	       unsigned timeout_s);
void vmtest_free(struct vmtest_result *r);

/*
 * A running ember for tests that talk to it while it runs: wait for a line,
 * then act (sample its RSS, connect to its sockets, answer on COM1).
 */
struct vmtest_proc {
	int pid;
	int in;		    /* ember's stdin (COM1 input); -1 once closed */
	int out_fd, err_fd; /* -1 at EOF */
	char *out, *err;    /* what arrived so far, NUL-terminated */
	size_t out_len, out_cap, err_len, err_cap;
};

/*
 * Starts `prefix... build/ember argv[1]...` (prefix NULL-terminated, e.g.
 * {"ip", "netns", "exec", "ns0", NULL}; NULL for none: ember itself, the pid
 * being ember's either way when the prefix execs it). stdin stays open.
 * 0, or -errno.
 */
int vmtest_start(struct vmtest_proc *p, const char *const *prefix, const char *const *argv);
/*
 * Reads output until a complete stdout line starting with `prefix` has
 * arrived (returned, malloc'd), ember closes its output, or timeout_s
 * passes (NULL in both cases).
 */
char *vmtest_wait_line(struct vmtest_proc *p, const char *prefix, unsigned timeout_s);
/* Writes text to ember's stdin. 0, or -errno. */
int vmtest_send(struct vmtest_proc *p, const char *text);
/*
 * Closes stdin and collects the rest as vmtest_run does (SIGTERM after
 * timeout_s, SIGKILL 10 s later); fills r (owns the buffers afterwards).
 */
int vmtest_finish(struct vmtest_proc *p, struct vmtest_result *r, unsigned timeout_s);
/* VmRSS of a process in KiB, or -1. */
long vmtest_rss_kib(int pid);

/* The first line of `text` that starts with `prefix`, as a malloc'd string; NULL if none. */
char *vmtest_line(const char *text, const char *prefix);

/*
 * A network namespace of the test's own, named "ember-<tag>-<pid>" into
 * name: 0, or -1 with name left empty. vmtest_netns_del() deletes it (if
 * name is not empty) and empties name.
 */
int vmtest_netns_add(char *name, size_t len, const char *tag);
void vmtest_netns_del(char *name);

/* Skip the current Criterion test with a message when EMBER_ACCEL=kvm and there is no KVM. */
#define VMTEST_REQUIRE_ACCEL()                                                                     \
	do {                                                                                       \
		if (!vmtest_have_accel())                                                          \
			cr_skip_test("EMBER_ACCEL=kvm and no usable /dev/kvm: VM test skipped");   \
	} while (0)

#endif
