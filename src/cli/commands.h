/* The ember command table: one entry per verb, one file per verb group. */
#ifndef EMBER_CLI_COMMANDS_H
#define EMBER_CLI_COMMANDS_H

struct command {
	const char *name;
	const char *summary;
	int (*main)(int argc, char **argv); /* argv[0] is the verb */
};

int cmd_run(int argc, char **argv);

#endif
