/* SPDX-License-Identifier: MIT */
/*
 * Name lookups for outgoing connects. getaddrinfo blocks, so it runs on a worker thread
 * (DESIGN.md rule 4); the answer comes back to the socket's reactor as a message. The socket
 * may give up meanwhile (abort, free, timeout): it then clears `res->s`, and the answer only
 * frees the request. `res->s` is read and written on the owner thread only.
 */
#include "rt.h"
#include "socket.h"

#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Keeps up to TERN__MAX_ADDRS of getaddrinfo's answers (already in the order of RFC 6724), the
 * families alternating from the first one's (RFC 8305 section 4: IPv6, IPv4, IPv6...), each
 * family in its own order; duplicates dropped.
 */
static void interleave(struct tern__addrs *out, const struct addrinfo *ai)
{
    const struct addrinfo *fam[2] = {NULL, NULL}; /* the next of the first family, the other */
    int first = 0;

    out->n = out->next = 0;
    for (const struct addrinfo *p = ai; p != NULL; p = p->ai_next) {
        if ((p->ai_family == AF_INET || p->ai_family == AF_INET6) &&
            p->ai_addrlen <= sizeof(struct sockaddr_storage)) {
            first = p->ai_family;
            break;
        }
    }
    for (const struct addrinfo *p = ai; p != NULL; p = p->ai_next) {
        int k = p->ai_family == first ? 0 : 1;
        if (fam[k] == NULL && (p->ai_family == AF_INET || p->ai_family == AF_INET6)) {
            fam[k] = p;
        }
    }
    for (int turn = 0; out->n < TERN__MAX_ADDRS && (fam[0] != NULL || fam[1] != NULL);
         turn ^= 1) {
        const struct addrinfo *p = fam[turn];
        if (p == NULL) {
            continue;
        }
        bool dup = p->ai_addrlen > sizeof(struct sockaddr_storage);
        for (unsigned i = 0; i < out->n && !dup; i++) {
            dup = out->a[i].len == p->ai_addrlen && memcmp(&out->a[i].ss, p->ai_addr,
                                                           p->ai_addrlen) == 0;
        }
        if (!dup) {
            memcpy(&out->a[out->n].ss, p->ai_addr, p->ai_addrlen);
            out->a[out->n].len = p->ai_addrlen;
            out->n++;
        }
        /* the next of the same family */
        int want = p->ai_family;
        for (p = p->ai_next; p != NULL && p->ai_family != want; p = p->ai_next) {
        }
        fam[turn] = p;
    }
}

static void resolve_work(tern__worker_job *job)
{
    struct tern__resolve *res = container_of(job, struct tern__resolve, job);
    struct addrinfo hints, *ai = NULL;
    char port[8];

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = res->family;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
    snprintf(port, sizeof(port), "%u", res->port);
    res->gai = getaddrinfo(res->host, port, &hints, &ai);
    if (res->gai != 0 || ai == NULL) {
        res->err = TERN_E_RESOLVE;
    } else {
        interleave(&res->addrs, ai);
        res->err = res->addrs.n > 0 ? 0 : TERN_E_RESOLVE;
    }
    if (ai != NULL) {
        freeaddrinfo(ai);
    }
}

static void resolve_done(tern_reactor *r, void *arg)
{
    struct tern__resolve *res = arg;

    if (r != NULL && res->s != NULL) {
        tern__socket_resolved(res->s, res);
    }
    free(res);
}

int tern__resolve_start(tern_socket *s, const char *host, uint16_t port)
{
    size_t n = strlen(host);
    struct tern__resolve *res = calloc(1, sizeof(*res) + n + 1);

    if (res == NULL) {
        return TERN_ENOMEM;
    }
    memcpy(res->host, host, n + 1);
    res->port = port;
    res->family = s->family == TERN_ADDRESS_FAMILY_IPV4   ? AF_INET
                  : s->family == TERN_ADDRESS_FAMILY_IPV6 ? AF_INET6
                                                          : AF_UNSPEC;
    res->s = s;
    res->job.work = resolve_work;
    res->job.reply_to = s->r;
    res->job.done = resolve_done;
    int rc = tern__pool_submit(&s->r->rt->work, &res->job);
    if (rc < 0) {
        free(res);
        return rc;
    }
    s->resolve = res;
    return 0;
}
