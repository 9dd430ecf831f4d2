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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void resolve_work(tern__worker_job *job)
{
    struct tern__resolve *res = container_of(job, struct tern__resolve, job);
    struct addrinfo hints, *ai = NULL;
    char port[8];

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
    snprintf(port, sizeof(port), "%u", res->port);
    res->gai = getaddrinfo(res->host, port, &hints, &ai);
    if (res->gai != 0 || ai == NULL) {
        res->err = TERN_E_RESOLVE;
    } else {
        memcpy(&res->addr, ai->ai_addr, ai->ai_addrlen);
        res->addrlen = ai->ai_addrlen;
        res->err = 0;
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
