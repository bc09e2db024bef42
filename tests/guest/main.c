/*
 * ember's test guest: reports what the monitor gave it on COM1, checks it,
 * then performs the action the command line asks for. Runs at CPL 3 apart
 * from trap_handle(). The output protocol is in README.md.
 */
#include "guest.h"

#define IDT_INTR_GATE 0x8e /* present, DPL 0, 64-bit interrupt gate */
#define IDT_USER_GATE 0xee /* same, DPL 3: the int3 system call */
#define FNV_OFFSET 0x811c9dc5u
#define FNV_PRIME 0x01000193u
#define PIC1_DATA 0x21
#define PIC2_DATA 0xa1
#define I8042_CMD 0x64
#define I8042_RESET 0xfe
#define HIGH_GIB 28		   /* RAM mapped above 4 GiB, in GiB */
#define PTE_TABLE 0x07		   /* present, writable, user */
#define PTE_LEAF 0x87		   /* same, 2 MiB page */
#define ACTION_GRACE 3000000000ull /* cycles to wait for an exit to land */

static struct boot_info g_boot;
static struct acpi_info g_acpi;
static unsigned int g_fails;
static unsigned int g_trap_depth;
static uint64_t g_phys_limit = 1ull << 32; /* .data: valid before bss init */

void gfail(const char *fmt, ...)
{
	va_list ap;

	gprintf("guest: FAIL ");
	va_start(ap, fmt);
	serial_vprintf(fmt, ap);
	va_end(ap);
	serial_putc('\n');
	g_fails++;
}

unsigned int fail_count(void)
{
	return g_fails;
}

bool phys_ok(uint64_t addr, uint64_t len)
{
	return addr + len >= addr && addr + len <= g_phys_limit;
}

/*
 * RAM above 4 GiB: 2 MiB pages in page directories from the bss, filled
 * natively here and hooked into the (so far empty) PDPT slots afterwards.
 */
static void map_high(const struct boot_info *bi)
{
	static uint64_t pds[HIGH_GIB][512] __attribute__((aligned(4096)));
	uint64_t top = 0;
	unsigned int gib;

	for (unsigned int i = 0; i < bi->nmem; i++)
		if (bi->mem[i].type == E820_RAM && bi->mem[i].end > top)
			top = bi->mem[i].end;
	for (gib = 4; gib < 4 + HIGH_GIB && (uint64_t)gib << 30 < top; gib++) {
		uint64_t *pd = pds[gib - 4];

		for (uint64_t i = 0; i < 512; i++)
			pd[i] = ((uint64_t)gib << 30 | i << 21) | PTE_LEAF;
		pdpt[gib] = (uintptr_t)pd | PTE_TABLE;
	}
	g_phys_limit = (uint64_t)gib << 30;
}

static void idt_set(unsigned int vec, uint64_t handler, uint8_t attr)
{
	uint8_t *g = idt + vec * 16;
	uint16_t sel = SEL_KCODE;

	memset(g, 0, 16);
	memcpy(g + 0, &handler, 2);
	memcpy(g + 2, &sel, 2);
	g[5] = attr;
	memcpy(g + 6, (uint8_t *)&handler + 2, 6);
}

/* Gates are filled here, natively; entry.S already loaded the IDTR. */
static void idt_setup(void)
{
	for (unsigned int v = 0; v < 32; v++)
		idt_set(v, trap_stubs[v], IDT_INTR_GATE);
	idt_set(SYSCALL_VECTOR, trap_stubs[SYSCALL_VECTOR], IDT_USER_GATE);
}

void trap_handle(struct trap_frame *f)
{
	uint64_t cr2 = 0;

	if (f->vector == SYSCALL_VECTOR && (f->cs & 3) == 3) {
		if (f->rax == SYS_TRIPLEFAULT)
			cpu_triplefault();
		if (f->rax == SYS_CALL0) {
			((void (*)(void *))f->rdi)((void *)f->rsi);
			return;
		}
	}
	if (hostile_trap(f))
		return; /* an exception a hostile action asked for */
	if (g_trap_depth++)
		cpu_triplefault(); /* faulted while reporting: stop loudly */
	if (f->vector == 14)
		__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	gfail("exception vector=%lu rip=0x%lx error=0x%lx cs=0x%lx "
	      "rflags=0x%lx rsp=0x%lx cr2=0x%lx",
	      f->vector, f->rip, f->error, f->cs, f->rflags, f->rsp, cr2);
	gprintf("guest: failed\n");
	acpi_poweroff(&g_acpi);
}

static void print_memmap(const struct boot_info *bi)
{
	uint64_t ram = 0;

	for (unsigned int i = 0; i < bi->nmem; i++) {
		const struct mem_range *m = &bi->mem[i];

		gprintf("guest: mem 0x%lx 0x%lx %u\n", m->start, m->end, m->type);
		if (m->type == E820_RAM)
			ram += m->end - m->start;
	}
	gprintf("guest: mem total-ram=0x%lx\n", ram);
}

static void check_initrd(const struct boot_info *bi)
{
	uint64_t a = bi->initrd_addr, n = bi->initrd_size;
	uint32_t h = FNV_OFFSET;

	if (!n) {
		gprintf("guest: initrd none\n");
		return;
	}
	if (!phys_ok(a, n)) {
		gfail("initrd at 0x%lx size %lu not addressable", a, n);
		return;
	}
	for (const uint8_t *p = phys(a); n--; p++)
		h = (h ^ *p) * FNV_PRIME;
	gprintf("guest: initrd addr=0x%lx size=%lu fnv1a=0x%08x\n", a, bi->initrd_size, h);
}

static bool probe(uint64_t a)
{
	volatile uint64_t *p = phys(a);
	uint64_t old = *p, pat = 0x5a5aa5a5c3c33c3cull ^ a;
	bool ok;

	*p = pat;
	ok = *p == pat;
	*p = ~pat;
	ok = ok && *p == ~pat;
	*p = old;
	return ok;
}

/* First and last 8 bytes of every addressable RAM entry, except our image. */
static void memcheck(const struct boot_info *bi)
{
	uint64_t img_lo = (uintptr_t)__image_start;
	uint64_t img_hi = (uintptr_t)__image_end;
	unsigned int regions = 0, fails = g_fails;

	for (unsigned int i = 0; i < bi->nmem; i++) {
		const struct mem_range *m = &bi->mem[i];
		const uint64_t at[2] = {m->start, m->end - 8};
		bool checked = false;

		if (m->type != E820_RAM || m->end < m->start + 8 ||
		    !phys_ok(m->start, m->end - m->start))
			continue;
		for (int k = 0; k < 2; k++) {
			if (at[k] < img_hi && img_lo < at[k] + 8)
				continue;
			if (!probe(at[k]))
				gfail("memcheck 0x%lx", at[k]);
			checked = true;
		}
		regions += checked;
	}
	if (g_fails == fails)
		gprintf("guest: memcheck ok regions=%u\n", regions);
}

/* The value of the first "key=" word, its length in *len; NULL if none. */
const char *cmdline_word(const char *s, const char *key, size_t *len)
{
	size_t klen = strlen(key);

	while (*s) {
		while (*s == ' ')
			s++;
		const char *w = s;

		while (*s && *s != ' ')
			s++;
		if ((size_t)(s - w) >= klen && !memcmp(w, key, klen)) {
			*len = (size_t)(s - w) - klen;
			return w + klen;
		}
	}
	return NULL;
}

/* Whether `word` appears on the command line as a whole word. */
bool cmdline_has(const char *s, const char *word)
{
	size_t len;

	while ((s = cmdline_word(s, word, &len))) {
		if (!len)
			return true;
		s += len;
	}
	return false;
}

/* The decimal value of the first "key=" word; dflt if none or not a number. */
uint64_t cmdline_num(const char *s, const char *key, uint64_t dflt)
{
	size_t len;
	const char *v = cmdline_word(s, key, &len);
	uint64_t n = 0;

	if (!v || !len)
		return dflt;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return dflt;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	return n;
}

enum action { ACT_POWEROFF, ACT_RESET, ACT_ECHO, ACT_TRIPLEFAULT, ACT_SPIN, ACT_FAULT, ACT_SYSCALL,
	      ACT_BENCH_CPU, ACT_IDLE, ACT_GARBAGE, ACT_JUMP_UNMAPPED, ACT_BAD_IDT,
	      ACT_APIC_GARBAGE };
extern volatile uint16_t syscall_seen_cs;

static enum action parse_action(const char *cmdline)
{
	static const char *const names[] = {"poweroff",	   "reset", "echo",
					    "triplefault", "spin",  "fault", "syscall",
					    "bench-cpu",   "idle",  "garbage", "jump-unmapped",
					    "bad-idt",	   "apic-garbage"};
	size_t len;
	const char *v = cmdline_word(cmdline, "action=", &len);

	if (!v)
		return ACT_POWEROFF;
	for (unsigned int i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == len && !memcmp(v, names[i], len))
			return (enum action)i;
	char bad[64] = {0};

	memcpy(bad, v, len < sizeof(bad) - 1 ? len : sizeof(bad) - 1);
	gfail("unknown action '%s'", bad);
	return ACT_POWEROFF;
}

static void __attribute__((noreturn)) spin(void)
{
	for (;;)
		cpu_relax();
}

static void echo(void)
{
	char line[512];
	size_t n = 0;
	uint8_t iir = 0;
	bool first = true;

	gprintf("guest: echo ready\n");
	outb(COM1 + UART_IER, IER_ERBFI);
	for (;;) {
		while (!serial_rx_ready())
			cpu_relax();
		if (first)
			iir = inb(COM1 + UART_IIR);
		first = false;

		char c = (char)inb(COM1 + UART_RBR);

		if (c == '\n')
			break;
		if (n < sizeof(line) - 1)
			line[n++] = c;
	}
	outb(COM1 + UART_IER, 0);
	if (n && line[n - 1] == '\r')
		n--;
	line[n] = '\0';
	gprintf("guest: echo %s\n", line);
	if ((iir & 0x0f) == IIR_RX_DATA)
		gprintf("guest: echo iir ok\n");
	else
		gfail("echo iir 0x%x", iir);
}

void guest_main(int boot, uint64_t info)
{
	struct boot_info *bi = &g_boot;
	struct acpi_info *ai = &g_acpi;

	idt_setup();
	gprintf("guest: hello boot=%s\n", boot == BOOT_PVH ? "pvh" : "bzimage");
	/* No interrupts wanted, but some hosts force IF=1 at CPL 3 (PVM). */
	outb(PIC1_DATA, 0xff);
	outb(PIC2_DATA, 0xff);
	bootinfo_parse(bi, boot, info);
	map_high(bi);
	gprintf("guest: cmdline=%s\n", bi->cmdline);

	print_memmap(bi);
	check_initrd(bi);
	acpi_scan(ai, bi->rsdp);
	rtc_print();

	unsigned int online = smp_start_aps(ai, bi);

	gprintf("guest: cpus online=%u of %u\n", online, ai->lapics);
	if (ai->lapics && online != ai->lapics)
		gfail("cpus %u of %u started", online, ai->lapics);
	memcheck(bi);
	virtio_run(bi, ai);

	enum action act = parse_action(bi->cmdline);

	gprintf(g_fails ? "guest: failed\n" : "guest: ok\n");

	switch (act) {
	case ACT_POWEROFF:
		break;
	case ACT_RESET:
		gprintf("guest: reset\n");
		outb(I8042_CMD, I8042_RESET);
		tsc_delay(ACTION_GRACE);
		gfail("reset");
		spin();
	case ACT_ECHO:
		echo();
		break;
	case ACT_TRIPLEFAULT:
		gprintf("guest: triplefault\n");
		syscall0(SYS_TRIPLEFAULT);
		gfail("triplefault");
		spin();
	case ACT_SPIN:
		gprintf("guest: spin\n");
		spin();
	case ACT_FAULT:
		/* Exercises the exception path: #UD at CPL 3 gets reported. */
		gprintf("guest: fault\n");
		__asm__ volatile("ud2");
		break;
	case ACT_SYSCALL:
		gprintf("guest: syscall\n");
		__asm__ volatile("syscall" ::: "rcx", "r11", "rax", "memory");
		gprintf("guest: syscall returned cs=0x%x\n", (unsigned int)syscall_seen_cs);
		break;
	case ACT_BENCH_CPU:
		bench_cpu_run(bi);
		break;
	case ACT_IDLE:
		bench_idle_run(ai, bi);
		break;
	case ACT_GARBAGE:
	case ACT_JUMP_UNMAPPED:
	case ACT_BAD_IDT:
	case ACT_APIC_GARBAGE:
		hostile_run((enum hostile_action)(HOSTILE_GARBAGE + (act - ACT_GARBAGE)), bi, ai);
		break;
	}
	acpi_poweroff(ai);
}
