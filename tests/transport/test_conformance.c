/*
 * The transport conformance suite: every test is a Criterion
 * ParameterizedTest over tutti__transports[], so each compiled-in transport
 * (shm, ucx, ofi) is held to the contract of transports/transport.h the same
 * way, its ops table driven directly by 2-4 forked ranks (tp_harness.c):
 *
 *   connect      every pair of 4 ranks, one message each way
 *   ordering     per direction, messages meet receives in posting order,
 *                tags repeating, sizes mixed, all posted at once
 *   sizes        0 bytes up to 16 MiB both ways at once, contents checked
 *   in_flight    256 requests outstanding per direction, 2 and 4 ranks
 *   recv_first   receives posted before the sends
 *   send_first   sends posted (and delivered as unexpected) before the
 *                receives
 *   channels     the two channels (tag bit 63) are separate FIFOs: one
 *                channel's receives complete while the other channel's
 *                earlier messages wait, unreceived
 *   mismatch     another tag, a shorter or a longer message fails the
 *                receive with TUTTI_ERR_INVALID_USAGE
 *   close_pending
 *                ep_close with traffic pending completes every request
 *                (TUTTI_ERR_ABORTED) and leaves the buffers alone
 *   sent_then_closed
 *                messages whose sends ended before their sender closed
 *                and went away are still received afterwards, also once
 *                the receiver has seen the connection end
 *   busy_reader  the same while the receiver does not progress at all
 *                until its peer has closed and gone, on a connection that
 *                has carried traffic and on a fresh one
 *   wake         (TT_CAP_WAIT_FD only) a rank asleep in poll() on the
 *                armed wait fd wakes up when a message arrives
 *
 * A transport whose init fails here is skipped with its reason
 * (cr_skip_test), as Gloo's tests skip a missing transport. Run the UCX
 * transport over TCP with UCX_TLS=tcp (meson registers that variant too).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "tp_harness.h"

#define WAIT_MS 60000
#define KIB     1024
#define MIB     (1024 * 1024)

/* ---- parameters: the index of each compiled-in transport --------------- */

#define MAX_TRANSPORTS 8

static int transport_count(void)
{
    int n = 0;

    while (n < MAX_TRANSPORTS && tutti__transports[n] != NULL) {
        n++;
    }
    return n;
}

static struct criterion_test_params every_transport(void)
{
    static int idx[MAX_TRANSPORTS];
    int        i, n = transport_count();

    for (i = 0; i < n; i++) {
        idx[i] = i;
    }
    return cr_make_param_array(int, idx, (size_t)n);
}

/*
 * Runs fn on nranks forked ranks of transport number t; skips the test
 * when the transport cannot start here. The rank functions get arg.
 */
static void run_ranks(int t, int nranks, tph_rank_fn fn, void *arg)
{
    const tt_transport_ops_t *ops = tutti__transports[t];
    char                      reason[TPH_REASON_MAX];
    tph_world_t              *w;
    int                       rc;

    cr_log_info("transport %s, %d ranks", ops->name, nranks);
    rc = tph_probe(ops, nranks, reason, sizeof(reason));
    if (rc > 0) {
        cr_skip_test("%s: %s", ops->name, reason);
    }
    cr_assert_eq(rc, 0, "%s: %s", ops->name, reason);
    w = tph_world_create(ops, nranks);
    cr_assert_not_null(w);
    rc = tph_run(w, fn, arg);
    tph_world_destroy(w);
    cr_assert_eq(rc, 0, "%s: %d of %d ranks failed (see stderr)", ops->name,
                 rc, nranks);
}

/* A test that runs fn(arg) on nranks ranks of every compiled-in transport,
 * under Criterion's name transport::name. */
#define EVERY_TRANSPORT_TEST(_name, _timeout, _nranks, _fn, _arg)          \
    ParameterizedTestParameters(transport, _name)                          \
    {                                                                      \
        return every_transport();                                          \
    }                                                                      \
    ParameterizedTest(int *t, transport, _name, .timeout = _timeout)       \
    {                                                                      \
        run_ranks(*t, _nranks, _fn, _arg);                                 \
    }

/* A set of requests with their buffers, for one rank. */
typedef struct batch {
    int       n, cap;
    tt_req_t *req;
    tt_req_t **reqs;
    char    **buf;
    size_t   *len;
    int      *peer;
    uint64_t *seq;
    int      *is_recv;
} batch_t;

static int batch_init(batch_t *b, int cap)
{
    memset(b, 0, sizeof(*b));
    b->cap     = cap;
    b->req     = calloc((size_t)cap, sizeof(*b->req));
    b->reqs    = calloc((size_t)cap, sizeof(*b->reqs));
    b->buf     = calloc((size_t)cap, sizeof(*b->buf));
    b->len     = calloc((size_t)cap, sizeof(*b->len));
    b->peer    = calloc((size_t)cap, sizeof(*b->peer));
    b->seq     = calloc((size_t)cap, sizeof(*b->seq));
    b->is_recv = calloc((size_t)cap, sizeof(*b->is_recv));
    return b->req && b->reqs && b->buf && b->len && b->peer && b->seq &&
                   b->is_recv
               ? 0
               : 1;
}

static void batch_free(batch_t *b)
{
    int i;

    for (i = 0; i < b->n; i++) {
        free(b->buf[i]);
    }
    free(b->req);
    free(b->reqs);
    free(b->buf);
    free(b->len);
    free(b->peer);
    free(b->seq);
    free(b->is_recv);
}

/*
 * Posts a send of len pattern bytes (message seq from this rank) or a
 * receive of len bytes expected from peer, with tag. Receive buffers get
 * one guard byte past the end, which must survive.
 */
static int post(tph_rank_t *r, batch_t *b, int is_recv, int peer,
                size_t len, uint64_t seq, uint64_t tag)
{
    int            i = b->n;
    tutti_result_t res;

    TPH_CHECK(i < b->cap, "batch of %d is full", b->cap);
    b->buf[i] = malloc(len + 1);
    TPH_CHECK(b->buf[i] != NULL, "malloc(%zu)", len + 1);
    b->len[i]     = len;
    b->peer[i]    = peer;
    b->seq[i]     = seq;
    b->is_recv[i] = is_recv;
    b->req[i]     = (tt_req_t){0};
    b->reqs[i]    = &b->req[i];
    if (is_recv) {
        memset(b->buf[i], 0xa5, len + 1);
        res = r->ops->irecv(r->ep[peer], b->buf[i], len, tag, &b->req[i]);
    } else {
        tph_fill(b->buf[i], len, r->rank, seq);
        res = r->ops->isend(r->ep[peer], b->buf[i], len, tag, &b->req[i]);
    }
    TPH_CHECK(res == TUTTI_SUCCESS, "%s of %zu bytes with peer %d: %s",
              is_recv ? "irecv" : "isend", len, peer, tutti_last_error());
    b->n++;
    return 0;
}

/* Waits for every request, then checks statuses and received bytes. */
static int batch_finish(tph_rank_t *r, batch_t *b)
{
    int i;

    TPH_CHECK(tph_wait(r, b->reqs, b->n, WAIT_MS) == 0,
              "%s: requests did not complete", r->ops->name);
    for (i = 0; i < b->n; i++) {
        size_t bad;

        TPH_CHECK(b->req[i].status == TUTTI_SUCCESS,
                  "%s: %s %d (%zu bytes, peer %d) ended with %s: %s",
                  r->ops->name, b->is_recv[i] ? "receive" : "send", i,
                  b->len[i], b->peer[i],
                  tutti_result_name(b->req[i].status), tutti_last_error());
        if (!b->is_recv[i]) {
            continue;
        }
        bad = tph_verify(b->buf[i], b->len[i], b->peer[i], b->seq[i]);
        TPH_CHECK(bad == (size_t)-1,
                  "%s: message %llu from %d (%zu bytes): byte %zu wrong",
                  r->ops->name, (unsigned long long)b->seq[i], b->peer[i],
                  b->len[i], bad);
        TPH_CHECK((uint8_t)b->buf[i][b->len[i]] == 0xa5,
                  "%s: message %llu from %d wrote past its %zu bytes",
                  r->ops->name, (unsigned long long)b->seq[i], b->peer[i],
                  b->len[i]);
    }
    return 0;
}

/* ---- connect: every pair of ranks, one message each way ---------------- */

static int rank_connect(tph_rank_t *r, void *arg)
{
    int     nranks = r->world->nranks;
    batch_t b;
    int     p;

    (void)arg;
    TPH_CHECK(batch_init(&b, 2 * nranks) == 0, "calloc");
    if (tph_rank_setup(r) != 0) {
        return 1;
    }
    for (p = 0; p < nranks; p++) {
        if (p == r->rank) {
            continue;
        }
        /* message seq names the receiver, so a misrouted one shows */
        if (post(r, &b, 1, p, 8, (uint64_t)r->rank, 1) != 0 ||
            post(r, &b, 0, p, 8, (uint64_t)p, 1) != 0) {
            return 1;
        }
    }
    if (batch_finish(r, &b) != 0) {
        return 1;
    }
    tph_barrier(r->world);
    tph_rank_fini(r);
    batch_free(&b);
    return 0;
}

EVERY_TRANSPORT_TEST(connect, 60, 4, rank_connect, NULL)

/* ---- ordering: FIFO per direction, repeating tags, mixed sizes ---------- */

#define ORDER_N 600

static size_t order_size(int i)
{
    static const size_t sizes[] = {0,        1,        24,      25,
                                   4095,     4096,     8193,    65535,
                                   65537,    100000,   3,       1000};

    return sizes[i % (int)TT_ARRAY_SIZE(sizes)] + (size_t)(i % 7);
}

static int rank_ordering(tph_rank_t *r, void *arg)
{
    int     nranks = r->world->nranks;
    batch_t b;
    int     i, p;

    (void)arg;
    TPH_CHECK(batch_init(&b, 2 * ORDER_N * nranks) == 0, "calloc");
    if (tph_rank_setup(r) != 0) {
        return 1;
    }
    /* Four tags repeat: only the posting order can pair them right. */
    for (i = 0; i < ORDER_N; i++) {
        for (p = 0; p < nranks; p++) {
            if (p == r->rank) {
                continue;
            }
            if (post(r, &b, 0, p, order_size(i), (uint64_t)i,
                     (uint64_t)(i % 4)) != 0 ||
                post(r, &b, 1, p, order_size(i), (uint64_t)i,
                     (uint64_t)(i % 4)) != 0) {
                return 1;
            }
        }
    }
    if (batch_finish(r, &b) != 0) {
        return 1;
    }
    tph_barrier(r->world);
    tph_rank_fini(r);
    batch_free(&b);
    return 0;
}

ParameterizedTestParameters(transport, ordering)
{
    return every_transport();
}

ParameterizedTest(int *t, transport, ordering, .timeout = 120)
{
    run_ranks(*t, 2, rank_ordering, NULL);
    run_ranks(*t, 3, rank_ordering, NULL);
}

/* ---- sizes: zero to 16 MiB, both directions at once ---------------------- */

static const size_t big_sizes[] = {
    0, 1, 7, 64, 4096, 65535, 65536, 65537, MIB + 13, 4 * MIB, 16 * MIB,
};

static int rank_sizes(tph_rank_t *r, void *arg)
{
    int     peer = 1 - r->rank;
    batch_t b;
    int     i;

    (void)arg;
    TPH_CHECK(batch_init(&b, 2 * (int)TT_ARRAY_SIZE(big_sizes)) == 0,
              "calloc");
    if (tph_rank_setup(r) != 0) {
        return 1;
    }
    for (i = 0; i < (int)TT_ARRAY_SIZE(big_sizes); i++) {
        if (post(r, &b, 1, peer, big_sizes[i], (uint64_t)i,
                 (uint64_t)(100 + i)) != 0 ||
            post(r, &b, 0, peer, big_sizes[i], (uint64_t)i,
                 (uint64_t)(100 + i)) != 0) {
            return 1;
        }
    }
    if (batch_finish(r, &b) != 0) {
        return 1;
    }
    tph_barrier(r->world);
    tph_rank_fini(r);
    batch_free(&b);
    return 0;
}

EVERY_TRANSPORT_TEST(sizes, 120, 2, rank_sizes, NULL)

/* ---- in flight: 256 outstanding per direction ---------------------------- */

#define IN_FLIGHT 256

static int rank_in_flight(tph_rank_t *r, void *arg)
{
    int     nranks = r->world->nranks;
    batch_t b;
    int     i, p;

    (void)arg;
    TPH_CHECK(batch_init(&b, 2 * IN_FLIGHT * nranks) == 0, "calloc");
    if (tph_rank_setup(r) != 0) {
        return 1;
    }
    /* every receive first, then every send: nothing completes before
     * all 256 of a direction are posted, unless the transport is quick */
    for (p = 0; p < nranks; p++) {
        for (i = 0; p != r->rank && i < IN_FLIGHT; i++) {
            if (post(r, &b, 1, p, (size_t)(i * 251) % (33 * KIB),
                     (uint64_t)i, (uint64_t)(7000 + i)) != 0) {
                return 1;
            }
        }
    }
    for (p = 0; p < nranks; p++) {
        for (i = 0; p != r->rank && i < IN_FLIGHT; i++) {
            if (post(r, &b, 0, p, (size_t)(i * 251) % (33 * KIB),
                     (uint64_t)i, (uint64_t)(7000 + i)) != 0) {
                return 1;
            }
        }
    }
    if (batch_finish(r, &b) != 0) {
        return 1;
    }
    tph_barrier(r->world);
    tph_rank_fini(r);
    batch_free(&b);
    return 0;
}

ParameterizedTestParameters(transport, in_flight)
{
    return every_transport();
}

ParameterizedTest(int *t, transport, in_flight, .timeout = 120)
{
    run_ranks(*t, 2, rank_in_flight, NULL);
    run_ranks(*t, 4, rank_in_flight, NULL);
}

/* ---- receive posted before / after the send ------------------------------ */

static const size_t order_sizes[] = {0, 100, 64 * KIB + 1, 16 * MIB, 5};

/* Rank 1 receives what rank 0 sends. recv_first: rank 1 posts every
 * receive, then rank 0 sends. Otherwise rank 0 sends first and rank 1
 * lets the messages arrive (progressing) before it posts. */
static const int post_yes = 1, post_no = 0; /* arg: recv_first or not */

static int rank_post_order(tph_rank_t *r, void *arg)
{
    int     recv_first = *(const int *)arg;
    int     n          = (int)TT_ARRAY_SIZE(order_sizes);
    batch_t b;
    int     i;

    TPH_CHECK(batch_init(&b, n) == 0, "calloc");
    if (tph_rank_setup(r) != 0) {
        return 1;
    }
    if (r->rank == 1 && recv_first) {
        for (i = 0; i < n; i++) {
            if (post(r, &b, 1, 0, order_sizes[i], (uint64_t)i,
                     (uint64_t)(50 + i)) != 0) {
                return 1;
            }
        }
        tph_progress_for(r, 20);
    }
    if (r->rank == 0 && !recv_first) {
        for (i = 0; i < n; i++) {
            if (post(r, &b, 0, 1, order_sizes[i], (uint64_t)i,
                     (uint64_t)(50 + i)) != 0) {
                return 1;
            }
        }
    }
    tph_barrier(r->world);
    if (r->rank == 0 && recv_first) {
        for (i = 0; i < n; i++) {
            if (post(r, &b, 0, 1, order_sizes[i], (uint64_t)i,
                     (uint64_t)(50 + i)) != 0) {
                return 1;
            }
        }
    }
    if (r->rank == 1 && !recv_first) {
        /* let whatever can arrive unexpected arrive */
        tph_progress_for(r, 100);
        for (i = 0; i < n; i++) {
            if (post(r, &b, 1, 0, order_sizes[i], (uint64_t)i,
                     (uint64_t)(50 + i)) != 0) {
                return 1;
            }
        }
    }
    if (batch_finish(r, &b) != 0) {
        return 1;
    }
    tph_barrier(r->world);
    tph_rank_fini(r);
    batch_free(&b);
    return 0;
}

EVERY_TRANSPORT_TEST(recv_first, 60, 2, rank_post_order, (void *)&post_yes)

EVERY_TRANSPORT_TEST(send_first, 60, 2, rank_post_order, (void *)&post_no)

/* ---- channels: separate FIFOs per (direction, channel) ------------------ */

#define CHAN_N 6

/* Message i of the channel test: alternately point-to-point and
 * collective, sizes from tiny to rendezvous-sized. */
static uint64_t chan_tag(int i)
{
    uint64_t tag = (uint64_t)(3 + i / 2);

    return i % 2 == 0 ? tag | TT_TAG_CHANNEL_P2P : tag;
}

static size_t chan_size(int i)
{
    static const size_t sizes[CHAN_N] = {100, 200, 4 * MIB, 64 * KIB + 1,
                                         0,   MIB};

    return sizes[i];
}

/*
 * Rank 0 sends six messages, point-to-point and collective in turn. Rank 1
 * first receives the collective ones and must get them although the
 * point-to-point messages before them are not received yet; then it
 * receives the point-to-point ones, still in their own order.
 */
static int rank_channels(tph_rank_t *r, void *arg)
{
    batch_t b;
    int     i, pass;

    (void)arg;
    TPH_CHECK(batch_init(&b, CHAN_N) == 0, "calloc");
    if (tph_rank_setup(r) != 0) {
        return 1;
    }
    if (r->rank == 0) {
        for (i = 0; i < CHAN_N; i++) {
            if (post(r, &b, 0, 1, chan_size(i), (uint64_t)i,
                     chan_tag(i)) != 0) {
                return 1;
            }
        }
        if (batch_finish(r, &b) != 0) {
            return 1;
        }
    } else {
        for (pass = 1; pass >= 0; pass--) {
            batch_t part;

            TPH_CHECK(batch_init(&part, CHAN_N) == 0, "calloc");
            for (i = pass; i < CHAN_N; i += 2) {
                if (post(r, &part, 1, 0, chan_size(i), (uint64_t)i,
                         chan_tag(i)) != 0) {
                    return 1;
                }
            }
            if (batch_finish(r, &part) != 0) {
                fprintf(stderr, "%s: the %s channel's receives\n",
                        r->ops->name, pass ? "collective" : "p2p");
                return 1;
            }
            batch_free(&part);
        }
    }
    tph_barrier(r->world);
    tph_rank_fini(r);
    batch_free(&b);
    return 0;
}

EVERY_TRANSPORT_TEST(channels, 60, 2, rank_channels, NULL)

/* ---- mismatch: another tag or length fails the receive ------------------- */

typedef struct mismatch {
    const char *what;
    size_t      send_len, recv_len;
    uint64_t    send_tag, recv_tag;
} mismatch_t;

static const mismatch_t mismatches[] = {
    {"another tag", 64, 64, 5, 6},
    {"a shorter message", 10, 64, 5, 5},
    {"a longer message", 64, 10, 5, 5},
    {"a longer large message", 4 * MIB, MIB, 5, 5},
};

/* Rank 0 sends, rank 1 receives something else: its receive must end with
 * TUTTI_ERR_INVALID_USAGE. The send may end either way, or stay pending
 * until ep_close aborts it. */
static int rank_mismatch(tph_rank_t *r, void *arg)
{
    const mismatch_t *m   = arg;
    tt_req_t          req = {0};
    char             *buf;
    size_t            len = TT_MAX(m->send_len, m->recv_len);

    buf = calloc(1, len + 1);
    TPH_CHECK(buf != NULL, "calloc");
    if (tph_rank_setup(r) != 0) {
        return 1;
    }
    if (r->rank == 0) {
        TPH_CHECK(r->ops->isend(r->ep[1], buf, m->send_len, m->send_tag,
                                &req) == TUTTI_SUCCESS,
                  "isend: %s", tutti_last_error());
        /* progress (a handshake may need it) until rank 1 has judged */
        TPH_CHECK(tph_progress_until(r, &r->world->flag[1], WAIT_MS) == 0,
                  "rank 1 did not judge");
    } else {
        TPH_CHECK(r->ops->irecv(r->ep[0], buf, m->recv_len, m->recv_tag,
                                &req) == TUTTI_SUCCESS,
                  "irecv: %s", tutti_last_error());
        {
            tt_req_t *reqs[1] = {&req};

            TPH_CHECK(tph_wait(r, reqs, 1, WAIT_MS) == 0,
                      "%s: %s never failed the receive", r->ops->name,
                      m->what);
        }
        TPH_CHECK(req.status == TUTTI_ERR_INVALID_USAGE,
                  "%s: %s ended the receive with %s", r->ops->name, m->what,
                  tutti_result_name(req.status));
        atomic_store(&r->world->flag[1], 1);
    }
    tph_barrier(r->world);
    tph_rank_fini(r);
    TPH_CHECK(req.status != TUTTI_INPROGRESS,
              "%s: a request still in progress after ep_close",
              r->ops->name);
    free(buf);
    return 0;
}

ParameterizedTestParameters(transport, mismatch)
{
    return every_transport();
}

ParameterizedTest(int *t, transport, mismatch, .timeout = 120)
{
    size_t i;

    for (i = 0; i < TT_ARRAY_SIZE(mismatches); i++) {
        run_ranks(*t, 2, rank_mismatch, (void *)&mismatches[i]);
    }
}

/* ---- close with traffic pending ------------------------------------------ */

#define CLOSE_RECVS 8
#define CLOSE_SENDS 4
#define CLOSE_BIG   (16 * MIB)

/*
 * Rank 0 posts receives that no send will match and large sends that no
 * receive will take, lets them progress, then closes its endpoint while
 * the peer is alive: every receive must end TUTTI_ERR_ABORTED, every send
 * ABORTED or SUCCESS (if its bytes could leave), and no receive buffer may
 * change after ep_close returned. Rank 1 posts nothing: it keeps
 * progressing until rank 0 has closed, then closes with whatever arrived
 * unexpected still queued.
 */
static int rank_close(tph_rank_t *r, void *arg)
{
    tt_req_t  req[CLOSE_RECVS + CLOSE_SENDS];
    char     *rbuf[CLOSE_RECVS], *sbuf[CLOSE_SENDS];
    int       i;

    (void)arg;
    if (tph_rank_setup(r) != 0) {
        return 1;
    }
    if (r->rank == 1) {
        TPH_CHECK(tph_progress_until(r, &r->world->flag[0], WAIT_MS) == 0,
                  "rank 0 did not close");
        tph_rank_fini(r);
        return 0;
    }
    for (i = 0; i < CLOSE_RECVS; i++) {
        rbuf[i] = malloc(MIB);
        TPH_CHECK(rbuf[i] != NULL, "malloc");
        req[i] = (tt_req_t){0};
        TPH_CHECK(r->ops->irecv(r->ep[1], rbuf[i], MIB, (uint64_t)(900 + i),
                                &req[i]) == TUTTI_SUCCESS,
                  "irecv: %s", tutti_last_error());
    }
    for (i = 0; i < CLOSE_SENDS; i++) {
        sbuf[i] = calloc(1, CLOSE_BIG);
        TPH_CHECK(sbuf[i] != NULL, "calloc");
        req[CLOSE_RECVS + i] = (tt_req_t){0};
        TPH_CHECK(r->ops->isend(r->ep[1], sbuf[i], CLOSE_BIG,
                                (uint64_t)(500 + i),
                                &req[CLOSE_RECVS + i]) == TUTTI_SUCCESS,
                  "isend: %s", tutti_last_error());
    }
    tph_progress_for(r, 50);
    r->ops->ep_close(r->ep[1]);
    r->ep[1] = NULL;
    for (i = 0; i < CLOSE_RECVS + CLOSE_SENDS; i++) {
        int st = req[i].status;

        TPH_CHECK(st == TUTTI_ERR_ABORTED ||
                      (st == TUTTI_SUCCESS && i >= CLOSE_RECVS),
                  "%s: request %d ended with %s after ep_close",
                  r->ops->name, i, tutti_result_name(st));
    }
    /* The buffers are the caller's again: nothing may write them now. */
    for (i = 0; i < CLOSE_RECVS; i++) {
        memset(rbuf[i], 0x3c, MIB);
    }
    tph_progress_for(r, 50);
    for (i = 0; i < CLOSE_RECVS; i++) {
        size_t k;

        for (k = 0; k < MIB; k++) {
            TPH_CHECK((uint8_t)rbuf[i][k] == 0x3c,
                      "%s: receive buffer %d written at %zu after ep_close",
                      r->ops->name, i, k);
        }
        free(rbuf[i]);
    }
    atomic_store(&r->world->flag[0], 1);
    tph_rank_fini(r);
    for (i = 0; i < CLOSE_SENDS; i++) {
        free(sbuf[i]);
    }
    return 0;
}

EVERY_TRANSPORT_TEST(close_pending, 60, 2, rank_close, NULL)

/* ---- sent, then closed ------------------------------------------------- */

#define GONE_N 6

static size_t gone_size(int i)
{
    /* small enough to leave eagerly on every transport's defaults */
    static const size_t sizes[GONE_N] = {0, 8, 100, 1000, 4000, 6000};

    return sizes[i];
}

/* Rank 0's six sends, or rank 1's six receives, to their end. */
static int gone_exchange(tph_rank_t *r, batch_t *b, int is_recv)
{
    int i;

    for (i = 0; i < GONE_N; i++) {
        if (post(r, b, is_recv, 1 - r->rank, gone_size(i), (uint64_t)i,
                 (uint64_t)(40 + i)) != 0) {
            return 1;
        }
    }
    return batch_finish(r, b);
}

/*
 * Rank 0 sends six messages, waits until every send has ended, closes its
 * endpoint, finalises and leaves, as a rank does that destroys its
 * communicator right after its last collective. Rank 1 posts nothing
 * until then. It first waits for a receive on the other channel, which no
 * message will meet, to end: the UCX transport must fail it once it sees
 * the connection gone (other transports may keep it pending; it is given
 * a second). Then it receives the six messages, which must all arrive
 * whole: the transport may not fail a receive whose message it holds.
 */
static int rank_sent_then_closed(tph_rank_t *r, void *arg)
{
    batch_t        b;
    tt_req_t       probe     = {0};
    tt_req_t      *probes[1] = {&probe};
    uint64_t       v;
    tutti_result_t res;
    int            ucx = strcmp(r->ops->name, "ucx") == 0;

    (void)arg;
    TPH_CHECK(batch_init(&b, GONE_N) == 0, "calloc");
    if (tph_rank_setup(r) != 0) {
        return 1;
    }
    if (r->rank == 0) {
        if (gone_exchange(r, &b, 0) != 0) {
            return 1;
        }
        tph_rank_fini(r);
        batch_free(&b);
        atomic_store(&r->world->flag[0], 1);
        return 0;
    }
    TPH_CHECK(tph_progress_until(r, &r->world->flag[0], WAIT_MS) == 0,
              "rank 0 did not leave");
    res = r->ops->irecv(r->ep[0], &v, sizeof(v), TT_TAG_CHANNEL_P2P | 7,
                        &probe);
    if (res == TUTTI_SUCCESS && ucx) {
        TPH_CHECK(tph_wait(r, probes, 1, WAIT_MS) == 0,
                  "ucx: the closed connection was never noticed");
        res = probe.status;
    } else if (res == TUTTI_SUCCESS) {
        tph_progress_for(r, 1000);
        res = probe.status;
    }
    /* no message meets it: it fails (with UCX it must), or it waits */
    TPH_CHECK(ucx ? res == TUTTI_ERR_REMOTE : res != TUTTI_SUCCESS,
              "%s: a receive no message meets ended with %s",
              r->ops->name, tutti_result_name(res));
    if (gone_exchange(r, &b, 1) != 0) {
        return 1;
    }
    tph_rank_fini(r);
    batch_free(&b);
    return 0;
}

EVERY_TRANSPORT_TEST(sent_then_closed, 60, 2, rank_sent_then_closed, NULL)

/* ---- closed while the receiver was busy ---------------------------------- */

#define BUSY_MS 3000 /* longer than any short bound on a close */

typedef struct busy {
    int    n;
    size_t size;
    int    warm; /* one message each way first */
} busy_t;

/* 4 KiB: eager under any UCX TCP segments; 64 KiB: eager only under
 * tutti's 256 KiB. Warm: the connection has carried a message each way
 * before; cold: the sends are its first traffic. */
static const busy_t busy_cases[] = {
    {64, 4 * KIB, 1}, {8, 200 * KIB, 1}, {64, 4 * KIB, 0}, {8, 200 * KIB, 0},
};

/*
 * Rank 0 sends a few messages while rank 1 does not progress at all, as a
 * rank busy computing (on a connection that has carried traffic or on a
 * fresh one). Where the transport takes them all without the
 * receiver (UCX over TCP: the socket buffers), every send ends and rank 0
 * closes and finalises at once, with nothing pending: a healthy close.
 * Rank 1 stays busy for BUSY_MS more, then receives, and every message
 * must arrive whole: a close may wait for a slow peer, but not drop what
 * it reported sent. Where the sends cannot all end alone (shm's FIFO,
 * libfabric's rendezvous), rank 1 is told to receive at once, and the test
 * is an ordinary exchange. Each rank says which way it went.
 */
static int rank_busy_reader(tph_rank_t *r, void *arg)
{
    const busy_t *bz     = arg;
    _Atomic int  *closed = &r->world->flag[0], *alone = &r->world->flag[1];
    batch_t       b;
    uint64_t      end;
    int           i, n;

    TPH_CHECK(batch_init(&b, bz->n + 2) == 0, "calloc");
    if (tph_rank_setup(r) != 0) {
        return 1;
    }
    if (bz->warm && (post(r, &b, 1, 1 - r->rank, 8, 0, 59) != 0 ||
                     post(r, &b, 0, 1 - r->rank, 8, 0, 59) != 0 ||
                     batch_finish(r, &b) != 0)) {
        return 1;
    }
    batch_free(&b);
    TPH_CHECK(batch_init(&b, bz->n) == 0, "calloc");
    if (bz->warm) {
        tph_barrier(r->world);
    }
    if (r->rank == 0) {
        for (i = 0; i < bz->n; i++) {
            if (post(r, &b, 0, 1, bz->size, (uint64_t)i, 60) != 0) {
                return 1;
            }
        }
        end = tutti__now_ns() + 2000 * 1000000ull;
        do {
            r->ops->progress(r->tp);
            for (n = 0; n < bz->n && b.req[n].status != TUTTI_INPROGRESS;
                 n++) {
            }
        } while (n < bz->n && tutti__now_ns() < end);
        atomic_store(alone, n == bz->n ? 1 : 2);
        if (batch_finish(r, &b) != 0) {
            return 1;
        }
        tph_rank_fini(r);
        batch_free(&b);
        atomic_store(closed, 1);
        return 0;
    }
    while (atomic_load(alone) == 0 && !atomic_load(&r->world->failed)) {
        sched_yield(); /* busy elsewhere: no progress */
    }
    if (atomic_load(alone) == 1) {
        while (!atomic_load(closed) && !atomic_load(&r->world->failed)) {
            sched_yield();
        }
        end = tutti__now_ns() + BUSY_MS * 1000000ull;
        while (tutti__now_ns() < end) {
            sched_yield();
        }
    }
    fprintf(stderr, "%s, %d x %zu bytes, %s: the sends ended %s\n",
            r->ops->name, bz->n, bz->size, bz->warm ? "warm" : "cold",
            atomic_load(alone) == 1 ? "before any receive: closed first"
                                    : "only with the receiver's help");
    for (i = 0; i < bz->n; i++) {
        if (post(r, &b, 1, 0, bz->size, (uint64_t)i, 60) != 0) {
            return 1;
        }
    }
    if (batch_finish(r, &b) != 0) {
        return 1;
    }
    TPH_CHECK(tph_progress_until(r, closed, WAIT_MS) == 0,
              "rank 0 did not close");
    tph_rank_fini(r);
    batch_free(&b);
    return 0;
}

ParameterizedTestParameters(transport, busy_reader)
{
    return every_transport();
}

ParameterizedTest(int *t, transport, busy_reader, .timeout = 90)
{
    size_t i;

    for (i = 0; i < TT_ARRAY_SIZE(busy_cases); i++) {
        run_ranks(*t, 2, rank_busy_reader, (void *)&busy_cases[i]);
    }
}

/* ---- wake: the wait fd of TT_CAP_WAIT_FD transports ---------------------- */

#define WAKE_ROUNDS 5

/*
 * Rank 1 posts a receive, arms the transport and sleeps in poll() on the
 * wait fd; rank 0 sends only once rank 1 is asleep. arm() may answer
 * TUTTI_INPROGRESS (events pending: progress first), and a wake-up may be
 * spurious, but the receive must complete and the fd must have woken the
 * sleeper at least once per round instead of the poll timing out.
 */
static int rank_wake(tph_rank_t *r, void *arg)
{
    tt_req_t req;
    uint64_t v = 0;
    int      fd, round;

    (void)arg;
    if (tph_rank_setup(r) != 0) {
        return 1;
    }
    TPH_CHECK(r->ops->wait_fd(r->tp, &fd) == TUTTI_SUCCESS && fd >= 0,
              "%s wait_fd: %s", r->ops->name, tutti_last_error());
    for (round = 0; round < WAKE_ROUNDS; round++) {
        _Atomic int *asleep = &r->world->flag[round % TPH_MAX_RANKS];

        req = (tt_req_t){0};
        if (r->rank == 0) {
            TPH_CHECK(tph_progress_until(r, asleep, WAIT_MS) == 0,
                      "rank 1 never slept");
            tph_progress_for(r, 20);
            v = 1000 + (uint64_t)round;
            TPH_CHECK(r->ops->isend(r->ep[1], &v, sizeof(v), 3, &req) ==
                          TUTTI_SUCCESS,
                      "isend: %s", tutti_last_error());
        } else {
            struct pollfd pfd   = {.fd = fd, .events = POLLIN};
            int           woken = 0, slept = 0;
            uint64_t      end   = tutti__now_ns() + WAIT_MS * 1000000ull;

            TPH_CHECK(r->ops->irecv(r->ep[0], &v, sizeof(v), 3, &req) ==
                          TUTTI_SUCCESS,
                      "irecv: %s", tutti_last_error());
            while (req.status == TUTTI_INPROGRESS &&
                   tutti__now_ns() < end) {
                tutti_result_t res;

                r->ops->progress(r->tp);
                if (req.status != TUTTI_INPROGRESS) {
                    break;
                }
                res = r->ops->arm(r->tp);
                TPH_CHECK(res == TUTTI_SUCCESS || res == TUTTI_INPROGRESS,
                          "arm: %s", tutti_last_error());
                if (res == TUTTI_INPROGRESS) {
                    continue;
                }
                if (!slept) {
                    slept = 1;
                    atomic_store(asleep, 1);
                }
                woken += poll(&pfd, 1, 10000) > 0;
            }
            TPH_CHECK(req.status == TUTTI_SUCCESS &&
                          v == 1000 + (uint64_t)round,
                      "%s round %d: status %s, value %llu", r->ops->name,
                      round, tutti_result_name(req.status),
                      (unsigned long long)v);
            TPH_CHECK(slept && woken > 0,
                      "%s round %d: the fd never woke the sleeper",
                      r->ops->name, round);
        }
        {
            tt_req_t *reqs[1] = {&req};

            TPH_CHECK(tph_wait(r, reqs, 1, WAIT_MS) == 0, "round %d",
                      round);
        }
        TPH_CHECK(req.status == TUTTI_SUCCESS, "round %d: %s", round,
                  tutti_result_name(req.status));
        tph_barrier(r->world);
    }
    tph_rank_fini(r);
    return 0;
}

ParameterizedTestParameters(transport, wake)
{
    return every_transport();
}

ParameterizedTest(int *t, transport, wake, .timeout = 60)
{
    const tt_transport_ops_t *ops = tutti__transports[*t];

    if (!(ops->caps & TT_CAP_WAIT_FD)) {
        cr_skip_test("%s: no wait fd (TT_CAP_WAIT_FD unset)", ops->name);
    }
    cr_assert(ops->wait_fd != NULL && ops->arm != NULL,
              "%s: TT_CAP_WAIT_FD set but a slot is NULL", ops->name);
    run_ranks(*t, 2, rank_wake, NULL);
}
