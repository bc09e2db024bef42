/*
 * ember's test guest: shared definitions. The guest is freestanding; it runs
 * its body at CPL 3 (IOPL 3 plus an all-ports TSS I/O bitmap) over a
 * user-accessible identity map of guest RAM, so port and MMIO accesses exit
 * to the monitor while plain code runs natively. See README.md for the
 * serial protocol.
 */
#ifndef EMBER_GUEST_H
#define EMBER_GUEST_H

/* Selectors; must match the GDT in entry.S. */
#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UDATA 0x1b
#define SEL_UCODE 0x23
#define SEL_TSS 0x28

#define BOOT_PVH 1
#define BOOT_BZIMAGE 2

/*
 * System calls from CPL 3 are an int3 with a tagged function number in RAX:
 * int $0x80 and friends are not delivered to the guest on every host (PVM
 * takes int $0x80 for itself), exceptions are.
 */
#define SYSCALL_VECTOR 3
#define SYS_TAG 0x454d424552000000ull /* "EMBER" */
#define SYS_TRIPLEFAULT (SYS_TAG | 1)
#define SYS_CALL0 (SYS_TAG | 2) /* RDI(RSI) at CPL 0, then back */

/* Where the APs' real-mode trampoline is copied (must be RAM, < 1 MiB). */
#define TRAMPOLINE_ADDR 0x3000

/* COM1, an 8250/16550. */
#define COM1 0x3f8
#define UART_RBR 0
#define UART_IER 1
#define UART_IIR 2
#define UART_LSR 5
#define IER_ERBFI 0x01
#define IIR_RX_DATA 0x04
#define LSR_DR 0x01
#define LSR_THRE 0x20

#define CMDLINE_MAX 4096 /* bytes including the NUL; bzImage cmdline_size+1 */
#define MEMMAP_MAX 128
#define E820_RAM 1

#ifndef __ASSEMBLER__
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mem_range {
	uint64_t start;
	uint64_t end; /* exclusive */
	uint32_t type;
};

/* What the boot protocol told us, copied out of the monitor's pages. */
struct boot_info {
	int boot;
	char cmdline[CMDLINE_MAX];
	struct mem_range mem[MEMMAP_MAX];
	unsigned int nmem;
	uint64_t initrd_addr;
	uint64_t initrd_size;
	uint64_t rsdp;
};

/* Registers as pushed by trap_common in entry.S. */
struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};

/* Port and memory access. Ports work at CPL 3 because IOPL is 3. */
static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;

	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline void cpu_relax(void)
{
	__asm__ volatile("pause" ::: "memory");
}

/* Waits a little: hlt at CPL 0 (cheap where CPL 0 is emulated), else pause. */
static inline void cpu_idle(void)
{
	uint16_t cs;

	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	if (cs & 3)
		__asm__ volatile("pause" ::: "memory");
	else
		__asm__ volatile("cli; hlt" ::: "memory");
}

/* Physical memory through the identity map (opaque to gcc's bounds checks). */
static inline void *phys(uint64_t addr)
{
	__asm__("" : "+r"(addr));
	return (void *)(uintptr_t)addr;
}

static inline uint32_t mmio_read32(uint64_t addr)
{
	return *(volatile uint32_t *)phys(addr);
}

static inline void mmio_write32(uint64_t addr, uint32_t v)
{
	*(volatile uint32_t *)phys(addr) = v;
}

/* Whether [addr, addr+len) is mapped (below 4 GiB; more after map_high). */
bool phys_ok(uint64_t addr, uint64_t len);
void tsc_delay(uint64_t cycles);

/* lib.c */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/* serial.c: COM1 */
void serial_putc(char c);
void serial_vprintf(const char *fmt, va_list ap);
void gprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool serial_rx_ready(void);
uint8_t serial_getc(void);

/* main.c: "guest: FAIL <msg>\n", counted. */
void gfail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
unsigned int fail_count(void);

/* bootinfo.c */
void bootinfo_parse(struct boot_info *bi, int boot, uint64_t ptr);

/* acpi.c */
struct acpi_info {
	uint64_t rsdp;
	uint64_t fadt;
	uint64_t dsdt;
	uint64_t madt;
	unsigned int tables;
	unsigned int lapics;
	uint64_t lapic_addr;
	unsigned int slp_typ;	/* S5 SLP_TYP from the DSDT (default 5) */
	uint32_t apic_ids[256]; /* enabled LAPICs from the MADT */
};
void acpi_scan(struct acpi_info *ai, uint64_t rsdp_hint);
void acpi_poweroff(const struct acpi_info *ai);

/* rtc.c */
bool rtc_print(void);
int rtc_read_seconds(void);

/* smp.c */
unsigned int smp_start_aps(const struct acpi_info *ai, const struct boot_info *bi);

/* main.c: command-line words (whole words separated by spaces). */
const char *cmdline_word(const char *s, const char *key, size_t *len);
bool cmdline_has(const char *s, const char *word);
uint64_t cmdline_num(const char *s, const char *key, uint64_t dflt);

/* pci.c: bus 0, configuration space through ECAM (MCFG) or ports 0xcf8/0xcfc. */
#define PCI_MAX_FNS 32
struct pci_fn {
	uint8_t dev;
	uint16_t vendor, device;
};
struct pci_bus {
	uint64_t ecam;		       /* 0: mechanism #1 through 0xcf8 */
	uint64_t win_next, win_end;    /* where unassigned BARs are placed */
	struct pci_fn fn[PCI_MAX_FNS]; /* function 0 of each present device */
	unsigned int nfn;
};
void pci_init(struct pci_bus *pb, uint64_t rsdp);
uint32_t pci_read32(const struct pci_bus *pb, uint8_t dev, uint16_t off);
void pci_write32(const struct pci_bus *pb, uint8_t dev, uint16_t off, uint32_t v);
uint8_t pci_read8(const struct pci_bus *pb, uint8_t dev, uint16_t off);
uint16_t pci_read16(const struct pci_bus *pb, uint8_t dev, uint16_t off);
void pci_write16(const struct pci_bus *pb, uint8_t dev, uint16_t off, uint16_t v);
/* A memory BAR's address (assigned here if 0 or unreachable), 0 if none. */
uint64_t pci_bar(struct pci_bus *pb, uint8_t dev, unsigned int bar);

/* virtio.c: the virtio actions, run between memcheck and "guest: ok". */
void virtio_run(const struct boot_info *bi, const struct acpi_info *ai);

/* virtio*.c: a polling virtio 1.x PCI driver (modern transport, split rings). */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLK 2
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_BALLOON 5
#define VIRTIO_ID_VSOCK 19
#define VIRTIO_F_VERSION_1 32
#define VIRTQ_MAX 3
#define VIRTIO_TIMEOUT 30000000000ull /* TSC cycles (10-15 s) for a reply */

struct virtq {
	uint16_t index, size;
	uint64_t desc, avail, used; /* guest-physical = virtual (identity map) */
	uint64_t notify;	    /* where to write the queue index */
	uint16_t avail_idx, used_idx, next_desc;
};

struct virtio_dev {
	struct pci_bus *pb;
	uint8_t slot;			      /* PCI device number */
	unsigned int type, nth;		      /* virtio device type; nth of that type */
	uint64_t common, notify, isr, devcfg; /* capability addresses */
	uint32_t notify_mult;
	uint64_t features; /* negotiated */
	struct virtq q[VIRTQ_MAX];
	unsigned int nq;
};

/* The run's shared state: bus, scratch memory, command-line parameters. */
struct virtio_ctx {
	struct pci_bus pb;
	const struct boot_info *bi;
	uint64_t mem_next, mem_end; /* bump allocator for rings and buffers */
	uint32_t seed;
};

struct vbuf {
	uint64_t addr;
	uint32_t len;
	bool device_writes;
};

/* Zeroed, 4 KiB-aligned scratch memory; gfail and NULL when it runs out. */
void *virtio_alloc(struct virtio_ctx *c, uint64_t len);
/*
 * Reset, ACKNOWLEDGE, DRIVER, features (VERSION_1 + wanted & offered),
 * FEATURES_OK, nq queues of at most qsize entries, DRIVER_OK. 0, or -1
 * after a gfail.
 */
int virtio_start(struct virtio_ctx *c, struct virtio_dev *v, uint64_t want, unsigned int nq,
		 uint16_t qsize);
void virtio_reset(struct virtio_dev *v);
bool virtio_offered(struct virtio_dev *v, unsigned int bit);
uint32_t virtio_cfg32(const struct virtio_dev *v, unsigned int off);
uint64_t virtio_cfg64(const struct virtio_dev *v, unsigned int off);
void virtio_cfg_write32(const struct virtio_dev *v, unsigned int off, uint32_t val);
/* Publishes a chain (out buffers first); returns its head. Kicks. */
uint16_t virtq_add(struct virtq *q, const struct vbuf *b, unsigned int n);
/* Puts a used head back on the avail ring (receive buffers). Kicks. */
void virtq_repost(struct virtq *q, uint16_t head);
/*
 * Batching, for the benchmarks: virtq_post writes a chain at descriptors
 * first..first+n-1 (which the caller owns, no wrap) and virtq_publish puts
 * a head on the avail ring, neither kicks; virtq_notify then kicks once,
 * unless the device set VRING_USED_F_NO_NOTIFY.
 */
void virtq_post(struct virtq *q, uint16_t first, const struct vbuf *b, unsigned int n);
void virtq_publish(struct virtq *q, uint16_t head);
void virtq_notify(struct virtq *q);
/* One used entry if there is one. */
bool virtq_poll(struct virtq *q, uint32_t *head, uint32_t *len);
/* Waits (bounded) for one used entry; false on timeout. */
bool virtq_wait(struct virtq *q, uint32_t *head, uint32_t *len, uint64_t cycles);
/* Adds a chain and waits for it; bytes written, or -1 on timeout (gfail'd with what). */
long virtq_xfer(struct virtq *q, const struct vbuf *b, unsigned int n, const char *what);
void hexdump_line(const char *prefix, const uint8_t *p, unsigned int n);

void virtio_blk_run(struct virtio_ctx *c, struct virtio_dev *v);
void virtio_rng_run(struct virtio_ctx *c, struct virtio_dev *v);
void virtio_net_run(struct virtio_ctx *c, struct virtio_dev *v);
void virtio_vsock_run(struct virtio_ctx *c, struct virtio_dev *v);
void virtio_balloon_run(struct virtio_ctx *c, struct virtio_dev *v);
/* bench_*.c: throughput actions, timed by the host from their serial lines. */
void bench_blk_run(struct virtio_ctx *c, struct virtio_dev *v);
void bench_net_run(struct virtio_ctx *c, struct virtio_dev *v);
/* bench_cpu.c: action=bench-cpu and action=idle, after "guest: ok". */
void bench_cpu_run(const struct boot_info *bi);
void bench_idle_run(const struct acpi_info *ai, const struct boot_info *bi);

/* main.c */
void guest_main(int boot, uint64_t info);
void trap_handle(struct trap_frame *f);

/* hostile.c: action=garbage|jump-unmapped|bad-idt|apic-garbage, after "guest: ok". */
enum hostile_action { HOSTILE_GARBAGE, HOSTILE_JUMP_UNMAPPED, HOSTILE_BAD_IDT, HOSTILE_APIC_GARBAGE };
void hostile_run(enum hostile_action a, const struct boot_info *bi, const struct acpi_info *ai);
/* From trap_handle: true when a hostile action expected the exception (reported). */
bool hostile_trap(struct trap_frame *f);

/* entry.S */
extern char __image_start[], __image_end[];
extern char ap_trampoline[], ap_trampoline_end[], ap_count[];
extern const uint64_t trap_stubs[];
extern uint8_t idt[];
extern uint64_t pdpt[512];
void cpu_triplefault(void) __attribute__((noreturn));
void syscall0(uint64_t nr);

#endif /* __ASSEMBLER__ */
#endif
