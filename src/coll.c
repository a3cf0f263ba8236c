/*
 * The collective and point-to-point entry points: argument validation
 * (every bad input is TUTTI_ERR_INVALID_ARGUMENT with a sentence, and
 * nothing is written to a receive buffer then), algorithm choice, schedule
 * building, and issue: at once and waited (blocking), at once with a
 * request (nonblocking), or recorded until tutti_group_end() (groups).
 */
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "reduce.h"

/* The tag kind of point-to-point messages (collectives use tt_coll_t).
 * Point-to-point schedules also run on their own channel
 * (TT_CHANNEL_P2P, transport.h), so that their messages are matched apart
 * from the collectives' whatever order the calls interleave in. */
#define TT_KIND_P2P TT_COLL_NUM

struct tutti_request {
    tt_exec_t     *x;      /* NULL once complete, or for an empty call */
    tutti_result_t status; /* valid when x is NULL */
};

/* What one call asks for, validated. */
typedef struct tt_call {
    const char    *fn;
    tutti_comm_t   comm;
    tt_coll_args_t args;
    const void    *send;
    void          *recv;
    int            peer; /* p2p: the peer; -1 for collectives */
    int            is_send;
    int            empty; /* nothing to move: completes at once */
} tt_call_t;

/* ---------------------------------------------------------------------- */
/* groups                                                                 */
/* ---------------------------------------------------------------------- */

typedef struct tt_group_op {
    tutti_comm_t     comm;
    tt_op_t          op;
    tutti_request_t  req; /* NULL for a blocking call */
} tt_group_op_t;

typedef struct tt_group {
    int            depth;
    int            nops, cap;
    tt_group_op_t *ops;
    tutti_result_t error; /* the first failed call of the group */
} tt_group_t;

static _Thread_local tt_group_t tt_group;

/* ---------------------------------------------------------------------- */
/* validation helpers                                                     */
/* ---------------------------------------------------------------------- */

static int tt_overlap(const void *a, size_t alen, const void *b, size_t blen)
{
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;

    return x < y + blen && y < x + alen;
}

/* Common checks; sets call->args' type fields and *bytes_p = count *
 * typesize * mult (the largest buffer), guarding against overflow. */
static tutti_result_t tt_call_check(tt_call_t *c, size_t count, size_t mult,
                                    tutti_datatype_t datatype,
                                    size_t *bytes_p)
{
    size_t esize;

    TT_CHECK(tutti__comm_check(c->comm));
    if ((unsigned)datatype >= TUTTI_NUM_DATATYPES) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "%s: datatype %d is not a tutti_datatype_t",
                            c->fn, (int)datatype);
    }
    esize = tutti_datatype_size(datatype);
    if (count > SIZE_MAX / esize / mult) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "%s: count %zu of %s%s overflows the address "
                            "space", c->fn, count,
                            tutti_datatype_name(datatype),
                            mult > 1 ? " times the rank count" : "");
    }
    c->args.count    = count;
    c->args.datatype = datatype;
    c->args.rank     = c->comm->rank;
    c->args.nranks   = c->comm->nranks;
    c->args.root     = -1;
    c->peer          = -1;
    c->empty         = count == 0;
    *bytes_p         = count * esize * mult;
    return TUTTI_SUCCESS;
}

static tutti_result_t tt_call_check_op(tt_call_t *c, tutti_redop_t op)
{
    if ((unsigned)op >= TUTTI_NUM_REDOPS) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "%s: op %d is not a tutti_redop_t", c->fn,
                            (int)op);
    }
    c->args.op = op;
    return TUTTI_SUCCESS;
}

static tutti_result_t tt_call_check_rank(tt_call_t *c, const char *what,
                                         int r)
{
    if (r < 0 || r >= c->comm->nranks) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "%s: %s %d out of range [0, %d)", c->fn, what, r,
                            c->comm->nranks);
    }
    return TUTTI_SUCCESS;
}

static tutti_result_t tt_call_check_buf(tt_call_t *c, const char *what,
                                        const void *buf)
{
    if (buf == NULL && !c->empty) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "%s: %s is NULL with count %zu", c->fn, what,
                            c->args.count);
    }
    return TUTTI_SUCCESS;
}

/* Same-sized send and receive buffers are either the same (in place) or
 * disjoint; sets call->args.inplace. */
static tutti_result_t tt_call_check_inplace(tt_call_t *c, size_t bytes)
{
    if (!c->empty && c->send != c->recv &&
        tt_overlap(c->send, bytes, c->recv, bytes)) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "%s: sendbuf %p and recvbuf %p overlap without "
                            "being equal (in place)", c->fn, c->send,
                            c->recv);
    }
    c->args.inplace = c->send == c->recv;
    return TUTTI_SUCCESS;
}

/*
 * One buffer of `block` bytes against one of nranks blocks (allgather's
 * send against its receive, reduce-scatter's receive against its send):
 * either this rank's block of the big one (in place) or disjoint from it.
 * Sets call->args.inplace.
 */
static tutti_result_t tt_call_check_block(tt_call_t *c, const void *small,
                                          const char *small_name,
                                          const void *big,
                                          const char *big_name, size_t bytes)
{
    size_t      block = bytes / (size_t)c->comm->nranks;
    const char *own   = (const char *)big + (size_t)c->comm->rank * block;

    if (!c->empty && small != own && tt_overlap(small, block, big, bytes)) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "%s: %s %p overlaps %s %p but is not this rank's "
                            "block (%s + %d * %zu bytes, for in place)", c->fn,
                            small_name, small, big_name, big, big_name,
                            c->comm->rank, block);
    }
    c->args.inplace = small == own;
    return TUTTI_SUCCESS;
}

/* ---------------------------------------------------------------------- */
/* building and issuing                                                   */
/* ---------------------------------------------------------------------- */

/* The call's buffers, as an execution binds them. */
static tt_bufs_t tt_call_bufs(const tt_call_t *c)
{
    return (tt_bufs_t){.send = c->send, .recv = c->recv,
                       .send_mem = TT_MEM_HOST, .recv_mem = TT_MEM_HOST};
}

static tutti_result_t tt_call_build(tt_call_t *c, tt_op_t *op)
{
    const tt_algo_t *algo;
    tutti_result_t   res;

    memset(op, 0, sizeof(*op));
    op->bufs = tt_call_bufs(c);
    TT_CHECK(tutti__sched_init(&op->sched, c->args.datatype, c->args.op,
                               c->args.rank, c->args.nranks));
    if (c->peer >= 0) {
        /* point to point: one step */
        op->sched.algo     = c->is_send ? "send" : "recv";
        op->sched.tag_kind = TT_KIND_P2P;
        op->sched.channel  = TT_CHANNEL_P2P;
        res = c->is_send
                  ? tutti__sched_send(&op->sched, c->peer,
                                      tt_range(TT_BUF_SEND, 0), c->args.count,
                                      0, NULL)
                  : tutti__sched_recv(&op->sched, c->peer,
                                      tt_range(TT_BUF_RECV, 0), c->args.count,
                                      0, NULL);
        if (res < 0) {
            goto err;
        }
        return TUTTI_SUCCESS;
    }
    TT_CHECK_GOTO(tutti__algo_select(&c->comm->algo_sel, &c->args, &algo),
                  res, err);
    op->sched.algo     = algo->name;
    op->sched.tag_kind = (uint8_t)c->args.coll;
    TT_CHECK_GOTO(algo->build(&c->args, &op->sched), res, err);
    return TUTTI_SUCCESS;
err:
    tutti__sched_fini(&op->sched);
    return res;
}

static tutti_result_t tt_request_new(tutti_request_t *req_p)
{
    tutti_request_t req = calloc(1, sizeof(*req));

    if (req == NULL) {
        return tutti__error(TUTTI_ERR_NO_MEMORY, "request");
    }
    req->status = TUTTI_INPROGRESS;
    *req_p      = req;
    return TUTTI_SUCCESS;
}

static tutti_result_t tt_group_add(tt_call_t *c, tt_op_t *op,
                                   tutti_request_t req)
{
    tt_group_t *g = &tt_group;

    if (g->nops == g->cap) {
        int            cap = g->cap ? g->cap * 2 : 8;
        tt_group_op_t *ops = realloc(g->ops, (size_t)cap * sizeof(*ops));

        if (ops == NULL) {
            return tutti__error(TUTTI_ERR_NO_MEMORY, "%s: group of %d calls",
                                c->fn, cap);
        }
        g->ops = ops;
        g->cap = cap;
    }
    g->ops[g->nops++] = (tt_group_op_t){.comm = c->comm, .op = *op,
                                        .req = req};
    return TUTTI_SUCCESS;
}

/* Whether the communicator's cached execution was built for this call. */
static int tt_call_cached(const tt_call_t *c)
{
    const tutti_comm_t    comm = c->comm;
    const tt_coll_args_t *a = &c->args, *b = &comm->xcache_args;

    return comm->xcache != NULL && a->coll == b->coll &&
           a->count == b->count && a->datatype == b->datatype &&
           a->op == b->op && a->root == b->root && a->inplace == b->inplace &&
           c->peer == comm->xcache_peer &&
           c->is_send == comm->xcache_is_send;
}

/*
 * The most scratch and staging memory a kept execution may hold. Keeping
 * one pays off for small messages, where building and allocating is most
 * of a call's cost; a large message's scratch (Rabenseifner's is as large
 * as the message) would stay allocated between calls for little gain.
 */
#define TT_XCACHE_MEM_MAX (4u * 1024u * 1024u)

/*
 * A blocking call outside a group: issue, wait, and keep the completed
 * execution for the next call of the same shape, which re-issues it (a
 * training loop repeats the same calls, and for small messages building
 * and allocating is most of the cost). An execution holding more than
 * TT_XCACHE_MEM_MAX bytes is freed instead, and the one kept before it
 * stays, so small calls between large ones still find theirs.
 */
static tutti_result_t tt_call_blocking(tt_call_t *c)
{
    tutti_comm_t   comm = c->comm;
    tt_bufs_t      bufs = tt_call_bufs(c);
    tt_exec_t     *x = NULL;
    tt_op_t        op;
    tutti_result_t res;

    if (tt_call_cached(c)) {
        x            = comm->xcache;
        comm->xcache = NULL;
        res          = tutti__exec_reissue(x, &bufs);
        if (res < 0) {
            tutti__exec_free(x);
            return res;
        }
    } else {
        TT_CHECK(tt_call_build(c, &op));
        TT_CHECK(tutti__exec_issue(comm, &op, 1, &x));
    }
    res = tutti__exec_wait(x);
    if (res != TUTTI_SUCCESS) {
        tutti__exec_free(x);
        return res;
    }
    if (tutti__exec_mem_bytes(x) > TT_XCACHE_MEM_MAX) {
        /* not kept; what was kept (a small call's) stays */
        tutti__exec_free(x);
        return TUTTI_SUCCESS;
    }
    tutti__exec_free(comm->xcache);
    comm->xcache         = x;
    comm->xcache_args    = c->args;
    comm->xcache_peer    = c->peer;
    comm->xcache_is_send = c->is_send;
    return TUTTI_SUCCESS;
}

/*
 * Issues a validated call: blocking when req_p is NULL, else returns a
 * request; inside a group, records it.
 */
static tutti_result_t tt_call_post(tt_call_t *c, tutti_request_t *req_p)
{
    tutti_request_t req = NULL;
    tt_op_t         op;
    tt_exec_t      *x = NULL;
    tutti_result_t  res;

    if (c->empty) {
        if (req_p != NULL) {
            TT_CHECK(tt_request_new(&req));
            req->status = TUTTI_SUCCESS;
            *req_p      = req;
        }
        return TUTTI_SUCCESS;
    }
    if (req_p == NULL && tt_group.depth == 0) {
        return tt_call_blocking(c);
    }
    TT_CHECK(tt_call_build(c, &op));
    if (req_p != NULL) {
        TT_CHECK_GOTO(tt_request_new(&req), res, err_sched);
    }
    if (tt_group.depth > 0) {
        TT_CHECK_GOTO(tt_group_add(c, &op, req), res, err_req);
        if (req_p != NULL) {
            *req_p = req;
        }
        return TUTTI_SUCCESS;
    }
    TT_CHECK_GOTO(tutti__exec_issue(c->comm, &op, 1, &x), res, err_req);
    /* one pass now, so that the sends start before the user's next call
     * (its result, good or bad, is what test/wait report) */
    (void)tutti__exec_test(x);
    req->x = x;
    *req_p = req;
    return TUTTI_SUCCESS;

err_req:
    free(req);
err_sched:
    tutti__sched_fini(&op.sched);
    return res;
}

/* A failed call inside a group also fails the group's end. */
static tutti_result_t tt_call_fail(tutti_result_t res)
{
    if (tt_group.depth > 0 && tt_group.error == TUTTI_SUCCESS) {
        tt_group.error = res;
    }
    return res;
}

#define TT_TRY(_expr)                                                        \
    do {                                                                     \
        tutti_result_t tt__r = (_expr);                                      \
        if (tt__r < 0) {                                                     \
            return tt_call_fail(tt__r);                                      \
        }                                                                    \
    } while (0)

/* ---------------------------------------------------------------------- */
/* collectives                                                            */
/* ---------------------------------------------------------------------- */

static tutti_result_t tt_allreduce(const void *sendbuf, void *recvbuf,
                                   size_t count, tutti_datatype_t datatype,
                                   tutti_redop_t op, tutti_comm_t comm,
                                   tutti_request_t *req_p, const char *fn)
{
    tt_call_t c = {.fn = fn, .comm = comm, .send = sendbuf, .recv = recvbuf};
    size_t    bytes = 0;

    tutti__error_clear();
    c.args.coll = TT_COLL_ALLREDUCE;
    TT_TRY(tt_call_check(&c, count, 1, datatype, &bytes));
    TT_TRY(tt_call_check_op(&c, op));
    TT_TRY(tt_call_check_buf(&c, "sendbuf", sendbuf));
    TT_TRY(tt_call_check_buf(&c, "recvbuf", recvbuf));
    TT_TRY(tt_call_check_inplace(&c, bytes));
    TT_TRY(tt_call_post(&c, req_p));
    return TUTTI_SUCCESS;
}

static tutti_result_t tt_allgather(const void *sendbuf, void *recvbuf,
                                   size_t sendcount, tutti_datatype_t datatype,
                                   tutti_comm_t comm, tutti_request_t *req_p,
                                   const char *fn)
{
    tt_call_t c = {.fn = fn, .comm = comm, .send = sendbuf, .recv = recvbuf};
    size_t    bytes = 0;

    tutti__error_clear();
    c.args.coll = TT_COLL_ALLGATHER;
    TT_TRY(tt_call_check(&c, sendcount, comm ? (size_t)comm->nranks : 1,
                         datatype, &bytes));
    TT_TRY(tt_call_check_buf(&c, "sendbuf", sendbuf));
    TT_TRY(tt_call_check_buf(&c, "recvbuf", recvbuf));
    TT_TRY(tt_call_check_block(&c, sendbuf, "sendbuf", recvbuf, "recvbuf",
                               bytes));
    TT_TRY(tt_call_post(&c, req_p));
    return TUTTI_SUCCESS;
}

static tutti_result_t tt_reduce_scatter(const void *sendbuf, void *recvbuf,
                                        size_t recvcount,
                                        tutti_datatype_t datatype,
                                        tutti_redop_t op, tutti_comm_t comm,
                                        tutti_request_t *req_p,
                                        const char *fn)
{
    tt_call_t c = {.fn = fn, .comm = comm, .send = sendbuf, .recv = recvbuf};
    size_t    bytes = 0;

    tutti__error_clear();
    c.args.coll = TT_COLL_REDUCE_SCATTER;
    TT_TRY(tt_call_check(&c, recvcount, comm ? (size_t)comm->nranks : 1,
                         datatype, &bytes));
    TT_TRY(tt_call_check_op(&c, op));
    TT_TRY(tt_call_check_buf(&c, "sendbuf", sendbuf));
    TT_TRY(tt_call_check_buf(&c, "recvbuf", recvbuf));
    TT_TRY(tt_call_check_block(&c, recvbuf, "recvbuf", sendbuf, "sendbuf",
                               bytes));
    TT_TRY(tt_call_post(&c, req_p));
    return TUTTI_SUCCESS;
}

static tutti_result_t tt_broadcast(const void *sendbuf, void *recvbuf,
                                   size_t count, tutti_datatype_t datatype,
                                   int root, tutti_comm_t comm,
                                   tutti_request_t *req_p, const char *fn)
{
    tt_call_t c = {.fn = fn, .comm = comm, .send = sendbuf, .recv = recvbuf};
    size_t    bytes = 0;

    tutti__error_clear();
    c.args.coll = TT_COLL_BROADCAST;
    TT_TRY(tt_call_check(&c, count, 1, datatype, &bytes));
    TT_TRY(tt_call_check_rank(&c, "root", root));
    c.args.root = root;
    if (comm->rank == root) {
        TT_TRY(tt_call_check_buf(&c, "sendbuf (on the root)", sendbuf));
        TT_TRY(tt_call_check_inplace(&c, bytes));
    } else {
        c.send = NULL;
    }
    TT_TRY(tt_call_check_buf(&c, "recvbuf", recvbuf));
    TT_TRY(tt_call_post(&c, req_p));
    return TUTTI_SUCCESS;
}

static tutti_result_t tt_reduce(const void *sendbuf, void *recvbuf,
                                size_t count, tutti_datatype_t datatype,
                                tutti_redop_t op, int root, tutti_comm_t comm,
                                tutti_request_t *req_p, const char *fn)
{
    tt_call_t c = {.fn = fn, .comm = comm, .send = sendbuf, .recv = recvbuf};
    size_t    bytes = 0;

    tutti__error_clear();
    c.args.coll = TT_COLL_REDUCE;
    TT_TRY(tt_call_check(&c, count, 1, datatype, &bytes));
    TT_TRY(tt_call_check_op(&c, op));
    TT_TRY(tt_call_check_rank(&c, "root", root));
    c.args.root = root;
    TT_TRY(tt_call_check_buf(&c, "sendbuf", sendbuf));
    if (comm->rank == root) {
        TT_TRY(tt_call_check_buf(&c, "recvbuf (on the root)", recvbuf));
        TT_TRY(tt_call_check_inplace(&c, bytes));
    } else {
        c.recv = NULL;
    }
    TT_TRY(tt_call_post(&c, req_p));
    return TUTTI_SUCCESS;
}

static tutti_result_t tt_alltoall(const void *sendbuf, void *recvbuf,
                                  size_t count, tutti_datatype_t datatype,
                                  tutti_comm_t comm, tutti_request_t *req_p,
                                  const char *fn)
{
    tt_call_t c = {.fn = fn, .comm = comm, .send = sendbuf, .recv = recvbuf};
    size_t    bytes = 0;

    tutti__error_clear();
    c.args.coll = TT_COLL_ALLTOALL;
    TT_TRY(tt_call_check(&c, count, comm ? (size_t)comm->nranks : 1,
                         datatype, &bytes));
    TT_TRY(tt_call_check_buf(&c, "sendbuf", sendbuf));
    TT_TRY(tt_call_check_buf(&c, "recvbuf", recvbuf));
    TT_TRY(tt_call_check_inplace(&c, bytes));
    TT_TRY(tt_call_post(&c, req_p));
    return TUTTI_SUCCESS;
}

static tutti_result_t tt_barrier(tutti_comm_t comm, tutti_request_t *req_p,
                                 const char *fn)
{
    tt_call_t c = {.fn = fn, .comm = comm};
    size_t    bytes = 0;

    tutti__error_clear();
    c.args.coll = TT_COLL_BARRIER;
    TT_TRY(tt_call_check(&c, 1, 1, TUTTI_UINT8, &bytes));
    c.empty = comm->nranks == 1;
    TT_TRY(tt_call_post(&c, req_p));
    return TUTTI_SUCCESS;
}

static tutti_result_t tt_p2p(int is_send, const void *sendbuf, void *recvbuf,
                             size_t count, tutti_datatype_t datatype, int peer,
                             tutti_comm_t comm, tutti_request_t *req_p,
                             const char *fn)
{
    tt_call_t c = {.fn = fn, .comm = comm, .send = sendbuf, .recv = recvbuf,
                   .is_send = is_send};
    size_t    bytes = 0;

    tutti__error_clear();
    TT_TRY(tt_call_check(&c, count, 1, datatype, &bytes));
    TT_TRY(tt_call_check_rank(&c, "peer", peer));
    if (peer == comm->rank) {
        return tt_call_fail(tutti__error(
            TUTTI_ERR_INVALID_ARGUMENT,
            "%s: peer %d is this rank (send to self is not supported)", fn,
            peer));
    }
    TT_TRY(tt_call_check_buf(&c, "buf", is_send ? sendbuf : recvbuf));
    c.peer = peer;
    TT_TRY(tt_call_post(&c, req_p));
    return TUTTI_SUCCESS;
}

/* ---------------------------------------------------------------------- */
/* public entry points                                                    */
/* ---------------------------------------------------------------------- */

#define TT_NEED_REQ(_fn, _req_p)                                             \
    do {                                                                     \
        if ((_req_p) == NULL) {                                              \
            tutti__error_clear();                                            \
            return tt_call_fail(tutti__error(TUTTI_ERR_INVALID_ARGUMENT,    \
                                             "%s: req_p is NULL", (_fn)));   \
        }                                                                    \
    } while (0)

tutti_result_t tutti_allreduce(const void *sendbuf, void *recvbuf,
                               size_t count, tutti_datatype_t datatype,
                               tutti_redop_t op, tutti_comm_t comm)
{
    return tt_allreduce(sendbuf, recvbuf, count, datatype, op, comm, NULL,
                        "tutti_allreduce");
}

tutti_result_t tutti_iallreduce(const void *sendbuf, void *recvbuf,
                                size_t count, tutti_datatype_t datatype,
                                tutti_redop_t op, tutti_comm_t comm,
                                tutti_request_t *req_p)
{
    TT_NEED_REQ("tutti_iallreduce", req_p);
    return tt_allreduce(sendbuf, recvbuf, count, datatype, op, comm, req_p,
                        "tutti_iallreduce");
}

tutti_result_t tutti_allgather(const void *sendbuf, void *recvbuf,
                               size_t sendcount, tutti_datatype_t datatype,
                               tutti_comm_t comm)
{
    return tt_allgather(sendbuf, recvbuf, sendcount, datatype, comm, NULL,
                        "tutti_allgather");
}

tutti_result_t tutti_iallgather(const void *sendbuf, void *recvbuf,
                                size_t sendcount, tutti_datatype_t datatype,
                                tutti_comm_t comm, tutti_request_t *req_p)
{
    TT_NEED_REQ("tutti_iallgather", req_p);
    return tt_allgather(sendbuf, recvbuf, sendcount, datatype, comm, req_p,
                        "tutti_iallgather");
}

tutti_result_t tutti_reduce_scatter(const void *sendbuf, void *recvbuf,
                                    size_t recvcount,
                                    tutti_datatype_t datatype,
                                    tutti_redop_t op, tutti_comm_t comm)
{
    return tt_reduce_scatter(sendbuf, recvbuf, recvcount, datatype, op, comm,
                             NULL, "tutti_reduce_scatter");
}

tutti_result_t tutti_ireduce_scatter(const void *sendbuf, void *recvbuf,
                                     size_t recvcount,
                                     tutti_datatype_t datatype,
                                     tutti_redop_t op, tutti_comm_t comm,
                                     tutti_request_t *req_p)
{
    TT_NEED_REQ("tutti_ireduce_scatter", req_p);
    return tt_reduce_scatter(sendbuf, recvbuf, recvcount, datatype, op, comm,
                             req_p, "tutti_ireduce_scatter");
}

tutti_result_t tutti_broadcast(const void *sendbuf, void *recvbuf,
                               size_t count, tutti_datatype_t datatype,
                               int root, tutti_comm_t comm)
{
    return tt_broadcast(sendbuf, recvbuf, count, datatype, root, comm, NULL,
                        "tutti_broadcast");
}

tutti_result_t tutti_ibroadcast(const void *sendbuf, void *recvbuf,
                                size_t count, tutti_datatype_t datatype,
                                int root, tutti_comm_t comm,
                                tutti_request_t *req_p)
{
    TT_NEED_REQ("tutti_ibroadcast", req_p);
    return tt_broadcast(sendbuf, recvbuf, count, datatype, root, comm, req_p,
                        "tutti_ibroadcast");
}

tutti_result_t tutti_reduce(const void *sendbuf, void *recvbuf, size_t count,
                            tutti_datatype_t datatype, tutti_redop_t op,
                            int root, tutti_comm_t comm)
{
    return tt_reduce(sendbuf, recvbuf, count, datatype, op, root, comm, NULL,
                     "tutti_reduce");
}

tutti_result_t tutti_ireduce(const void *sendbuf, void *recvbuf, size_t count,
                             tutti_datatype_t datatype, tutti_redop_t op,
                             int root, tutti_comm_t comm,
                             tutti_request_t *req_p)
{
    TT_NEED_REQ("tutti_ireduce", req_p);
    return tt_reduce(sendbuf, recvbuf, count, datatype, op, root, comm, req_p,
                     "tutti_ireduce");
}

tutti_result_t tutti_alltoall(const void *sendbuf, void *recvbuf,
                              size_t count, tutti_datatype_t datatype,
                              tutti_comm_t comm)
{
    return tt_alltoall(sendbuf, recvbuf, count, datatype, comm, NULL,
                       "tutti_alltoall");
}

tutti_result_t tutti_ialltoall(const void *sendbuf, void *recvbuf,
                               size_t count, tutti_datatype_t datatype,
                               tutti_comm_t comm, tutti_request_t *req_p)
{
    TT_NEED_REQ("tutti_ialltoall", req_p);
    return tt_alltoall(sendbuf, recvbuf, count, datatype, comm, req_p,
                       "tutti_ialltoall");
}

tutti_result_t tutti_barrier(tutti_comm_t comm)
{
    return tt_barrier(comm, NULL, "tutti_barrier");
}

tutti_result_t tutti_ibarrier(tutti_comm_t comm, tutti_request_t *req_p)
{
    TT_NEED_REQ("tutti_ibarrier", req_p);
    return tt_barrier(comm, req_p, "tutti_ibarrier");
}

tutti_result_t tutti_send(const void *buf, size_t count,
                          tutti_datatype_t datatype, int peer,
                          tutti_comm_t comm)
{
    return tt_p2p(1, buf, NULL, count, datatype, peer, comm, NULL,
                  "tutti_send");
}

tutti_result_t tutti_isend(const void *buf, size_t count,
                           tutti_datatype_t datatype, int peer,
                           tutti_comm_t comm, tutti_request_t *req_p)
{
    TT_NEED_REQ("tutti_isend", req_p);
    return tt_p2p(1, buf, NULL, count, datatype, peer, comm, req_p,
                  "tutti_isend");
}

tutti_result_t tutti_recv(void *buf, size_t count, tutti_datatype_t datatype,
                          int peer, tutti_comm_t comm)
{
    return tt_p2p(0, NULL, buf, count, datatype, peer, comm, NULL,
                  "tutti_recv");
}

tutti_result_t tutti_irecv(void *buf, size_t count, tutti_datatype_t datatype,
                           int peer, tutti_comm_t comm,
                           tutti_request_t *req_p)
{
    TT_NEED_REQ("tutti_irecv", req_p);
    return tt_p2p(0, NULL, buf, count, datatype, peer, comm, req_p,
                  "tutti_irecv");
}

/* ---------------------------------------------------------------------- */
/* requests and groups                                                    */
/* ---------------------------------------------------------------------- */

static tutti_result_t tt_request_finish(tutti_request_t req)
{
    tutti_result_t res = req->status;

    if (req->x != NULL) {
        tutti__exec_free(req->x);
    }
    free(req);
    return res;
}

tutti_result_t tutti_test(tutti_request_t req, int *done_p)
{
    tutti__error_clear();
    if (req == NULL || done_p == NULL) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT, "tutti_test: %s is "
                            "NULL", req == NULL ? "req" : "done_p");
    }
    if (req->x != NULL) {
        req->status = tutti__exec_test(req->x);
    } else if (req->status == TUTTI_INPROGRESS) {
        return tutti__error(TUTTI_ERR_INVALID_USAGE,
                            "tutti_test: the request belongs to a group that "
                            "has not ended (call tutti_group_end first)");
    }
    *done_p = req->status != TUTTI_INPROGRESS;
    if (!*done_p) {
        return TUTTI_SUCCESS;
    }
    return tt_request_finish(req);
}

tutti_result_t tutti_wait(tutti_request_t req)
{
    tutti__error_clear();
    if (req == NULL) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "tutti_wait: req is NULL");
    }
    if (req->x != NULL) {
        req->status = tutti__exec_wait(req->x);
    } else if (req->status == TUTTI_INPROGRESS) {
        return tutti__error(TUTTI_ERR_INVALID_USAGE,
                            "tutti_wait: the request belongs to a group that "
                            "has not ended (call tutti_group_end first)");
    }
    return tt_request_finish(req);
}

tutti_result_t tutti_group_start(void)
{
    tutti__error_clear();
    if (tt_group.depth == 0) {
        tt_group.nops  = 0;
        tt_group.error = TUTTI_SUCCESS;
    }
    tt_group.depth++;
    return TUTTI_SUCCESS;
}

/* Issues the group's calls, one execution per communicator with its calls
 * in call order; returns the number of executions in *nx_p. */
static tutti_result_t tt_group_issue(tt_group_t *g, tt_exec_t **xs,
                                     int *nx_p)
{
    tutti_result_t res = TUTTI_SUCCESS;
    tt_op_t       *ops;
    int            i, j, n, nx = 0;

    ops = malloc((size_t)g->nops * sizeof(*ops) + 1);
    if (ops == NULL) {
        for (i = 0; i < g->nops; i++) {
            tutti__sched_fini(&g->ops[i].op.sched);
        }
        return tutti__error(TUTTI_ERR_NO_MEMORY, "group of %d calls",
                            g->nops);
    }
    for (i = 0; i < g->nops; i++) {
        tutti_comm_t comm = g->ops[i].comm;

        if (comm == NULL) {
            continue; /* issued with an earlier call's communicator */
        }
        for (n = 0, j = i; j < g->nops; j++) {
            if (g->ops[j].comm == comm) {
                ops[n++]       = g->ops[j].op;
                g->ops[j].comm = NULL;
            }
        }
        if (res == TUTTI_SUCCESS) {
            /* takes the schedules, also when it fails */
            res = tutti__exec_issue(comm, ops, n, &xs[nx]);
            nx += res == TUTTI_SUCCESS;
        } else {
            for (j = 0; j < n; j++) {
                tutti__sched_fini(&ops[j].sched);
            }
        }
    }
    free(ops);
    *nx_p = nx;
    return res;
}

tutti_result_t tutti_group_end(void)
{
    tt_group_t    *g = &tt_group;
    tt_exec_t    **xs;
    tutti_result_t res = TUTTI_SUCCESS;
    int            nx = 0, i, pending;

    tutti__error_clear();
    if (g->depth == 0) {
        return tutti__error(TUTTI_ERR_INVALID_USAGE,
                            "tutti_group_end without tutti_group_start");
    }
    if (--g->depth > 0) {
        return TUTTI_SUCCESS;
    }
    xs = calloc((size_t)g->nops + 1, sizeof(*xs));
    if (xs == NULL) {
        res = tutti__error(TUTTI_ERR_NO_MEMORY, "group of %d calls", g->nops);
    } else {
        res = tt_group_issue(g, xs, &nx);
    }
    /* wait for all, round robin: they may need each other's progress */
    do {
        pending = 0;
        for (i = 0; i < nx; i++) {
            tutti_result_t r = tutti__exec_test(xs[i]);
            if (r == TUTTI_INPROGRESS) {
                pending = 1;
            } else if (r < 0 && res == TUTTI_SUCCESS) {
                res = r;
            }
        }
        if (pending) {
            sched_yield();
        }
    } while (pending);
    for (i = 0; i < nx; i++) {
        tutti__exec_free(xs[i]);
    }
    free(xs);
    if (res == TUTTI_SUCCESS) {
        res = g->error;
    }
    for (i = 0; i < g->nops; i++) {
        if (g->ops[i].req != NULL) {
            g->ops[i].req->status = res;
        }
    }
    g->nops  = 0;
    g->error = TUTTI_SUCCESS;
    return res;
}
