#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "vmm/event.h"

/* What a handler saw: how often it ran and the last events. */
struct rec {
	atomic_int calls;
	atomic_uint events;
	int fd;	      /* drained on each call when >= 0 */
	int sleep_ms; /* then sleeps, to be caught running */
	atomic_int done;
	struct event_loop *el;
	int del_fd; /* fd this handler removes (-1: none) */
	bool del_sync;
	int del_err;
	bool stop; /* calls event_loop_stop from the handler */
};

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static void on_event(void *ctx, uint32_t events)
{
	struct rec *r = ctx;
	char buf[64];

	r->events = events;
	r->calls++;
	if (r->fd >= 0 && (events & EPOLLIN))
		(void)!read(r->fd, buf, sizeof(buf));
	/* No cr_assert here: this is the event thread; the test checks del_err. */
	if (r->del_fd >= 0)
		r->del_err = r->del_sync ? event_loop_del_sync(r->el, r->del_fd)
					 : event_loop_del(r->el, r->del_fd);
	if (r->stop)
		event_loop_stop(r->el);
	if (r->sleep_ms)
		sleep_ms(r->sleep_ms);
	r->done++;
}

static void rec_init(struct rec *r, struct event_loop *el, int fd)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->el = el;
	r->del_fd = -1;
}

/* Waits up to 2 s for *v to reach at least want. */
static bool wait_for(atomic_int *v, int want)
{
	for (int i = 0; i < 2000; i++) {
		if (*v >= want)
			return true;
		sleep_ms(1);
	}
	return *v >= want;
}

static void kick(int efd)
{
	uint64_t one = 1;

	cr_assert_eq(write(efd, &one, sizeof(one)), sizeof(one));
}

static struct event_loop el;

static void setup(void)
{
	cr_assert_eq(event_loop_init(&el), 0);
}

static void teardown(void)
{
	event_loop_destroy(&el);
}

TestSuite(event, .init = setup, .fini = teardown);

Test(event, eventfd_calls_handler)
{
	int efd = eventfd(0, EFD_NONBLOCK);
	struct rec r;
	struct event_handler h = {.fn = on_event, .ctx = &r};

	rec_init(&r, &el, efd);
	cr_assert_eq(event_loop_add(&el, efd, EPOLLIN, &h), 0);
	cr_assert_eq(event_loop_start(&el), 0);
	kick(efd);
	cr_assert(wait_for(&r.calls, 1));
	cr_assert(r.events & EPOLLIN);
	kick(efd);
	cr_assert(wait_for(&r.calls, 2));
	event_loop_stop(&el);
	close(efd);
}

Test(event, pipe_data_and_hangup)
{
	int p[2];
	struct rec r;
	struct event_handler h = {.fn = on_event, .ctx = &r};

	cr_assert_eq(pipe2(p, O_NONBLOCK), 0);
	rec_init(&r, &el, p[0]);
	cr_assert_eq(event_loop_add(&el, p[0], EPOLLIN, &h), 0);
	cr_assert_eq(event_loop_start(&el), 0);
	cr_assert_eq(write(p[1], "x", 1), 1);
	cr_assert(wait_for(&r.calls, 1));
	cr_assert_eq(r.events, EPOLLIN);
	/* Level-triggered and drained: no more calls until the next byte. */
	sleep_ms(20);
	cr_assert_eq(r.calls, 1);
	/* The writer goes away: EPOLLHUP (reported although not asked for). */
	r.fd = -1;
	close(p[1]);
	cr_assert(wait_for(&r.calls, 2));
	cr_assert(r.events & EPOLLHUP);
	cr_assert_eq(event_loop_del(&el, p[0]), 0);
	event_loop_stop(&el);
	close(p[0]);
}

Test(event, mod_changes_events_and_handler)
{
	int p[2];
	struct rec r1, r2;
	struct event_handler h1 = {.fn = on_event, .ctx = &r1};
	struct event_handler h2 = {.fn = on_event, .ctx = &r2};

	cr_assert_eq(pipe2(p, O_NONBLOCK), 0);
	rec_init(&r1, &el, -1);
	rec_init(&r2, &el, -1);
	/* The write end is writable at once, but only EPOLLIN is asked for. */
	cr_assert_eq(event_loop_add(&el, p[1], EPOLLIN, &h1), 0);
	cr_assert_eq(event_loop_start(&el), 0);
	sleep_ms(20);
	cr_assert_eq(r1.calls, 0);
	cr_assert_eq(event_loop_mod(&el, p[1], EPOLLOUT, &h2), 0);
	cr_assert(wait_for(&r2.calls, 1));
	cr_assert(r2.events & EPOLLOUT);
	cr_assert_eq(r1.calls, 0);
	cr_assert_eq(event_loop_del(&el, p[1]), 0);
	event_loop_stop(&el);
	close(p[0]);
	close(p[1]);
}

Test(event, bad_calls)
{
	int efd = eventfd(0, EFD_NONBLOCK);
	struct rec r;
	struct event_handler h = {.fn = on_event, .ctx = &r};
	struct event_handler nofn = {.ctx = &r};

	rec_init(&r, &el, efd);
	cr_assert_eq(event_loop_add(&el, efd, EPOLLIN, &h), 0);
	cr_assert_eq(event_loop_add(&el, efd, EPOLLIN, &h), -EEXIST);
	cr_assert_eq(event_loop_add(&el, -1, EPOLLIN, &h), -EINVAL);
	cr_assert_eq(event_loop_add(&el, 100000, EPOLLIN, &h), -EBADF);
	cr_assert_eq(event_loop_add(&el, 0x7fff0000, EPOLLIN, &nofn), -EINVAL);
	cr_assert_eq(event_loop_mod(&el, 1000, EPOLLIN, &h), -ENOENT);
	cr_assert_eq(event_loop_del(&el, efd), 0);
	cr_assert_eq(event_loop_del(&el, efd), -ENOENT);
	cr_assert_eq(event_loop_del(&el, -5), -ENOENT);
	close(efd);
}

Test(event, del_stops_calls)
{
	int efd = eventfd(0, EFD_NONBLOCK);
	struct rec r;
	struct event_handler h = {.fn = on_event, .ctx = &r};

	rec_init(&r, &el, efd);
	cr_assert_eq(event_loop_add(&el, efd, EPOLLIN, &h), 0);
	cr_assert_eq(event_loop_start(&el), 0);
	kick(efd);
	cr_assert(wait_for(&r.calls, 1));
	cr_assert_eq(event_loop_del(&el, efd), 0);
	kick(efd);
	sleep_ms(30);
	cr_assert_eq(r.calls, 1);
	/* Added again, it works again. */
	cr_assert_eq(event_loop_add(&el, efd, EPOLLIN, &h), 0);
	cr_assert(wait_for(&r.calls, 2));
	event_loop_stop(&el);
	close(efd);
}

/*
 * Two fds ready in the same epoll batch, each handler removing the other:
 * whichever runs first, the other is not called afterwards.
 */
Test(event, del_from_handler_drops_collected_events)
{
	int a = eventfd(0, EFD_NONBLOCK), b = eventfd(0, EFD_NONBLOCK);
	struct rec ra, rb;
	struct event_handler ha = {.fn = on_event, .ctx = &ra};
	struct event_handler hb = {.fn = on_event, .ctx = &rb};

	rec_init(&ra, &el, a);
	rec_init(&rb, &el, b);
	ra.del_fd = b;
	rb.del_fd = a;
	cr_assert_eq(event_loop_add(&el, a, EPOLLIN, &ha), 0);
	cr_assert_eq(event_loop_add(&el, b, EPOLLIN, &hb), 0);
	kick(a);
	kick(b);
	cr_assert_eq(event_loop_start(&el), 0);
	for (int i = 0; i < 200 && ra.calls + rb.calls == 0; i++)
		sleep_ms(1);
	sleep_ms(30);
	cr_assert_eq(ra.calls + rb.calls, 1);
	cr_assert_eq(ra.del_err + rb.del_err, 0);
	event_loop_stop(&el);
	close(a);
	close(b);
}

Test(event, del_sync_waits_for_running_handler)
{
	int efd = eventfd(0, EFD_NONBLOCK);
	struct rec r;
	struct event_handler h = {.fn = on_event, .ctx = &r};

	rec_init(&r, &el, efd);
	r.sleep_ms = 100;
	cr_assert_eq(event_loop_add(&el, efd, EPOLLIN, &h), 0);
	cr_assert_eq(event_loop_start(&el), 0);
	kick(efd);
	cr_assert(wait_for(&r.calls, 1));
	cr_assert_eq(r.done, 0);
	cr_assert_eq(event_loop_del_sync(&el, efd), 0);
	cr_assert_eq(r.done, 1);
	event_loop_stop(&el);
	close(efd);
}

Test(event, del_sync_of_itself_from_handler)
{
	int efd = eventfd(0, EFD_NONBLOCK);
	struct rec r;
	struct event_handler h = {.fn = on_event, .ctx = &r};

	rec_init(&r, &el, efd);
	r.del_fd = efd;
	r.del_sync = true;
	cr_assert_eq(event_loop_add(&el, efd, EPOLLIN, &h), 0);
	cr_assert_eq(event_loop_start(&el), 0);
	kick(efd);
	cr_assert(wait_for(&r.done, 1));
	cr_assert_eq(r.del_err, 0);
	kick(efd);
	sleep_ms(20);
	cr_assert_eq(r.calls, 1);
	event_loop_stop(&el);
	close(efd);
}

Test(event, stop_waits_for_handler_and_restart_works)
{
	int efd = eventfd(0, EFD_NONBLOCK);
	struct rec r;
	struct event_handler h = {.fn = on_event, .ctx = &r};

	rec_init(&r, &el, efd);
	r.sleep_ms = 50;
	cr_assert_eq(event_loop_add(&el, efd, EPOLLIN, &h), 0);
	cr_assert_eq(event_loop_start(&el), 0);
	cr_assert_eq(event_loop_start(&el), -EBUSY);
	kick(efd);
	cr_assert(wait_for(&r.calls, 1));
	event_loop_stop(&el);
	cr_assert_eq(r.done, 1);
	/* Stopped: events wait for the next start. */
	kick(efd);
	sleep_ms(20);
	cr_assert_eq(r.calls, 1);
	r.sleep_ms = 0;
	cr_assert_eq(event_loop_start(&el), 0);
	cr_assert(wait_for(&r.calls, 2));
	event_loop_stop(&el);
	event_loop_stop(&el); /* twice is harmless */
	close(efd);
}

Test(event, stop_from_handler_is_ignored)
{
	int efd = eventfd(0, EFD_NONBLOCK);
	struct rec r;
	struct event_handler h = {.fn = on_event, .ctx = &r};

	rec_init(&r, &el, efd);
	r.stop = true;
	cr_assert_eq(event_loop_add(&el, efd, EPOLLIN, &h), 0);
	cr_assert_eq(event_loop_start(&el), 0);
	kick(efd);
	cr_assert(wait_for(&r.done, 1));
	r.stop = false;
	kick(efd);
	cr_assert(wait_for(&r.done, 2));
	event_loop_stop(&el);
	close(efd);
}

Test(event, many_fds)
{
	enum { N = 200 };
	int fds[N];
	struct rec r[N];
	struct event_handler h[N];

	for (int i = 0; i < N; i++) {
		fds[i] = eventfd(0, EFD_NONBLOCK);
		cr_assert_geq(fds[i], 0);
		rec_init(&r[i], &el, fds[i]);
		h[i] = (struct event_handler){.fn = on_event, .ctx = &r[i]};
		cr_assert_eq(event_loop_add(&el, fds[i], EPOLLIN, &h[i]), 0);
		kick(fds[i]);
	}
	cr_assert_eq(event_loop_start(&el), 0);
	for (int i = 0; i < N; i++)
		cr_assert(wait_for(&r[i].calls, 1), "fd %d", i);
	event_loop_stop(&el);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(r[i].calls, 1);
		close(fds[i]);
	}
}

Test(event, destroy_without_start)
{
	int efd = eventfd(0, EFD_NONBLOCK);
	struct rec r;
	struct event_handler h = {.fn = on_event, .ctx = &r};

	rec_init(&r, &el, efd);
	cr_assert_eq(event_loop_add(&el, efd, EPOLLIN, &h), 0);
	close(efd);
}
