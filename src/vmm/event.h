/*
 * The event thread: one epoll loop per VM for everything that is not a
 * vCPU exit (virtqueue kicks through ioeventfds, disk completions, TAP
 * and unix-socket readiness, timers). Handlers run on that one thread, so
 * a device's queue processing is single-threaded unless it says otherwise.
 */
#ifndef EMBER_VMM_EVENT_H
#define EMBER_VMM_EVENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct event_handler {
	/* events: EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP as returned by epoll. */
	void (*fn)(void *ctx, uint32_t events);
	void *ctx;
};

struct event_loop {
	int epfd;
	int wake_efd; /* written by event_loop_stop */
	pthread_t thread;
	bool running;
};

int event_loop_init(struct event_loop *el);
void event_loop_destroy(struct event_loop *el);

/*
 * Watches fd for `events` (EPOLLIN, EPOLLOUT; level-triggered). `h` must
 * stay valid until event_loop_del or destroy. Safe from any thread.
 */
int event_loop_add(struct event_loop *el, int fd, uint32_t events, struct event_handler *h);
int event_loop_mod(struct event_loop *el, int fd, uint32_t events, struct event_handler *h);
int event_loop_del(struct event_loop *el, int fd);

int event_loop_start(struct event_loop *el);
/* Stops and joins the thread; handlers are not running once it returns. */
void event_loop_stop(struct event_loop *el);

#endif
