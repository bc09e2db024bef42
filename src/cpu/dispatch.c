/* The dispatch tables: [map][opcode][mandatory prefix] -> handler. */
#include <pthread.h>

#include "cpu/cpu.h"
#include "cpu/insn.h"

insn_handler cpu_dispatch[MAP_COUNT][256][4];

void exec_ud(struct cpu *cpu, const struct insn *in)
{
	(void)in;
	cpu_fault(cpu, EXC_UD, 0);
}

/* Called once (cpu_init, pthread_once): every slot #UD, then each part's own. */
void dispatch_init(void)
{
	for (int m = 0; m < MAP_COUNT; m++)
		for (int o = 0; o < 256; o++)
			for (int p = 0; p < 4; p++)
				cpu_dispatch[m][o][p] = exec_ud;
	exec_int_register();
	exec_sys_register();
	exec_fpu_register();
	exec_sse_register();
}
