/* SPDX-License-Identifier: MIT */
#include "hex.h"

#include <string.h>

int app_hex_digit(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

size_t app_hex_decode(const char *p, size_t n, uint8_t *out, size_t cap)
{
    if (n % 2 != 0 || n / 2 > cap) {
        return 0;
    }
    for (size_t i = 0; i < n; i += 2) {
        int hi = app_hex_digit((unsigned char)p[i]), lo = app_hex_digit((unsigned char)p[i + 1]);
        if (hi < 0 || lo < 0) {
            explicit_bzero(out, i / 2);
            return 0;
        }
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return n / 2;
}
