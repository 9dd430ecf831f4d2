/* SPDX-License-Identifier: MIT */
/*
 * Counters: summed on read from every reactor's own block and the acceptor's. Readers may
 * run on any thread; each field is read with a relaxed atomic load, so a sum is a close
 * snapshot, not a transaction.
 */
#include "reactor.h"
#include "rt.h"

#include <tern/error.h>

#include <stdio.h>
#include <string.h>

void tern__counters_add(tern_stats *o, const tern__counters *c)
{
    o->connections_open += tern__read(&c->open);
    o->connections_accepted += tern__read(&c->accepted);
    o->connections_outgoing += tern__read(&c->outgoing);
    o->connections_closed += tern__read(&c->closed);
    o->connections_rejected += tern__read(&c->rejected);
    o->handoff_full += tern__read(&c->handoff_full);
    o->bytes_in += tern__read(&c->bytes_in);
    o->bytes_out += tern__read(&c->bytes_out);
    o->tasks_run += tern__read(&c->tasks_run);
    o->mailbox_full += tern__read(&c->mailbox_full);
    o->accept_emfile += tern__read(&c->accept_emfile);
    o->accept_enfile += tern__read(&c->accept_enfile);
    o->accept_enomem += tern__read(&c->accept_enomem);
    o->accept_other += tern__read(&c->accept_other);
    o->accept_paused += tern__read(&c->accept_paused);
    o->timeouts_idle += tern__read(&c->timeouts_idle);
    o->timeouts_connect += tern__read(&c->timeouts_connect);
    o->resets += tern__read(&c->resets);
    o->handshakes += tern__read(&c->handshakes);
    o->handshake_failures += tern__read(&c->handshake_failures);
    o->handshakes_resumed += tern__read(&c->handshakes_resumed);
    o->handshakes_psk += tern__read(&c->handshakes_psk);
    o->psk_lookups += tern__read(&c->psk_lookups);
    o->psk_unknown += tern__read(&c->psk_unknown);
    o->psk_bad_key += tern__read(&c->psk_bad_key);
    o->psk_timeouts += tern__read(&c->psk_timeouts);
    o->psk_overload += tern__read(&c->psk_overload);
    o->psk_store_errors += tern__read(&c->psk_store_errors);
    o->psk_pending += tern__read(&c->psk_pending);
    o->psk_no_suite += tern__read(&c->psk_no_suite);
}

static void add_reactor(tern_stats *out, const tern_reactor *r)
{
    tern__counters_add(out, &r->counters);
    out->mailbox_depth += tern__queue_size(&r->mailbox.tasks);
}

int tern_runtime_stats(const tern_runtime *rt, tern_stats *out)
{
    if (rt == NULL || out == NULL) {
        return TERN_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < rt->nreactors; i++) {
        add_reactor(out, rt->reactors[i]);
    }
    tern__counters_add(out, &rt->acceptor_counters);
    return 0;
}

int tern_runtime_reactor_stats(const tern_runtime *rt, unsigned i, tern_stats *out)
{
    if (rt == NULL || out == NULL || i >= rt->nreactors) {
        return TERN_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    add_reactor(out, rt->reactors[i]);
    return 0;
}

/* One table drives both formats, so they never disagree. */
#define TERN__STATS_FIELDS(XX)                                                                  \
    XX(connections_open)                                                                       \
    XX(connections_accepted)                                                                   \
    XX(connections_outgoing)                                                                   \
    XX(connections_closed)                                                                     \
    XX(connections_rejected)                                                                   \
    XX(handoff_full)                                                                           \
    XX(bytes_in)                                                                               \
    XX(bytes_out)                                                                              \
    XX(tasks_run)                                                                              \
    XX(mailbox_full)                                                                           \
    XX(mailbox_depth)                                                                          \
    XX(accept_emfile)                                                                          \
    XX(accept_enfile)                                                                          \
    XX(accept_enomem)                                                                          \
    XX(accept_other)                                                                           \
    XX(accept_paused)                                                                          \
    XX(timeouts_idle)                                                                          \
    XX(timeouts_connect)                                                                       \
    XX(resets)                                                                                 \
    XX(handshakes)                                                                             \
    XX(handshake_failures)                                                                     \
    XX(handshakes_resumed)                                                                     \
    XX(handshakes_psk)                                                                         \
    XX(psk_lookups)                                                                            \
    XX(psk_unknown)                                                                            \
    XX(psk_bad_key)                                                                            \
    XX(psk_timeouts)                                                                           \
    XX(psk_overload)                                                                           \
    XX(psk_store_errors)                                                                       \
    XX(psk_pending)                                                                            \
    XX(psk_no_suite)

ssize_t tern_stats_format(const tern_stats *st, enum tern_stats_format_kind kind, char *buf,
                          size_t len)
{
    size_t off = 0;
    bool json = kind == TERN_STATS_JSON;
    bool first = true;

    if (st == NULL || (buf == NULL && len > 0) ||
        (kind != TERN_STATS_TEXT && kind != TERN_STATS_JSON)) {
        return TERN_EINVAL;
    }
    if (len > 0) {
        buf[0] = '\0';
    }
#define APPEND(...)                                                                             \
    do {                                                                                       \
        int n_ = snprintf(off < len ? buf + off : NULL, off < len ? len - off : 0, __VA_ARGS__); \
        if (n_ > 0) {                                                                          \
            off += (size_t)n_;                                                                 \
        }                                                                                      \
    } while (0)
    if (json) {
        APPEND("{");
    }
#define XX(f)                                                                                   \
    APPEND(json ? "%s\"%s\":%llu" : "%s%s=%llu", first ? "" : (json ? "," : " "), #f,          \
           (unsigned long long)st->f);                                                         \
    first = false;
    TERN__STATS_FIELDS(XX)
#undef XX
    if (json) {
        APPEND("}");
    }
#undef APPEND
    return (ssize_t)off;
}
