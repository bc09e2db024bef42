/* `ember run`: one VM in the foreground, console on stdio. */
#ifndef EMBER_VMM_VMM_H
#define EMBER_VMM_VMM_H

#include "vmm/config.h"

/* Runs the VM to its end; returns the process exit status. */
int vmm_run(const struct vm_config *cfg);

#endif
