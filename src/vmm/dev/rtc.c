#include "vmm/dev/rtc.h"

#include <errno.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

/* CMOS indices. */
#define REG_SEC 0x00
#define REG_SEC_ALARM 0x01
#define REG_MIN 0x02
#define REG_MIN_ALARM 0x03
#define REG_HOUR 0x04
#define REG_HOUR_ALARM 0x05
#define REG_WDAY 0x06
#define REG_MDAY 0x07
#define REG_MONTH 0x08
#define REG_YEAR 0x09
#define REG_A 0x0a
#define REG_B 0x0b
#define REG_C 0x0c
#define REG_D 0x0d
#define REG_CENTURY 0x32

#define A_UIP 0x80
#define A_DEFAULT 0x26 /* 32.768 kHz time base, 1024 Hz rate */
#define B_SET 0x80
#define B_PIE 0x40
#define B_AIE 0x20
#define B_UIE 0x10
#define B_DM_BINARY 0x04
#define B_24H 0x02
#define B_DEFAULT B_24H /* 24 hours, BCD */
#define C_IRQF 0x80
#define C_PF 0x40
#define C_AF 0x20
#define C_UF 0x10
#define D_VRT 0x80 /* the battery is fine */

#define HOUR_PM 0x80
#define ALARM_DONT_CARE 0xc0 /* alarm bytes 0xc0..0xff match any value */
#define UIP_NS (1000000000L - 244000L)

static const uint8_t time_regs[] = {REG_SEC,  REG_MIN,	 REG_HOUR, REG_WDAY,
				    REG_MDAY, REG_MONTH, REG_YEAR, REG_CENTURY};

static bool is_time_reg(uint8_t idx)
{
	for (size_t i = 0; i < sizeof(time_regs); i++)
		if (time_regs[i] == idx)
			return true;
	return false;
}

static int64_t host_now(const struct rtc *rtc, long *ns)
{
	struct timespec ts;

	if (rtc->cfg.now) {
		*ns = 0;
		return rtc->cfg.now(rtc->cfg.ctx);
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	*ns = ts.tv_nsec;
	return ts.tv_sec;
}

static int64_t guest_now(const struct rtc *rtc)
{
	long ns;

	return host_now(rtc, &ns) + rtc->offset;
}

static uint8_t encode(const struct rtc *rtc, int v)
{
	if (rtc->cmos[REG_B] & B_DM_BINARY)
		return (uint8_t)v;
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

/* Returns -1 for a byte that is not a number in the current mode. */
static int decode(const struct rtc *rtc, uint8_t b)
{
	if (rtc->cmos[REG_B] & B_DM_BINARY)
		return b;
	if ((b >> 4) > 9 || (b & 0xf) > 9)
		return -1;
	return (b >> 4) * 10 + (b & 0xf);
}

static uint8_t encode_hour(const struct rtc *rtc, int h)
{
	int h12 = h % 12 ? h % 12 : 12;

	if (rtc->cmos[REG_B] & B_24H)
		return encode(rtc, h);
	return encode(rtc, h12) | (h >= 12 ? HOUR_PM : 0);
}

static int decode_hour(const struct rtc *rtc, uint8_t b)
{
	int h;

	if (rtc->cmos[REG_B] & B_24H) {
		h = decode(rtc, b);
		return h >= 0 && h <= 23 ? h : -1;
	}
	h = decode(rtc, b & ~HOUR_PM);
	if (h < 1 || h > 12)
		return -1;
	return h % 12 + (b & HOUR_PM ? 12 : 0);
}

/* The time register idx as it reads for guest time t. */
static uint8_t time_reg_value(const struct rtc *rtc, uint8_t idx, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm))
		return 0;
	switch (idx) {
	case REG_SEC:
		return encode(rtc, tm.tm_sec);
	case REG_MIN:
		return encode(rtc, tm.tm_min);
	case REG_HOUR:
		return encode_hour(rtc, tm.tm_hour);
	case REG_WDAY:
		return encode(rtc, tm.tm_wday + 1);
	case REG_MDAY:
		return encode(rtc, tm.tm_mday);
	case REG_MONTH:
		return encode(rtc, tm.tm_mon + 1);
	case REG_YEAR:
		return encode(rtc, (tm.tm_year + 1900) % 100);
	case REG_CENTURY:
		return encode(rtc, ((tm.tm_year + 1900) / 100) % 100);
	}
	return 0;
}

/* Copies the running clock into the time registers (SET was raised). */
static void latch_time(struct rtc *rtc)
{
	int64_t t = guest_now(rtc);

	for (size_t i = 0; i < sizeof(time_regs); i++)
		rtc->cmos[time_regs[i]] = time_reg_value(rtc, time_regs[i], t);
}

static int decode_range(const struct rtc *rtc, uint8_t idx, int lo, int hi)
{
	int v = decode(rtc, rtc->cmos[idx]);

	return v >= lo && v <= hi ? v : -1;
}

/* Restarts the clock from the time registers the guest wrote. */
static void commit_time(struct rtc *rtc)
{
	struct tm tm = {0};
	int century = decode_range(rtc, REG_CENTURY, 0, 99);
	int year = decode_range(rtc, REG_YEAR, 0, 99);
	long ns;

	tm.tm_sec = decode_range(rtc, REG_SEC, 0, 59);
	tm.tm_min = decode_range(rtc, REG_MIN, 0, 59);
	tm.tm_hour = decode_hour(rtc, rtc->cmos[REG_HOUR]);
	tm.tm_mday = decode_range(rtc, REG_MDAY, 1, 31);
	tm.tm_mon = decode_range(rtc, REG_MONTH, 1, 12) - 1;
	if (tm.tm_sec < 0 || tm.tm_min < 0 || tm.tm_hour < 0 || tm.tm_mday < 0 || tm.tm_mon < 0 ||
	    year < 0 || century < 0) {
		log_ratelimited(
		    &rtc->rl, LOG_WARN,
		    "rtc: guest set an invalid time (%02x:%02x:%02x %02x/%02x/%02x%02x), "
		    "clock unchanged",
		    rtc->cmos[REG_HOUR], rtc->cmos[REG_MIN], rtc->cmos[REG_SEC],
		    rtc->cmos[REG_MDAY], rtc->cmos[REG_MONTH], rtc->cmos[REG_CENTURY],
		    rtc->cmos[REG_YEAR]);
		return;
	}
	tm.tm_year = century * 100 + year - 1900;
	rtc->offset = (int64_t)timegm(&tm) - host_now(rtc, &ns);
	rtc->last_tick = guest_now(rtc);
}

static bool alarm_matches(const struct rtc *rtc, uint8_t alarm_idx, uint8_t now)
{
	uint8_t a = rtc->cmos[alarm_idx];

	return (a & ALARM_DONT_CARE) == ALARM_DONT_CARE || a == now;
}

/* IRQF is the OR of each flag with its enable, as on the chip. */
static void compute_irqf(struct rtc *rtc)
{
	uint8_t b = rtc->cmos[REG_B], c = rtc->cmos[REG_C];

	if (((c & C_UF) && (b & B_UIE)) || ((c & C_AF) && (b & B_AIE)) ||
	    ((c & C_PF) && (b & B_PIE)))
		rtc->cmos[REG_C] |= C_IRQF;
	else
		rtc->cmos[REG_C] &= ~C_IRQF;
}

static void update_irq(struct rtc *rtc)
{
	int level;

	compute_irqf(rtc);
	level = !!(rtc->cmos[REG_C] & C_IRQF);
	if (level == rtc->irq_level)
		return;
	rtc->irq_level = level;
	irq_set(&rtc->cfg.irq, level);
}

/* An update cycle ended since the last look: raise UF, and AF on a match. */
static void check_update(struct rtc *rtc)
{
	int64_t t;

	if (rtc->cmos[REG_B] & B_SET)
		return; /* updates are inhibited */
	t = guest_now(rtc);
	if (t == rtc->last_tick)
		return;
	rtc->last_tick = t;
	rtc->cmos[REG_C] |= C_UF;
	if (alarm_matches(rtc, REG_SEC_ALARM, time_reg_value(rtc, REG_SEC, t)) &&
	    alarm_matches(rtc, REG_MIN_ALARM, time_reg_value(rtc, REG_MIN, t)) &&
	    alarm_matches(rtc, REG_HOUR_ALARM, time_reg_value(rtc, REG_HOUR, t)))
		rtc->cmos[REG_C] |= C_AF;
}

/* Ticks once a second, on the host clock's second boundary, while UIE or AIE is on. */
static void update_timer(struct rtc *rtc)
{
	uint8_t b = rtc->cmos[REG_B];
	bool want = (b & (B_UIE | B_AIE)) && !(b & B_SET);
	struct itimerspec its = {0};
	struct timespec now;

	if (want == rtc->timer_armed || rtc->timer_fd < 0)
		return;
	if (want) {
		clock_gettime(CLOCK_REALTIME, &now);
		its.it_value.tv_sec = now.tv_sec + 1;
		its.it_interval.tv_sec = 1;
	}
	if (timerfd_settime(rtc->timer_fd, want ? TFD_TIMER_ABSTIME : 0, &its, NULL)) {
		log_ratelimited(&rtc->rl, LOG_WARN, "rtc: timerfd_settime: %s", strerror(errno));
		return;
	}
	rtc->timer_armed = want;
}

static uint8_t read_a(const struct rtc *rtc)
{
	long ns;

	if (rtc->cfg.now || (rtc->cmos[REG_B] & B_SET))
		return rtc->cmos[REG_A];
	host_now(rtc, &ns);
	return rtc->cmos[REG_A] | (ns >= UIP_NS ? A_UIP : 0);
}

static uint8_t cmos_read(struct rtc *rtc, uint8_t idx)
{
	uint8_t v;

	if (is_time_reg(idx) && !(rtc->cmos[REG_B] & B_SET))
		return time_reg_value(rtc, idx, guest_now(rtc));
	switch (idx) {
	case REG_A:
		return read_a(rtc);
	case REG_C:
		check_update(rtc);
		compute_irqf(rtc);
		v = rtc->cmos[REG_C];
		rtc->cmos[REG_C] = 0;
		return v;
	default:
		return rtc->cmos[idx];
	}
}

static void write_b(struct rtc *rtc, uint8_t val)
{
	uint8_t old = rtc->cmos[REG_B];

	if (val & B_SET)
		val &= ~B_UIE; /* raising SET clears UIE on the chip */
	if ((val & B_PIE) && !(old & B_PIE))
		log_ratelimited(&rtc->rl, LOG_INFO, "rtc: periodic interrupts not supported");
	if (!(old & B_SET) && (val & B_SET)) {
		rtc->cmos[REG_B] = val;
		latch_time(rtc); /* in the format the guest now reads */
	} else if ((old & B_SET) && !(val & B_SET)) {
		commit_time(rtc); /* in the format the registers were written in */
		rtc->cmos[REG_B] = val;
	} else {
		rtc->cmos[REG_B] = val;
	}
	update_timer(rtc);
}

static void cmos_write(struct rtc *rtc, uint8_t idx, uint8_t val)
{
	if (is_time_reg(idx)) {
		if (rtc->cmos[REG_B] & B_SET) {
			rtc->cmos[idx] = val;
			return;
		}
		/* Without SET the write changes the running clock at once. */
		latch_time(rtc);
		rtc->cmos[idx] = val;
		commit_time(rtc);
		return;
	}
	switch (idx) {
	case REG_A:
		rtc->cmos[REG_A] = val & ~A_UIP;
		break;
	case REG_B:
		write_b(rtc, val);
		break;
	case REG_C:
	case REG_D:
		break; /* read-only */
	default:
		rtc->cmos[idx] = val;
		break;
	}
}

static uint8_t port_read(struct rtc *rtc, uint64_t off)
{
	if (off == 1)
		return cmos_read(rtc, rtc->index);
	return 0xff; /* the index port is write-only; beyond: nothing */
}

static void port_write(struct rtc *rtc, uint64_t off, uint8_t val)
{
	if (off == 0)
		rtc->index = val & 0x7f; /* bit 7 masks NMIs: nothing to mask here */
	else if (off == 1)
		cmos_write(rtc, rtc->index, val);
}

/* A wider access is split into byte accesses at consecutive ports, as the ISA bus does. */
static void rtc_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct rtc *rtc = opaque;

	pthread_mutex_lock(&rtc->lock);
	for (uint32_t i = 0; i < len; i++)
		data[i] = port_read(rtc, offset + i);
	update_irq(rtc);
	pthread_mutex_unlock(&rtc->lock);
}

static void rtc_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct rtc *rtc = opaque;

	pthread_mutex_lock(&rtc->lock);
	for (uint32_t i = 0; i < len; i++)
		port_write(rtc, offset + i, data[i]);
	update_irq(rtc);
	pthread_mutex_unlock(&rtc->lock);
}

const struct bus_dev_ops rtc_ops = {
    .read = rtc_read,
    .write = rtc_write,
};

int rtc_init(struct rtc *rtc, const struct rtc_config *cfg)
{
	int err;

	memset(rtc, 0, sizeof(*rtc));
	rtc->cfg = *cfg;
	rtc->rl = (struct ratelimit)RATELIMIT_INIT(5000, 5);
	rtc->timer_fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
	if (rtc->timer_fd < 0)
		return -errno;
	err = pthread_mutex_init(&rtc->lock, NULL);
	if (err) {
		close(rtc->timer_fd);
		return -err;
	}
	rtc->cmos[REG_A] = A_DEFAULT;
	rtc->cmos[REG_B] = B_DEFAULT;
	rtc->cmos[REG_D] = D_VRT;
	rtc->last_tick = guest_now(rtc);
	return 0;
}

void rtc_destroy(struct rtc *rtc)
{
	if (rtc->timer_fd >= 0)
		close(rtc->timer_fd);
	rtc->timer_fd = -1;
	pthread_mutex_destroy(&rtc->lock);
}

int rtc_nvram_set(struct rtc *rtc, uint8_t index, uint8_t val)
{
	if (index <= REG_D || index == REG_CENTURY || index >= RTC_CMOS_SIZE)
		return -EINVAL;
	pthread_mutex_lock(&rtc->lock);
	rtc->cmos[index] = val;
	pthread_mutex_unlock(&rtc->lock);
	return 0;
}

int rtc_timer_fd(const struct rtc *rtc)
{
	return rtc->timer_fd;
}

void rtc_timer_event(struct rtc *rtc)
{
	uint64_t expirations;

	/* Nonblocking: a spurious wakeup reads nothing and only updates. */
	if (read(rtc->timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		log_ratelimited(&rtc->rl, LOG_WARN, "rtc: read timerfd: %s", strerror(errno));
	rtc_update(rtc);
}

void rtc_update(struct rtc *rtc)
{
	pthread_mutex_lock(&rtc->lock);
	check_update(rtc);
	update_irq(rtc);
	pthread_mutex_unlock(&rtc->lock);
}
