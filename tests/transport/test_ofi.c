/*
 * Smoke test of the libfabric transport, driving tt_ofi_ops directly from
 * 2-3 forked ranks that meet in an anonymous shared mapping (addresses,
 * barriers) instead of the bootstrap: connection of every pair, FIFO order
 * with many small messages, sizes from 0 bytes to 16 MiB, thousands of
 * requests in flight (past the provider's queue sizes, so the -FI_EAGAIN
 * path runs), tag and length mismatches, and ep_close with receives and a
 * large send still pending. The provider is the configured one
 * (TUTTI_OFI_PROVIDER, default: best available); a test is skipped when no
 * provider fits. The generic suite over every transport is
 * test_conformance.c; this file only covers what ofi itself promises.
 */
#include <criterion/criterion.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "internal.h"
#include "transport.h"
#include "ofi/ofi_ops.h"

#define NR_MAX  3
#define WAIT_MS 30000
#define MIB     (1024 * 1024)

typedef struct world {
    int         nranks;
    _Atomic int failed;
    _Atomic int arrived;
    _Atomic int generation;
    uint32_t    addr_len[NR_MAX];
    uint8_t     addr[NR_MAX][TT_ADDR_MAX];
} world_t;

typedef struct rank {
    world_t       *w;
    int            rank;
    tt_config_t    cfg;
    tt_peer_info_t info[NR_MAX];
    tt_tp_t       *tp;
    tt_ep_t       *ep[NR_MAX];
} rank_t;

typedef int (*rank_fn)(rank_t *r);

#define CHECK(_cond, ...)                                                    \
    do {                                                                     \
        if (!(_cond)) {                                                      \
            fprintf(stderr, "rank %d: %s:%d: '%s' failed: ", r->rank,       \
                    __FILE__, __LINE__, #_cond);                             \
            fprintf(stderr, __VA_ARGS__);                                    \
            fprintf(stderr, "\n");                                           \
            return 1;                                                        \
        }                                                                    \
    } while (0)

static void barrier(rank_t *r)
{
    world_t *w   = r->w;
    int      gen = atomic_load(&w->generation);
    uint64_t end = tutti__now_ns() + WAIT_MS * 1000000ull;

    if (atomic_fetch_add(&w->arrived, 1) == w->nranks - 1) {
        atomic_store(&w->arrived, 0);
        atomic_fetch_add(&w->generation, 1);
        return;
    }
    while (atomic_load(&w->generation) == gen) {
        /* keep the provider moving: a peer may wait on our progress */
        if (r->tp != NULL) {
            tt_ofi_ops.progress(r->tp);
        }
        sched_yield();
        if (atomic_load(&w->failed) || tutti__now_ns() > end) {
            fprintf(stderr, "rank %d: leaves a barrier\n", r->rank);
            _exit(1);
        }
    }
}

/* Progresses until every request ended, at most WAIT_MS. */
static int wait_all(rank_t *r, tt_req_t *reqs, size_t n)
{
    uint64_t end = tutti__now_ns() + WAIT_MS * 1000000ull;
    size_t   first = 0;

    for (;;) {
        while (first < n && reqs[first].status != TUTTI_INPROGRESS) {
            first++;
        }
        if (first == n) {
            return 0;
        }
        if (tt_ofi_ops.progress(r->tp) == 0) {
            sched_yield();
            if (atomic_load(&r->w->failed) || tutti__now_ns() > end) {
                fprintf(stderr, "rank %d: %zu of %zu requests pending\n",
                        r->rank, n - first, n);
                return 1;
            }
        }
    }
}

static int setup(rank_t *r)
{
    world_t       *w   = r->w;
    size_t         len = TT_ADDR_MAX;
    tt_tp_params_t params;
    int            i;

    tutti__log_init();
    tutti__log_set_rank(r->rank);
    CHECK(tutti__config_load(NULL, &r->cfg) == TUTTI_SUCCESS, "config");
    for (i = 0; i < w->nranks; i++) {
        r->info[i].rank = i;
        snprintf(r->info[i].hostid, TT_HOSTID_MAX, "ofi-test-host-%d", i);
    }
    params = (tt_tp_params_t){
        .rank        = r->rank,
        .nranks      = w->nranks,
        .job_id      = 42,
        .self        = &r->info[r->rank],
        .config      = &r->cfg,
        .local_ranks = &r->rank,
        .nlocal      = 1,
        .log         = tutti__log,
    };
    CHECK(tt_ofi_ops.init(&params, &r->tp) == TUTTI_SUCCESS, "init: %s",
          tutti_last_error());
    CHECK(tt_ofi_ops.address(r->tp, w->addr[r->rank], &len) ==
              TUTTI_SUCCESS, "address: %s", tutti_last_error());
    w->addr_len[r->rank] = (uint32_t)len;
    barrier(r);
    for (i = 0; i < w->nranks; i++) {
        if (i == r->rank) {
            continue;
        }
        CHECK(tt_ofi_ops.reachable(r->tp, &r->info[i]), "reach %d", i);
        CHECK(tt_ofi_ops.connect(r->tp, &r->info[i], w->addr[i],
                                 w->addr_len[i], &r->ep[i]) == TUTTI_SUCCESS,
              "connect to %d: %s", i, tutti_last_error());
    }
    barrier(r);
    return 0;
}

static void teardown(rank_t *r)
{
    int i;

    barrier(r);
    for (i = 0; i < NR_MAX; i++) {
        if (r->ep[i] != NULL) {
            tt_ofi_ops.ep_close(r->ep[i]);
        }
    }
    tt_ofi_ops.fini(r->tp);
}

static uint8_t pattern(int src, uint64_t seq, size_t i)
{
    return (uint8_t)(src * 37 + seq * 131 + i * 7 + (i >> 12));
}

static void fill(uint8_t *p, size_t len, int src, uint64_t seq)
{
    for (size_t i = 0; i < len; i++) {
        p[i] = pattern(src, seq, i);
    }
}

static size_t verify(const uint8_t *p, size_t len, int src, uint64_t seq)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != pattern(src, seq, i)) {
            return i;
        }
    }
    return (size_t)-1;
}

/* Forks the ranks; returns how many failed. */
static int run(int nranks, rank_fn fn)
{
    world_t *w;
    pid_t    pids[NR_MAX], parent = getpid();
    int      i, failed = 0;

    w = mmap(NULL, sizeof(*w), PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(w, MAP_FAILED);
    memset(w, 0, sizeof(*w));
    w->nranks = nranks;
    fflush(NULL);
    for (i = 0; i < nranks; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            rank_t r = {.w = w, .rank = i};
            int    rc;

            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent) {
                _exit(1);
            }
            rc = fn(&r);
            if (rc != 0) {
                atomic_store(&w->failed, 1);
            }
            fflush(NULL);
            _exit(rc);
        }
    }
    for (i = 0; i < nranks; i++) {
        int st;

        waitpid(pids[i], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "rank %d: %s %d\n", i,
                    WIFEXITED(st) ? "exit" : "signal",
                    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
            atomic_store(&w->failed, 1);
            failed++;
        }
    }
    munmap(w, sizeof(*w));
    return failed;
}

/* Skips the test when no provider fits here (no network, no libfabric
 * provider with what ofi needs). */
static void skip_without_provider(void)
{
    tt_config_t    cfg;
    tt_peer_info_t self = {.rank = 0};
    tt_tp_params_t params = {
        .rank = 0, .nranks = 1, .self = &self, .config = &cfg,
        .local_ranks = &self.rank, .nlocal = 1, .log = tutti__log,
    };
    tt_tp_t *tp;

    cr_assert_eq(tutti__config_load(NULL, &cfg), TUTTI_SUCCESS);
    if (tt_ofi_ops.init(&params, &tp) != TUTTI_SUCCESS) {
        cr_skip_test("ofi: %s", tutti_last_error());
    }
    tt_ofi_ops.fini(tp);
}

/* ---- connect: every pair of 3 ranks, one message each way ------------- */

static int rank_connect(rank_t *r)
{
    uint64_t out[NR_MAX], in[NR_MAX];
    tt_req_t req[2 * NR_MAX] = {0};
    size_t   n = 0;
    int      p;

    if (setup(r) != 0) {
        return 1;
    }
    for (p = 0; p < r->w->nranks; p++) {
        if (p == r->rank) {
            continue;
        }
        out[p] = (uint64_t)r->rank << 32 | (uint64_t)p;
        CHECK(tt_ofi_ops.irecv(r->ep[p], &in[p], 8, 7, &req[n++]) == 0,
              "irecv");
        CHECK(tt_ofi_ops.isend(r->ep[p], &out[p], 8, 7, &req[n++]) == 0,
              "isend");
    }
    CHECK(wait_all(r, req, n) == 0, "exchange");
    for (p = 0; p < (int)n; p++) {
        CHECK(req[p].status == TUTTI_SUCCESS, "request %d: %d", p,
              req[p].status);
    }
    for (p = 0; p < r->w->nranks; p++) {
        if (p != r->rank) {
            CHECK(in[p] == ((uint64_t)p << 32 | (uint64_t)r->rank),
                  "from %d: %#llx", p, (unsigned long long)in[p]);
        }
    }
    teardown(r);
    return 0;
}

Test(transport_ofi, connect_three_ranks, .timeout = 60)
{
    skip_without_provider();
    cr_assert_eq(run(3, rank_connect), 0);
}

/* ---- order: 2000 messages of mixed sizes, receives half late ---------- */

#define ORDER_N 2000

static size_t order_len(int i)
{
    return i % 7 == 0 ? 0 : (size_t)(i * 37) % 3000;
}

static int rank_order(rank_t *r)
{
    int       peer = 1 - r->rank, i;
    tt_req_t *req  = calloc(ORDER_N, sizeof(*req));
    uint8_t  *buf  = malloc((size_t)ORDER_N * 3000);

    CHECK(req != NULL && buf != NULL, "malloc");
    if (setup(r) != 0) {
        return 1;
    }
    if (r->rank == 0) {
        for (i = 0; i < ORDER_N; i++) {
            fill(buf + (size_t)i * 3000, order_len(i), 0, (uint64_t)i);
            CHECK(tt_ofi_ops.isend(r->ep[peer], buf + (size_t)i * 3000,
                                   order_len(i), (uint64_t)i, &req[i]) == 0,
                  "isend %d: %s", i, tutti_last_error());
        }
        CHECK(wait_all(r, req, ORDER_N) == 0, "sends");
    } else {
        /* the first half posted before the sender starts, the rest after
         * some have arrived unexpected */
        for (i = 0; i < ORDER_N; i++) {
            if (i == ORDER_N / 2) {
                usleep(20000);
                tt_ofi_ops.progress(r->tp);
            }
            CHECK(tt_ofi_ops.irecv(r->ep[peer], buf + (size_t)i * 3000,
                                   order_len(i), (uint64_t)i, &req[i]) == 0,
                  "irecv %d: %s", i, tutti_last_error());
        }
        CHECK(wait_all(r, req, ORDER_N) == 0, "receives");
        for (i = 0; i < ORDER_N; i++) {
            CHECK(req[i].status == TUTTI_SUCCESS, "recv %d: %d", i,
                  req[i].status);
            CHECK(verify(buf + (size_t)i * 3000, order_len(i), 0,
                         (uint64_t)i) == (size_t)-1, "message %d", i);
        }
    }
    teardown(r);
    free(buf);
    free(req);
    return 0;
}

Test(transport_ofi, fifo_order, .timeout = 60)
{
    skip_without_provider();
    cr_assert_eq(run(2, rank_order), 0);
}

/* ---- sizes: 0 B to 16 MiB, both directions at once -------------------- */

static const size_t sizes[] = {0, 1, 63, 64, 65, 4096, 65537, MIB,
                               16 * MIB};

static int rank_sizes(rank_t *r)
{
    int    peer = 1 - r->rank;
    size_t s;

    if (setup(r) != 0) {
        return 1;
    }
    for (s = 0; s < TT_ARRAY_SIZE(sizes); s++) {
        size_t   len = sizes[s];
        uint8_t *out = malloc(len + 1), *in = malloc(len + 1);
        tt_req_t req[2] = {0};

        CHECK(out != NULL && in != NULL, "malloc %zu", len);
        fill(out, len, r->rank, s);
        in[len] = 0xee; /* must stay */
        CHECK(tt_ofi_ops.irecv(r->ep[peer], len ? in : NULL, len, s,
                               &req[0]) == 0, "irecv %zu", len);
        CHECK(tt_ofi_ops.isend(r->ep[peer], len ? out : NULL, len, s,
                               &req[1]) == 0, "isend %zu", len);
        CHECK(wait_all(r, req, 2) == 0, "size %zu", len);
        CHECK(req[0].status == TUTTI_SUCCESS && req[1].status ==
              TUTTI_SUCCESS, "size %zu: %d %d", len, req[0].status,
              req[1].status);
        CHECK(verify(in, len, peer, s) == (size_t)-1 && in[len] == 0xee,
              "size %zu: bad data", len);
        free(out);
        free(in);
    }
    teardown(r);
    return 0;
}

Test(transport_ofi, sizes_0_to_16MiB, .timeout = 120)
{
    skip_without_provider();
    cr_assert_eq(run(2, rank_sizes), 0);
}

/* ---- many in flight: 5000 x 1 KiB and 64 x 256 KiB each way ----------- */

static int rank_many(rank_t *r)
{
    const size_t nsmall = 5000, nbig = 64, small = 1024, big = 256 * 1024;
    size_t       n = nsmall + nbig, i;
    int          peer = 1 - r->rank;
    tt_req_t    *rreq = calloc(n, sizeof(*rreq));
    tt_req_t    *sreq = calloc(n, sizeof(*sreq));
    uint8_t     *out  = malloc(nsmall * small + nbig * big);
    uint8_t     *in   = malloc(nsmall * small + nbig * big);

    CHECK(rreq != NULL && sreq != NULL && out != NULL && in != NULL,
          "malloc");
    if (setup(r) != 0) {
        return 1;
    }
    for (i = 0; i < n; i++) {
        size_t len = i < nsmall ? small : big;
        size_t off = i < nsmall ? i * small
                                : nsmall * small + (i - nsmall) * big;

        fill(out + off, len, r->rank, i);
        CHECK(tt_ofi_ops.irecv(r->ep[peer], in + off, len, i, &rreq[i]) == 0,
              "irecv %zu: %s", i, tutti_last_error());
        CHECK(tt_ofi_ops.isend(r->ep[peer], out + off, len, i, &sreq[i]) ==
              0, "isend %zu: %s", i, tutti_last_error());
    }
    CHECK(wait_all(r, sreq, n) == 0 && wait_all(r, rreq, n) == 0, "wait");
    for (i = 0; i < n; i++) {
        size_t len = i < nsmall ? small : big;
        size_t off = i < nsmall ? i * small
                                : nsmall * small + (i - nsmall) * big;

        CHECK(rreq[i].status == 0 && sreq[i].status == 0, "%zu: %d %d", i,
              rreq[i].status, sreq[i].status);
        CHECK(verify(in + off, len, peer, i) == (size_t)-1, "message %zu",
              i);
    }
    teardown(r);
    return 0;
}

Test(transport_ofi, many_in_flight, .timeout = 120)
{
    skip_without_provider();
    cr_assert_eq(run(2, rank_many), 0);
}

/* ---- a stream like the executor's: 4000 slices, 16 in flight -------- */

#define STREAM_N   4000
#define STREAM_WIN 16

static size_t stream_len(size_t i)
{
    return (i * 2654435761u) % (64 * 1024);
}

static int rank_stream(rank_t *r)
{
    int      peer = 1 - r->rank;
    size_t   sent = 0, recvd = 0, sdone = 0, rdone = 0;
    tt_req_t sreq[STREAM_WIN] = {0}, rreq[STREAM_WIN] = {0};
    uint8_t *out = malloc((size_t)STREAM_WIN * 64 * 1024);
    uint8_t *in  = malloc((size_t)STREAM_WIN * 64 * 1024);
    uint64_t end = tutti__now_ns() + WAIT_MS * 1000000ull;

    CHECK(out != NULL && in != NULL, "malloc");
    if (setup(r) != 0) {
        return 1;
    }
    while (sdone < STREAM_N || rdone < STREAM_N) {
        /* post up to the window, oldest slot first */
        while (recvd < STREAM_N && recvd - rdone < STREAM_WIN) {
            size_t k = recvd % STREAM_WIN;

            CHECK(tt_ofi_ops.irecv(r->ep[peer], in + k * 64 * 1024,
                                   stream_len(recvd), recvd, &rreq[k]) == 0,
                  "irecv %zu", recvd);
            recvd++;
        }
        while (sent < STREAM_N && sent - sdone < STREAM_WIN) {
            size_t k = sent % STREAM_WIN;

            fill(out + k * 64 * 1024, stream_len(sent), r->rank, sent);
            CHECK(tt_ofi_ops.isend(r->ep[peer], out + k * 64 * 1024,
                                   stream_len(sent), sent, &sreq[k]) == 0,
                  "isend %zu", sent);
            sent++;
        }
        tt_ofi_ops.progress(r->tp);
        while (rdone < recvd &&
               rreq[rdone % STREAM_WIN].status != TUTTI_INPROGRESS) {
            size_t k = rdone % STREAM_WIN;

            CHECK(rreq[k].status == 0, "recv %zu: %d", rdone,
                  rreq[k].status);
            CHECK(verify(in + k * 64 * 1024, stream_len(rdone), peer,
                         rdone) == (size_t)-1, "message %zu", rdone);
            rdone++;
        }
        while (sdone < sent &&
               sreq[sdone % STREAM_WIN].status != TUTTI_INPROGRESS) {
            CHECK(sreq[sdone % STREAM_WIN].status == 0, "send %zu", sdone);
            sdone++;
        }
        CHECK(tutti__now_ns() < end, "stuck at send %zu/%zu recv %zu/%zu",
              sdone, sent, rdone, recvd);
    }
    teardown(r);
    free(out);
    free(in);
    return 0;
}

Test(transport_ofi, windowed_stream, .timeout = 60)
{
    skip_without_provider();
    cr_assert_eq(run(2, rank_stream), 0);
}

/* ---- mismatches: another tag, a shorter and a longer message ---------- */

static int rank_mismatch(rank_t *r)
{
    uint8_t  buf[256] = {0};
    tt_req_t req[3]   = {0};

    if (setup(r) != 0) {
        return 1;
    }
    if (r->rank == 0) {
        CHECK(tt_ofi_ops.isend(r->ep[1], buf, 8, 100, &req[0]) == 0, "s0");
        CHECK(tt_ofi_ops.isend(r->ep[1], buf, 8, 101, &req[1]) == 0, "s1");
        CHECK(tt_ofi_ops.isend(r->ep[1], buf, 200, 102, &req[2]) == 0,
              "s2");
        CHECK(wait_all(r, req, 3) == 0, "sends");
    } else {
        CHECK(tt_ofi_ops.irecv(r->ep[0], buf, 8, 999, &req[0]) == 0, "r0");
        CHECK(tt_ofi_ops.irecv(r->ep[0], buf, 16, 101, &req[1]) == 0, "r1");
        CHECK(tt_ofi_ops.irecv(r->ep[0], buf, 100, 102, &req[2]) == 0,
              "r2");
        CHECK(wait_all(r, req, 3) == 0, "receives");
        CHECK(req[0].status == TUTTI_ERR_INVALID_USAGE, "tag: %d",
              req[0].status);
        CHECK(req[1].status == TUTTI_ERR_INVALID_USAGE, "short: %d",
              req[1].status);
        CHECK(req[2].status == TUTTI_ERR_INVALID_USAGE, "long: %d",
              req[2].status);
    }
    teardown(r);
    return 0;
}

Test(transport_ofi, tag_and_length_mismatch, .timeout = 60)
{
    skip_without_provider();
    cr_assert_eq(run(2, rank_mismatch), 0);
}

/* ---- ep_close with receives and a 16 MiB send pending ----------------- */

static int rank_close(rank_t *r)
{
    tt_req_t req[9] = {0};
    uint64_t one    = 1, end;
    uint8_t *big, *small;
    int      i;

    if (setup(r) != 0) {
        return 1;
    }
    /* one message first, so that the connection is up and the big send
     * below is really in the provider's hands when ep_close comes */
    if (r->rank == 0) {
        CHECK(tt_ofi_ops.isend(r->ep[1], &one, 8, 0, &req[0]) == 0, "send");
    } else {
        CHECK(tt_ofi_ops.irecv(r->ep[0], &one, 8, 0, &req[0]) == 0, "recv");
    }
    CHECK(wait_all(r, req, 1) == 0 && req[0].status == 0, "warm-up");
    if (r->rank == 0) {
        big   = malloc(16 * MIB);
        small = malloc(8 * 64);
        CHECK(big != NULL && small != NULL, "malloc");
        memset(big, 1, 16 * MIB);
        for (i = 0; i < 8; i++) {
            CHECK(tt_ofi_ops.irecv(r->ep[1], small + 64 * i, 64,
                                   (uint64_t)i + 1, &req[i]) == 0, "irecv");
        }
        CHECK(tt_ofi_ops.isend(r->ep[1], big, 16 * MIB, 9, &req[8]) == 0,
              "isend");
        end = tutti__now_ns() + 50 * 1000000ull;
        while (tutti__now_ns() < end) {
            tt_ofi_ops.progress(r->tp);
        }
        tt_ofi_ops.ep_close(r->ep[1]);
        r->ep[1] = NULL;
        for (i = 0; i < 9; i++) {
            CHECK(req[i].status == TUTTI_ERR_ABORTED, "request %d: %d", i,
                  req[i].status);
        }
        /* the buffers are ours again: poison and free them */
        memset(big, 0xdd, 16 * MIB);
        memset(small, 0xdd, 8 * 64);
        free(big);
        free(small);
        for (i = 0; i < 1000; i++) {
            tt_ofi_ops.progress(r->tp);
        }
    }
    teardown(r);
    return 0;
}

Test(transport_ofi, close_with_pending, .timeout = 60)
{
    skip_without_provider();
    cr_assert_eq(run(2, rank_close), 0);
}

/* ---- a provider that does not exist: init fails, with the reason ------ */

Test(transport_ofi, unknown_provider)
{
    tt_config_t    cfg;
    tt_peer_info_t self = {.rank = 0};
    tt_tp_params_t params = {
        .rank = 0, .nranks = 1, .self = &self, .config = &cfg,
        .local_ranks = &self.rank, .nlocal = 1, .log = tutti__log,
    };
    tt_tp_t *tp = NULL;

    cr_assert_eq(tutti__config_load(NULL, &cfg), TUTTI_SUCCESS);
    snprintf(cfg.ofi_provider, sizeof(cfg.ofi_provider), "no-such-prov");
    cr_assert_eq(tt_ofi_ops.init(&params, &tp), TUTTI_ERR_UNSUPPORTED);
    cr_assert(strstr(tutti_last_error(), "no-such-prov") != NULL, "%s",
              tutti_last_error());
}
