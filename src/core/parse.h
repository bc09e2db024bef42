/* Strict number parsing for user input: no sign, no junk, no overflow. */
#ifndef EMBER_CORE_PARSE_H
#define EMBER_CORE_PARSE_H

#include <stdint.h>

/* Decimal (or 0x hex) unsigned integer; 0 or -EINVAL / -ERANGE. */
int parse_u64(const char *s, uint64_t *out);

#endif
