#include "core/log.h"

#include <pthread.h>
#include <stdio.h>
#include <time.h>

static enum log_level max_level = LOG_WARN;
static pthread_mutex_t rl_lock = PTHREAD_MUTEX_INITIALIZER;

void log_set_level(enum log_level level)
{
	max_level = level;
}

static void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	/* One fprintf per line keeps lines from different threads whole. */
	char line[1024];

	if (level > max_level)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	fprintf(stderr, "ember: %s\n", line);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void log_ratelimited(struct ratelimit *rl, enum log_level level, const char *fmt, ...)
{
	uint64_t now = now_ms();
	uint32_t suppressed = 0;
	int print = 0;
	va_list ap;

	pthread_mutex_lock(&rl_lock);
	if (now - rl->window_start_ms >= rl->interval_ms) {
		suppressed = rl->suppressed;
		rl->window_start_ms = now;
		rl->printed = 0;
		rl->suppressed = 0;
	}
	if (rl->printed < rl->burst) {
		rl->printed++;
		print = 1;
	} else {
		rl->suppressed++;
	}
	pthread_mutex_unlock(&rl_lock);

	if (suppressed)
		log_msg(level, "%u similar messages suppressed", suppressed);
	if (print) {
		va_start(ap, fmt);
		log_vmsg(level, fmt, ap);
		va_end(ap);
	}
}
