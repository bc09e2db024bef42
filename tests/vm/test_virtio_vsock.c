/*
 * virtio-vsock (--vsock cid=N,uds=PATH), Firecracker-style: the guest's
 * connection to host port P reaches the unix socket PATH_P, and a host
 * program that connects to PATH and writes "CONNECT <port>\n" reaches a
 * guest listener. A guest connection to a port nobody listens on is reset.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vm/vmtest.h"

#define TIMEOUT_S 120
#define IO_TIMEOUT_S 30
#define HOST_PORT 5000
#define GUEST_PORT 6000
#define GUEST_CID 7

static void sock_path(char *buf, size_t len, const char *suffix)
{
	snprintf(buf, len, "/tmp/ember-vsock-%d.sock%s", (int)getpid(), suffix);
}

static int unix_socket(const char *path, bool listen_on)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0);
	cr_assert_lt(strlen(path), sizeof(a.sun_path));
	strcpy(a.sun_path, path);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (listen_on) {
		unlink(path);
		cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "bind %s: %s", path,
			     strerror(errno));
		cr_assert_eq(listen(fd, 1), 0);
	} else {
		cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "connect %s: %s",
			     path, strerror(errno));
	}
	return fd;
}

/* Reads up to and including '\n' (bounded by SO_RCVTIMEO); the line without it. */
static bool read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;

	while (n + 1 < len) {
		ssize_t got = read(fd, buf + n, 1);

		if (got <= 0)
			break;
		if (buf[n] == '\n') {
			buf[n] = '\0';
			return true;
		}
		n++;
	}
	buf[n] = '\0';
	return false;
}

struct server {
	int listen_fd;
	char got[256];
	bool ok;
};

/* The host end of the guest's connection: answers "pong <line>\n". */
static void *serve(void *arg)
{
	struct server *s = arg;
	struct pollfd p = {.fd = s->listen_fd, .events = POLLIN};
	char reply[300];
	int fd;

	if (poll(&p, 1, TIMEOUT_S * 1000) != 1)
		return NULL;
	fd = accept(s->listen_fd, NULL, NULL);
	if (fd < 0)
		return NULL;
	/* Not inherited from the listening socket for AF_UNIX. */
	struct timeval tv = {.tv_sec = IO_TIMEOUT_S};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (read_line(fd, s->got, sizeof(s->got))) {
		snprintf(reply, sizeof(reply), "pong %s\n", s->got);
		s->ok = write(fd, reply, strlen(reply)) == (ssize_t)strlen(reply);
	}
	/* Let the guest read the reply before the close turns into a shutdown. */
	read_line(fd, reply, sizeof(reply));
	close(fd);
	return NULL;
}

static void start(struct vmtest_proc *p, const char *cmdline, const char *uds)
{
	static char pvh[4096], vsock[256];
	const char *argv[] = {
	    "ember",	 "run",	  "--kernel", vmtest_path(pvh, sizeof(pvh), "guest/pvh-guest.elf"),
	    "--cmdline", cmdline, "--vsock",  vsock,
	    NULL};

	snprintf(vsock, sizeof(vsock), "cid=%d,uds=%s", GUEST_CID, uds);
	cr_assert_eq(vmtest_start(p, NULL, argv), 0);
}

static void assert_line(const struct vmtest_result *r, const char *want)
{
	char *line = vmtest_line(r->out, want);

	cr_assert_not_null(line, "no line '%s'; console:\n%s\nstderr:\n%s", want, r->out, r->err);
	cr_assert_str_eq(line, want, "console:\n%s", r->out);
	free(line);
}

Test(virtio_vsock, guest_to_host_and_host_to_guest_streams, .timeout = 300)
{
	char uds[108], port_path[120], cmdline[128], want[160], line[256];
	struct server srv = {0};
	struct vmtest_proc p;
	struct vmtest_result r;
	pthread_t t;
	unsigned int seed = (unsigned int)getpid() % 100000;
	char *listening;
	int fd;

	VMTEST_REQUIRE_ACCEL();
	sock_path(uds, sizeof(uds), "");
	snprintf(port_path, sizeof(port_path), "%s_%d", uds, HOST_PORT);
	srv.listen_fd = unix_socket(port_path, true);
	cr_assert_eq(pthread_create(&t, NULL, serve, &srv), 0);
	snprintf(cmdline, sizeof(cmdline), "virtio-vsock vsock-port=%d vsock-listen=%d seed=%u",
		 HOST_PORT, GUEST_PORT, seed);
	start(&p, cmdline, uds);

	snprintf(want, sizeof(want), "guest: vsock listening port=%d", GUEST_PORT);
	listening = vmtest_wait_line(&p, want, TIMEOUT_S);
	if (listening) {
		fd = unix_socket(uds, false);
		cr_assert_eq(write(fd, "CONNECT 6000\n", 13), 13);
		cr_assert(read_line(fd, line, sizeof(line)), "no answer to CONNECT: '%s'", line);
		cr_assert_eq(strncmp(line, "OK ", 3), 0, "answer to CONNECT: '%s'", line);
		snprintf(want, sizeof(want), "hello guest %u\n", seed);
		cr_assert_eq(write(fd, want, strlen(want)), (ssize_t)strlen(want));
		cr_assert(read_line(fd, line, sizeof(line)), "no echo: '%s'", line);
		want[strlen(want) - 1] = '\0';
		cr_assert_str_eq(line, want, "the guest's echo");
		close(fd);
		free(listening);
	}
	vmtest_finish(&p, &r, TIMEOUT_S);
	pthread_join(t, NULL);
	close(srv.listen_fd);
	unlink(port_path);
	unlink(uds);

	cr_assert_not(r.timed_out, "timed out; console:\n%s\nstderr:\n%s", r.out, r.err);
	cr_assert_not_null(listening, "guest never listened; console:\n%s\nstderr:\n%s", r.out,
			   r.err);
	snprintf(want, sizeof(want), "guest: vsock cid=%d", GUEST_CID);
	assert_line(&r, want);
	snprintf(want, sizeof(want), "ping %u", seed);
	cr_assert(srv.ok, "host port got '%s'; console:\n%s", srv.got, r.out);
	cr_assert_str_eq(srv.got, want);
	snprintf(want, sizeof(want), "guest: vsock reply pong ping %u", seed);
	assert_line(&r, want);
	snprintf(want, sizeof(want), "guest: vsock accepted port=%d line=hello guest %u",
		 GUEST_PORT, seed);
	assert_line(&r, want);
	char *fail = vmtest_line(r.out, "guest: FAIL");
	cr_assert_null(fail, "%s\nconsole:\n%s\nstderr:\n%s", fail, r.out, r.err);
	assert_line(&r, "guest: ok");
	cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
	vmtest_free(&r);
}

Test(virtio_vsock, connection_to_a_closed_host_port_is_reset, .timeout = 300)
{
	char uds[108], want[160];
	struct vmtest_proc p;
	struct vmtest_result r;

	VMTEST_REQUIRE_ACCEL();
	sock_path(uds, sizeof(uds), "-closed");
	start(&p, "virtio-vsock vsock-port=5999", uds);
	vmtest_finish(&p, &r, TIMEOUT_S);
	unlink(uds);
	cr_assert_not(r.timed_out, "timed out; console:\n%s\nstderr:\n%s", r.out, r.err);
	snprintf(want, sizeof(want),
		 "guest: FAIL virtio vsock connect to port 5999: refused (RST)");
	assert_line(&r, want);
	cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
	vmtest_free(&r);
}
