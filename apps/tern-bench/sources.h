/* SPDX-License-Identifier: MIT */
/*
 * tern-bench's --source-addrs: the local addresses connections are made from, in turn.
 * Parsed once by main() before the run; the list is read-only afterwards.
 */
#ifndef TERN_BENCH_SOURCES_H
#define TERN_BENCH_SOURCES_H

#include "load.h"

/** The most addresses one --source-addrs may name. */
#define BENCH_MAX_SOURCES 65536

/**
 * Parses @p text into cfg->sources / cfg->nsources: comma-separated numeric addresses (IPv4
 * or IPv6), IPv4 ranges A-B (both ends included) and IPv4 CIDR blocks A/LEN (every address
 * of the block, network and broadcast included: on loopback each is a usable source, and a
 * /24 such as 127.0.1.0/24 gives 256 of them). A bad item exits with status 2 and one line
 * naming it (app_opt_fail).
 */
void bench_parse_sources(const char *text, struct bench_config *cfg);

#endif
