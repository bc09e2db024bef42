#include "vmm/dev/sleep.h"

#include <stdbool.h>
#include <string.h>

#include "vmm/x86/layout.h"

#define OFF_CTL (LAYOUT_PORT_SLEEP_CTL - LAYOUT_PORT_SLEEP_CTL)
#define OFF_STS (LAYOUT_PORT_SLEEP_STS - LAYOUT_PORT_SLEEP_CTL)

/* Returns true when the guest asked for S5. */
static bool write_ctl(struct sleep *sl, uint8_t val)
{
	unsigned int typ = (val & SLEEP_CTL_SLP_TYP_MASK) >> SLEEP_CTL_SLP_TYP_SHIFT;

	if (!(val & SLEEP_CTL_SLP_EN))
		return false;
	if (typ == LAYOUT_SLP_TYP_S5)
		return true;
	log_ratelimited(&sl->rl, LOG_WARN, "acpi: sleep type %u not supported, guest resumed", typ);
	sl->status |= SLEEP_STS_WAK;
	return false;
}

static void sleep_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct sleep *sl = opaque;

	pthread_mutex_lock(&sl->lock);
	for (uint32_t i = 0; i < len; i++)
		data[i] = offset + i == OFF_STS ? sl->status : 0;
	pthread_mutex_unlock(&sl->lock);
}

/* A wider access is split into byte accesses at consecutive ports. */
static void sleep_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct sleep *sl = opaque;
	bool off = false;

	pthread_mutex_lock(&sl->lock);
	for (uint32_t i = 0; i < len; i++) {
		if (offset + i == OFF_CTL)
			off |= write_ctl(sl, data[i]);
		else if (offset + i == OFF_STS)
			sl->status &= ~(data[i] & SLEEP_STS_WAK);
	}
	pthread_mutex_unlock(&sl->lock);
	if (off) {
		log_info("acpi: guest entered S5, powering off");
		if (sl->cfg.poweroff)
			sl->cfg.poweroff(sl->cfg.ctx);
	}
}

const struct bus_dev_ops sleep_ops = {
    .read = sleep_read,
    .write = sleep_write,
};

int sleep_init(struct sleep *sl, const struct sleep_config *cfg)
{
	int err;

	memset(sl, 0, sizeof(*sl));
	err = pthread_mutex_init(&sl->lock, NULL);
	if (err)
		return -err;
	sl->cfg = *cfg;
	sl->rl = (struct ratelimit)RATELIMIT_INIT(5000, 5);
	return 0;
}

void sleep_destroy(struct sleep *sl)
{
	pthread_mutex_destroy(&sl->lock);
}
