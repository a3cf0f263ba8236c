/*
 * Conformance suite for the shared-memory transport, driving tt_shm_ops
 * directly from 2-4 forked ranks (shm_harness.c stands in for the
 * bootstrap): connection, ordering per direction, message sizes around the
 * slot size and up to 64 MiB, many requests in flight, the deliver
 * callback, tag and length mismatches, ep_close with pending requests, and
 * that no segment stays in /dev/shm after connect_done or after a rank is
 * killed. The single-copy path (process_vm_readv, TUTTI_SHM_CMA_MIN) runs
 * the same checks with a low threshold, plus its own: a send completes
 * only once its receiver has pulled it, a failed probe falls back to the
 * FIFOs, and a sender that dies during a pull fails the receive.
 */
#include <criterion/criterion.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shm/shm.h"
#include "shm_harness.h"

#define WAIT_MS 60000
#define MIB     (1024 * 1024)

static size_t slot_of(const th_rank_t *r)
{
    return r->cfg.shm_slot_size;
}

/* ---- connect: every pair, one message each way, nothing left behind --- */

static int rank_connect_all(th_rank_t *r, void *arg)
{
    th_world_t *w = arg;
    uint64_t    out[TH_MAX_RANKS], in[TH_MAX_RANKS];
    tt_req_t    req[2 * TH_MAX_RANKS], *reqs[2 * TH_MAX_RANKS];
    int         n = 0, p;

    if (th_rank_setup(r, w, r->rank) != 0) {
        return 1;
    }
    TH_CHECK(th_shm_leftovers(w->job_id) == 0,
             "segments remain after connect_done");
    for (p = 0; p < w->nranks; p++) {
        if (p == r->rank) {
            continue;
        }
        out[p]       = (uint64_t)r->rank << 32 | (uint64_t)p;
        req[n]       = (tt_req_t){0};
        reqs[n]      = &req[n];
        TH_CHECK(tt_shm_ops.irecv(r->ep[p], &in[p], sizeof(in[p]), 1,
                                  &req[n]) == TUTTI_SUCCESS, "irecv");
        n++;
        req[n]  = (tt_req_t){0};
        reqs[n] = &req[n];
        TH_CHECK(tt_shm_ops.isend(r->ep[p], &out[p], sizeof(out[p]), 1,
                                  &req[n]) == TUTTI_SUCCESS, "isend");
        n++;
    }
    TH_CHECK(th_wait(r, reqs, n, WAIT_MS) == 0, "exchange timed out");
    for (p = 0; p < n; p++) {
        TH_CHECK(reqs[p]->status == TUTTI_SUCCESS, "request %d: %d", p,
                 reqs[p]->status);
    }
    for (p = 0; p < w->nranks; p++) {
        if (p != r->rank) {
            TH_CHECK(in[p] == ((uint64_t)p << 32 | (uint64_t)r->rank),
                     "from %d got %#llx", p, (unsigned long long)in[p]);
        }
    }
    th_barrier(w);
    th_rank_fini(r);
    return 0;
}

Test(transport_shm, connect_four_ranks, .timeout = 60)
{
    th_world_t *w = th_world_create(4);

    cr_assert_not_null(w);
    cr_assert_eq(th_run(w, rank_connect_all, w), 0);
    cr_assert_eq(th_shm_leftovers(w->job_id), 0);
    th_world_destroy(w);
}

/* ---- ordering: 600 messages of mixed sizes each way, all posted ------- */

#define ORDER_N 600

static size_t order_size(int i, size_t slot)
{
    static const int kinds = 8;

    switch (i % kinds) {
    case 0: return 0;
    case 1: return 1;
    case 2: return 24;
    case 3: return 25;
    case 4: return slot - 1;
    case 5: return slot + 1;
    case 6: return (size_t)(i * 97) % 5000;
    default: return 3 * slot + (size_t)i;
    }
}

static int rank_ordering(th_rank_t *r, void *arg)
{
    th_world_t *w    = arg;
    int         peer = 1 - r->rank;
    tt_req_t   *req  = calloc(2 * ORDER_N, sizeof(*req));
    tt_req_t  **reqs = calloc(2 * ORDER_N, sizeof(*reqs));
    char      **sbuf = calloc(ORDER_N, sizeof(*sbuf));
    char      **rbuf = calloc(ORDER_N, sizeof(*rbuf));
    size_t      slot_out, slot_in;
    int         i;

    TH_CHECK(req && reqs && sbuf && rbuf, "calloc");
    if (th_rank_setup(r, w, r->rank) != 0) {
        return 1;
    }
    /* sizes follow the receiver's slot size */
    slot_out = w->slot_size[peer] ? w->slot_size[peer] : slot_of(r);
    slot_in  = slot_of(r);
    for (i = 0; i < ORDER_N; i++) {
        size_t slen = order_size(i, slot_out), rlen = order_size(i, slot_in);

        sbuf[i] = malloc(slen + 1);
        rbuf[i] = malloc(rlen + 1);
        TH_CHECK(sbuf[i] && rbuf[i], "malloc");
        th_fill(sbuf[i], slen, r->rank, (uint64_t)i);
        memset(rbuf[i], 0xee, rlen + 1);
        reqs[2 * i]     = &req[2 * i];
        reqs[2 * i + 1] = &req[2 * i + 1];
        TH_CHECK(tt_shm_ops.isend(r->ep[peer], sbuf[i], slen, 1000 + i,
                                  &req[2 * i]) == TUTTI_SUCCESS, "isend");
        TH_CHECK(tt_shm_ops.irecv(r->ep[peer], rbuf[i], rlen, 1000 + i,
                                  &req[2 * i + 1]) == TUTTI_SUCCESS, "irecv");
    }
    TH_CHECK(th_wait(r, reqs, 2 * ORDER_N, WAIT_MS) == 0, "timed out");
    for (i = 0; i < ORDER_N; i++) {
        size_t rlen = order_size(i, slot_in);

        TH_CHECK(req[2 * i].status == TUTTI_SUCCESS, "send %d: %d", i,
                 req[2 * i].status);
        TH_CHECK(req[2 * i + 1].status == TUTTI_SUCCESS, "recv %d: %d", i,
                 req[2 * i + 1].status);
        TH_CHECK(th_verify(rbuf[i], rlen, peer, (uint64_t)i) == (size_t)-1,
                 "message %d of %zu bytes differs at %zu", i, rlen,
                 th_verify(rbuf[i], rlen, peer, (uint64_t)i));
        TH_CHECK((uint8_t)rbuf[i][rlen] == 0xee, "message %d overran", i);
        free(sbuf[i]);
        free(rbuf[i]);
    }
    th_barrier(w);
    th_rank_fini(r);
    free(req);
    free(reqs);
    free(sbuf);
    free(rbuf);
    return 0;
}

Test(transport_shm, ordering_both_directions, .timeout = 60)
{
    th_world_t *w = th_world_create(2);

    cr_assert_eq(th_run(w, rank_ordering, w), 0);
    th_world_destroy(w);
}

/* The receiver's geometry rules its FIFO: each rank picks its own. */
Test(transport_shm, ordering_mixed_geometry, .timeout = 60)
{
    th_world_t *w = th_world_create(2);

    w->slot_size[0] = 1024;
    w->nslots[0]    = 3;
    w->slot_size[1] = 256;
    w->nslots[1]    = 2;
    cr_assert_eq(th_run(w, rank_ordering, w), 0);
    th_world_destroy(w);
}

/* ---- sizes: 0, 1, around the slot, multi-slot and 64 MiB ------------- */

static int rank_sizes(th_rank_t *r, void *arg)
{
    th_world_t *w    = arg;
    int         peer = 1 - r->rank;
    size_t      slot, sizes[12];
    int         nsizes = 0, i;

    if (th_rank_setup(r, w, r->rank) != 0) {
        return 1;
    }
    /* both ranks use the same geometry in these tests */
    slot             = slot_of(r);
    sizes[nsizes++]  = 0;
    sizes[nsizes++]  = 1;
    sizes[nsizes++]  = 8;
    sizes[nsizes++]  = 24;
    sizes[nsizes++]  = 25;
    sizes[nsizes++]  = slot - 1;
    sizes[nsizes++]  = slot;
    sizes[nsizes++]  = slot + 1;
    sizes[nsizes++]  = 5 * slot + 3;
    sizes[nsizes++]  = (size_t)r->cfg.shm_nslots * slot * 3 + 17;
    sizes[nsizes++]  = 64 * MIB;
    for (i = 0; i < nsizes; i++) {
        size_t    len  = sizes[i];
        char     *sbuf = malloc(len + 1), *rbuf = malloc(len + 1);
        tt_req_t  req[2] = {{0}};
        tt_req_t *reqs[2] = {&req[0], &req[1]};

        TH_CHECK(sbuf && rbuf, "malloc %zu", len);
        th_fill(sbuf, len, r->rank, (uint64_t)len);
        memset(rbuf, 0x5a, len + 1);
        /* send first: both ranks' sends may have to wait for the peer */
        TH_CHECK(tt_shm_ops.isend(r->ep[peer], sbuf, len, len, &req[0]) ==
                     TUTTI_SUCCESS, "isend %zu", len);
        TH_CHECK(tt_shm_ops.irecv(r->ep[peer], rbuf, len, len, &req[1]) ==
                     TUTTI_SUCCESS, "irecv %zu", len);
        TH_CHECK(th_wait(r, reqs, 2, WAIT_MS) == 0, "size %zu timed out",
                 len);
        TH_CHECK(req[0].status == TUTTI_SUCCESS &&
                     req[1].status == TUTTI_SUCCESS,
                 "size %zu: send %d recv %d", len, req[0].status,
                 req[1].status);
        TH_CHECK(th_verify(rbuf, len, peer, (uint64_t)len) == (size_t)-1,
                 "size %zu differs at byte %zu", len,
                 th_verify(rbuf, len, peer, (uint64_t)len));
        TH_CHECK((uint8_t)rbuf[len] == 0x5a, "size %zu overran", len);
        free(sbuf);
        free(rbuf);
    }
    th_barrier(w);
    th_rank_fini(r);
    return 0;
}

Test(transport_shm, sizes_default_geometry, .timeout = 90)
{
    th_world_t *w = th_world_create(2);

    cr_assert_eq(th_run(w, rank_sizes, w), 0);
    th_world_destroy(w);
}

Test(transport_shm, sizes_smallest_geometry, .timeout = 90)
{
    th_world_t *w = th_world_create(2);

    w->slot_size[0] = w->slot_size[1] = 256;
    w->nslots[0] = w->nslots[1] = 2;
    cr_assert_eq(th_run(w, rank_sizes, w), 0);
    th_world_destroy(w);
}

/* ---- many in flight: 4 ranks all-to-all, 64 messages per pair -------- */

#define FLIGHT_N 64

static size_t flight_size(int src, int dst, int i)
{
    uint64_t x = (uint64_t)(src * 7919 + dst * 104729 + i * 1299709);

    x ^= x >> 7;
    x *= 0x9e3779b97f4a7c15ull;
    return (size_t)(x >> 40) % 100000;
}

static int rank_in_flight(th_rank_t *r, void *arg)
{
    th_world_t *w     = arg;
    int         nreqs = 2 * FLIGHT_N * (w->nranks - 1);
    tt_req_t   *req   = calloc((size_t)nreqs, sizeof(*req));
    tt_req_t  **reqs  = calloc((size_t)nreqs, sizeof(*reqs));
    char      **bufs  = calloc((size_t)nreqs, sizeof(*bufs));
    int         n = 0, i, p;

    TH_CHECK(req && reqs && bufs, "calloc");
    if (th_rank_setup(r, w, r->rank) != 0) {
        return 1;
    }
    /* interleave peers so that every FIFO has work at once */
    for (i = 0; i < FLIGHT_N; i++) {
        for (p = 0; p < w->nranks; p++) {
            size_t slen = flight_size(r->rank, p, i);
            size_t rlen = flight_size(p, r->rank, i);

            if (p == r->rank) {
                continue;
            }
            bufs[n] = malloc(slen + 1);
            TH_CHECK(bufs[n], "malloc");
            th_fill(bufs[n], slen, r->rank, (uint64_t)(p * 1000 + i));
            reqs[n] = &req[n];
            TH_CHECK(tt_shm_ops.isend(r->ep[p], bufs[n], slen, (uint64_t)i,
                                      &req[n]) == TUTTI_SUCCESS, "isend");
            n++;
            bufs[n] = malloc(rlen + 1);
            TH_CHECK(bufs[n], "malloc");
            reqs[n] = &req[n];
            TH_CHECK(tt_shm_ops.irecv(r->ep[p], bufs[n], rlen, (uint64_t)i,
                                      &req[n]) == TUTTI_SUCCESS, "irecv");
            n++;
        }
    }
    TH_CHECK(th_wait(r, reqs, n, WAIT_MS) == 0, "timed out");
    n = 0;
    for (i = 0; i < FLIGHT_N; i++) {
        for (p = 0; p < w->nranks; p++) {
            size_t rlen = flight_size(p, r->rank, i);

            if (p == r->rank) {
                continue;
            }
            TH_CHECK(req[n].status == TUTTI_SUCCESS, "send %d", n);
            TH_CHECK(req[n + 1].status == TUTTI_SUCCESS, "recv %d", n + 1);
            TH_CHECK(th_verify(bufs[n + 1], rlen, p,
                               (uint64_t)(r->rank * 1000 + i)) == (size_t)-1,
                     "message %d from %d differs", i, p);
            free(bufs[n]);
            free(bufs[n + 1]);
            n += 2;
        }
    }
    th_barrier(w);
    th_rank_fini(r);
    free(req);
    free(reqs);
    free(bufs);
    return 0;
}

/* 4 processes on 2 cores: the wait loop must yield to stay fast. */
Test(transport_shm, many_in_flight_four_ranks, .timeout = 60)
{
    th_world_t *w = th_world_create(4);

    cr_assert_eq(th_run(w, rank_in_flight, w), 0);
    th_world_destroy(w);
}

Test(transport_shm, many_in_flight_small_fifos, .timeout = 60)
{
    th_world_t *w = th_world_create(3);
    int         i;

    for (i = 0; i < 3; i++) {
        w->slot_size[i] = 512;
        w->nslots[i]    = 2;
    }
    cr_assert_eq(th_run(w, rank_in_flight, w), 0);
    th_world_destroy(w);
}

/* ---- deliver: pieces in order of offset, covering each byte once ----- */

typedef struct deliver_state {
    size_t   len;
    size_t   next;   /* the offset the next piece must start at */
    int      calls;
    int      bad;    /* first problem seen, 0 = none */
    int      src;
    uint64_t seq;
} deliver_state_t;

static void check_deliver(tt_req_t *req, size_t offset, const void *data,
                          size_t len)
{
    deliver_state_t *st = req->arg;
    const uint8_t   *p  = data;
    size_t           i;

    st->calls++;
    if (offset != st->next || len == 0 || offset + len > st->len) {
        st->bad = st->bad ? st->bad : 1;
        return;
    }
    for (i = 0; i < len; i++) {
        if (p[i] != th_pattern(st->src, st->seq, offset + i)) {
            st->bad = st->bad ? st->bad : 2;
            return;
        }
    }
    st->next = offset + len;
}

static int rank_deliver(th_rank_t *r, void *arg)
{
    th_world_t  *w    = arg;
    const size_t sizes[] = {0, 1, 24, 25, 32768 - 1, 32768 + 5, MIB,
                            8 * MIB + 3};
    int          i;

    if (th_rank_setup(r, w, r->rank) != 0) {
        return 1;
    }
    for (i = 0; i < (int)TT_ARRAY_SIZE(sizes); i++) {
        size_t   len = sizes[i];
        tt_req_t req = {0};

        if (r->rank == 0) {
            char *buf = malloc(len + 1);

            TH_CHECK(buf, "malloc");
            th_fill(buf, len, 0, (uint64_t)i);
            TH_CHECK(tt_shm_ops.isend(r->ep[1], buf, len, 77, &req) ==
                         TUTTI_SUCCESS, "isend");
            TH_CHECK(th_wait1(r, &req, WAIT_MS) == 0, "send timed out");
            TH_CHECK(req.status == TUTTI_SUCCESS, "send %d", req.status);
            free(buf);
        } else {
            deliver_state_t st = {.len = len, .src = 0, .seq = (uint64_t)i};

            req.deliver = check_deliver;
            req.arg     = &st;
            /* no buffer: the data is read straight out of the slots */
            TH_CHECK(tt_shm_ops.irecv(r->ep[0], NULL, len, 77, &req) ==
                         TUTTI_SUCCESS, "irecv");
            TH_CHECK(th_wait1(r, &req, WAIT_MS) == 0, "recv timed out");
            TH_CHECK(req.status == TUTTI_SUCCESS, "recv %d", req.status);
            TH_CHECK(st.bad == 0, "size %zu: bad piece (%d)", len, st.bad);
            TH_CHECK(st.next == len, "size %zu: pieces covered %zu", len,
                     st.next);
            TH_CHECK(len > 0 || st.calls == 0, "deliver called for 0 bytes");
        }
    }
    th_barrier(w);
    th_rank_fini(r);
    return 0;
}

Test(transport_shm, deliver_callback, .timeout = 60)
{
    th_world_t *w = th_world_create(2);

    cr_assert(tt_shm_ops.caps & TT_CAP_RECV_DELIVER);
    cr_assert_eq(th_run(w, rank_deliver, w), 0);
    th_world_destroy(w);
}

/* ---- mismatches: wrong tag, wrong length ----------------------------- */

static int rank_mismatch(th_rank_t *r, void *arg)
{
    th_world_t *w = arg;
    char        sbuf[4096], rbuf[4096];
    tt_req_t    req = {0};

    if (th_rank_setup(r, w, r->rank) != 0) {
        return 1;
    }
    if (r->rank == 0) {
        th_fill(sbuf, sizeof(sbuf), 0, 1);
        TH_CHECK(tt_shm_ops.isend(r->ep[1], sbuf, 4096, 7, &req) ==
                     TUTTI_SUCCESS, "isend");
        TH_CHECK(th_wait1(r, &req, WAIT_MS) == 0, "send timed out");
        TH_CHECK(req.status == TUTTI_SUCCESS, "send %d", req.status);
    } else {
        /* wrong tag and length */
        TH_CHECK(tt_shm_ops.irecv(r->ep[0], rbuf, 1024, 8, &req) ==
                     TUTTI_SUCCESS, "irecv");
        TH_CHECK(th_wait1(r, &req, WAIT_MS) == 0, "recv timed out");
        TH_CHECK(req.status == TUTTI_ERR_INVALID_USAGE, "status %d",
                 req.status);
        TH_CHECK(strstr(tutti_last_error(), "peer 0 sent tag 0x7 of 4096 "
                        "bytes where tag 0x8 of 1024 bytes was expected") !=
                     NULL, "message: %s", tutti_last_error());
        /* right tag, wrong length */
        TH_CHECK(tt_shm_ops.irecv(r->ep[0], rbuf, 4095, 7, &req) ==
                     TUTTI_SUCCESS, "irecv");
        TH_CHECK(th_wait1(r, &req, WAIT_MS) == 0, "recv timed out");
        TH_CHECK(req.status == TUTTI_ERR_INVALID_USAGE, "status %d",
                 req.status);
        TH_CHECK(strstr(tutti_last_error(), "different collectives") != NULL,
                 "message: %s", tutti_last_error());
        /* the message stayed in the FIFO: the right receive still gets it */
        TH_CHECK(tt_shm_ops.irecv(r->ep[0], rbuf, 4096, 7, &req) ==
                     TUTTI_SUCCESS, "irecv");
        TH_CHECK(th_wait1(r, &req, WAIT_MS) == 0, "recv timed out");
        TH_CHECK(req.status == TUTTI_SUCCESS, "status %d", req.status);
        TH_CHECK(th_verify(rbuf, 4096, 0, 1) == (size_t)-1, "content");
    }
    th_barrier(w);
    th_rank_fini(r);
    return 0;
}

Test(transport_shm, tag_mismatch_is_invalid_usage, .timeout = 60)
{
    th_world_t *w = th_world_create(2);

    cr_assert_eq(th_run(w, rank_mismatch, w), 0);
    th_world_destroy(w);
}

/* ---- ep_close completes pending requests with ABORTED ---------------- */

static int rank_close_pending(th_rank_t *r, void *arg)
{
    th_world_t *w   = arg;
    size_t      big = 4 * MIB;
    int         i;

    if (th_rank_setup(r, w, r->rank) != 0) {
        return 1;
    }
    if (r->rank == 0) {
        /* heap requests and buffers: ASan catches any touch after close */
        tt_req_t *req  = calloc(6, sizeof(*req));
        char     *sbuf = malloc(big);
        char     *rbuf = malloc(3 * 4096);

        TH_CHECK(req && sbuf && rbuf, "malloc");
        memset(sbuf, 1, big);
        for (i = 0; i < 3; i++) {
            TH_CHECK(tt_shm_ops.isend(r->ep[1], sbuf, big, (uint64_t)i,
                                      &req[i]) == TUTTI_SUCCESS, "isend");
            TH_CHECK(tt_shm_ops.irecv(r->ep[1], rbuf + i * 4096, 4096,
                                      (uint64_t)i, &req[3 + i]) ==
                         TUTTI_SUCCESS, "irecv");
        }
        for (i = 0; i < 1000; i++) {
            tt_shm_ops.progress(r->tp);
        }
        for (i = 0; i < 6; i++) {
            TH_CHECK(req[i].status == TUTTI_INPROGRESS, "req %d ended: %d",
                     i, req[i].status);
        }
        tt_shm_ops.ep_close(r->ep[1]);
        r->ep[1] = NULL;
        for (i = 0; i < 6; i++) {
            TH_CHECK(req[i].status == TUTTI_ERR_ABORTED, "req %d: %d", i,
                     req[i].status);
        }
        free(req);
        free(sbuf);
        free(rbuf);
        /* the peer now sends; nothing of ours may be touched */
        th_barrier(w);
        th_barrier(w);
        for (i = 0; i < 1000; i++) {
            TH_CHECK(tt_shm_ops.progress(r->tp) == 0, "progress after close");
        }
    } else {
        char     msg[64] = "late";
        tt_req_t req     = {0};

        th_barrier(w);
        TH_CHECK(tt_shm_ops.isend(r->ep[0], msg, sizeof(msg), 0, &req) ==
                     TUTTI_SUCCESS, "isend");
        TH_CHECK(req.status == TUTTI_SUCCESS, "late send %d", req.status);
        th_barrier(w);
    }
    th_barrier(w);
    th_rank_fini(r);
    return 0;
}

Test(transport_shm, ep_close_aborts_pending, .timeout = 60)
{
    th_world_t *w = th_world_create(2);

    cr_assert_eq(th_run(w, rank_close_pending, w), 0);
    th_world_destroy(w);
}

/* ---- a rank killed: the survivors' fini leaves nothing behind -------- */

enum { FLAG_READY = 1, FLAG_DEAD = 2 };

static int wait_flag(th_world_t *w, int rank, int value)
{
    uint64_t deadline = tutti__now_ns() + (uint64_t)WAIT_MS * 1000000ull;

    while (atomic_load(&w->flag[rank]) != value) {
        if (tutti__now_ns() > deadline || atomic_load(&w->failed)) {
            return 1;
        }
        sched_yield();
    }
    return 0;
}

/* When the victim dies: right after init (nobody mapped its segment),
 * after connecting (everybody did, nobody unlinked) or after connect_done. */
enum { DIE_AFTER_INIT = 0, DIE_AFTER_CONNECT = 1, DIE_AFTER_DONE = 2 };

/* The victim is the last rank; world->flag[0], set by the test before the
 * fork, says when it dies. */
static int rank_victim_or_survivor(th_rank_t *r, void *arg)
{
    th_world_t *w          = arg;
    int         victim     = w->nranks - 1;
    int         when       = atomic_load(&w->flag[0]);
    int         after_done = when == DIE_AFTER_DONE;
    char        buf[256];
    tt_req_t    req[2] = {{0}};

    if (th_rank_init(r, w, r->rank) != 0) {
        return 1;
    }
    if (when != DIE_AFTER_INIT && th_rank_connect(r) != 0) {
        return 1;
    }
    if (after_done && th_rank_connect_done(r) != 0) {
        return 1;
    }
    if (r->rank == victim) {
        atomic_store(&w->flag[victim], FLAG_READY);
        for (;;) {
            pause();
        }
    }
    if (after_done) {
        /* requests that the dead peer will never answer */
        TH_CHECK(tt_shm_ops.irecv(r->ep[victim], buf, sizeof(buf), 1,
                                  &req[0]) == TUTTI_SUCCESS, "irecv");
        TH_CHECK(tt_shm_ops.isend(r->ep[victim], NULL, 0, 1, &req[1]) ==
                     TUTTI_SUCCESS, "isend");
    }
    TH_CHECK(wait_flag(w, victim, FLAG_DEAD) == 0, "victim not killed");
    if (after_done) {
        tt_shm_ops.progress(r->tp);
        TH_CHECK(req[0].status == TUTTI_INPROGRESS, "recv ended: %d",
                 req[0].status);
        tt_shm_ops.ep_close(r->ep[victim]);
        r->ep[victim] = NULL;
        TH_CHECK(req[0].status == TUTTI_ERR_ABORTED, "recv: %d",
                 req[0].status);
    }
    th_rank_fini(r);
    return 0;
}

static void kill_one(int nranks, int when)
{
    th_world_t *w = th_world_create(nranks);
    pid_t       pids[TH_MAX_RANKS];
    int         victim = nranks - 1, st;

    cr_assert_not_null(w);
    atomic_store(&w->flag[0], when);
    th_spawn(w, rank_victim_or_survivor, w, pids);
    for (st = 0; atomic_load(&w->flag[victim]) != FLAG_READY; st++) {
        cr_assert(st < 60000 && !atomic_load(&w->failed),
                  "the victim never got ready");
        usleep(1000);
    }
    kill(pids[victim], SIGKILL);
    cr_assert_eq(waitpid(pids[victim], &st, 0), pids[victim]);
    cr_assert(WIFSIGNALED(st));
    pids[victim] = 0;
    atomic_store(&w->flag[victim], FLAG_DEAD);
    cr_assert_eq(th_join(w, pids), 0);
    cr_assert_eq(th_shm_leftovers(w->job_id), 0,
                 "segments of job %016llx remain in /dev/shm",
                 (unsigned long long)w->job_id);
    th_world_destroy(w);
}

Test(transport_shm, killed_after_init, .timeout = 60)
{
    kill_one(3, DIE_AFTER_INIT);
}

Test(transport_shm, killed_before_connect_done, .timeout = 60)
{
    kill_one(3, DIE_AFTER_CONNECT);
}

Test(transport_shm, killed_after_connect_done, .timeout = 60)
{
    kill_one(2, DIE_AFTER_DONE);
}

/* ---- single-process checks: address, reachable, errors --------------- */

static tt_tp_t *init_alone(tt_config_t *cfg, tt_peer_info_t *self,
                           const int *local, int nlocal, uint64_t job,
                           tutti_result_t *res_p)
{
    tt_tp_params_t params = {
        .rank        = self->rank,
        .nranks      = 4,
        .job_id      = job,
        .self        = self,
        .config      = cfg,
        .local_ranks = local,
        .nlocal      = nlocal,
        .log         = tutti__log,
    };
    tt_tp_t *tp = NULL;

    *res_p = tt_shm_ops.init(&params, &tp);
    return tp;
}

Test(transport_shm, address_and_reachable, .timeout = 30)
{
    tt_config_t    cfg;
    tt_peer_info_t self = {.rank = 0}, other = {.rank = 1},
                   far = {.rank = 2};
    const int      local[2] = {0, 1};
    uint8_t        addr[TT_ADDR_MAX];
    size_t         len = 8;
    uint64_t       job = 0x1234abcd5678ef00ull ^ (uint64_t)getpid();
    tutti_result_t res;
    tt_tp_t       *tp;
    tt_ep_t       *ep = NULL;

    tutti__config_defaults(&cfg);
    snprintf(self.hostid, TT_HOSTID_MAX, "a");
    snprintf(other.hostid, TT_HOSTID_MAX, "a");
    snprintf(far.hostid, TT_HOSTID_MAX, "b");
    tp = init_alone(&cfg, &self, local, 2, job, &res);
    cr_assert_eq(res, TUTTI_SUCCESS, "%s", tutti_last_error());
    cr_assert_eq(th_shm_leftovers(job), 1, "the segment exists until done");

    cr_assert_eq(tt_shm_ops.address(tp, addr, &len),
                 TUTTI_ERR_INVALID_ARGUMENT);
    len = sizeof(addr);
    cr_assert_eq(tt_shm_ops.address(tp, addr, &len), TUTTI_SUCCESS);
    cr_assert(len > 0 && len <= TT_ADDR_MAX);

    cr_assert(tt_shm_ops.reachable(tp, &other));
    cr_assert_not(tt_shm_ops.reachable(tp, &self));
    cr_assert_not(tt_shm_ops.reachable(tp, &far));

    /* garbage, and an address that is not the peer's */
    cr_assert_eq(tt_shm_ops.connect(tp, &other, "junk", 4, &ep),
                 TUTTI_ERR_REMOTE);
    cr_assert_eq(tt_shm_ops.connect(tp, &other, addr, len, &ep),
                 TUTTI_ERR_REMOTE);
    cr_assert_null(ep);

    /* fini before connect_done removes the segment */
    tt_shm_ops.fini(tp);
    cr_assert_eq(th_shm_leftovers(job), 0);
}

/* A rank whose init fails is skipped by the core while the other ranks
 * go on with shm: its failure must leave their segments alone. */
Test(transport_shm, failed_init_leaves_peers_alone, .timeout = 30)
{
    tt_config_t    cfg, bad;
    tt_peer_info_t self0 = {.rank = 0}, self1 = {.rank = 1};
    const int      local[2] = {0, 1};
    uint64_t       job = 0xfa11ed0000000000ull ^ (uint64_t)getpid();
    tutti_result_t res;
    tt_tp_t       *tp0, *tp1;

    tutti__config_defaults(&cfg);
    snprintf(self0.hostid, TT_HOSTID_MAX, "a");
    snprintf(self1.hostid, TT_HOSTID_MAX, "a");
    tp0 = init_alone(&cfg, &self0, local, 2, job, &res);
    cr_assert_eq(res, TUTTI_SUCCESS, "%s", tutti_last_error());

    /* rank 1 with a geometry that init refuses */
    bad               = cfg;
    bad.shm_slot_size = 100;
    tp1 = init_alone(&bad, &self1, local, 2, job, &res);
    cr_assert_null(tp1);
    cr_assert_eq(res, TUTTI_ERR_INVALID_ARGUMENT);
    /* rank 1 whose segment name is taken (a second instance of rank 0) */
    tp1 = init_alone(&cfg, &self0, local, 2, job, &res);
    cr_assert_null(tp1);
    cr_assert_eq(res, TUTTI_ERR_SYSTEM);
    cr_assert_not_null(strstr(tutti_last_error(), "File exists"), "%s",
                       tutti_last_error());
    cr_assert_eq(th_shm_leftovers(job), 1, "rank 0's segment must stay");
    tt_shm_ops.fini(tp0);
    cr_assert_eq(th_shm_leftovers(job), 0);
}

Test(transport_shm, alone_on_host_has_no_segment, .timeout = 30)
{
    tt_config_t    cfg;
    tt_peer_info_t self = {.rank = 3};
    const int      local[1] = {3};
    uint64_t       job = 0x0badc0de00000000ull ^ (uint64_t)getpid();
    tutti_result_t res;
    tt_tp_t       *tp;

    tutti__config_defaults(&cfg);
    snprintf(self.hostid, TT_HOSTID_MAX, "a");
    tp = init_alone(&cfg, &self, local, 1, job, &res);
    cr_assert_eq(res, TUTTI_SUCCESS, "%s", tutti_last_error());
    cr_assert_eq(th_shm_leftovers(job), 0);
    cr_assert_eq(tt_shm_ops.progress(tp), 0);
    cr_assert_eq(tt_shm_ops.connect_done(tp), TUTTI_SUCCESS);
    tt_shm_ops.fini(tp);
}

/* A segment larger than /dev/shm fails at init with ENOSPC, clearly. */
Test(transport_shm, no_space_in_dev_shm, .timeout = 30)
{
    tt_config_t    cfg;
    tt_peer_info_t self = {.rank = 0};
    int            local[TH_MAX_RANKS];
    uint64_t       job = 0x5ca1ab1e00000000ull ^ (uint64_t)getpid();
    struct statvfs vfs;
    tutti_result_t res;
    tt_tp_t       *tp;
    int            i;

    tutti__config_defaults(&cfg);
    cfg.shm_slot_size = 64 * MIB;
    cfg.shm_nslots    = 1024; /* 64 GiB per FIFO, 448 GiB in all */
    cfg.shm_budget    = 0;    /* or the slots shrink to fit 32 MiB */
    if (statvfs("/dev/shm", &vfs) != 0 || vfs.f_blocks == 0 ||
        (double)vfs.f_blocks * (double)vfs.f_frsize >
            7.0 * 64 * 1024 * (double)MIB) {
        cr_skip_test("/dev/shm is unlimited or larger than 448 GiB");
    }
    for (i = 0; i < TH_MAX_RANKS; i++) {
        local[i] = i;
    }
    snprintf(self.hostid, TT_HOSTID_MAX, "a");
    tp = init_alone(&cfg, &self, local, TH_MAX_RANKS, job, &res);
    cr_assert_null(tp);
    cr_assert_eq(res, TUTTI_ERR_SYSTEM);
    cr_assert_not_null(strstr(tutti_last_error(), "no space left in /dev/shm"),
                       "%s", tutti_last_error());
    cr_assert_eq(th_shm_leftovers(job), 0);
}

/* ---- channels: collective and point-to-point FIFOs never meet -------- */

#define CHAN_SLOT   4096
#define CHAN_NSLOTS 8 /* the point-to-point FIFO has as many or fewer */
#define CHAN_P2P    TT_TAG_CHANNEL_P2P

/* Rank 0's side: a point-to-point message larger than its FIFO, then
 * collective ones that must not wait behind it, then the pieces of the
 * cross-channel and mismatch checks, each after rank 1 asks. */
static int rank_channels_send(th_rank_t *r, th_world_t *w, char *big,
                              size_t nbig)
{
    char     small[8] = "collectv", tiny[16] = "point to point!";
    char     cbig[3 * CHAN_SLOT + 1], p64[64];
    tt_req_t req[4] = {{0}}, *reqs[4] = {&req[0], &req[1], &req[2], &req[3]};
    tt_req_t one    = {0};

    th_fill(big, nbig, 0, 1);
    th_fill(cbig, sizeof(cbig), 0, 2);
    TH_CHECK(tt_shm_ops.isend(r->ep[1], big, nbig, CHAN_P2P | 1, &req[0]) ==
                 TUTTI_SUCCESS, "isend p2p big");
    TH_CHECK(req[0].status == TUTTI_INPROGRESS,
             "a p2p message larger than its FIFO completed at once");
    /* the collectives' FIFO is empty: this goes straight in */
    TH_CHECK(tt_shm_ops.isend(r->ep[1], small, sizeof(small), 1, &req[1]) ==
                 TUTTI_SUCCESS, "isend coll small");
    TH_CHECK(req[1].status == TUTTI_SUCCESS,
             "a collective send waited behind a p2p one: status %d",
             req[1].status);
    TH_CHECK(tt_shm_ops.isend(r->ep[1], cbig, sizeof(cbig), 2, &req[2]) ==
                 TUTTI_SUCCESS, "isend coll big");
    TH_CHECK(tt_shm_ops.isend(r->ep[1], tiny, sizeof(tiny), CHAN_P2P | 2,
                              &req[3]) == TUTTI_SUCCESS, "isend p2p tiny");
    atomic_store(&w->flag[0], 1);
    TH_CHECK(th_wait(r, reqs, 4, WAIT_MS) == 0, "sends timed out");
    TH_CHECK(req[0].status == TUTTI_SUCCESS && req[2].status ==
                 TUTTI_SUCCESS && req[3].status == TUTTI_SUCCESS,
             "sends: %d %d %d", req[0].status, req[2].status, req[3].status);

    /* a collective message that a p2p receive of the same tag bits and
     * length must not take */
    TH_CHECK(wait_flag(w, 1, 1) == 0, "rank 1 never asked");
    TH_CHECK(tt_shm_ops.isend(r->ep[1], small, sizeof(small), 3, &one) ==
                 TUTTI_SUCCESS && th_wait1(r, &one, WAIT_MS) == 0 &&
                 one.status == TUTTI_SUCCESS, "send coll 3");
    atomic_store(&w->flag[0], 2);
    TH_CHECK(wait_flag(w, 1, 2) == 0, "rank 1 never asked again");
    TH_CHECK(tt_shm_ops.isend(r->ep[1], small, sizeof(small), CHAN_P2P | 3,
                              &one) == TUTTI_SUCCESS &&
                 th_wait1(r, &one, WAIT_MS) == 0 &&
                 one.status == TUTTI_SUCCESS, "send p2p 3");

    /* a p2p length mismatch names point to point, not collectives */
    th_fill(p64, sizeof(p64), 0, 4);
    TH_CHECK(tt_shm_ops.isend(r->ep[1], p64, sizeof(p64), CHAN_P2P | 4,
                              &one) == TUTTI_SUCCESS &&
                 th_wait1(r, &one, WAIT_MS) == 0 &&
                 one.status == TUTTI_SUCCESS, "send p2p 4");
    return 0;
}

/* Receives into buf, waits, and checks the status. */
static int chan_recv(th_rank_t *r, void *buf, size_t len, uint64_t tag,
                     int expect)
{
    tt_req_t req = {0};

    TH_CHECK(tt_shm_ops.irecv(r->ep[0], buf, len, tag, &req) ==
                 TUTTI_SUCCESS, "irecv tag %#llx", (unsigned long long)tag);
    TH_CHECK(th_wait1(r, &req, WAIT_MS) == 0, "recv tag %#llx timed out",
             (unsigned long long)tag);
    TH_CHECK(req.status == expect, "recv tag %#llx: status %d, %d expected",
             (unsigned long long)tag, req.status, expect);
    return 0;
}

static int rank_channels_recv(th_rank_t *r, th_world_t *w, char *big,
                              size_t nbig)
{
    char     small[8], tiny[16], cbig[3 * CHAN_SLOT + 1], p64[64];
    tt_req_t req = {0}, p2p = {0};
    int      i;

    TH_CHECK(wait_flag(w, 0, 1) == 0, "rank 0 never sent");
    /* the collective message sent after the p2p one is taken first, at
     * once: the p2p message in the other FIFO does not stand before it */
    TH_CHECK(tt_shm_ops.irecv(r->ep[0], small, sizeof(small), 1, &req) ==
                 TUTTI_SUCCESS, "irecv coll small");
    TH_CHECK(req.status == TUTTI_SUCCESS,
             "a waiting collective message was not taken at once: %d",
             req.status);
    TH_CHECK(memcmp(small, "collectv", 8) == 0, "coll small content");
    if (chan_recv(r, cbig, sizeof(cbig), 2, TUTTI_SUCCESS) != 0) {
        return 1;
    }
    TH_CHECK(th_verify(cbig, sizeof(cbig), 0, 2) == (size_t)-1,
             "coll big content");
    if (chan_recv(r, big, nbig, CHAN_P2P | 1, TUTTI_SUCCESS) != 0 ||
        chan_recv(r, tiny, sizeof(tiny), CHAN_P2P | 2, TUTTI_SUCCESS) != 0) {
        return 1;
    }
    TH_CHECK(th_verify(big, nbig, 0, 1) == (size_t)-1, "p2p big content");
    TH_CHECK(strcmp(tiny, "point to point!") == 0, "p2p tiny content");

    /* a p2p receive stays posted while a collective message of the same
     * low tag bits and length waits in the other FIFO */
    TH_CHECK(tt_shm_ops.irecv(r->ep[0], tiny, 8, CHAN_P2P | 3, &p2p) ==
                 TUTTI_SUCCESS, "irecv p2p 3");
    atomic_store(&w->flag[1], 1);
    TH_CHECK(wait_flag(w, 0, 2) == 0, "rank 0 never sent coll 3");
    for (i = 0; i < 1000; i++) {
        tt_shm_ops.progress(r->tp);
    }
    TH_CHECK(p2p.status == TUTTI_INPROGRESS,
             "a p2p receive met a collective message: status %d",
             p2p.status);
    if (chan_recv(r, small, sizeof(small), 3, TUTTI_SUCCESS) != 0) {
        return 1;
    }
    atomic_store(&w->flag[1], 2);
    TH_CHECK(th_wait1(r, &p2p, WAIT_MS) == 0 &&
                 p2p.status == TUTTI_SUCCESS, "p2p 3: %d", p2p.status);
    TH_CHECK(memcmp(tiny, "collectv", 8) == 0, "p2p 3 content");

    /* wrong length on the p2p channel: the message stays for the right
     * receive */
    if (chan_recv(r, p64, 32, CHAN_P2P | 4, TUTTI_ERR_INVALID_USAGE) != 0) {
        return 1;
    }
    TH_CHECK(strstr(tutti_last_error(), "point-to-point") != NULL,
             "message: %s", tutti_last_error());
    if (chan_recv(r, p64, sizeof(p64), CHAN_P2P | 4, TUTTI_SUCCESS) != 0) {
        return 1;
    }
    TH_CHECK(th_verify(p64, sizeof(p64), 0, 4) == (size_t)-1,
             "p2p 4 content");
    return 0;
}

static int rank_channels(th_rank_t *r, void *arg)
{
    th_world_t *w    = arg;
    size_t      nbig = 5 * CHAN_NSLOTS * CHAN_SLOT + 5; /* > either FIFO */
    char       *big  = malloc(nbig);
    int         rc;

    TH_CHECK(big != NULL, "malloc");
    if (th_rank_setup(r, w, r->rank) != 0) {
        free(big);
        return 1;
    }
    rc = r->rank == 0 ? rank_channels_send(r, w, big, nbig)
                      : rank_channels_recv(r, w, big, nbig);
    free(big);
    if (rc != 0) {
        return rc;
    }
    th_barrier(w);
    th_rank_fini(r);
    return 0;
}

/*
 * The two channels of transport.h are separate FIFOs: a point-to-point
 * message that fills its FIFO holds back neither the collective messages
 * sent after it nor their receives, and a receive never meets a message
 * of the other channel, even one with the same low tag bits and length.
 */
Test(transport_shm, channels_are_independent, .timeout = 60)
{
    th_world_t *w = th_world_create(2);

    cr_assert_not_null(w);
    w->slot_size[0] = w->slot_size[1] = CHAN_SLOT;
    w->nslots[0] = w->nslots[1] = CHAN_NSLOTS;
    cr_assert_eq(th_run(w, rank_channels, w), 0);
    th_world_destroy(w);
}

/* ---- single copy: the checks above through process_vm_readv ---------- */

/* Runs fn on a new world of nranks whose ranks use SHM_CMA_MIN = cma_min. */
static void run_with_cma(int nranks, long long cma_min, th_rank_fn fn)
{
    th_world_t *w = th_world_create(nranks);

    cr_assert_not_null(w);
    w->cma_min = cma_min;
    cr_assert_eq(th_run(w, fn, w), 0, "%d ranks, SHM_CMA_MIN %lld",
                 nranks, cma_min);
    th_world_destroy(w);
}

/* Every message but the empty ones by descriptor, 600 each way, at most
 * one FIFO of them in flight: the pull queue and the send queue meet. */
Test(transport_shm, cma_ordering_every_message, .timeout = 60)
{
    run_with_cma(2, 1, rank_ordering);
}

/* Descriptors and fragmented messages interleaved in FIFOs of 2-3 slots. */
Test(transport_shm, cma_ordering_mixed_geometry, .timeout = 60)
{
    th_world_t *w = th_world_create(2);

    w->cma_min      = 300;
    w->slot_size[0] = 1024;
    w->nslots[0]    = 3;
    w->slot_size[1] = 256;
    w->nslots[1]    = 2;
    cr_assert_eq(th_run(w, rank_ordering, w), 0);
    th_world_destroy(w);
}

/* Up to 64 MiB, several progress steps per message. */
Test(transport_shm, cma_sizes, .timeout = 90)
{
    run_with_cma(2, 1024, rank_sizes);
}

/* The same sizes through the FIFOs only, whatever the default. */
Test(transport_shm, sizes_without_cma, .timeout = 90)
{
    run_with_cma(2, 0, rank_sizes);
}

/* Both paths mixed in every FIFO, 3 peers each. With fewer than 4 cpus
 * the transport turns single copy off (see cma_off_when_oversubscribed)
 * and this runs the FIFOs alone. */
Test(transport_shm, cma_many_in_flight_four_ranks, .timeout = 60)
{
    run_with_cma(4, 10000, rank_in_flight);
}

/* Delivering receives pull through the bounce buffer: pieces in order. */
Test(transport_shm, cma_deliver_callback, .timeout = 60)
{
    run_with_cma(2, 1024, rank_deliver);
}

/* A descriptor is checked like a first fragment, and stays when refused. */
Test(transport_shm, cma_tag_mismatch_is_invalid_usage, .timeout = 60)
{
    run_with_cma(2, 1024, rank_mismatch);
}

/* ---- single copy: a send ends when its receiver has pulled it -------- */

#define PULL_LEN (256 * 1024)

static int rank_send_waits_for_pull(th_rank_t *r, void *arg)
{
    th_world_t *w   = arg;
    char       *big = malloc(PULL_LEN);
    char        small[64];
    tt_req_t    req[2] = {{0}}, *reqs[2] = {&req[0], &req[1]};
    int         i;

    TH_CHECK(big != NULL, "malloc");
    if (th_rank_setup(r, w, r->rank) != 0) {
        return 1;
    }
    if (r->rank == 0) {
        th_fill(big, PULL_LEN, 0, 1);
        th_fill(small, sizeof(small), 0, 2);
        TH_CHECK(tt_shm_ops.isend(r->ep[1], big, PULL_LEN, 1, &req[0]) ==
                     TUTTI_SUCCESS, "isend big");
        /* a small send after it goes into the FIFO and ends at once */
        TH_CHECK(tt_shm_ops.isend(r->ep[1], small, sizeof(small), 2,
                                  &req[1]) == TUTTI_SUCCESS, "isend small");
        TH_CHECK(req[1].status == TUTTI_SUCCESS,
                 "a small send waited behind a pull: %d", req[1].status);
        for (i = 0; i < 1000; i++) {
            tt_shm_ops.progress(r->tp);
        }
        TH_CHECK(req[0].status == TUTTI_INPROGRESS,
                 "a send of %d bytes ended before its receive was posted: "
                 "%d", PULL_LEN, req[0].status);
        atomic_store(&w->flag[0], 1);
        TH_CHECK(th_wait1(r, &req[0], WAIT_MS) == 0, "send timed out");
        TH_CHECK(req[0].status == TUTTI_SUCCESS, "send %d", req[0].status);
        /* the buffer is ours again: the receiver has its copy already */
        memset(big, 0, PULL_LEN);
        atomic_store(&w->flag[0], 2);
    } else {
        memset(big, 0x5a, PULL_LEN);
        TH_CHECK(wait_flag(w, 0, 1) == 0, "rank 0 never sent");
        TH_CHECK(tt_shm_ops.irecv(r->ep[0], big, PULL_LEN, 1, &req[0]) ==
                     TUTTI_SUCCESS, "irecv big");
        TH_CHECK(tt_shm_ops.irecv(r->ep[0], small, sizeof(small), 2,
                                  &req[1]) == TUTTI_SUCCESS, "irecv small");
        TH_CHECK(th_wait(r, reqs, 2, WAIT_MS) == 0, "receives timed out");
        TH_CHECK(req[0].status == TUTTI_SUCCESS &&
                     req[1].status == TUTTI_SUCCESS, "recv %d %d",
                 req[0].status, req[1].status);
        TH_CHECK(wait_flag(w, 0, 2) == 0, "rank 0 never finished");
        TH_CHECK(th_verify(big, PULL_LEN, 0, 1) == (size_t)-1,
                 "big differs at %zu", th_verify(big, PULL_LEN, 0, 1));
        TH_CHECK(th_verify(small, sizeof(small), 0, 2) == (size_t)-1,
                 "small differs");
    }
    free(big);
    th_barrier(w);
    th_rank_fini(r);
    return 0;
}

Test(transport_shm, cma_send_completes_after_pull, .timeout = 60)
{
    /* 64 KiB: the small message stays in the FIFO */
    run_with_cma(2, 64 * 1024, rank_send_waits_for_pull);
}

/* ---- single copy: a failed probe keeps that pair on the FIFOs -------- */

static int rank_probe_fails(th_rank_t *r, void *arg)
{
    th_world_t *w    = arg;
    int         peer = 1 - r->rank;
    char       *sbuf = malloc(PULL_LEN), *rbuf = malloc(PULL_LEN);
    tt_req_t    req[2] = {{0}}, *reqs[2] = {&req[0], &req[1]};

    TH_CHECK(sbuf && rbuf, "malloc");
    if (th_rank_init(r, w, r->rank) != 0) {
        return 1;
    }
    if (r->rank == 1) {
        /* rank 1 reads a cookie that is not rank 0's: it must not pull
         * from rank 0 (as if process_vm_readv had failed) */
        tt_shm_addr_t addr;

        memcpy(&addr, w->addr[0], sizeof(addr));
        addr.cma_cookie ^= 2;
        memcpy(w->addr[0], &addr, sizeof(addr));
    }
    if (th_rank_connect(r) != 0 || th_rank_connect_done(r) != 0) {
        return 1;
    }
    th_fill(sbuf, PULL_LEN, r->rank, 3);
    /* the FIFO holds the whole message: by the FIFO it ends at once, by
     * descriptor only after the pull */
    TH_CHECK(tt_shm_ops.isend(r->ep[peer], sbuf, PULL_LEN, 3, &req[0]) ==
                 TUTTI_SUCCESS, "isend");
    TH_CHECK(req[0].status == (r->rank == 0 ? TUTTI_SUCCESS
                                            : TUTTI_INPROGRESS),
             "rank %d send: %d", r->rank, req[0].status);
    TH_CHECK(tt_shm_ops.irecv(r->ep[peer], rbuf, PULL_LEN, 3, &req[1]) ==
                 TUTTI_SUCCESS, "irecv");
    TH_CHECK(th_wait(r, reqs, 2, WAIT_MS) == 0, "exchange timed out");
    TH_CHECK(req[0].status == TUTTI_SUCCESS && req[1].status ==
                 TUTTI_SUCCESS, "send %d recv %d", req[0].status,
             req[1].status);
    TH_CHECK(th_verify(rbuf, PULL_LEN, peer, 3) == (size_t)-1, "content");
    free(sbuf);
    free(rbuf);
    th_barrier(w);
    th_rank_fini(r);
    return 0;
}

Test(transport_shm, cma_probe_failure_falls_back, .timeout = 60)
{
    run_with_cma(2, 1024, rank_probe_fails);
}

/* ---- single copy: the sender dies while the receiver pulls ----------- */

#define DIE_LEN (64 * MIB)

enum { FLAG_PULLING = 3 };

/* Rank 0 sends DIE_LEN bytes and waits to be killed; rank 1 starts the
 * pull (irecv moves the first step), lets the test kill rank 0, and must
 * then see its receive fail, not hang. flag[1] = 1: a delivering
 * receive. */
static int rank_dies_during_pull(th_rank_t *r, void *arg)
{
    th_world_t     *w       = arg;
    int             deliver = atomic_load(&w->flag[1]);
    deliver_state_t st      = {.len = DIE_LEN, .src = 0, .seq = 9};
    tt_req_t        req     = {0};
    char           *buf     = malloc(DIE_LEN);

    TH_CHECK(buf != NULL, "malloc");
    if (th_rank_setup(r, w, r->rank) != 0) {
        return 1;
    }
    if (r->rank == 0) {
        th_fill(buf, DIE_LEN, 0, 9);
        TH_CHECK(tt_shm_ops.isend(r->ep[1], buf, DIE_LEN, 9, &req) ==
                     TUTTI_SUCCESS, "isend");
        atomic_store(&w->flag[0], FLAG_READY);
        for (;;) {
            pause();
        }
    }
    TH_CHECK(wait_flag(w, 0, FLAG_READY) == 0, "rank 0 never sent");
    if (deliver) {
        req.deliver = check_deliver;
        req.arg     = &st;
    }
    TH_CHECK(tt_shm_ops.irecv(r->ep[0], deliver ? NULL : buf, DIE_LEN, 9,
                              &req) == TUTTI_SUCCESS, "irecv");
    TH_CHECK(req.status == TUTTI_INPROGRESS,
             "a %d-byte pull ended in irecv: %d", DIE_LEN, req.status);
    atomic_store(&w->flag[1], FLAG_PULLING);
    TH_CHECK(wait_flag(w, 0, FLAG_DEAD) == 0, "rank 0 not killed");
    TH_CHECK(th_wait1(r, &req, WAIT_MS) == 0, "the receive hung");
    TH_CHECK(req.status == TUTTI_ERR_REMOTE, "status %d", req.status);
    TH_CHECK(strstr(tutti_last_error(), "exited") != NULL, "message: %s",
             tutti_last_error());
    TH_CHECK(!deliver || (st.bad == 0 && st.next > 0 && st.next < DIE_LEN),
             "pieces before the death: bad %d, %zu bytes", st.bad, st.next);
    free(buf);
    th_rank_fini(r);
    return 0;
}

static void die_during_pull(int deliver)
{
    th_world_t *w = th_world_create(2);
    pid_t       pids[TH_MAX_RANKS];
    int         st;

    cr_assert_not_null(w);
    w->cma_min = 1024;
    atomic_store(&w->flag[1], deliver);
    th_spawn(w, rank_dies_during_pull, w, pids);
    for (st = 0; atomic_load(&w->flag[1]) != FLAG_PULLING; st++) {
        cr_assert(st < 60000 && !atomic_load(&w->failed),
                  "rank 1 never started pulling");
        usleep(1000);
    }
    kill(pids[0], SIGKILL);
    cr_assert_eq(waitpid(pids[0], &st, 0), pids[0]);
    cr_assert(WIFSIGNALED(st));
    pids[0] = 0;
    atomic_store(&w->flag[0], FLAG_DEAD);
    cr_assert_eq(th_join(w, pids), 0);
    th_world_destroy(w);
}

Test(transport_shm, cma_sender_dies_during_copy_pull, .timeout = 60)
{
    die_during_pull(0);
}

Test(transport_shm, cma_sender_dies_during_deliver_pull, .timeout = 60)
{
    die_during_pull(1);
}

/* ---- single copy: off when the ranks outnumber the cpus -------------- */

#define OVER_LEN (64 * 1024) /* fits an empty FIFO of the default geometry */

/* With single copy off, a send that fits the FIFO ends at once. */
static int rank_oversubscribed(th_rank_t *r, void *arg)
{
    th_world_t *w    = arg;
    int         next = (r->rank + 1) % w->nranks;
    int         prev = (r->rank + w->nranks - 1) % w->nranks;
    char       *sbuf = malloc(OVER_LEN), *rbuf = malloc(OVER_LEN);
    tt_req_t    req[2] = {{0}}, *reqs[2] = {&req[0], &req[1]};

    TH_CHECK(sbuf && rbuf, "malloc");
    if (th_rank_setup(r, w, r->rank) != 0) {
        return 1;
    }
    th_fill(sbuf, OVER_LEN, r->rank, 4);
    TH_CHECK(tt_shm_ops.isend(r->ep[next], sbuf, OVER_LEN, 4, &req[0]) ==
                 TUTTI_SUCCESS, "isend");
    TH_CHECK(req[0].status == TUTTI_SUCCESS,
             "%d ranks, more than the cpus: a %d-byte send waited for a "
             "pull (status %d)", w->nranks, OVER_LEN, req[0].status);
    TH_CHECK(tt_shm_ops.irecv(r->ep[prev], rbuf, OVER_LEN, 4, &req[1]) ==
                 TUTTI_SUCCESS, "irecv");
    TH_CHECK(th_wait(r, reqs, 2, WAIT_MS) == 0, "ring timed out");
    TH_CHECK(req[1].status == TUTTI_SUCCESS, "recv %d", req[1].status);
    TH_CHECK(th_verify(rbuf, OVER_LEN, prev, 4) == (size_t)-1, "content");
    free(sbuf);
    free(rbuf);
    th_barrier(w);
    th_rank_fini(r);
    return 0;
}

Test(transport_shm, cma_off_when_oversubscribed, .timeout = 60)
{
    cpu_set_t   set;
    int         ncpus;
    th_world_t *w;

    cr_assert_eq(sched_getaffinity(0, sizeof(set), &set), 0);
    ncpus = CPU_COUNT(&set);
    if (ncpus + 1 > TH_MAX_RANKS) {
        cr_skip_test("%d cpus: oversubscribing takes more than %d ranks",
                     ncpus, TH_MAX_RANKS);
    }
    w = th_world_create(ncpus + 1);
    cr_assert_not_null(w);
    w->cma_min = 1024;
    cr_assert_eq(th_run(w, rank_oversubscribed, w), 0);
    th_world_destroy(w);
}
