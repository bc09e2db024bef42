#include "vmm/event.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/log.h"

/* epoll data of the wake eventfd; real fds carry (gen << 32 | fd). */
#define WAKE_TOKEN UINT64_MAX
#define BATCH 64

int event_loop_init(struct event_loop *el)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKE_TOKEN};
	int err;

	memset(el, 0, sizeof(*el));
	el->wake_efd = -1;
	el->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (el->epfd < 0)
		return -errno;
	el->wake_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (el->wake_efd < 0) {
		err = -errno;
		goto err_close;
	}
	if (epoll_ctl(el->epfd, EPOLL_CTL_ADD, el->wake_efd, &ev) < 0) {
		err = -errno;
		goto err_close;
	}
	pthread_mutex_init(&el->lock, NULL);
	pthread_cond_init(&el->idle, NULL);
	return 0;

err_close:
	if (el->wake_efd >= 0)
		close(el->wake_efd);
	close(el->epfd);
	el->epfd = el->wake_efd = -1;
	return err;
}

void event_loop_destroy(struct event_loop *el)
{
	if (el->epfd < 0)
		return;
	event_loop_stop(el);
	close(el->wake_efd);
	close(el->epfd);
	free(el->slots);
	pthread_mutex_destroy(&el->lock);
	pthread_cond_destroy(&el->idle);
	el->slots = NULL;
	el->nslots = 0;
	el->epfd = el->wake_efd = -1;
}

/* Makes slots[fd] exist. Called with the lock held. */
static int slots_grow(struct event_loop *el, int fd)
{
	unsigned int n = el->nslots ? el->nslots : 64;
	struct event_slot *s;

	if ((unsigned int)fd < el->nslots)
		return 0;
	while (n <= (unsigned int)fd)
		n *= 2;
	s = realloc(el->slots, n * sizeof(*s));
	if (!s)
		return -ENOMEM;
	memset(s + el->nslots, 0, (n - el->nslots) * sizeof(*s));
	el->slots = s;
	el->nslots = n;
	return 0;
}

static struct event_slot *slot_get(struct event_loop *el, int fd)
{
	if (fd < 0 || (unsigned int)fd >= el->nslots || !el->slots[fd].h)
		return NULL;
	return &el->slots[fd];
}

static int epoll_set(struct event_loop *el, int op, int fd, uint32_t events, uint32_t gen)
{
	struct epoll_event ev = {.events = events, .data.u64 = (uint64_t)gen << 32 | (uint32_t)fd};

	return epoll_ctl(el->epfd, op, fd, &ev) < 0 ? -errno : 0;
}

int event_loop_add(struct event_loop *el, int fd, uint32_t events, struct event_handler *h)
{
	int err;

	if (fd < 0 || !h || !h->fn)
		return -EINVAL;
	pthread_mutex_lock(&el->lock);
	err = slots_grow(el, fd);
	if (err)
		goto out;
	if (el->slots[fd].h) {
		err = -EEXIST;
		goto out;
	}
	el->next_gen++;
	err = epoll_set(el, EPOLL_CTL_ADD, fd, events, el->next_gen);
	if (!err)
		el->slots[fd] = (struct event_slot){.h = h, .gen = el->next_gen};
out:
	pthread_mutex_unlock(&el->lock);
	return err;
}

int event_loop_mod(struct event_loop *el, int fd, uint32_t events, struct event_handler *h)
{
	struct event_slot *s;
	int err;

	if (!h || !h->fn)
		return -EINVAL;
	pthread_mutex_lock(&el->lock);
	s = slot_get(el, fd);
	err = s ? epoll_set(el, EPOLL_CTL_MOD, fd, events, s->gen) : -ENOENT;
	if (!err)
		s->h = h;
	pthread_mutex_unlock(&el->lock);
	return err;
}

/* Called with the lock held; returns the removed handler in *h. */
static int del_locked(struct event_loop *el, int fd, struct event_handler **h)
{
	struct event_slot *s = slot_get(el, fd);
	int err;

	if (!s)
		return -ENOENT;
	/* An fd closed before del has left the epoll set already (EBADF/ENOENT). */
	err = epoll_ctl(el->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 ? -errno : 0;
	if (err == -EBADF || err == -ENOENT)
		err = 0;
	*h = s->h;
	s->h = NULL;
	return err;
}

int event_loop_del(struct event_loop *el, int fd)
{
	struct event_handler *h;
	int err;

	pthread_mutex_lock(&el->lock);
	err = del_locked(el, fd, &h);
	pthread_mutex_unlock(&el->lock);
	return err;
}

/* Called with the lock held. */
static bool on_loop_thread(const struct event_loop *el)
{
	return el->loop_tid == gettid();
}

int event_loop_del_sync(struct event_loop *el, int fd)
{
	struct event_handler *h = NULL;
	int err;

	pthread_mutex_lock(&el->lock);
	err = del_locked(el, fd, &h);
	if (h && !on_loop_thread(el))
		while (el->current == h)
			pthread_cond_wait(&el->idle, &el->lock);
	pthread_mutex_unlock(&el->lock);
	return err;
}

/* Calls the handler an event belongs to, unless it was removed or replaced. */
static void dispatch(struct event_loop *el, const struct epoll_event *ev)
{
	int fd = (int)(uint32_t)ev->data.u64;
	uint32_t gen = (uint32_t)(ev->data.u64 >> 32);
	struct event_slot *s;
	struct event_handler *h = NULL;

	pthread_mutex_lock(&el->lock);
	s = slot_get(el, fd);
	if (s && s->gen == gen)
		h = s->h;
	el->current = h;
	pthread_mutex_unlock(&el->lock);
	if (!h)
		return;
	h->fn(h->ctx, ev->events);
	pthread_mutex_lock(&el->lock);
	el->current = NULL;
	pthread_cond_broadcast(&el->idle);
	pthread_mutex_unlock(&el->lock);
}

static bool loop_stopping(struct event_loop *el)
{
	uint64_t v;
	bool stop;

	if (read(el->wake_efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_err("event loop: read eventfd: %s", strerror(errno));
	pthread_mutex_lock(&el->lock);
	stop = el->stopping;
	pthread_mutex_unlock(&el->lock);
	return stop;
}

static void *loop_thread(void *arg)
{
	struct event_loop *el = arg;
	struct epoll_event evs[BATCH];

	pthread_mutex_lock(&el->lock);
	el->loop_tid = gettid();
	pthread_mutex_unlock(&el->lock);
	for (;;) {
		int n = epoll_wait(el->epfd, evs, BATCH, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_err("event loop: epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 != WAKE_TOKEN)
				dispatch(el, &evs[i]);
			else if (loop_stopping(el))
				goto out;
		}
	}
out:
	pthread_mutex_lock(&el->lock);
	el->loop_tid = 0;
	pthread_mutex_unlock(&el->lock);
	return NULL;
}

int event_loop_start(struct event_loop *el)
{
	sigset_t all, old;
	int err;

	if (el->running)
		return -EBUSY;
	el->stopping = false;
	/* Signals go to other threads: block them all in the new thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = -pthread_create(&el->thread, NULL, loop_thread, el);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return err;
	pthread_setname_np(el->thread, "ember-event");
	el->running = true;
	return 0;
}

void event_loop_stop(struct event_loop *el)
{
	uint64_t one = 1;

	if (!el->running)
		return;
	pthread_mutex_lock(&el->lock);
	if (on_loop_thread(el)) {
		pthread_mutex_unlock(&el->lock);
		log_err("event loop: stop called from a handler; ignored");
		return;
	}
	el->stopping = true;
	pthread_mutex_unlock(&el->lock);
	if (write(el->wake_efd, &one, sizeof(one)) < 0)
		log_err("event loop: write eventfd: %s", strerror(errno));
	pthread_join(el->thread, NULL);
	el->running = false;
}
