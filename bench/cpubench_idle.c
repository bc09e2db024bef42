#define _GNU_SOURCE
/*
 * cpubench_idle: runs a monitor and reports the CPU time (user + system, all
 * threads, from /proc/PID/stat) it used between two lines of its stdout, per
 * second of wall time, for bench/idle.sh.
 *
 *   cpubench_idle START END -- COMMAND [ARGS...]
 * prints one line:
 *   "wall_s=<START to END> cpu_ms_per_s=<CPU ms between them / wall_s> total_cpu_ms=<whole run> status=<exit status>"
 * and the child's stdout on stderr (for the tick count). Exits 1 if a line
 * never came.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* utime + stime of the process, in seconds; -1 if unreadable. */
static double proc_cpu_s(pid_t pid)
{
	char path[64], buf[4096], *p;
	unsigned long long ut, st;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* comm may hold spaces */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
			 &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

int main(int argc, char **argv)
{
	double t[2] = {-1, -1}, c[2] = {-1, -1};
	char line[4096];
	struct rusage ru;
	int p[2], wstatus, seen = 0;
	pid_t pid;
	FILE *in;

	if (argc < 5 || strcmp(argv[3], "--")) {
		fprintf(stderr, "usage: cpubench_idle START END -- COMMAND [ARGS...]\n");
		return 2;
	}
	if (pipe(p))
		return 1;
	pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execvp(argv[4], argv + 4);
		_exit(127);
	}
	close(p[1]);
	in = fdopen(p[0], "r");
	while (fgets(line, sizeof(line), in)) {
		fputs(line, stderr);
		if (seen < 2 && strstr(line, argv[1 + seen])) {
			t[seen] = now_s();
			c[seen] = proc_cpu_s(pid);
			seen++;
		}
	}
	fclose(in);
	if (wait4(pid, &wstatus, 0, &ru) < 0)
		return 1;
	if (seen < 2 || c[0] < 0 || c[1] < 0) {
		fprintf(stderr, "cpubench_idle: %s never seen\n", argv[1 + seen]);
		return 1;
	}
	printf("wall_s=%.2f cpu_ms_per_s=%.1f total_cpu_ms=%.0f status=%d\n", t[1] - t[0],
	       (c[1] - c[0]) * 1e3 / (t[1] - t[0]),
	       (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
		       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3,
	       WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus));
	return 0;
}
