/*
 * Entry paths of ember's test guest (linked at 1 MiB), descriptor tables,
 * static page tables, trap stubs and the APs' real-mode trampoline.
 *
 *   0x100000  bzImage 32-bit entry (code32_start): ESI = boot_params
 *   0x100200  bzImage 64-bit entry: long mode, RSI = boot_params
 *   pvh_entry PVH (Xen ELF note PHYS32_ENTRY): 32-bit, EBX = hvm_start_info
 *
 * Every path loads our own GDT and page tables, goes to common64, which sets
 * up the TSS and IDT and drops to CPL 3 (IOPL 3) to run guest_main() natively:
 * CPL 0 code is emulated (slowly) on ember's test hosts, so little runs there.
 */
#include "guest.h"

#define PTE_P 0x01
#define PTE_RW 0x02
#define PTE_US 0x04
#define PTE_PWT 0x08
#define PTE_PCD 0x10
#define PTE_PS 0x80
#define PTE_LEAF (PTE_P | PTE_RW | PTE_US | PTE_PS)

#define MSR_EFER 0xc0000080
#define SUPERVISOR_ALIAS 0xffffff8000000000
#define EFER_LME 0x100
#define CR0_PE 0x1
#define CR0_PG 0x80000000
#define CR4_PAE 0x20
#define RFLAGS_USER 0x3002 /* IOPL 3, IF 0, reserved bit 1 */

	.section .text.head, "ax"
	.code32
	.globl bz_entry32
bz_entry32:
	cli
	cld
	movl $BOOT_BZIMAGE, %edi
	jmp enter_long32

	/* Boot protocol 2.15 kernel_info; mkbzimage finds it by its magic. */
	.org 0x100
kernel_info:
	.ascii "LToP"
	.long kernel_info_end - kernel_info /* size */
	.long kernel_info_end - kernel_info /* size_total */
	.long 0                             /* setup_type_max */
kernel_info_end:

	.org 0x200
	.code64
	.globl bz_entry64
bz_entry64:
	cli
	cld
	movl $BOOT_BZIMAGE, %edi
	movl $kstack_top, %esp /* the boot protocol promises no stack */
	lgdt gdt_ptr(%rip)
	movl $pml4, %eax
	movq %rax, %cr3
	pushq $SEL_KCODE
	pushq $common64
	lretq

	.text
	.code32
	.globl pvh_entry
pvh_entry:
	cli
	cld
	movl %ebx, %esi
	movl $BOOT_PVH, %edi
	/* EDI = boot type, ESI = boot info pointer; 32-bit, paging off. */
enter_long32:
	lgdt gdt_ptr
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl %cr0, %eax
	orl $(CR0_PG | CR0_PE), %eax
	movl %eax, %cr0
	ljmp $SEL_KCODE, $from32

	.code64
from32:
	/* Upper halves are undefined after the switch. */
	movl %esi, %esi
	movl %edi, %edi
common64:
	movl $SEL_KDATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movl $kstack_top, %esp
	/* TSS base into its descriptor (split fields, so done at run time). */
	movl $tss, %eax
	movw %ax, gdt_tss + 2
	shrl $16, %eax
	movb %al, gdt_tss + 4
	movb %ah, gdt_tss + 7
	movw $SEL_TSS, %ax
	ltr %ax
	lidt idt_ptr
	/* syscall/sysret: STAR (kernel CS 0x08, user base 0x10), LSTAR, SFMASK, EFER.SCE. */
	movl $0xc0000081, %ecx
	xorl %eax, %eax
	movl $0x00130008, %edx
	wrmsr
	/* LSTAR in the supervisor-only alias, as a kernel's entry is: user code cannot fetch it. */
	movl $0xc0000082, %ecx
	movabsq $(SUPERVISOR_ALIAS + syscall_entry), %rax
	movq %rax, %rdx
	shrq $32, %rdx
	wrmsr
	movl $0xc0000084, %ecx
	xorl %eax, %eax
	wrmsr
	movl $MSR_EFER, %ecx
	rdmsr
	orl $1, %eax
	wrmsr
	/* To CPL 3; guest_main fills the IDT gates natively. */
	pushq $SEL_UDATA
	pushq $ustack_top
	pushq $RFLAGS_USER
	pushq $SEL_UCODE
	pushq $user_entry
	iretq

user_entry:
	movq %rdi, %r12
	movq %rsi, %r13
	movl $__bss_start, %edi
	movl $__bss_end, %ecx
	subl %edi, %ecx
	xorl %eax, %eax
	rep stosb
	movq %r12, %rdi
	movq %r13, %rsi
	call guest_main
1:	pause
	jmp 1b

/* Exceptions and the syscall gate: push a uniform frame, call trap_handle. */
	.macro TRAPSTUB vec
	.balign 16
trap_stub_\vec:
	nop /* as Linux's ASM_CLAC without SMAP: room for ember's syscall fixup */
	.if !(\vec == 8 || \vec == 10 || \vec == 11 || \vec == 12 || \vec == 13 || \vec == 14 || \vec == 17 || \vec == 21 || \vec == 29 || \vec == 30)
	pushq $0
	.endif
	pushq $\vec
	jmp trap_common
	.endm

	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	TRAPSTUB \v
	.endr

trap_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi
	cld
	call trap_handle
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp
	iretq

	/*
	 * CPL 0: empty IDT, then #UD -> #GP -> #DF -> shutdown. (Not int3:
	 * KVM's emulator, which runs CPL 0 code on some hosts, can't do it.)
	 */
	.globl cpu_triplefault
cpu_triplefault:
	lidt idt_empty
	ud2
1:	hlt
	jmp 1b

	/* syscall lands here at CPL 0: record CS, return with sysretq. */
	.globl syscall_entry, syscall_seen_cs
syscall_entry:
	movw %cs, %ax
	movw %ax, syscall_seen_cs(%rip)
	sysretq

	.globl syscall0
syscall0:
	movq %rdi, %rax
	int3
	ret

/*
 * The APs' trampoline, copied to TRAMPOLINE_ADDR and started by SIPI in real
 * mode with CS = TRAMPOLINE_ADDR >> 4: count ourselves in, then park.
 */
	.code16
	.globl ap_trampoline, ap_trampoline_end, ap_count
ap_trampoline:
	cli
	lock incl %cs:(ap_count - ap_trampoline)
1:	hlt
	jmp 1b
	.balign 4
ap_count:
	.long 0
ap_trampoline_end:
	.code64

	.section .rodata
	.balign 8
	.globl trap_stubs
trap_stubs:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad trap_stub_\v
	.endr

/* PVH entry note (Xen ELF note type 18, XEN_ELFNOTE_PHYS32_ENTRY). */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4     /* namesz */
	.long 4     /* descsz */
	.long 18    /* type */
	.asciz "Xen"
	.long pvh_entry

	.data
	.balign 16
gdt:
	.quad 0
	.quad 0x00af9a000000ffff /* 0x08 kernel code, 64-bit */
	.quad 0x00cf92000000ffff /* 0x10 kernel data */
	.quad 0x00cff2000000ffff /* 0x18 user data, DPL 3 */
	.quad 0x00affa000000ffff /* 0x20 user code, 64-bit, DPL 3 */
gdt_tss:
	.quad 0x0000890000000000 + (tss_end - tss - 1) /* 0x28 64-bit TSS; base set later */
	.quad 0
gdt_end:

	.balign 8
	.word 0, 0, 0
gdt_ptr:
	.word gdt_end - gdt - 1
	.quad gdt

	.word 0, 0, 0
idt_ptr:
	.word 256 * 16 - 1
	.quad idt

	.word 0, 0, 0
idt_empty:
	.word 0
	.quad 0

	/*
	 * 64-bit TSS with an I/O bitmap allowing every port: hosts that run
	 * guest CPL 3 without the guest's IOPL (PVM) check the bitmap when
	 * they emulate the trapped in/out.
	 */
	.balign 16
tss:
	.long 0
	.quad kstack_top /* RSP0 */
	.fill 88, 1, 0
	.word tss_iomap - tss
tss_iomap:
	.fill 8192, 1, 0
	.byte 0xff       /* the bitmap ends with a byte of ones */
tss_end:

	.balign 16
	.globl idt
idt:
	.fill 256 * 16, 1, 0

/*
 * Identity map, user-accessible: 0-4 GiB with 2 MiB pages (3-4 GiB, where
 * the devices live, uncached). RAM above 4 GiB is mapped at run time.
 */
	.balign 4096
	.globl pml4, pdpt
pml4:
	.quad pdpt + (PTE_P | PTE_RW | PTE_US)
	.fill 510, 8, 0
	/* 0xffffff8000000000: the same memory, supervisor only (no US), for LSTAR. */
	.quad pdpt + (PTE_P | PTE_RW)
pdpt:
	.quad pd + 0x0000 + (PTE_P | PTE_RW | PTE_US)
	.quad pd + 0x1000 + (PTE_P | PTE_RW | PTE_US)
	.quad pd + 0x2000 + (PTE_P | PTE_RW | PTE_US)
	.quad pd + 0x3000 + (PTE_P | PTE_RW | PTE_US)
	.fill 508, 8, 0 /* above 4 GiB: filled by map_high() in main.c */
pd:
	.set mib2, 0
	.rept 2048
	.if mib2 >= 1536
	.quad (mib2 << 21) + (PTE_LEAF | PTE_PCD | PTE_PWT)
	.else
	.quad (mib2 << 21) + PTE_LEAF
	.endif
	.set mib2, mib2 + 1
	.endr

	.section .stack, "aw", @nobits
	.balign 16
	.space 16384
kstack_top:
	.space 65536
ustack_top:

	.data
	.balign 8
syscall_seen_cs:
	.word 0xffff
