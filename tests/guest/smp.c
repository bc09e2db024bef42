/*
 * Start the APs listed in the MADT with INIT-SIPI-SIPI through the boot
 * CPU's xAPIC (MMIO, from CPL 3). Each AP runs ap_trampoline in real mode:
 * it increments a counter and halts.
 */
#include "guest.h"

#define LAPIC_DEFAULT 0xfee00000ull
#define LAPIC_ID 0x20
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define SVR_ENABLE 0x100
#define ICR_BUSY (1u << 12)
#define ICR_INIT 0x4500	   /* INIT, level assert */
#define ICR_STARTUP 0x4600 /* Start-up, vector = page number */
#define ICR_POLLS 100000

/* Generous bounds: AP start-up runs emulated on ember's hosts. */
#define INIT_DELAY 20000000ull /* cycles; ~10 ms at 2 GHz */
#define SIPI_DELAY 1000000ull  /* ~200 us+ */
#define WAIT_MAX 8000000000ull /* if the RTC does not tick */
#define WAIT_RTC_TICKS 2       /* 1-2 s by the RTC */

static void icr_send(uint64_t lapic, uint32_t apic_id, uint32_t cmd)
{
	for (int i = 0; i < ICR_POLLS; i++)
		if (!(mmio_read32(lapic + LAPIC_ICR_LO) & ICR_BUSY))
			break;
	mmio_write32(lapic + LAPIC_ICR_HI, apic_id << 24);
	mmio_write32(lapic + LAPIC_ICR_LO, cmd);
}

static bool page_is_ram(const struct boot_info *bi, uint64_t page)
{
	for (unsigned int i = 0; i < bi->nmem; i++)
		if (bi->mem[i].type == E820_RAM && bi->mem[i].start <= page &&
		    page + 4096 <= bi->mem[i].end)
			return true;
	return false;
}

/* Waits until @want APs checked in, 1-2 RTC seconds passed, or WAIT_MAX. */
static uint32_t wait_aps(volatile uint32_t *count, uint32_t want)
{
	uint64_t start = rdtsc();
	int last = -1, ticks = 0;

	while (*count < want && ticks < WAIT_RTC_TICKS && rdtsc() - start < WAIT_MAX) {
		int s = rtc_read_seconds();

		if (s >= 0 && s != last) {
			ticks += last >= 0;
			last = s;
		}
		tsc_delay(100000);
	}
	return *count;
}

unsigned int smp_start_aps(const struct acpi_info *ai, const struct boot_info *bi)
{
	uint64_t lapic = ai->lapic_addr ? ai->lapic_addr : LAPIC_DEFAULT;
	size_t tsize = (size_t)(ap_trampoline_end - ap_trampoline);
	volatile uint32_t *count = phys(TRAMPOLINE_ADDR + (uint64_t)(ap_count - ap_trampoline));
	unsigned int n = ai->lapics;
	uint32_t want = 0;

	if (n > sizeof(ai->apic_ids) / sizeof(uint32_t))
		n = sizeof(ai->apic_ids) / sizeof(uint32_t);
	if (n <= 1)
		return 1;
	if (!page_is_ram(bi, TRAMPOLINE_ADDR)) {
		gfail("cpus trampoline page 0x%x is not RAM", TRAMPOLINE_ADDR);
		return 1;
	}
	if (!phys_ok(lapic, 0x400)) {
		gfail("cpus local APIC at 0x%lx not addressable", lapic);
		return 1;
	}
	memcpy(phys(TRAMPOLINE_ADDR), ap_trampoline, tsize);
	*count = 0;

	uint32_t bsp = mmio_read32(lapic + LAPIC_ID) >> 24;

	mmio_write32(lapic + LAPIC_SVR, mmio_read32(lapic + LAPIC_SVR) | SVR_ENABLE);
	for (unsigned int i = 0; i < n; i++)
		if (ai->apic_ids[i] != bsp && ai->apic_ids[i] < 0xff) {
			icr_send(lapic, ai->apic_ids[i], ICR_INIT);
			want++;
		}
	tsc_delay(INIT_DELAY);
	for (int round = 0; round < 2; round++) {
		for (unsigned int i = 0; i < n; i++)
			if (ai->apic_ids[i] != bsp && ai->apic_ids[i] < 0xff)
				icr_send(lapic, ai->apic_ids[i],
					 ICR_STARTUP | TRAMPOLINE_ADDR >> 12);
		tsc_delay(SIPI_DELAY);
	}
	return 1 + wait_aps(count, want);
}
