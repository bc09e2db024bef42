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
#include <sys/types.h>

struct event_handler {
	/* events: EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP as returned by epoll. */
	void (*fn)(void *ctx, uint32_t events);
	void *ctx;
};

/* One watched fd: its handler and a generation that tells stale events apart. */
struct event_slot {
	struct event_handler *h;
	uint32_t gen;
};

struct event_loop {
	int epfd;
	int wake_efd; /* written by event_loop_stop */
	pthread_t thread;
	bool running;

	/*
	 * lock guards the fields below. Taken by add/mod/del and by the loop
	 * around (never during) each handler call.
	 */
	pthread_mutex_t lock;
	pthread_cond_t idle;	  /* signalled when a handler call returns */
	struct event_slot *slots; /* indexed by fd */
	unsigned int nslots;
	uint32_t next_gen;
	struct event_handler *current; /* handler being called, or NULL */
	pid_t loop_tid;		       /* the event thread's id, 0 when not running */
	bool stopping;
};

int event_loop_init(struct event_loop *el);
/* Stops the loop if it runs, then frees it; fds added are not closed. */
void event_loop_destroy(struct event_loop *el);

/*
 * Watches fd for `events` (EPOLLIN, EPOLLOUT; level-triggered). `h` must
 * stay valid until event_loop_del or destroy. Safe from any thread,
 * handlers included. 0 or -errno (-EEXIST when fd is already watched).
 */
int event_loop_add(struct event_loop *el, int fd, uint32_t events, struct event_handler *h);
/* Changes the events and handler of a watched fd; -ENOENT when not watched. */
int event_loop_mod(struct event_loop *el, int fd, uint32_t events, struct event_handler *h);
/*
 * Stops watching fd (call it before closing fd). Once it returns, fd's
 * handler is not called again, even for events already collected. If it
 * is running right now on the event thread, it finishes: to free the
 * handler from another thread, use event_loop_del_sync. -ENOENT when fd
 * is not watched.
 */
int event_loop_del(struct event_loop *el, int fd);
/*
 * event_loop_del, then waits until fd's handler is no longer running. Do
 * not hold a lock that handler takes. From a handler it does not wait
 * (the call in progress is the caller's own thread).
 */
int event_loop_del_sync(struct event_loop *el, int fd);

/* Starts the event thread (all signals blocked in it). 0 or -errno. */
int event_loop_start(struct event_loop *el);
/*
 * Stops and joins the thread; handlers are not running once it returns.
 * Not from a handler (logged and ignored).
 */
void event_loop_stop(struct event_loop *el);

#endif
