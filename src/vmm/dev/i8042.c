#include "vmm/dev/i8042.h"

#include <string.h>

/* Status register (port 0x64, read). */
#define STR_OBF 0x01
#define STR_IBF 0x02
#define STR_SYS 0x04
#define STR_CMD 0x08	  /* last write was to port 0x64 */
#define STR_UNLOCKED 0x10 /* keylock switch off; Linux warns when clear */
#define STR_AUXDATA 0x20
#define STR_TIMEOUT 0x40

/* Controller configuration byte (CTR). */
#define CTR_KBDINT 0x01
#define CTR_AUXINT 0x02
#define CTR_SYS 0x04
#define CTR_KBDDIS 0x10
#define CTR_AUXDIS 0x20
#define CTR_XLATE 0x40
/* As firmware leaves it: keyboard on with interrupts, translated, no AUX. */
#define CTR_DEFAULT (CTR_XLATE | CTR_AUXDIS | CTR_SYS | CTR_KBDINT)

/* Output port (0xd0/0xd1). */
#define OUT_RESET_N 0x01 /* 0 holds the CPU in reset */
#define OUT_A20 0x02
#define OUT_KBD_OBF 0x10
#define OUT_AUX_OBF 0x20

/* Controller commands. */
#define CMD_READ_RAM 0x20  /* .. 0x3f */
#define CMD_WRITE_RAM 0x60 /* .. 0x7f */
#define CMD_PASSWORD_TEST 0xa4
#define CMD_AUX_DISABLE 0xa7
#define CMD_AUX_ENABLE 0xa8
#define CMD_AUX_TEST 0xa9
#define CMD_SELF_TEST 0xaa
#define CMD_KBD_TEST 0xab
#define CMD_KBD_DISABLE 0xad
#define CMD_KBD_ENABLE 0xae
#define CMD_READ_INPUT 0xc0
#define CMD_READ_OUTPUT 0xd0
#define CMD_WRITE_OUTPUT 0xd1
#define CMD_WRITE_KBD_OBUF 0xd2
#define CMD_WRITE_AUX_OBUF 0xd3
#define CMD_WRITE_AUX 0xd4
#define CMD_A20_OFF 0xdd
#define CMD_A20_ON 0xdf
#define CMD_READ_TEST 0xe0
#define CMD_PULSE 0xf0 /* .. 0xff: pulse output port bits 3:0 low where clear */

#define REPLY_SELF_TEST_OK 0x55
#define REPLY_AUX_CLOCK_HIGH 0x02 /* AUX test: clock line stuck high */
#define REPLY_NO_PASSWORD 0xf1
#define AUX_LOOP_ABSENT 0xff

/* Keyboard commands and replies. */
#define KBD_SET_LEDS 0xed
#define KBD_ECHO 0xee
#define KBD_SCAN_SET 0xf0
#define KBD_IDENTIFY 0xf2
#define KBD_TYPEMATIC 0xf3
#define KBD_ENABLE 0xf4
#define KBD_DISABLE 0xf5
#define KBD_DEFAULTS 0xf6
#define KBD_RESEND 0xfe
#define KBD_RESET 0xff
#define KBD_ACK 0xfa
#define KBD_BAT_OK 0xaa
#define KBD_ID0 0xab
#define KBD_ID1 0x83
#define KBD_ID1_XLATED 0x41
#define KBD_TYPEMATIC_DEFAULT 0x2b

static uint8_t *ctr(struct i8042 *kbc)
{
	return &kbc->ram[0];
}

static void queue_put(struct i8042 *kbc, uint8_t val, uint8_t status)
{
	struct i8042_byte *b;

	if (kbc->count == I8042_QUEUE_SIZE) {
		log_ratelimited(&kbc->rl, LOG_WARN, "i8042: output buffer full, byte %#x dropped",
				val);
		return;
	}
	b = &kbc->queue[(kbc->head + kbc->count) % I8042_QUEUE_SIZE];
	b->val = val;
	b->status = status;
	kbc->count++;
}

static const struct i8042_byte *queue_head(const struct i8042 *kbc)
{
	return kbc->count ? &kbc->queue[kbc->head] : NULL;
}

/* A controller reply, delivered like keyboard data. */
static void reply(struct i8042 *kbc, uint8_t val)
{
	queue_put(kbc, val, 0);
}

static void kbd_send(struct i8042 *kbc, uint8_t val)
{
	kbc->kbd_last_sent = val;
	queue_put(kbc, val, 0);
}

static void update_irq(struct i8042 *kbc)
{
	const struct i8042_byte *b = queue_head(kbc);
	int kbd = b && !(b->status & STR_AUXDATA) && (*ctr(kbc) & CTR_KBDINT);
	int aux = b && (b->status & STR_AUXDATA) && (*ctr(kbc) & CTR_AUXINT);

	if (kbd != kbc->kbd_level) {
		kbc->kbd_level = kbd;
		irq_set(&kbc->cfg.kbd_irq, kbd);
	}
	if (aux != kbc->aux_level) {
		kbc->aux_level = aux;
		irq_set(&kbc->cfg.aux_irq, aux);
	}
}

/*
 * Drops both lines. Linux's handler reads one byte per interrupt, so the
 * next queued byte needs a fresh edge: lower here, update_irq() raises.
 */
static void lower_irqs(struct i8042 *kbc)
{
	if (kbc->kbd_level) {
		kbc->kbd_level = 0;
		irq_set(&kbc->cfg.kbd_irq, 0);
	}
	if (kbc->aux_level) {
		kbc->aux_level = 0;
		irq_set(&kbc->cfg.aux_irq, 0);
	}
}

static uint8_t read_status(struct i8042 *kbc)
{
	const struct i8042_byte *b = queue_head(kbc);
	uint8_t st = STR_UNLOCKED | (*ctr(kbc) & CTR_SYS ? STR_SYS : 0);

	if (kbc->last_write_cmd)
		st |= STR_CMD;
	if (b)
		st |= STR_OBF | b->status;
	return st;
}

static uint8_t read_data(struct i8042 *kbc)
{
	const struct i8042_byte *b = queue_head(kbc);

	if (b) {
		kbc->last_read = b->val;
		kbc->head = (kbc->head + 1) % I8042_QUEUE_SIZE;
		kbc->count--;
		lower_irqs(kbc);
	}
	return kbc->last_read;
}

static void kbd_defaults(struct i8042 *kbc)
{
	kbc->kbd_scan_set = 2;
	kbc->kbd_leds = 0;
	kbc->kbd_typematic = KBD_TYPEMATIC_DEFAULT;
}

/* Scan set numbers as they read through the controller's translation. */
static uint8_t scan_set_reply(struct i8042 *kbc)
{
	static const uint8_t xlated[4] = {0, 0x43, 0x41, 0x3f};

	if (*ctr(kbc) & CTR_XLATE)
		return xlated[kbc->kbd_scan_set & 3];
	return kbc->kbd_scan_set;
}

static void kbd_argument(struct i8042 *kbc, uint8_t cmd, uint8_t arg)
{
	kbd_send(kbc, KBD_ACK);
	switch (cmd) {
	case KBD_SET_LEDS:
		kbc->kbd_leds = arg & 0x07;
		break;
	case KBD_TYPEMATIC:
		kbc->kbd_typematic = arg & 0x7f;
		break;
	case KBD_SCAN_SET:
		if (arg == 0)
			kbd_send(kbc, scan_set_reply(kbc));
		else if (arg <= 3)
			kbc->kbd_scan_set = arg;
		break;
	}
}

static void kbd_command(struct i8042 *kbc, uint8_t val)
{
	if (kbc->kbd_pending_cmd) {
		uint8_t cmd = kbc->kbd_pending_cmd;

		kbc->kbd_pending_cmd = 0;
		kbd_argument(kbc, cmd, val);
		return;
	}
	switch (val) {
	case KBD_SET_LEDS:
	case KBD_SCAN_SET:
	case KBD_TYPEMATIC:
		kbc->kbd_pending_cmd = val;
		kbd_send(kbc, KBD_ACK);
		break;
	case KBD_ECHO:
		kbd_send(kbc, KBD_ECHO);
		break;
	case KBD_IDENTIFY:
		kbd_send(kbc, KBD_ACK);
		kbd_send(kbc, KBD_ID0);
		kbd_send(kbc, *ctr(kbc) & CTR_XLATE ? KBD_ID1_XLATED : KBD_ID1);
		break;
	case KBD_ENABLE:
		kbc->kbd_scanning = true;
		kbd_send(kbc, KBD_ACK);
		break;
	case KBD_DISABLE:
		kbc->kbd_scanning = false;
		kbd_defaults(kbc);
		kbd_send(kbc, KBD_ACK);
		break;
	case KBD_DEFAULTS:
		kbd_defaults(kbc);
		kbd_send(kbc, KBD_ACK);
		break;
	case KBD_RESEND:
		kbd_send(kbc, kbc->kbd_last_sent);
		break;
	case KBD_RESET:
		kbd_defaults(kbc);
		kbc->kbd_scanning = true;
		kbd_send(kbc, KBD_ACK);
		kbd_send(kbc, KBD_BAT_OK);
		break;
	default:
		/* Scan set 3 key-type commands and the rest: acknowledge. */
		kbd_send(kbc, KBD_ACK);
		break;
	}
}

/* A data byte that completes a controller command. Returns true to reset. */
static bool command_data(struct i8042 *kbc, uint8_t cmd, uint8_t val)
{
	if (cmd >= CMD_WRITE_RAM && cmd < CMD_WRITE_RAM + sizeof(kbc->ram)) {
		kbc->ram[cmd - CMD_WRITE_RAM] = val;
		return false;
	}
	switch (cmd) {
	case CMD_WRITE_OUTPUT:
		kbc->outport = val & ~(OUT_KBD_OBF | OUT_AUX_OBF);
		return !(val & OUT_RESET_N);
	case CMD_WRITE_KBD_OBUF:
		queue_put(kbc, val, 0);
		break;
	case CMD_WRITE_AUX_OBUF:
		queue_put(kbc, AUX_LOOP_ABSENT, STR_AUXDATA);
		break;
	case CMD_WRITE_AUX:
		queue_put(kbc, KBD_RESEND, STR_AUXDATA | STR_TIMEOUT);
		break;
	}
	return false;
}

static uint8_t read_outport(struct i8042 *kbc)
{
	const struct i8042_byte *b = queue_head(kbc);
	uint8_t v = kbc->outport;

	if (b)
		v |= (b->status & STR_AUXDATA) ? OUT_AUX_OBF : OUT_KBD_OBF;
	return v;
}

/* A byte written to port 0x64. Returns true to reset. */
static bool command(struct i8042 *kbc, uint8_t cmd)
{
	kbc->pending_cmd = 0;
	if (cmd >= CMD_READ_RAM && cmd < CMD_READ_RAM + sizeof(kbc->ram)) {
		reply(kbc, kbc->ram[cmd - CMD_READ_RAM]);
		return false;
	}
	if ((cmd >= CMD_WRITE_RAM && cmd < CMD_WRITE_RAM + sizeof(kbc->ram)) ||
	    (cmd >= CMD_WRITE_OUTPUT && cmd <= CMD_WRITE_AUX)) {
		kbc->pending_cmd = cmd;
		return false;
	}
	if (cmd >= CMD_PULSE)
		return !(cmd & OUT_RESET_N);
	switch (cmd) {
	case CMD_PASSWORD_TEST:
		reply(kbc, REPLY_NO_PASSWORD);
		break;
	case CMD_AUX_DISABLE:
		*ctr(kbc) |= CTR_AUXDIS;
		break;
	case CMD_AUX_ENABLE:
		*ctr(kbc) &= ~CTR_AUXDIS;
		break;
	case CMD_AUX_TEST:
		reply(kbc, REPLY_AUX_CLOCK_HIGH);
		break;
	case CMD_SELF_TEST:
		*ctr(kbc) |= CTR_SYS;
		reply(kbc, REPLY_SELF_TEST_OK);
		break;
	case CMD_KBD_TEST:
		reply(kbc, 0x00);
		break;
	case CMD_KBD_DISABLE:
		*ctr(kbc) |= CTR_KBDDIS;
		break;
	case CMD_KBD_ENABLE:
		*ctr(kbc) &= ~CTR_KBDDIS;
		break;
	case CMD_READ_INPUT:
		reply(kbc, 0x80); /* keyboard not inhibited */
		break;
	case CMD_READ_OUTPUT:
		reply(kbc, read_outport(kbc));
		break;
	case CMD_A20_OFF:
	case CMD_A20_ON:
		break; /* A20 is always on */
	case CMD_READ_TEST:
		reply(kbc, 0x00);
		break;
	default:
		log_ratelimited(&kbc->rl, LOG_WARN, "i8042: unknown command %#x ignored", cmd);
		break;
	}
	return false;
}

static bool write_data(struct i8042 *kbc, uint8_t val)
{
	uint8_t cmd = kbc->pending_cmd;

	kbc->last_write_cmd = 0;
	if (cmd) {
		kbc->pending_cmd = 0;
		return command_data(kbc, cmd, val);
	}
	kbd_command(kbc, val);
	return false;
}

static void finish(struct i8042 *kbc, bool reset)
{
	update_irq(kbc);
	pthread_mutex_unlock(&kbc->lock);
	if (reset) {
		log_info("i8042: guest pulsed the reset line");
		if (kbc->cfg.reset)
			kbc->cfg.reset(kbc->cfg.ctx);
	}
}

/* Each range is one port: only the first byte of a wider access touches it. */
static void fill_rest(uint8_t *data, uint32_t len)
{
	if (len > 1)
		memset(data + 1, 0xff, len - 1);
}

static void data_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct i8042 *kbc = opaque;

	fill_rest(data, len);
	if (offset != 0 || len == 0) {
		memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&kbc->lock);
	data[0] = read_data(kbc);
	finish(kbc, false);
}

static void data_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct i8042 *kbc = opaque;
	bool reset;

	if (offset != 0 || len == 0)
		return;
	pthread_mutex_lock(&kbc->lock);
	reset = write_data(kbc, data[0]);
	finish(kbc, reset);
}

static void cmd_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct i8042 *kbc = opaque;

	fill_rest(data, len);
	if (offset != 0 || len == 0) {
		memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&kbc->lock);
	data[0] = read_status(kbc);
	pthread_mutex_unlock(&kbc->lock);
}

static void cmd_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct i8042 *kbc = opaque;
	bool reset;

	if (offset != 0 || len == 0)
		return;
	pthread_mutex_lock(&kbc->lock);
	kbc->last_write_cmd = 1;
	reset = command(kbc, data[0]);
	finish(kbc, reset);
}

const struct bus_dev_ops i8042_data_ops = {
    .read = data_read,
    .write = data_write,
};

const struct bus_dev_ops i8042_cmd_ops = {
    .read = cmd_read,
    .write = cmd_write,
};

int i8042_init(struct i8042 *kbc, const struct i8042_config *cfg)
{
	int err;

	memset(kbc, 0, sizeof(*kbc));
	err = pthread_mutex_init(&kbc->lock, NULL);
	if (err)
		return -err;
	kbc->cfg = *cfg;
	kbc->rl = (struct ratelimit)RATELIMIT_INIT(5000, 5);
	*ctr(kbc) = CTR_DEFAULT;
	kbc->outport = OUT_RESET_N | OUT_A20;
	kbc->kbd_scanning = true;
	kbd_defaults(kbc);
	return 0;
}

void i8042_destroy(struct i8042 *kbc)
{
	pthread_mutex_destroy(&kbc->lock);
}
