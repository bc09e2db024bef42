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

bool vmtest_have_accel(void)
{
	const char *accel = getenv("EMBER_ACCEL");
	int fd;

	/* auto and soft run anywhere: the software CPU needs no /dev/kvm. */
	if (!accel || strcmp(accel, "kvm"))
		return true;
	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
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

/* execvp's argv: prefix..., the ember binary, argv[1]... (caller frees). */
static char **prefixed_argv(const char *const *prefix, const char *const *argv, char *ember)
{
	size_t np = 0, na = 0;
	char **v;

	while (prefix && prefix[np])
		np++;
	while (argv[na])
		na++;
	v = calloc(np + na + 2, sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < np; i++)
		v[i] = (char *)prefix[i];
	v[np] = ember;
	for (size_t i = 1; i < na; i++)
		v[np + i] = (char *)argv[i];
	return v;
}

int vmtest_start(struct vmtest_proc *p, const char *const *prefix, const char *const *argv)
{
	int outp[2], errp[2], inp[2];
	char ember[4096];
	char **v;
	pid_t pid;

	memset(p, 0, sizeof(*p));
	vmtest_path(ember, sizeof(ember), "ember");
	v = prefixed_argv(prefix, argv, ember);
	if (!v)
		return -ENOMEM;
	if (pipe2(outp, O_CLOEXEC) || pipe2(errp, O_CLOEXEC) || pipe2(inp, O_CLOEXEC)) {
		free(v);
		return -errno;
	}
	pid = fork();
	if (pid == 0) {
		dup2(inp[0], 0);
		dup2(outp[1], 1);
		dup2(errp[1], 2);
		execvp(v[0], v);
		_exit(127);
	}
	free(v);
	close(inp[0]);
	close(outp[1]);
	close(errp[1]);
	if (pid < 0)
		return -errno;
	p->pid = pid;
	p->in = inp[1];
	p->out_fd = outp[0];
	p->err_fd = errp[0];
	return 0;
}

/* Moves the proc's buffers into sinks and back, so sink_read/collect serve both. */
static void proc_to_sinks(const struct vmtest_proc *p, struct sink s[2])
{
	s[0] = (struct sink){.fd = p->out_fd, .buf = p->out, .len = p->out_len, .cap = p->out_cap};
	s[1] = (struct sink){.fd = p->err_fd, .buf = p->err, .len = p->err_len, .cap = p->err_cap};
}

static void sinks_to_proc(const struct sink s[2], struct vmtest_proc *p)
{
	p->out_fd = s[0].fd;
	p->out = s[0].buf;
	p->out_len = s[0].len;
	p->out_cap = s[0].cap;
	p->err_fd = s[1].fd;
	p->err = s[1].buf;
	p->err_len = s[1].len;
	p->err_cap = s[1].cap;
}

/* The line with `prefix` among the complete lines of out, or NULL. */
static char *complete_line(const struct vmtest_proc *p, const char *prefix)
{
	const char *nl = p->out ? memrchr(p->out, '\n', p->out_len) : NULL;
	char *done, *line;

	if (!nl)
		return NULL;
	done = strndup(p->out, (size_t)(nl - p->out) + 1);
	line = vmtest_line(done, prefix);
	free(done);
	return line;
}

char *vmtest_wait_line(struct vmtest_proc *p, const char *prefix, unsigned timeout_s)
{
	double deadline = now_s() + timeout_s;
	struct sink s[2];
	char *line;

	while (!(line = complete_line(p, prefix))) {
		struct pollfd pf[2] = {{.fd = p->out_fd, .events = POLLIN},
				       {.fd = p->err_fd, .events = POLLIN}};
		int left = (int)((deadline - now_s()) * 1000);

		if (left <= 0 || (p->out_fd < 0 && p->err_fd < 0))
			return NULL;
		if (poll(pf, 2, left) < 0 && errno != EINTR)
			return NULL;
		proc_to_sinks(p, s);
		for (int i = 0; i < 2; i++)
			if (pf[i].revents)
				sink_read(&s[i]);
		sinks_to_proc(s, p);
	}
	return line;
}

int vmtest_send(struct vmtest_proc *p, const char *text)
{
	size_t len = strlen(text);

	if (p->in < 0)
		return -EPIPE;
	return write(p->in, text, len) == (ssize_t)len ? 0 : -EIO;
}

int vmtest_finish(struct vmtest_proc *p, struct vmtest_result *r, unsigned timeout_s)
{
	struct sink s[2];
	int wstatus;

	memset(r, 0, sizeof(*r));
	if (p->in >= 0)
		close(p->in);
	p->in = -1;
	proc_to_sinks(p, s);
	collect(s, 2, p->pid, timeout_s, &r->timed_out);
	for (int i = 0; i < 2; i++)
		if (s[i].fd >= 0)
			close(s[i].fd);
	waitpid(p->pid, &wstatus, 0);
	r->status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
	r->out = s[0].buf ? s[0].buf : strdup("");
	r->err = s[1].buf ? s[1].buf : strdup("");
	memset(p, 0, sizeof(*p));
	p->in = p->out_fd = p->err_fd = -1;
	return 0;
}

long vmtest_rss_kib(int pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

int vmtest_netns_add(char *name, size_t len, const char *tag)
{
	char cmd[160];

	snprintf(name, len, "ember-%s-%d", tag, (int)getpid());
	snprintf(cmd, sizeof(cmd), "ip netns add %s", name);
	if (system(cmd) != 0) {
		name[0] = '\0';
		return -1;
	}
	return 0;
}

void vmtest_netns_del(char *name)
{
	char cmd[160];

	if (!name[0])
		return;
	snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null", name);
	if (system(cmd) != 0)
		fprintf(stderr, "vmtest: could not delete netns %s\n", name);
	name[0] = '\0';
}
