/* CMOS RTC (MC146818) through ports 0x70/0x71. */
#include "guest.h"

#define CMOS_INDEX 0x70
#define CMOS_DATA 0x71
#define RTC_SEC 0x00
#define RTC_MIN 0x02
#define RTC_HOUR 0x04
#define RTC_DAY 0x07
#define RTC_MON 0x08
#define RTC_YEAR 0x09
#define RTC_REG_A 0x0a
#define RTC_REG_B 0x0b
#define RTC_CENTURY 0x32
#define REG_A_UIP 0x80
#define REG_B_24H 0x02
#define REG_B_BIN 0x04
#define HOUR_PM 0x80
#define UIP_POLLS 100000 /* the update takes < 2 ms; a stuck UIP is a bug */

static uint8_t cmos(uint8_t reg)
{
	outb(CMOS_INDEX, reg);
	return inb(CMOS_DATA);
}

static bool wait_uip_clear(void)
{
	for (int i = 0; i < UIP_POLLS; i++)
		if (!(cmos(RTC_REG_A) & REG_A_UIP))
			return true;
	return false;
}

static unsigned int bcd(uint8_t v, bool binary)
{
	return binary ? v : (v >> 4) * 10 + (v & 0xf);
}

/* Raw seconds register, or -1 while an update is in progress. */
int rtc_read_seconds(void)
{
	if (cmos(RTC_REG_A) & REG_A_UIP)
		return -1;
	return cmos(RTC_SEC);
}

bool rtc_print(void)
{
	uint8_t r[7], again[7];
	const uint8_t regs[7] = {RTC_SEC, RTC_MIN,  RTC_HOUR,	RTC_DAY,
				 RTC_MON, RTC_YEAR, RTC_CENTURY};
	int tries = 0;

	/* Read until two passes agree, so no update slipped in between. */
	do {
		if (!wait_uip_clear()) {
			gfail("rtc update-in-progress never clears");
			return false;
		}
		for (int i = 0; i < 7; i++)
			r[i] = cmos(regs[i]);
		for (int i = 0; i < 7; i++)
			again[i] = cmos(regs[i]);
	} while (memcmp(r, again, sizeof(r)) && ++tries < 5);

	uint8_t b = cmos(RTC_REG_B);
	bool bin = b & REG_B_BIN;
	bool pm = !(b & REG_B_24H) && (r[2] & HOUR_PM);
	unsigned int sec = bcd(r[0], bin), min = bcd(r[1], bin);
	unsigned int hour = bcd(r[2] & ~HOUR_PM, bin), day = bcd(r[3], bin);
	unsigned int mon = bcd(r[4], bin), year = bcd(r[5], bin);
	unsigned int cent = bcd(r[6], bin);

	if (!(b & REG_B_24H))
		hour = hour % 12 + (pm ? 12 : 0);
	if (cent < 19 || cent > 99)
		cent = 20;
	gprintf("guest: rtc %u%02u-%02u-%02u %02u:%02u:%02u\n", cent, year, mon, day, hour, min,
		sec);
	if (sec > 59 || min > 59 || hour > 23 || !day || day > 31 || !mon || mon > 12 ||
	    year > 99) {
		gfail("rtc invalid date/time (register B 0x%x)", b);
		return false;
	}
	return true;
}
