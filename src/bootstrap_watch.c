/*
 * The bootstrap after init: the watchdog thread, the mailboxes it fills,
 * the collectives that read them, and abort and fini.
 *
 * The watchdog is the only reader of a rank's bootstrap sockets (on rank 0
 * the connections to every other rank, elsewhere the one to rank 0). It
 * sleeps in poll() and, for each complete frame, either puts it in the
 * sending peer's mailbox (collective traffic) or records a goodbye, an
 * abort or a death, relays the latter on rank 0, and calls the callback
 * once per failed peer. tutti__boot_watch() only installs the callback, so
 * the collectives work the same before and after it: the calling thread
 * sends its own frames and waits on the condition variable for its
 * mailbox. Every writer of a socket holds that peer's send_lock.
 *
 * Allgather: every rank sends GATHER(seq, its block) to rank 0; rank 0
 * checks the lengths and sends everyone the whole array in BLOCKS frames of
 * at most TT_BOOT_MSG_MAX bytes, or a COLL_ERROR to all when something is
 * wrong, so that no rank waits for the timeout to learn it.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bootstrap_priv.h"
#include "internal.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

/* Locks m, giving up after ms (for calls that must not block for long). */
static int tt_lock_bounded(pthread_mutex_t *m, int ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return pthread_mutex_timedlock(m, &ts);
}

static void tt_wake(tt_boot_t *b)
{
    uint64_t one = 1;

    /* Cannot block (nonblocking, and the counter never nears overflow). */
    if (write(b->wake_fd, &one, sizeof(one)) < 0) {
        TT_INFO(TT_SUB_BOOT, "bootstrap: wake-up write: %s", strerror(errno));
    }
}

/* Blocks carried by one BLOCKS frame starting at block `first`. */
static int tt_blocks_per_frame(size_t len, int nranks, int first)
{
    int k = len == 0 ? nranks : (int)(TT_BOOT_MSG_MAX / len);

    return TT_MIN(k, nranks - first);
}

static const char *tt_skip_prefix(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);

    return strncmp(s, prefix, n) == 0 ? s + n : s;
}

/* ------------------------------------------------------------------ */
/* The watchdog                                                       */
/* ------------------------------------------------------------------ */

/* Records rank r's failure once; the lock is held. */
static void tt_mark_failed(tt_boot_t *b, int r, const char *why)
{
    if (!b->fails[r].failed) {
        b->fails[r].failed = 1;
        snprintf(b->fails[r].why, sizeof(b->fails[r].why), "%s", why);
    }
}

/* Rank 0: tells every other rank that rank `failed` is gone. Best effort,
 * bounded per peer; called by the watchdog or by abort_notify. */
static void tt_relay(tt_boot_t *b, int failed, const char *why)
{
    size_t len = TT_MIN(strlen(why), (size_t)TT_BOOT_TEXT_MAX);
    int    r;

    for (r = 1; r < b->nranks; r++) {
        tt_boot_peer_t *p = &b->peers[r];

        if (r == failed || !p->used ||
            tt_lock_bounded(&p->send_lock, TT_BOOT_NOTIFY_MS) != 0) {
            continue;
        }
        (void)tutti__boot_post_frame(p->link.fd, TT_BOOT_MSG_FAILED, 0,
                                     (uint32_t)failed, why, len,
                                     tutti__boot_deadline(TT_BOOT_NOTIFY_MS));
        pthread_mutex_unlock(&p->send_lock);
    }
}

/*
 * Peer r's connection has ended: `what` says how ("died (connection
 * closed without a goodbye)", "sent an invalid message (...)"). Without a
 * goodbye first, r has failed: record it, log it and, on rank 0, tell the
 * others.
 */
static void tt_watch_lost(tt_boot_t *b, int r, const char *what)
{
    tt_boot_peer_t *p = &b->peers[r];
    char            why[TT_BOOT_TEXT_MAX + 1];
    int             goodbye, leaving;

    /* Under send_lock: a writer never sees the descriptor closed (and
     * perhaps reused) under it; later writers find -1. */
    pthread_mutex_lock(&p->send_lock);
    close(p->link.fd);
    p->link.fd = -1;
    pthread_mutex_unlock(&p->send_lock);
    free(p->rx);
    p->rx  = NULL;
    p->got = 0;

    snprintf(why, sizeof(why), "rank %d %s", r, what);
    pthread_mutex_lock(&b->lock);
    p->down = 1;
    goodbye = p->goodbye;
    leaving = b->leaving;
    if (!goodbye) {
        tt_mark_failed(b, r, why);
    }
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);

    if (goodbye) {
        TT_INFO(TT_SUB_BOOT, "bootstrap: rank %d: rank %d left", b->rank, r);
        return;
    }
    if (!leaving) {
        TT_WARN("bootstrap: rank %d: %s", b->rank, why);
        if (b->rank == 0) {
            tt_relay(b, r, why);
        }
    }
}

/* Handles one complete frame from peer r. Returns -1 when the connection
 * was dropped (a protocol error). */
static int tt_watch_dispatch(tt_boot_t *b, int r, tt_boot_frame_t *f)
{
    tt_boot_peer_t *p   = &b->peers[r];
    int             hub = b->rank == 0;
    char            why[TT_BOOT_TEXT_MAX + 1];

    switch (f->hdr.type) {
    case TT_BOOT_MSG_GATHER:
    case TT_BOOT_MSG_BLOCKS:
    case TT_BOOT_MSG_COLL_ERROR:
        if (hub != (f->hdr.type == TT_BOOT_MSG_GATHER)) {
            break;
        }
        f->next = NULL;
        pthread_mutex_lock(&b->lock);
        if (p->tail != NULL) {
            p->tail->next = f;
        } else {
            p->head = f;
        }
        p->tail = f;
        pthread_cond_broadcast(&b->cond);
        pthread_mutex_unlock(&b->lock);
        return 0;
    case TT_BOOT_MSG_GOODBYE:
        pthread_mutex_lock(&b->lock);
        p->goodbye = 1;
        pthread_mutex_unlock(&b->lock);
        free(f);
        return 0;
    case TT_BOOT_MSG_ABORT:
        if (!hub) {
            break;
        }
        snprintf(why, sizeof(why), "rank %d aborted", r);
        pthread_mutex_lock(&b->lock);
        tt_mark_failed(b, r, why);
        pthread_mutex_unlock(&b->lock);
        TT_INFO(TT_SUB_BOOT, "bootstrap: rank 0: %s", why);
        tt_relay(b, r, why);
        free(f);
        return 0;
    case TT_BOOT_MSG_FAILED:
        if (hub || f->hdr.arg >= (uint32_t)b->nranks ||
            f->hdr.arg == (uint32_t)b->rank ||
            f->hdr.len > TT_BOOT_TEXT_MAX) {
            break;
        }
        snprintf(why, sizeof(why), "%.*s", (int)f->hdr.len,
                 (const char *)f->data);
        pthread_mutex_lock(&b->lock);
        tt_mark_failed(b, (int)f->hdr.arg, why);
        pthread_mutex_unlock(&b->lock);
        TT_INFO(TT_SUB_BOOT, "bootstrap: rank %d: rank 0 reports: %s",
                b->rank, why);
        free(f);
        return 0;
    default:
        break;
    }
    snprintf(why, sizeof(why), "sent an unexpected message (type %u)",
             f->hdr.type);
    free(f);
    tt_watch_lost(b, r, why);
    return -1;
}

/* Reads everything peer r's socket has, frame by frame. */
static void tt_watch_input(tt_boot_t *b, int r)
{
    tt_boot_peer_t *p = &b->peers[r];

    for (;;) {
        size_t   want = p->rx == NULL ? TT_BOOT_HDR_LEN : p->rx->hdr.len;
        uint8_t *dst  = p->rx == NULL ? p->hdr : p->rx->data;
        char     detail[96];

        if (p->got < want) {
            ssize_t n = recv(p->link.fd, dst + p->got, want - p->got,
                             MSG_DONTWAIT);

            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                return;
            }
            if (n <= 0) {
                snprintf(detail, sizeof(detail), "died (connection %s "
                         "without a goodbye%s%s)", n == 0 ? "closed" : "broken",
                         n == 0 ? "" : ": ", n == 0 ? "" : strerror(errno));
                tt_watch_lost(b, r, detail);
                return;
            }
            p->got += (size_t)n;
            continue;
        }
        if (p->rx == NULL) {
            tt_boot_hdr_t hdr;

            tutti__boot_hdr_decode(p->hdr, &hdr);
            if (hdr.len > TT_BOOT_MSG_MAX || hdr.type == 0 ||
                hdr.type >= TT_BOOT_MSG_LAST) {
                snprintf(detail, sizeof(detail), "sent an invalid message "
                         "(type %u, %u bytes)", hdr.type, hdr.len);
                tt_watch_lost(b, r, detail);
                return;
            }
            p->rx = malloc(sizeof(*p->rx) + hdr.len);
            if (p->rx == NULL) {
                tt_watch_lost(b, r, "could not be read (out of memory)");
                return;
            }
            p->rx->hdr = hdr;
            p->got     = 0;
            continue;
        }
        {
            tt_boot_frame_t *f = p->rx;

            p->rx  = NULL;
            p->got = 0;
            if (tt_watch_dispatch(b, r, f) != 0) {
                return;
            }
        }
    }
}

/* Calls the callback for every failure not reported yet, without locks. */
static void tt_watch_deliver(tt_boot_t *b)
{
    for (;;) {
        char            why[TT_BOOT_TEXT_MAX + 1];
        tt_boot_fail_fn fn;
        void           *arg;
        int             r, found = -1;

        pthread_mutex_lock(&b->lock);
        fn  = b->fn;
        arg = b->fn_arg;
        for (r = 0; r < b->nranks && fn != NULL && !b->leaving; r++) {
            if (b->fails[r].failed && !b->fails[r].reported) {
                b->fails[r].reported = 1;
                memcpy(why, b->fails[r].why, sizeof(why));
                found = r;
                break;
            }
        }
        pthread_mutex_unlock(&b->lock);
        if (found < 0) {
            return;
        }
        fn(arg, found, TUTTI_ERR_REMOTE, why);
    }
}

static void *tt_watch_main(void *arg)
{
    tt_boot_t *b = arg;
    int        warned = 0;

    pthread_setname_np(pthread_self(), "tutti-boot");
    tutti__log_set_rank(b->rank);
    for (;;) {
        int i, n = 1, stop;

        b->pfd[0].fd     = b->wake_fd;
        b->pfd[0].events = POLLIN;
        for (i = 0; i < b->nranks; i++) {
            if (b->peers[i].used && b->peers[i].link.fd >= 0) {
                b->pfd[n].fd     = b->peers[i].link.fd;
                b->pfd[n].events = POLLIN;
                b->pfd_rank[n]   = i;
                n++;
            }
        }
        /* Idle here, without a timeout: a frame, a closed connection or
         * the wake-up fd ends the wait. */
        if (poll(b->pfd, (nfds_t)n, -1) < 0) {
            if (errno != EINTR && !warned) {
                TT_WARN("bootstrap: rank %d: watchdog poll: %s", b->rank,
                        strerror(errno));
                warned = 1;
            }
            if (errno != EINTR) {
                poll(NULL, 0, 10);
            }
            continue;
        }
        if (b->pfd[0].revents != 0) {
            uint64_t count;
            ssize_t  got = read(b->wake_fd, &count, sizeof(count));

            (void)got; /* EAGAIN only: an earlier read drained it */
        }
        pthread_mutex_lock(&b->lock);
        stop = b->stop;
        pthread_mutex_unlock(&b->lock);
        if (stop) {
            break;
        }
        for (i = 1; i < n; i++) {
            if (b->pfd[i].revents != 0) {
                tt_watch_input(b, b->pfd_rank[i]);
            }
        }
        tt_watch_deliver(b);
    }
    return NULL;
}

tutti_result_t tutti__boot_watch_start(tt_boot_t *b)
{
    int rc = tutti__boot_thread_start(&b->thread, tt_watch_main, b, 0);

    if (rc != 0) {
        return tutti__error(TUTTI_ERR_SYSTEM, "bootstrap: cannot start the "
                            "watchdog thread: %s", strerror(rc));
    }
    b->thread_started = 1;
    return TUTTI_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* Collectives                                                        */
/* ------------------------------------------------------------------ */

/* The error for a collective that needs peer r, whose connection ended. */
static tutti_result_t tt_gone_error(tt_boot_t *b, int r, uint32_t seq)
{
    char why[TT_BOOT_TEXT_MAX + 1];

    pthread_mutex_lock(&b->lock);
    if (b->fails[r].failed) {
        memcpy(why, b->fails[r].why, sizeof(why));
    } else {
        snprintf(why, sizeof(why), "rank %d has left (it said goodbye)", r);
    }
    pthread_mutex_unlock(&b->lock);
    return tutti__error(TUTTI_ERR_REMOTE, "bootstrap: rank %d: allgather "
                        "#%u cannot complete: %s", b->rank, seq, why);
}

/*
 * Takes the next frame of collective seq from peer r's mailbox, waiting
 * until the deadline. Frames of earlier collectives are dropped: when one
 * fails (a length mismatch, say), rank 0 stops reading its mailboxes, and
 * what the other ranks sent for it arrives anyway. Every rank counts the
 * same collectives, failed ones included, so seq stays in step.
 */
static tutti_result_t tt_wait_frame(tt_boot_t *b, int r, uint32_t seq,
                                    uint64_t deadline, tt_boot_frame_t **f_p)
{
    tt_boot_peer_t  *p = &b->peers[r];
    tt_boot_frame_t *f;
    struct timespec  ts = {.tv_sec  = (time_t)(deadline / 1000000000ull),
                           .tv_nsec = (long)(deadline % 1000000000ull)};

    pthread_mutex_lock(&b->lock);
    for (;;) {
        while ((f = p->head) != NULL && (int32_t)(f->hdr.seq - seq) < 0) {
            p->head = f->next;
            free(f);
        }
        if (f != NULL) {
            p->head = f->next;
            if (p->head == NULL) {
                p->tail = NULL;
            }
            break;
        }
        if (p->head == NULL) {
            p->tail = NULL;
        }
        if (p->down) {
            pthread_mutex_unlock(&b->lock);
            return tt_gone_error(b, r, seq);
        }
        if (deadline != 0 && tutti__now_ns() >= deadline) {
            pthread_mutex_unlock(&b->lock);
            return tutti__error(TUTTI_ERR_TIMEOUT, "bootstrap: rank %d "
                                "waited %d ms for rank %d%s in allgather #%u",
                                b->rank, b->timeout_ms, r,
                                r == 0 ? " (the hub)" : "", seq);
        }
        if (deadline == 0) {
            pthread_cond_wait(&b->cond, &b->lock);
        } else {
            pthread_cond_timedwait(&b->cond, &b->lock, &ts);
        }
    }
    pthread_mutex_unlock(&b->lock);
    if (f->hdr.seq != seq) {
        tutti_result_t res = tutti__error(
            TUTTI_ERR_REMOTE, "bootstrap: rank %d: protocol error: rank %d "
            "sent data for allgather #%u during #%u", b->rank, r, f->hdr.seq,
            seq);

        free(f);
        return res;
    }
    *f_p = f;
    return TUTTI_SUCCESS;
}

/* Sends under the peer's send_lock. */
static tutti_result_t tt_peer_send(tt_boot_t *b, int r, uint32_t type,
                                   uint32_t seq, uint32_t arg,
                                   const void *data, size_t len,
                                   uint64_t deadline)
{
    tt_boot_peer_t *p = &b->peers[r];
    tutti_result_t  res;

    pthread_mutex_lock(&p->send_lock);
    if (p->link.fd < 0) {
        pthread_mutex_unlock(&p->send_lock);
        return tt_gone_error(b, r, seq);
    }
    res = tutti__boot_send_frame(&p->link, type, seq, arg, data, len,
                                 deadline);
    pthread_mutex_unlock(&p->send_lock);
    return res;
}

/* Ranks 1..n-1: send our block, receive everyone's. Rank 0 alone checks
 * the lengths; a mismatch comes back as a COLL_ERROR. */
static tutti_result_t tt_leaf_allgather(tt_boot_t *b, uint8_t *all,
                                        size_t len, uint32_t seq,
                                        uint64_t deadline)
{
    tt_boot_frame_t *f;
    int              got = 0;

    TT_CHECK(tt_peer_send(b, 0, TT_BOOT_MSG_GATHER, seq, 0,
                          all + (size_t)b->rank * len, len, deadline));
    while (got < b->nranks) {
        int k = tt_blocks_per_frame(len, b->nranks, got);

        TT_CHECK(tt_wait_frame(b, 0, seq, deadline, &f));
        if (f->hdr.type == TT_BOOT_MSG_COLL_ERROR) {
            tutti_result_t res = tutti__error(
                tutti__boot_wire_code(f->hdr.arg), "bootstrap: rank %d: rank 0 "
                "reports: %.*s", b->rank,
                (int)TT_MIN(f->hdr.len, (uint32_t)TT_BOOT_TEXT_MAX),
                (const char *)f->data);

            free(f);
            return res;
        }
        if (f->hdr.type != TT_BOOT_MSG_BLOCKS || f->hdr.arg != (uint32_t)got ||
            f->hdr.len != (uint64_t)k * len) {
            tutti_result_t res = tutti__error(
                TUTTI_ERR_REMOTE, "bootstrap: rank %d: protocol error in "
                "allgather #%u: rank 0 sent type %u, first block %u, %u "
                "bytes; expected blocks from %d, %zu bytes", b->rank, seq,
                f->hdr.type, f->hdr.arg, f->hdr.len, got, (size_t)k * len);

            free(f);
            return res;
        }
        if (len > 0) {
            memcpy(all + (size_t)got * len, f->data, (size_t)k * len);
        }
        got += k;
        free(f);
    }
    return TUTTI_SUCCESS;
}

/* Rank 0: gather every block, check the lengths, send the array back. */
static tutti_result_t tt_hub_allgather(tt_boot_t *b, uint8_t *all, size_t len,
                                       uint32_t seq, uint64_t deadline)
{
    tutti_result_t   res = TUTTI_SUCCESS, rc;
    tt_boot_frame_t *f;
    int              r, first;

    for (r = 1; r < b->nranks && res == TUTTI_SUCCESS; r++) {
        res = tt_wait_frame(b, r, seq, deadline, &f);
        if (res != TUTTI_SUCCESS) {
            break;
        }
        if (f->hdr.type != TT_BOOT_MSG_GATHER) {
            res = tutti__error(TUTTI_ERR_REMOTE, "bootstrap: rank 0: "
                               "protocol error: rank %d sent type %u in "
                               "allgather #%u", r, f->hdr.type, seq);
        } else if (f->hdr.len != len) {
            res = tutti__error(TUTTI_ERR_INVALID_USAGE, "bootstrap: "
                               "allgather #%u: rank %d passed %u bytes, "
                               "rank 0 passed %zu (every rank must pass the "
                               "same length)", seq, r, f->hdr.len, len);
        } else if (len > 0) {
            memcpy(all + (size_t)r * len, f->data, len);
        }
        free(f);
    }
    if (res != TUTTI_SUCCESS) {
        /* Tell everyone at once rather than let them time out; the text
         * is ours minus the "bootstrap: rank 0: " they will add. */
        const char *why = tt_skip_prefix(
            tt_skip_prefix(tutti_last_error(), "bootstrap: "), "rank 0: ");

        for (r = 1; r < b->nranks; r++) {
            tt_boot_peer_t *p = &b->peers[r];

            pthread_mutex_lock(&p->send_lock);
            (void)tutti__boot_post_frame(p->link.fd, TT_BOOT_MSG_COLL_ERROR,
                                         seq, (uint32_t)-(int32_t)res, why,
                                         TT_MIN(strlen(why),
                                                (size_t)TT_BOOT_TEXT_MAX),
                                         tutti__boot_deadline(
                                             TT_BOOT_NOTIFY_MS));
            pthread_mutex_unlock(&p->send_lock);
        }
        return res;
    }
    /* Everyone gets the whole array, its own block included: one rule for
     * every receiver, and blocks packed into as few frames as fit. */
    for (r = 1; r < b->nranks; r++) {
        for (first = 0; first < b->nranks;) {
            int k = tt_blocks_per_frame(len, b->nranks, first);

            rc = tt_peer_send(b, r, TT_BOOT_MSG_BLOCKS, seq, (uint32_t)first,
                              all + (size_t)first * len, (size_t)k * len,
                              deadline);
            if (rc != TUTTI_SUCCESS) {
                /* Serve the others anyway; report the first failure. */
                res = res != TUTTI_SUCCESS ? res : rc;
                break;
            }
            first += k;
        }
    }
    return res;
}

tutti_result_t tutti__boot_allgather(tt_boot_t *b, const void *mine,
                                     void *all, size_t len)
{
    uint64_t deadline;
    uint32_t seq;

    if (b == NULL) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "bootstrap: allgather: NULL bootstrap");
    }
    if (len > TT_BOOT_MSG_MAX) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT, "bootstrap: "
                            "allgather of %zu bytes per rank, at most %d",
                            len, TT_BOOT_MSG_MAX);
    }
    if (len > 0 && (mine == NULL || all == NULL)) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "bootstrap: allgather: NULL %s with %zu bytes",
                            mine == NULL ? "mine" : "all", len);
    }
    seq      = ++b->seq;
    deadline = tutti__boot_deadline(b->timeout_ms);
    if (len > 0) {
        /* memmove: mine may already be all's slot for this rank. */
        memmove((uint8_t *)all + (size_t)b->rank * len, mine, len);
    }
    if (b->nranks == 1) {
        return TUTTI_SUCCESS;
    }
    if (b->rank == 0) {
        return tt_hub_allgather(b, all, len, seq, deadline);
    }
    return tt_leaf_allgather(b, all, len, seq, deadline);
}

tutti_result_t tutti__boot_barrier(tt_boot_t *b)
{
    return tutti__boot_allgather(b, NULL, NULL, 0);
}

/* ------------------------------------------------------------------ */
/* Watch, abort, fini                                                 */
/* ------------------------------------------------------------------ */

tutti_result_t tutti__boot_watch(tt_boot_t *b, tt_boot_fail_fn fn, void *arg)
{
    if (b == NULL || fn == NULL) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "bootstrap: watch: NULL %s",
                            b == NULL ? "bootstrap" : "callback");
    }
    pthread_mutex_lock(&b->lock);
    if (b->fn != NULL) {
        pthread_mutex_unlock(&b->lock);
        return tutti__error(TUTTI_ERR_INVALID_USAGE,
                            "bootstrap: rank %d is already watched", b->rank);
    }
    b->fn     = fn;
    b->fn_arg = arg;
    pthread_mutex_unlock(&b->lock);
    /* Failures seen before now are reported by the watchdog, like later
     * ones. */
    tt_wake(b);
    return TUTTI_SUCCESS;
}

void tutti__boot_abort_notify(tt_boot_t *b)
{
    tt_boot_peer_t *p;
    int             already;

    if (b == NULL || b->nranks == 1) {
        return;
    }
    pthread_mutex_lock(&b->lock);
    already    = b->aborted;
    b->aborted = 1;
    pthread_mutex_unlock(&b->lock);
    if (already) {
        return;
    }
    if (b->rank == 0) {
        tt_relay(b, 0, "rank 0 aborted");
        return;
    }
    p = &b->peers[0];
    if (tt_lock_bounded(&p->send_lock, TT_BOOT_NOTIFY_MS) == 0) {
        (void)tutti__boot_post_frame(p->link.fd, TT_BOOT_MSG_ABORT, 0, 0,
                                     NULL, 0,
                                     tutti__boot_deadline(TT_BOOT_NOTIFY_MS));
        pthread_mutex_unlock(&p->send_lock);
    }
}

void tutti__boot_fini(tt_boot_t *b)
{
    int r;

    if (b == NULL) {
        return;
    }
    pthread_mutex_lock(&b->lock);
    b->leaving = 1;
    pthread_mutex_unlock(&b->lock);

    /* Goodbye first, so that our closing is not taken for a crash. */
    for (r = 0; r < b->nranks; r++) {
        tt_boot_peer_t *p = &b->peers[r];

        if (!p->used ||
            tt_lock_bounded(&p->send_lock, TT_BOOT_NOTIFY_MS) != 0) {
            continue;
        }
        (void)tutti__boot_post_frame(p->link.fd, TT_BOOT_MSG_GOODBYE, 0, 0,
                                     NULL, 0,
                                     tutti__boot_deadline(TT_BOOT_NOTIFY_MS));
        pthread_mutex_unlock(&p->send_lock);
    }
    if (b->thread_started) {
        pthread_mutex_lock(&b->lock);
        b->stop = 1;
        pthread_mutex_unlock(&b->lock);
        tt_wake(b);
        pthread_join(b->thread, NULL);
    }
    tutti__boot_free(b);
}
