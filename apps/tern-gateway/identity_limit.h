/* SPDX-License-Identifier: MIT */
/*
 * tern-gateway: open connections per PSK identity (identity_limit.c). @thread any (one mutex)
 */
#ifndef TERN_GATEWAY_IDENTITY_LIMIT_H
#define TERN_GATEWAY_IDENTITY_LIMIT_H

#include <stddef.h>
#include <stdint.h>

/** The table. @return 0; -1 (memory). @thread setup */
int gw_ident_table_init(void);
void gw_ident_table_destroy(void);

/** Takes a slot for @p id. @return 1 taken; 0 over @p limit; -1 out of memory. */
int gw_ident_acquire(const uint8_t *id, size_t len, unsigned limit);

/** The connections @p id holds now (slots taken). */
unsigned gw_ident_open(const uint8_t *id, size_t len);

/** Gives a slot back. */
void gw_ident_release(const uint8_t *id, size_t len);

#endif
