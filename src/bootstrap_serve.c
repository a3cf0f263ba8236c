/*
 * The server half of the bootstrap's rendezvous, shared by the root and the
 * rank-0 hub: a poll() loop that accepts connections, runs the server side
 * of the handshake on each as its bytes arrive (never blocking on one slow
 * or hostile client), reads one hello frame per authenticated connection,
 * validates it, and returns once every expected rank is connected. Wire
 * formats and the contract are in bootstrap_net.h.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bootstrap_net.h"
#include "internal.h"
#include "sha256.h"

/* Bound on one client's handshake and hello: a silent stranger must not
 * hold a connection slot for the whole rendezvous. */
#define TT_BOOT_HANDSHAKE_MS 10000

typedef enum tt_pconn_state {
    TT_PCONN_AUTH,  /* waiting for the client's hello and proof */
    TT_PCONN_HELLO, /* authenticated, waiting for the hello frame */
    TT_PCONN_READY  /* a validated rank, waiting for the others */
} tt_pconn_state_t;

/* One accepted connection, until it becomes a rank or is rejected. */
typedef struct tt_boot_pconn {
    int              fd;
    tt_pconn_state_t state;
    int              rank; /* once READY */
    size_t           got;  /* bytes of buf filled */
    uint64_t         expires; /* end of the handshake's time */
    uint8_t          nonce[TT_BOOT_NONCE_LEN];
    uint8_t          buf[TT_BOOT_CLI_HELLO_LEN];
    char             from[TT_BOOT_ADDR_STRLEN]; /* "1.2.3.4:5678" */
} tt_pconn_t;

typedef struct tt_serve {
    tt_boot_server_t *srv;
    tt_pconn_t       *pc;
    int               npc, cap;
    int               accepted; /* connections in READY */
    int               emfile_warned;
} tt_serve_t;

static void tt_serve_drop(tt_serve_t *s, int i)
{
    close(s->pc[i].fd);
    s->pc[i] = s->pc[--s->npc];
}

/* Rejects connection i with a WARN line (and an ERROR frame once it has
 * authenticated: an unauthenticated client learns nothing). */
static void tt_serve_reject(tt_serve_t *s, int i, const char *why)
{
    TT_WARN("bootstrap: %s rejected connection from %s: %s", s->srv->name,
            s->pc[i].from, why);
    if (s->pc[i].state != TT_PCONN_AUTH) {
        tutti__boot_send_error(s->pc[i].fd, TUTTI_ERR_INVALID_USAGE, why);
    }
    tt_serve_drop(s, i);
}

/* Full house: makes room by dropping the oldest connection that has not
 * authenticated yet. Returns -1 when every slot holds a rank. */
static int tt_serve_evict(tt_serve_t *s)
{
    int i, oldest = -1;

    for (i = 0; i < s->npc; i++) {
        if (s->pc[i].state == TT_PCONN_AUTH &&
            (oldest < 0 || s->pc[i].expires < s->pc[oldest].expires)) {
            oldest = i;
        }
    }
    if (oldest < 0) {
        return -1;
    }
    tt_serve_reject(s, oldest, "dropped to make room (too many pending "
                    "connections)");
    return 0;
}

/* Drops connections whose handshake ran out of time; returns the poll()
 * timeout until the next such expiry (-1: none). */
static int tt_serve_expire(tt_serve_t *s)
{
    uint64_t now  = tutti__now_ns(), next = 0;
    int      i;

    for (i = s->npc - 1; i >= 0; i--) {
        if (s->pc[i].state == TT_PCONN_READY) {
            continue;
        }
        if (s->pc[i].expires <= now) {
            tt_serve_reject(s, i, "no complete handshake and hello within "
                            "the time allowed");
        } else if (next == 0 || s->pc[i].expires < next) {
            next = s->pc[i].expires;
        }
    }
    return next == 0 ? -1 : tutti__boot_poll_ms(next);
}

static void tt_serve_accept(tt_serve_t *s)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t               sslen = sizeof(ss);
        tt_pconn_t             *pc;
        tt_boot_addr_t          from;
        uint8_t                 hello[TT_BOOT_SRV_HELLO_LEN];
        ssize_t                 n;
        int                     fd;

        fd = accept4(s->srv->listen_fd, (struct sockaddr *)&ss, &sslen,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            if ((errno == EMFILE || errno == ENFILE) && !s->emfile_warned) {
                TT_WARN("bootstrap: %s: accept: %s", s->srv->name,
                        strerror(errno));
                s->emfile_warned = 1;
            }
            if (errno == EMFILE || errno == ENFILE) {
                poll(NULL, 0, 10); /* let connections close first */
            }
            return;
        }
        if (s->npc == s->cap && tt_serve_evict(s) != 0) {
            TT_WARN("bootstrap: %s: %d connections pending, refusing more",
                    s->srv->name, s->npc);
            close(fd);
            continue;
        }
        pc = &s->pc[s->npc];
        memset(pc, 0, sizeof(*pc));
        pc->fd    = fd;
        pc->state = TT_PCONN_AUTH;
        pc->rank  = -1;
        pc->expires = tutti__now_ns() + TT_BOOT_HANDSHAKE_MS * 1000000ull;
        tutti__boot_addr_from_sockaddr((struct sockaddr *)&ss, &from);
        tutti__boot_addr_str(&from, pc->from, sizeof(pc->from));
        tutti__boot_set_nodelay(fd);
        if (tutti__random_bytes(pc->nonce, sizeof(pc->nonce)) != 0) {
            close(fd);
            continue;
        }
        memset(hello, 0, sizeof(hello));
        tt_put32(hello, TT_BOOT_MAGIC);
        tt_put16(hello + 4, TT_BOOT_PROTO_VERSION);
        memcpy(hello + 8, pc->nonce, TT_BOOT_NONCE_LEN);
        /* A fresh socket's buffer always takes 40 bytes at once. */
        n = send(fd, hello, sizeof(hello), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n != (ssize_t)sizeof(hello)) {
            close(fd);
            continue;
        }
        s->npc++;
    }
}

/* Checks a hello; 0 when acceptable, else why in buf. */
static int tt_serve_check(tt_serve_t *s, const tt_boot_hello_t *h, char *buf,
                          size_t len)
{
    tt_boot_server_t *srv = s->srv;

    if (h->nranks < 1 || h->nranks > TT_BOOT_MAX_RANKS) {
        snprintf(buf, len, "rank %d announced nranks %d, outside [1, %d]",
                 h->rank, h->nranks, TT_BOOT_MAX_RANKS);
        return -1;
    }
    if (srv->nranks != 0 && h->nranks != srv->nranks) {
        snprintf(buf, len, "rank %d announced nranks %d, but the ranks "
                 "already here have nranks %d", h->rank, h->nranks,
                 srv->nranks);
        return -1;
    }
    if (h->rank < srv->first_rank || h->rank >= h->nranks) {
        snprintf(buf, len, "rank %d is outside [%d, %d)", h->rank,
                 srv->first_rank, h->nranks);
        return -1;
    }
    if (srv->fds[h->rank] >= 0) {
        snprintf(buf, len, "rank %d is already connected (duplicate rank)",
                 h->rank);
        return -1;
    }
    return 0;
}

/*
 * Reads what connection i has to give. Returns 0 to keep going (the
 * connection may have been rejected and removed), or an error that breaks
 * the whole rendezvous, with why in buf.
 */
static tutti_result_t tt_serve_input(tt_serve_t *s, int i, char *why,
                                     size_t whylen)
{
    tt_pconn_t *pc   = &s->pc[i];
    size_t      need = pc->state == TT_PCONN_AUTH ? TT_BOOT_CLI_HELLO_LEN
                       : pc->state == TT_PCONN_HELLO
                           ? TT_BOOT_HDR_LEN + TT_BOOT_HELLO_LEN
                           : 1;
    ssize_t     n;

    if (pc->state == TT_PCONN_READY) {
        uint8_t byte;

        /* A rank that arrived says nothing until the table; EOF means it
         * gave up waiting (its init timed out, the usual case, since some
         * rank is missing) or died: either dooms this rendezvous, and the
         * others are told it timed out, which is what they would have
         * found themselves. */
        n = recv(pc->fd, &byte, 1, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return TUTTI_SUCCESS;
        }
        if (n > 0) {
            snprintf(why, whylen, "rank %d (%s) sent an unexpected message "
                     "before every rank arrived", pc->rank, pc->from);
            return TUTTI_ERR_REMOTE;
        }
        snprintf(why, whylen, "rank %d (%s) gave up waiting (or died) "
                 "before every rank arrived", pc->rank, pc->from);
        return TUTTI_ERR_TIMEOUT;
    }

    n = recv(pc->fd, pc->buf + pc->got, need - pc->got, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return TUTTI_SUCCESS;
    }
    if (n <= 0) {
        tt_serve_reject(s, i, pc->state == TT_PCONN_AUTH
                                  ? "closed during authentication"
                                  : "closed before its hello");
        return TUTTI_SUCCESS;
    }
    pc->got += (size_t)n;
    if (pc->got < need) {
        return TUTTI_SUCCESS;
    }
    pc->got = 0;

    if (pc->state == TT_PCONN_AUTH) {
        uint8_t expect[TT_BOOT_MAC_LEN], mac[TT_BOOT_MAC_LEN];

        if (tt_get32(pc->buf) != TT_BOOT_MAGIC ||
            tt_get16(pc->buf + 4) != TT_BOOT_PROTO_VERSION) {
            tt_serve_reject(s, i, "bad protocol magic or version");
            return TUTTI_SUCCESS;
        }
        tutti__boot_mac(s->srv->secret, 0, pc->buf + 8, pc->nonce, expect);
        if (!tutti__ct_equal(expect, pc->buf + 8 + TT_BOOT_NONCE_LEN,
                             TT_BOOT_MAC_LEN)) {
            tt_serve_reject(s, i, "bad authentication");
            return TUTTI_SUCCESS;
        }
        tutti__boot_mac(s->srv->secret, 1, pc->buf + 8, pc->nonce, mac);
        if (send(pc->fd, mac, sizeof(mac), MSG_NOSIGNAL | MSG_DONTWAIT) !=
            (ssize_t)sizeof(mac)) {
            tt_serve_reject(s, i, "could not send our proof");
            return TUTTI_SUCCESS;
        }
        pc->state = TT_PCONN_HELLO;
        return TUTTI_SUCCESS;
    }

    /* TT_PCONN_HELLO: one fixed-size frame. */
    {
        tt_boot_hdr_t   hdr;
        tt_boot_hello_t h;
        char            bad[200];

        tutti__boot_hdr_decode(pc->buf, &hdr);
        if (hdr.type != TT_BOOT_MSG_HELLO || hdr.len != TT_BOOT_HELLO_LEN ||
            tutti__boot_hello_decode(pc->buf + TT_BOOT_HDR_LEN, &h) != 0) {
            tt_serve_reject(s, i, "protocol error: expected a hello");
            return TUTTI_SUCCESS;
        }
        if (tt_serve_check(s, &h, bad, sizeof(bad)) != 0) {
            tt_serve_reject(s, i, bad);
            return TUTTI_SUCCESS;
        }
        if (s->srv->nranks == 0) {
            s->srv->nranks = h.nranks;
        }
        pc->state              = TT_PCONN_READY;
        pc->rank               = h.rank;
        s->srv->fds[h.rank]    = pc->fd;
        s->srv->hello[h.rank]  = h;
        s->accepted++;
        TT_INFO(TT_SUB_BOOT, "bootstrap: %s: rank %d of %d arrived from %s",
                s->srv->name, h.rank, h.nranks, pc->from);
    }
    return TUTTI_SUCCESS;
}

/* "ranks 2, 5 of 8 never arrived" into buf. */
static void tt_serve_missing(const tt_serve_t *s, char *buf, size_t len)
{
    const tt_boot_server_t *srv = s->srv;
    size_t                  off = 0;
    int                     r, listed = 0, missing = 0;

    if (srv->nranks == 0) {
        snprintf(buf, len, "no rank arrived");
        return;
    }
    for (r = srv->first_rank; r < srv->nranks; r++) {
        missing += srv->fds[r] < 0;
    }
    off = (size_t)snprintf(buf, len, "rank%s ", missing > 1 ? "s" : "");
    for (r = srv->first_rank; r < srv->nranks && off < len; r++) {
        if (srv->fds[r] >= 0) {
            continue;
        }
        if (listed == 16) {
            off += (size_t)snprintf(buf + off, len - off, ", ...");
            break;
        }
        off += (size_t)snprintf(buf + off, len - off, "%s%d",
                                listed > 0 ? ", " : "", r);
        listed++;
    }
    if (off < len) {
        snprintf(buf + off, len - off, " of %d never arrived", srv->nranks);
    }
}

/* Fails the rendezvous: tells every accepted rank why (the text names no
 * server: the ranks add that), closes everything. */
static tutti_result_t tt_serve_fail(tt_serve_t *s, tutti_result_t code,
                                    const char *why)
{
    int i;

    for (i = 0; i < s->npc; i++) {
        if (s->pc[i].state == TT_PCONN_READY) {
            tutti__boot_send_error(s->pc[i].fd, code, why);
        }
        close(s->pc[i].fd);
    }
    for (i = 0; i < TT_BOOT_MAX_RANKS; i++) {
        s->srv->fds[i] = -1;
    }
    s->npc = 0;
    return tutti__error(code, "bootstrap: %s: %s", s->srv->name, why);
}

tutti_result_t tutti__boot_server_alloc(tt_boot_server_t *srv)
{
    /* Room for every rank plus some strangers; more are refused. */
    srv->cap = (srv->nranks > 0 ? srv->nranks : TT_BOOT_MAX_RANKS) + 32;
    srv->pc  = calloc((size_t)srv->cap, sizeof(*srv->pc));
    srv->pfd = calloc((size_t)srv->cap + 1, sizeof(*srv->pfd));
    if (srv->pc == NULL || srv->pfd == NULL) {
        tutti__boot_server_free(srv);
        return tutti__error(TUTTI_ERR_NO_MEMORY, "bootstrap: %s: out of "
                            "memory for %d connections", srv->name,
                            srv->cap);
    }
    return TUTTI_SUCCESS;
}

void tutti__boot_server_free(tt_boot_server_t *srv)
{
    free(srv->pfd);
    free(srv->pc);
    srv->pfd = NULL;
    srv->pc  = NULL;
}

tutti_result_t tutti__boot_serve(tt_boot_server_t *srv)
{
    tt_serve_t     s   = {.srv = srv, .pc = srv->pc, .cap = srv->cap};
    struct pollfd *pfd = srv->pfd;
    tutti_result_t res;
    char           why[512];
    int            i;

    for (i = 0; i < TT_BOOT_MAX_RANKS; i++) {
        srv->fds[i] = -1;
    }
    for (;;) {
        int ms, ms_hs, n, npfd;

        if (srv->nranks > 0 && s.accepted == srv->nranks - srv->first_rank) {
            res = TUTTI_SUCCESS;
            break;
        }
        ms = tutti__boot_poll_ms(srv->deadline);
        if (ms == 0) {
            char missing[400];

            tt_serve_missing(&s, missing, sizeof(missing));
            snprintf(why, sizeof(why), "waited %d ms; %s", srv->timeout_ms,
                     missing);
            res = tt_serve_fail(&s, TUTTI_ERR_TIMEOUT, why);
            break;
        }
        ms_hs = tt_serve_expire(&s);
        if (ms_hs >= 0 && (ms < 0 || ms_hs < ms)) {
            ms = ms_hs;
        }
        pfd[0].fd     = srv->listen_fd;
        pfd[0].events = POLLIN;
        for (i = 0; i < s.npc; i++) {
            pfd[i + 1].fd     = s.pc[i].fd;
            pfd[i + 1].events = POLLIN;
        }
        npfd = s.npc + 1;
        n    = poll(pfd, (nfds_t)npfd, ms);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            snprintf(why, sizeof(why), "poll: %s", strerror(errno));
            res = tt_serve_fail(&s, TUTTI_ERR_SYSTEM, why);
            break;
        }
        /* Walk backwards: dropping connection i moves the last one into
         * its slot, which has been handled already. */
        res = TUTTI_SUCCESS;
        for (i = npfd - 2; i >= 0 && res == TUTTI_SUCCESS; i--) {
            if (pfd[i + 1].revents != 0) {
                res = tt_serve_input(&s, i, why, sizeof(why));
            }
        }
        if (res != TUTTI_SUCCESS) {
            res = tt_serve_fail(&s, res, why);
            break;
        }
        if (pfd[0].revents != 0) {
            tt_serve_accept(&s);
        }
    }

    /* Success: the ranks' descriptors are the caller's; strangers that are
     * still authenticating are closed. */
    for (i = 0; i < s.npc; i++) {
        if (s.pc[i].state != TT_PCONN_READY) {
            close(s.pc[i].fd);
        }
    }
    return res;
}
