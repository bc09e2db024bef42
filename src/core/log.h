/* Diagnostics on stderr, and a rate limiter for guest-triggered messages. */
#ifndef EMBER_CORE_LOG_H
#define EMBER_CORE_LOG_H

#include <stdarg.h>
#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Set once by main() before threads start; LOG_WARN by default. */
void log_set_level(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/*
 * Guest-triggered messages go through a limiter so a hostile guest cannot
 * flood the host log: at most `burst` messages per `interval_ms`, then one
 * "N messages suppressed" line when the window reopens. Thread-safe.
 */
struct ratelimit {
	uint32_t interval_ms;
	uint32_t burst;
	uint64_t window_start_ms; /* guarded by atomics in log.c */
	uint32_t printed;
	uint32_t suppressed;
};

#define RATELIMIT_INIT(ms, n) {.interval_ms = (ms), .burst = (n)}

void log_ratelimited(struct ratelimit *rl, enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
