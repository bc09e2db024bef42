/*
 * The CPU benchmark's loops for the host's native run (bench/cpubench.c),
 * built by bench/cpu.sh with the test guest's code generation flags so the
 * host runs the same instructions as the guest.
 */
#include "cpubench_kernels.h"
