/* SPDX-License-Identifier: MIT */
/*
 * Hex digits, as the programs read them (keys in files, Redis and options; escapes in logs).
 */
#ifndef TERN_APPS_HEX_H
#define TERN_APPS_HEX_H

#include <stddef.h>
#include <stdint.h>

/** The value of hex digit @p c (either case), or -1. */
int app_hex_digit(int c);

/**
 * Decodes the @p n hex digits at @p p into @p out (room for @p cap bytes).
 * @return the byte count (n / 2); 0 if @p n is odd, n / 2 > @p cap, or a digit is not hex
 *         (what was written is wiped: the digits are often a key).
 */
size_t app_hex_decode(const char *p, size_t n, uint8_t *out, size_t cap);

#endif
