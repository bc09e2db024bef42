#define _GNU_SOURCE
/*
 * virtiobench: the two host-side tools of bench/virtio.sh.
 *
 *   virtiobench stamp -- COMMAND [ARGS...]
 *	Runs COMMAND with its stdout on a pipe and prints each of its lines
 *	as "<sol> <eol> <line>": the times (s since exec, CLOCK_MONOTONIC)
 *	at which the line's first byte and its '\n' arrived. The guest has
 *	no clock to trust; a phase runs from the '\n' of its start line to
 *	the first byte of its done line, so neither line's printing (tens of
 *	port-I/O exits per character) is counted. Exits with COMMAND's status.
 *
 *   virtiobench tapsend IFNAME FRAMES
 *	The host's own peer for bench-net: attaches to the existing TAP
 *	IFNAME the way the monitors do (IFF_VNET_HDR, 12-byte header) and
 *	writes FRAMES of the guest's frame (1514 bytes, ethertype 0x88b5) as
 *	fast as the TAP takes them. Prints "frames=N bytes=N seconds=S".
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_KEEP 4096
#define VNET_HDR 12
#define FRAME_LEN 1514
#define ETHERTYPE 0x88b5

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One output line being collected; longer lines are cut (the times still hold). */
struct line {
	char text[LINE_MAX_KEEP];
	size_t len;
	double sol;
	bool open;
};

static void feed(struct line *l, const char *buf, size_t n, double t, double t0)
{
	for (size_t i = 0; i < n; i++) {
		if (!l->open) {
			l->open = true;
			l->sol = t;
			l->len = 0;
		}
		if (buf[i] == '\n') {
			printf("%.6f %.6f %.*s\n", l->sol - t0, t - t0, (int)l->len, l->text);
			l->open = false;
		} else if (l->len < sizeof(l->text)) {
			l->text[l->len++] = buf[i];
		}
	}
}

static int stamp(char **cmd)
{
	static struct line l;
	char buf[8192];
	int p[2], ws;
	double t0;
	pid_t pid;

	if (pipe(p)) {
		perror("virtiobench: pipe");
		return 2;
	}
	t0 = now_s();
	pid = fork();
	if (pid < 0) {
		perror("virtiobench: fork");
		return 2;
	}
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execvp(cmd[0], cmd);
		fprintf(stderr, "virtiobench: exec %s: %s\n", cmd[0], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		ssize_t n = read(p[0], buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		feed(&l, buf, (size_t)n, now_s(), t0);
	}
	if (l.open) /* a last line without '\n' */
		printf("%.6f %.6f %.*s\n", l.sol - t0, now_s() - t0, (int)l.len, l.text);
	close(p[0]);
	if (waitpid(pid, &ws, 0) < 0) {
		perror("virtiobench: waitpid");
		return 2;
	}
	return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

/* The existing TAP, as the monitors open it; -1 after a message. */
static int tap_attach(const char *name)
{
	struct ifreq ifr = {0};
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC), hl = VNET_HDR;

	if (fd < 0) {
		fprintf(stderr, "virtiobench: open /dev/net/tun: %s\n", strerror(errno));
		return -1;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &hl) < 0) {
		fprintf(stderr, "virtiobench: TAP %s: %s\n", name, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int tapsend(const char *name, const char *count)
{
	static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
	uint8_t buf[VNET_HDR + FRAME_LEN] = {0}, *f = buf + VNET_HDR;
	long long frames = atoll(count), sent = 0;
	double t;
	int fd;

	if (frames < 1) {
		fprintf(stderr, "virtiobench: FRAMES: %s is not a positive number\n", count);
		return 2;
	}
	fd = tap_attach(name);
	if (fd < 0)
		return 1;
	memset(f, 0xff, 6);
	memcpy(f + 6, mac, 6);
	f[12] = ETHERTYPE >> 8;
	f[13] = ETHERTYPE & 0xff;
	memcpy(f + 14, "ember-bench", 11);
	t = now_s();
	for (; sent < frames; sent++) {
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
			fprintf(stderr, "virtiobench: write to %s: %s\n", name, strerror(errno));
			break;
		}
	}
	t = now_s() - t;
	close(fd);
	printf("frames=%lld bytes=%lld seconds=%.6f\n", sent, sent * FRAME_LEN, t);
	return sent == frames ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "stamp") && !strcmp(argv[2], "--"))
		return stamp(argv + 3);
	if (argc == 4 && !strcmp(argv[1], "tapsend"))
		return tapsend(argv[2], argv[3]);
	fprintf(stderr, "usage: virtiobench stamp -- COMMAND [ARGS...]\n"
			"       virtiobench tapsend IFNAME FRAMES\n");
	return 2;
}
