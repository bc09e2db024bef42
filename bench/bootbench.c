#define _GNU_SOURCE
/*
 * bootbench: runs a command N times and reports, as medians, the time from
 * exec to the first stdout line containing MARKER, the time to exit, the
 * peak RSS (ru_maxrss of the child) and its CPU time (user + sys).
 *
 *   bootbench N MARKER -- COMMAND [ARGS...]
 * prints one line: "first_line_ms=... exit_ms=... rss_kib=... cpu_ms=... runs=N"
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_RUNS 100

struct sample {
	double first_ms, exit_ms, cpu_ms;
	long rss_kib;
	int status;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Scans output for the marker across read boundaries (keeps a tail). */
static int run_once(char **cmd, const char *marker, struct sample *s)
{
	char buf[8192], window[16384] = "";
	size_t wlen = 0, mlen = strlen(marker);
	struct rusage ru;
	int p[2], wstatus;
	double t0;
	pid_t pid;

	if (pipe(p))
		return -errno;
	t0 = now_ms();
	pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execvp(cmd[0], cmd);
		_exit(127);
	}
	close(p[1]);
	s->first_ms = -1;
	for (;;) {
		ssize_t n = read(p[0], buf, sizeof(buf));

		if (n <= 0)
			break;
		if (s->first_ms >= 0)
			continue;
		if (wlen + (size_t)n >= sizeof(window)) {
			size_t keep = mlen < wlen ? mlen : wlen;

			memmove(window, window + wlen - keep, keep);
			wlen = keep;
		}
		memcpy(window + wlen, buf, (size_t)n);
		wlen += (size_t)n;
		window[wlen] = '\0';
		if (memmem(window, wlen, marker, mlen))
			s->first_ms = now_ms() - t0;
	}
	close(p[0]);
	if (wait4(pid, &wstatus, 0, &ru) < 0)
		return -errno;
	s->exit_ms = now_ms() - t0;
	s->rss_kib = ru.ru_maxrss;
	s->cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
		    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
	s->status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
	return 0;
}

int main(int argc, char **argv)
{
	double first[MAX_RUNS], ex[MAX_RUNS], rss[MAX_RUNS], cpu[MAX_RUNS];
	int runs;

	if (argc < 5 || strcmp(argv[3], "--")) {
		fprintf(stderr, "usage: bootbench N MARKER -- COMMAND [ARGS...]\n");
		return 2;
	}
	runs = atoi(argv[1]);
	if (runs < 1 || runs > MAX_RUNS) {
		fprintf(stderr, "bootbench: N: %s is not in 1..%d\n", argv[1], MAX_RUNS);
		return 2;
	}
	for (int i = 0; i < runs; i++) {
		struct sample s = {0};

		if (run_once(argv + 4, argv[2], &s)) {
			fprintf(stderr, "bootbench: %s: %s\n", argv[4], strerror(errno));
			return 1;
		}
		if (s.first_ms < 0 || s.status != 0) {
			fprintf(stderr, "bootbench: run %d: marker %s, exit status %d\n", i,
				s.first_ms < 0 ? "never seen" : "seen", s.status);
			return 1;
		}
		first[i] = s.first_ms;
		ex[i] = s.exit_ms;
		rss[i] = (double)s.rss_kib;
		cpu[i] = s.cpu_ms;
	}
	printf("first_line_ms=%.2f exit_ms=%.2f rss_kib=%.0f cpu_ms=%.2f runs=%d\n",
	       median(first, runs), median(ex, runs), median(rss, runs), median(cpu, runs), runs);
	return 0;
}
