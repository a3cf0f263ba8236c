/*
 * The 'ops' suite's shared rank-side code (ops.h): derived communicators,
 * and one collective case from buffers to verdict. Element j of a buffer
 * always holds element j of some rank's reference stream, so every check
 * is a comparison with tests/helpers/ref.c:
 *
 *   allreduce       recv[i]           = reduced(i)
 *   reduce          root's recv[i]    = reduced(i)
 *   reduce_scatter  recv[i]           = reduced(rank * count + i)
 *   allgather       recv[p * count + i] = stream of p [i]
 *   broadcast       recv[i]           = stream of root [i]
 *   alltoall        recv[p * count + i] = stream of p [rank * count + i]
 *
 * where a rank's send buffer holds its stream from element 0 on.
 */
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "comm.h" /* tt_ops_expect_algo reads comm->algo_sel */
#include "ops.h"

/* Fill of receive buffers before a call, and of buffers nobody may read
 * or write (a non-root's unused broadcast sendbuf, reduce recvbuf). */
#define TT_OPS_POISON   0x5a
#define TT_OPS_NOT_READ 0x33

int tt_ops_is_reduction(tt_coll_t coll)
{
    return coll == TT_COLL_ALLREDUCE || coll == TT_COLL_REDUCE_SCATTER ||
           coll == TT_COLL_REDUCE;
}

int tt_ops_is_rooted(tt_coll_t coll)
{
    return coll == TT_COLL_BROADCAST || coll == TT_COLL_REDUCE;
}

const char *tt_ops_mode_name(tt_ops_mode_t mode)
{
    switch (mode) {
    case TT_OPS_OOP:
        return "out of place";
    case TT_OPS_INPLACE:
        return "in place";
    default:
        return "out of place, NULL on non-roots";
    }
}

uint64_t tt_ops_seed_next(uint64_t *state)
{
    *state = tt_ref_hash(*state, 0x6f7073u);
    return *state;
}

/* ---------------------------------------------------------------------- */
/* communicators                                                          */
/* ---------------------------------------------------------------------- */

tutti_result_t tt_ops_comm_init(int rank, int nranks,
                                const tutti_unique_id_t *id, const char *algo,
                                tutti_comm_t *comm_p)
{
    tutti_config_t config = TUTTI_CONFIG_INIT;

    config.timeout_ms = TT_OPS_CALL_TIMEOUT_MS;
    config.algo       = algo;
    return tutti_comm_init(nranks, id, rank, &config, comm_p);
}

tutti_result_t tt_ops_comm_derive(tutti_comm_t world, const char *algo,
                                  tutti_comm_t *comm_p)
{
    tutti_unique_id_t id;
    tutti_result_t    res;
    int               rank, nranks;

    memset(&id, 0, sizeof(id));
    if ((res = tutti_comm_rank(world, &rank)) != TUTTI_SUCCESS ||
        (res = tutti_comm_size(world, &nranks)) != TUTTI_SUCCESS) {
        return res;
    }
    /* rank 0 hosts the new rendezvous; it stays alive, being a rank */
    if (rank == 0 && (res = tutti_get_unique_id(&id)) != TUTTI_SUCCESS) {
        return res;
    }
    res = tutti_broadcast(&id, &id, sizeof(id), TUTTI_UINT8, 0, world);
    if (res != TUTTI_SUCCESS) {
        return res;
    }
    return tt_ops_comm_init(rank, nranks, &id, algo, comm_p);
}

static tt_coll_args_t tt_ops_args(const tt_ops_case_t *c, int rank,
                                  int nranks)
{
    return (tt_coll_args_t){.coll     = c->coll,
                            .count    = c->count,
                            .datatype = c->dt,
                            .op       = c->op,
                            .root     = c->root,
                            .rank     = rank,
                            .nranks   = nranks,
                            .inplace  = c->mode == TT_OPS_INPLACE};
}

int tt_ops_expect_algo(tutti_comm_t comm, const tt_ops_case_t *c,
                       int nranks, const char *want)
{
    tt_coll_args_t   args = tt_ops_args(c, comm->rank, nranks);
    const tt_algo_t *algo = NULL;
    tutti_result_t   res;

    res = tutti__algo_select(&comm->algo_sel, &args, &algo);
    if (res != TUTTI_SUCCESS) {
        return tt_test_fail(__FILE__, __LINE__, "%s of %zu: no algorithm: "
                            "%s (%s)", tutti__coll_name(c->coll), c->count,
                            tutti_result_name(res), tutti_last_error());
    }
    if (strcmp(algo->name, want) != 0) {
        return tt_test_fail(__FILE__, __LINE__, "%s of %zu on %d ranks runs "
                            "'%s', not the forced '%s'",
                            tutti__coll_name(c->coll), c->count, nranks,
                            algo->name, want);
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* one case                                                               */
/* ---------------------------------------------------------------------- */

/* Elements of the send and receive buffers of a case: count, or nranks
 * blocks of count on the side that holds one block per rank. */
static void tt_ops_sizes(const tt_ops_case_t *c, int nranks,
                         size_t *send_p, size_t *recv_p)
{
    int    per_rank_send = c->coll == TT_COLL_REDUCE_SCATTER ||
                           c->coll == TT_COLL_ALLTOALL;
    int    per_rank_recv = c->coll == TT_COLL_ALLGATHER ||
                           c->coll == TT_COLL_ALLTOALL;
    size_t count         = c->coll == TT_COLL_BARRIER ? 0 : c->count;

    *send_p = count * (per_rank_send ? (size_t)nranks : 1);
    *recv_p = count * (per_rank_recv ? (size_t)nranks : 1);
}

/* The in-place arguments: one buffer, the other pointer derived from it. */
static int tt_ops_prepare_inplace(tt_ops_run_t *run, size_t esize,
                                  size_t send_elems, size_t recv_elems)
{
    const tt_ops_case_t *c   = &run->c;
    size_t               own = (size_t)run->rank * c->count * esize;

    switch (c->coll) {
    case TT_COLL_REDUCE_SCATTER:
        /* recvbuf is this rank's block of sendbuf */
        if (tt_test_buf_alloc(&run->send, send_elems * esize, esize) != 0) {
            return 1;
        }
        tt_ref_fill(&run->data, run->rank, 0, send_elems, run->send.p);
        run->sendp = run->send.p;
        run->recvp = run->send.p + own;
        return 0;
    case TT_COLL_ALLGATHER:
        /* sendbuf is this rank's block of recvbuf */
        if (tt_test_buf_alloc(&run->recv, recv_elems * esize, esize) != 0) {
            return 1;
        }
        memset(run->recv.p, TT_OPS_POISON, recv_elems * esize);
        tt_ref_fill(&run->data, run->rank, 0, c->count, run->recv.p + own);
        break;
    default:
        /* sendbuf == recvbuf; a non-root's broadcast buffer holds nothing
         * yet, every other one this rank's data */
        if (tt_test_buf_alloc(&run->recv, recv_elems * esize, esize) != 0) {
            return 1;
        }
        if (c->coll == TT_COLL_BROADCAST && run->rank != c->root) {
            memset(run->recv.p, TT_OPS_POISON, recv_elems * esize);
        } else {
            tt_ref_fill(&run->data, run->rank, 0, recv_elems, run->recv.p);
        }
        break;
    }
    run->recvp = run->recv.p;
    run->sendp = c->coll == TT_COLL_ALLGATHER ? run->recv.p + own
                                              : run->recv.p;
    return 0;
}

static int tt_ops_prepare_oop(tt_ops_run_t *run, size_t esize,
                              size_t send_elems, size_t recv_elems)
{
    const tt_ops_case_t *c       = &run->c;
    int                  nonroot = tt_ops_is_rooted(c->coll) &&
                                   run->rank != c->root;
    int                  null    = nonroot && c->mode == TT_OPS_NULL;

    /* send and recv sit at different offsets from a 64-byte boundary */
    if (!(null && c->coll == TT_COLL_BROADCAST)) {
        if (tt_test_buf_alloc(&run->send, send_elems * esize,
                              3 * esize) != 0) {
            return 1;
        }
        if (nonroot && c->coll == TT_COLL_BROADCAST) {
            memset(run->send.p, TT_OPS_NOT_READ, send_elems * esize);
        } else {
            tt_ref_fill(&run->data, run->rank, 0, send_elems, run->send.p);
        }
        run->sendp = run->send.p;
    }
    if (!(null && c->coll == TT_COLL_REDUCE)) {
        if (tt_test_buf_alloc(&run->recv, recv_elems * esize, esize) != 0) {
            return 1;
        }
        memset(run->recv.p, TT_OPS_POISON, recv_elems * esize);
        run->recvp = run->recv.p;
    }
    return 0;
}

/* run->what: "reduce (chain) float32 avg count 7 root 2 on 3 ranks, in
 * place", the prefix of every message about the case. */
static void tt_ops_describe(tt_ops_run_t *run)
{
    const tt_ops_case_t *c = &run->c;
    char                 algo[40] = "", root[24] = "";

    if (c->algo != NULL) {
        snprintf(algo, sizeof(algo), " (%s)", c->algo);
    }
    if (tt_ops_is_rooted(c->coll)) {
        snprintf(root, sizeof(root), " root %d", c->root);
    }
    snprintf(run->what, sizeof(run->what), "%s%s %s%s%s count %zu%s on %d "
             "ranks, %s", tutti__coll_name(c->coll), algo,
             tutti_datatype_name(c->dt),
             tt_ops_is_reduction(c->coll) ? " " : "",
             tt_ops_is_reduction(c->coll) ? tutti_redop_name(c->op) : "",
             c->count, root, run->nranks, tt_ops_mode_name(c->mode));
}

int tt_ops_prepare(tt_ops_run_t *run, const tt_ops_case_t *c, int rank,
                   int nranks)
{
    size_t esize = tutti_datatype_size(c->dt), send_elems, recv_elems;
    int    rc;

    memset(run, 0, sizeof(*run));
    run->c      = *c;
    run->rank   = rank;
    run->nranks = nranks;
    run->data   = (tt_ref_stream_t){.dt   = c->dt,
                                    .op   = c->op,
                                    .raw  = !tt_ops_is_reduction(c->coll),
                                    .seed = c->seed};
    tt_ops_describe(run);
    if (c->coll == TT_COLL_BARRIER) {
        return 0;
    }
    tt_ops_sizes(c, nranks, &send_elems, &recv_elems);
    rc = c->mode == TT_OPS_INPLACE
             ? tt_ops_prepare_inplace(run, esize, send_elems, recv_elems)
             : tt_ops_prepare_oop(run, esize, send_elems, recv_elems);
    if (rc != 0) {
        tt_ops_release(run);
    }
    return rc;
}

tutti_result_t tt_ops_start(tt_ops_run_t *run, tutti_comm_t comm,
                            tutti_request_t *req_p)
{
    const tt_ops_case_t *c = &run->c;
    const void          *s = run->sendp;
    void                *r = run->recvp;

    switch (c->coll) {
    case TT_COLL_ALLREDUCE:
        return req_p ? tutti_iallreduce(s, r, c->count, c->dt, c->op, comm,
                                        req_p)
                     : tutti_allreduce(s, r, c->count, c->dt, c->op, comm);
    case TT_COLL_ALLGATHER:
        return req_p ? tutti_iallgather(s, r, c->count, c->dt, comm, req_p)
                     : tutti_allgather(s, r, c->count, c->dt, comm);
    case TT_COLL_REDUCE_SCATTER:
        return req_p ? tutti_ireduce_scatter(s, r, c->count, c->dt, c->op,
                                             comm, req_p)
                     : tutti_reduce_scatter(s, r, c->count, c->dt, c->op,
                                            comm);
    case TT_COLL_BROADCAST:
        return req_p ? tutti_ibroadcast(s, r, c->count, c->dt, c->root, comm,
                                        req_p)
                     : tutti_broadcast(s, r, c->count, c->dt, c->root, comm);
    case TT_COLL_REDUCE:
        return req_p ? tutti_ireduce(s, r, c->count, c->dt, c->op, c->root,
                                     comm, req_p)
                     : tutti_reduce(s, r, c->count, c->dt, c->op, c->root,
                                    comm);
    case TT_COLL_ALLTOALL:
        return req_p ? tutti_ialltoall(s, r, c->count, c->dt, comm, req_p)
                     : tutti_alltoall(s, r, c->count, c->dt, comm);
    default:
        return req_p ? tutti_ibarrier(comm, req_p) : tutti_barrier(comm);
    }
}

/* The result in the receive buffer. */
static int tt_ops_check_result(const tt_ops_run_t *run)
{
    const tt_ops_case_t *c     = &run->c;
    size_t               esize = tutti_datatype_size(c->dt);
    const unsigned char *recv  = run->recvp;
    int                  p, bad = 0;

    switch (c->coll) {
    case TT_COLL_ALLREDUCE:
        return tt_ref_check_reduced(&run->data, run->nranks, 0, c->count,
                                    recv, run->what) != 0;
    case TT_COLL_REDUCE:
        if (run->rank != c->root) {
            return 0; /* see tt_ops_check_untouched */
        }
        return tt_ref_check_reduced(&run->data, run->nranks, 0, c->count,
                                    recv, run->what) != 0;
    case TT_COLL_REDUCE_SCATTER:
        return tt_ref_check_reduced(&run->data, run->nranks,
                                    (size_t)run->rank * c->count, c->count,
                                    recv, run->what) != 0;
    case TT_COLL_BROADCAST:
        return tt_ref_check_own(&run->data, c->root, 0, c->count, recv,
                                run->what) != 0;
    case TT_COLL_ALLGATHER:
    case TT_COLL_ALLTOALL:
        for (p = 0; p < run->nranks && bad == 0; p++) {
            size_t first = c->coll == TT_COLL_ALLGATHER
                               ? 0 : (size_t)run->rank * c->count;

            bad += tt_ref_check_own(&run->data, p, first, c->count,
                                    recv + (size_t)p * c->count * esize,
                                    run->what) != 0;
        }
        return bad;
    default:
        return 0;
    }
}

/* What must be as it was: send buffers out of place (a non-root's
 * broadcast sendbuf too: it is ignored), the other blocks of an in-place
 * reduce_scatter's sendbuf, and everything a non-root hands to reduce. */
static int tt_ops_check_untouched(const tt_ops_run_t *run)
{
    const tt_ops_case_t *c       = &run->c;
    size_t               esize   = tutti_datatype_size(c->dt);
    int                  nonroot = tt_ops_is_rooted(c->coll) &&
                                   run->rank != c->root;
    size_t               send_elems, recv_elems, own;
    char                 what[200];
    int                  bad = 0;

    tt_ops_sizes(c, run->nranks, &send_elems, &recv_elems);
    snprintf(what, sizeof(what), "%s: the send buffer", run->what);
    if (c->mode == TT_OPS_INPLACE) {
        if (c->coll == TT_COLL_REDUCE_SCATTER) {
            own = (size_t)run->rank * c->count;
            bad += tt_ref_check_own(&run->data, run->rank, 0, own,
                                    run->send.p, what) != 0;
            bad += tt_ref_check_own(&run->data, run->rank, own + c->count,
                                    send_elems - own - c->count,
                                    run->send.p + (own + c->count) * esize,
                                    what) != 0;
        } else if (c->coll == TT_COLL_REDUCE && nonroot) {
            bad += tt_ref_check_own(&run->data, run->rank, 0, send_elems,
                                    run->recv.p, what) != 0;
        }
        return bad;
    }
    if (run->send.p != NULL && nonroot && c->coll == TT_COLL_BROADCAST) {
        snprintf(what, sizeof(what), "%s: a non-root's sendbuf", run->what);
        bad += tt_ref_check_bytes(run->send.p, send_elems * esize,
                                  TT_OPS_NOT_READ, what);
    } else if (run->send.p != NULL) {
        bad += tt_ref_check_own(&run->data, run->rank, 0, send_elems,
                                run->send.p, what) != 0;
    }
    if (nonroot && c->coll == TT_COLL_REDUCE && run->recv.p != NULL) {
        snprintf(what, sizeof(what), "%s: a non-root's recvbuf", run->what);
        bad += tt_ref_check_bytes(run->recv.p, recv_elems * esize,
                                  TT_OPS_POISON, what);
    }
    return bad;
}

int tt_ops_check(const tt_ops_run_t *run)
{
    char what[200];
    int  bad = 0;

    if (run->c.coll == TT_COLL_BARRIER) {
        return 0;
    }
    bad += tt_ops_check_result(run);
    bad += tt_ops_check_untouched(run);
    if (run->send.p != NULL) {
        snprintf(what, sizeof(what), "%s: send buffer", run->what);
        bad += !tt_test_buf_guards_ok(&run->send, what);
    }
    if (run->recv.p != NULL) {
        snprintf(what, sizeof(what), "%s: receive buffer", run->what);
        bad += !tt_test_buf_guards_ok(&run->recv, what);
    }
    return bad;
}

void tt_ops_release(tt_ops_run_t *run)
{
    if (run->send.base != NULL) {
        tt_test_buf_free(&run->send);
    }
    if (run->recv.base != NULL) {
        tt_test_buf_free(&run->recv);
    }
}

int tt_ops_large_case(tt_coll_t coll, int k, int nranks, size_t bytes,
                      tt_ops_case_t *c_p)
{
    size_t        n = (size_t)nranks;
    tt_ops_case_t c = {.coll = coll, .root = nranks - 1,
                       .mode = k % 2 ? TT_OPS_INPLACE : TT_OPS_OOP};

    /* each type's count is bytes / its size, + a little: no rank count
     * divides it */
    switch (coll) {
    case TT_COLL_ALLREDUCE:
        c.dt    = TUTTI_FLOAT32;
        c.op    = TUTTI_SUM;
        c.count = bytes / 4 + 3;
        break;
    case TT_COLL_REDUCE_SCATTER:
        c.dt    = TUTTI_INT32;
        c.op    = TUTTI_MAX;
        c.count = bytes / 4 / n + 1;
        break;
    case TT_COLL_REDUCE:
        c.dt    = TUTTI_BFLOAT16;
        c.op    = TUTTI_SUM;
        c.count = bytes / 2 + 1;
        c.mode  = k % 2 ? TT_OPS_INPLACE : TT_OPS_NULL;
        break;
    case TT_COLL_BROADCAST:
        c.dt    = TUTTI_INT8;
        c.count = bytes + 5;
        c.root  = nranks / 2;
        break;
    case TT_COLL_ALLGATHER:
    case TT_COLL_ALLTOALL:
        c.dt    = TUTTI_FLOAT64;
        c.count = bytes / 8 / n + 1;
        break;
    default:
        return 0;
    }
    *c_p = c;
    return 1;
}

int tt_ops_run_case(const tt_ops_case_t *c, int rank, int nranks,
                    tutti_comm_t comm)
{
    tt_ops_run_t   run;
    tutti_result_t res;
    int            bad;

    if (tt_ops_prepare(&run, c, rank, nranks) != 0) {
        return -1;
    }
    res = tt_ops_start(&run, comm, NULL);
    if (res != TUTTI_SUCCESS) {
        tt_test_fail(__FILE__, __LINE__, "%s: %s (%s)", run.what,
                     tutti_result_name(res), tutti_last_error());
        tt_ops_release(&run);
        return -1;
    }
    bad = tt_ops_check(&run);
    tt_ops_release(&run);
    return bad;
}

int tt_ops_test_all(tutti_request_t *reqs, int n, const char *what)
{
    uint64_t deadline = tt_test_now_ms() + 2 * TT_OPS_CALL_TIMEOUT_MS;
    int      left = n, bad = 0, i;

    for (i = 0; i < n; i++) {
        left -= reqs[i] == NULL;
    }
    while (left > 0) {
        for (i = 0; i < n; i++) {
            tutti_result_t res;
            int            done = 0;

            if (reqs[i] == NULL) {
                continue;
            }
            res = tutti_test(reqs[i], &done);
            if (res != TUTTI_SUCCESS || done) {
                /* an error also completes (and frees) the request */
                reqs[i] = NULL;
                left--;
            }
            if (res != TUTTI_SUCCESS) {
                bad += tt_test_fail(__FILE__, __LINE__, "%s: request %d: %s "
                                    "(%s)", what, i, tutti_result_name(res),
                                    tutti_last_error());
            }
        }
        if (left > 0 && tt_test_now_ms() > deadline) {
            return bad + tt_test_fail(__FILE__, __LINE__, "%s: %d requests "
                                      "not done after %d ms", what, left,
                                      2 * TT_OPS_CALL_TIMEOUT_MS);
        }
        if (left > 0) {
            sched_yield();
        }
    }
    return bad;
}
