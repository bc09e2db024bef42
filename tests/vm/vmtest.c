#include "vm/vmtest.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *vmtest_path(char *buf, size_t len, const char *rel)
{
	const char *build = getenv("EMBER_BUILD");

	snprintf(buf, len, "%s/%s", build && *build ? build : "build", rel);
	return buf;
}

bool vmtest_have_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

struct sink {
	int fd;
	char *buf;
	size_t len, cap;
};

static void sink_read(struct sink *s)
{
	char tmp[4096];
	ssize_t n = read(s->fd, tmp, sizeof(tmp));

	if (n <= 0) {
		close(s->fd);
		s->fd = -1;
		return;
	}
	if (s->len + (size_t)n + 1 > s->cap) {
		s->cap = (s->len + (size_t)n + 1) * 2;
		s->buf = realloc(s->buf, s->cap);
	}
	memcpy(s->buf + s->len, tmp, (size_t)n);
	s->len += (size_t)n;
	s->buf[s->len] = '\0';
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static pid_t spawn(const char *const *argv, int in, int out, int err)
{
	char ember[4096];
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	dup2(in, 0);
	dup2(out, 1);
	dup2(err, 2);
	vmtest_path(ember, sizeof(ember), "ember");
	execv(ember, (char *const *)argv);
	_exit(127);
}

static void collect(struct sink *s, int nsinks, pid_t pid, unsigned timeout_s, bool *timed_out)
{
	double deadline = now_s() + timeout_s;

	while (s[0].fd >= 0 || s[1].fd >= 0) {
		struct pollfd p[2] = {{.fd = s[0].fd, .events = POLLIN},
				      {.fd = s[1].fd, .events = POLLIN}};
		int left = (int)((deadline - now_s()) * 1000);

		if (left <= 0 && !*timed_out) {
			/* SIGTERM first: ember must stop cleanly on it. */
			*timed_out = true;
			kill(pid, SIGTERM);
			deadline = now_s() + 10;
			continue;
		}
		if (left <= 0) {
			kill(pid, SIGKILL);
			break;
		}
		if (poll(p, 2, left) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < nsinks; i++)
			if (p[i].revents)
				sink_read(&s[i]);
	}
}

int vmtest_run(struct vmtest_result *r, const char *const *argv, const char *input,
	       unsigned timeout_s)
{
	int outp[2], errp[2], inp[2], wstatus;
	struct sink s[2];
	pid_t pid;

	memset(r, 0, sizeof(*r));
	if (pipe2(outp, O_CLOEXEC) || pipe2(errp, O_CLOEXEC) || pipe2(inp, O_CLOEXEC))
		return -errno;
	pid = spawn(argv, inp[0], outp[1], errp[1]);
	if (pid < 0)
		return -errno;
	close(inp[0]);
	close(outp[1]);
	close(errp[1]);
	if (input && write(inp[1], input, strlen(input)) < 0)
		perror("vmtest: stdin");
	close(inp[1]);
	s[0] = (struct sink){.fd = outp[0]};
	s[1] = (struct sink){.fd = errp[0]};
	collect(s, 2, pid, timeout_s, &r->timed_out);
	for (int i = 0; i < 2; i++)
		if (s[i].fd >= 0)
			close(s[i].fd);
	waitpid(pid, &wstatus, 0);
	r->status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
	r->out = s[0].buf ? s[0].buf : strdup("");
	r->err = s[1].buf ? s[1].buf : strdup("");
	return 0;
}

void vmtest_free(struct vmtest_result *r)
{
	free(r->out);
	free(r->err);
}

char *vmtest_line(const char *text, const char *prefix)
{
	size_t plen = strlen(prefix);

	for (const char *p = text; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		if (len >= plen && !strncmp(p, prefix, plen)) {
			while (len && p[len - 1] == '\r')
				len--;
			return strndup(p, len);
		}
		p = nl ? nl + 1 : NULL;
	}
	return NULL;
}
