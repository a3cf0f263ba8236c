/*
 * Schedule building helpers and the executor: the one progress engine that
 * runs every algorithm's schedule over the transports.
 *
 * The executor walks the steps of one rank's schedule. A step starts once
 * its dependencies are complete and it is at the head of its peer's queue
 * (sends to a peer, and receives from a peer, are posted strictly in step
 * order: that is what makes the FIFO matching of the transports line up).
 * Each step is cut into slices of SLICE_SIZE bytes; up to PIPELINE_DEPTH
 * slices of its receive and of its send are in flight at once. A received
 * slice is reduced straight out of the transport's memory when the
 * transport can deliver (TT_CAP_RECV_DELIVER: shm's FIFO slot), else from a
 * staging buffer; a forwarding step sends each slice as soon as it has
 * landed (and been divided, for AVG), so a ring streams.
 *
 * Waiting: the loop polls SPIN_COUNT times without yielding, then calls
 * sched_yield() between polls for YIELD_COUNT rounds, then sleeps SLEEP_US
 * between polls. With more ranks than cores on a host the spin phase is
 * skipped (comm->oversubscribed): a spinning rank would steal the core its
 * peer needs to make progress.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm.h"
#include "reduce.h"
#include "schedule.h"

/* ---------------------------------------------------------------------- */
/* building                                                               */
/* ---------------------------------------------------------------------- */

tutti_result_t tutti__sched_init(tt_sched_t *s, tutti_datatype_t datatype,
                                 tutti_redop_t op, int rank, int nranks)
{
    memset(s, 0, sizeof(*s));
    s->datatype = datatype;
    s->op       = op;
    s->rank     = rank;
    s->nranks   = nranks;
    return TUTTI_SUCCESS;
}

void tutti__sched_fini(tt_sched_t *s)
{
    free(s->steps);
    s->steps  = NULL;
    s->nsteps = s->cap = 0;
}

int tutti__sched_add(tt_sched_t *s, const tt_step_t *step)
{
    int i;

    if (s->nsteps == s->cap) {
        int        cap   = s->cap == 0 ? 16 : s->cap * 2;
        tt_step_t *steps = realloc(s->steps, (size_t)cap * sizeof(*steps));

        if (steps == NULL) {
            return tutti__error(TUTTI_ERR_NO_MEMORY,
                                "schedule of %d steps: out of memory", cap);
        }
        s->steps = steps;
        s->cap   = cap;
    }
    tt_assert(step->ndeps >= 0 && step->ndeps <= TT_STEP_MAX_DEPS);
    for (i = 0; i < step->ndeps; i++) {
        tt_assert(step->deps[i] >= 0 && step->deps[i] < s->nsteps);
    }
    s->steps[s->nsteps] = *step;
    return s->nsteps++;
}

static int tt_sched_add_deps(tt_sched_t *s, tt_step_t *step, int ndeps,
                             const int *deps)
{
    tt_assert(ndeps <= TT_STEP_MAX_DEPS);
    step->ndeps = ndeps;
    if (ndeps > 0) {
        memcpy(step->deps, deps, (size_t)ndeps * sizeof(*deps));
    }
    return tutti__sched_add(s, step);
}

int tutti__sched_send(tt_sched_t *s, int peer, tt_range_t src, size_t count,
                      int ndeps, const int *deps)
{
    tt_step_t step = {.flags     = TT_STEP_SEND,
                      .send_peer = peer,
                      .count     = count,
                      .src       = src};

    return tt_sched_add_deps(s, &step, ndeps, deps);
}

int tutti__sched_recv(tt_sched_t *s, int peer, tt_range_t dst, size_t count,
                      int ndeps, const int *deps)
{
    tt_step_t step = {.flags     = TT_STEP_RECV,
                      .recv_mode = TT_RECV_COPY,
                      .recv_peer = peer,
                      .count     = count,
                      .dst       = dst};

    return tt_sched_add_deps(s, &step, ndeps, deps);
}

int tutti__sched_copy(tt_sched_t *s, tt_range_t src, tt_range_t dst,
                      size_t count, int ndeps, const int *deps)
{
    tt_step_t step = {.flags = TT_STEP_COPY,
                      .count = count,
                      .src   = src,
                      .dst   = dst};

    return tt_sched_add_deps(s, &step, ndeps, deps);
}

/* ---------------------------------------------------------------------- */
/* executor state                                                         */
/* ---------------------------------------------------------------------- */

enum { TT_XS_WAITING = 0, TT_XS_DONE = 2 };

struct tt_xstep;

/* One posted slice: the transport's request plus where it belongs. */
typedef struct tt_xreq {
    tt_req_t         req;
    struct tt_xstep *xs;
    uint32_t         slice;
    uint8_t         *staging; /* reduce without delivery: lands here */
} tt_xreq_t;

typedef struct tt_xstep {
    const tt_step_t *step;
    struct tt_exec  *x;
    int              state;
    uint32_t         nslices;
    uint32_t         recv_posted, recv_done; /* recv_done: contiguous */
    uint64_t         recv_mask; /* bit i: slice recv_done + i has landed */
    uint32_t         send_posted, send_done;
    uint64_t         send_mask;
    int              copied;
    char            *dst;
    const char      *src;
    const char      *local;
    tt_xreq_t       *rreq, *sreq; /* depth each; slice s in slot s % depth */
    int              send_next, recv_next; /* next step, same peer */
} tt_xstep_t;

typedef struct tt_exec {
    tutti_comm_t      comm;
    const tt_sched_t *s;
    size_t            esize;
    size_t            slice_elems;
    uint32_t          depth;
    tt_reduce_fn      fn;
    int               ndone;
    int               lo; /* steps below lo are all done */
} tt_exec_t;

struct tt_exec_cache {
    tt_xstep_t *xs;
    int         xs_cap;
    tt_xreq_t  *reqs;
    size_t      reqs_cap;
    int        *peer_cur; /* 4 * nranks: send cur, recv cur, send/recv msgs */
    uint8_t    *staging;
    size_t      staging_cap;
    void       *scratch;
    size_t      scratch_cap;
};

static void *tt_grow(void *p, size_t *cap_p, size_t need, size_t elem)
{
    void *q;

    if (need <= *cap_p) {
        return p;
    }
    q = realloc(p, need * elem);
    if (q != NULL) {
        *cap_p = need;
    }
    return q;
}

void tutti__exec_cache_free(struct tt_exec_cache *c)
{
    if (c == NULL) {
        return;
    }
    free(c->xs);
    free(c->reqs);
    free(c->peer_cur);
    free(c->staging);
    free(c->scratch);
    free(c);
}

/* Grows the comm's cached executor arrays for a schedule. */
static tutti_result_t tt_exec_reserve(tutti_comm_t comm, const tt_sched_t *s,
                                      size_t nreqs, size_t staging,
                                      size_t scratch)
{
    struct tt_exec_cache *c = comm->exec;
    size_t                cap;
    void                 *p;

    if (c == NULL) {
        c = calloc(1, sizeof(*c));
        if (c == NULL) {
            goto nomem;
        }
        c->peer_cur = calloc((size_t)comm->nranks * 4, sizeof(int));
        if (c->peer_cur == NULL) {
            free(c);
            goto nomem;
        }
        comm->exec = c;
    }
    cap = (size_t)c->xs_cap;
    p   = tt_grow(c->xs, &cap, (size_t)s->nsteps, sizeof(tt_xstep_t));
    if (p == NULL) {
        goto nomem;
    }
    c->xs     = p;
    c->xs_cap = (int)cap;
    p = tt_grow(c->reqs, &c->reqs_cap, nreqs, sizeof(tt_xreq_t));
    if (p == NULL) {
        goto nomem;
    }
    c->reqs = p;
    p = tt_grow(c->staging, &c->staging_cap, staging, 1);
    if (p == NULL && staging > 0) {
        goto nomem;
    }
    c->staging = p;
    p = tt_grow(c->scratch, &c->scratch_cap, scratch, 1);
    if (p == NULL && scratch > 0) {
        goto nomem;
    }
    c->scratch = p;
    return TUTTI_SUCCESS;
nomem:
    return tutti__error(TUTTI_ERR_NO_MEMORY,
                        "executor state for %d steps: out of memory",
                        s->nsteps);
}

static char *tt_exec_ptr(const tt_bufs_t *bufs, struct tt_exec_cache *c,
                         tt_range_t r, size_t esize)
{
    char *base;

    switch (r.buf) {
    case TT_BUF_SEND:
        base = (char *)(uintptr_t)bufs->send;
        break;
    case TT_BUF_RECV:
        base = bufs->recv;
        break;
    case TT_BUF_SCRATCH:
        base = c->scratch;
        break;
    default:
        return NULL;
    }
    return base == NULL ? NULL : base + r.off * esize;
}

static inline size_t tt_slice_elems(const tt_exec_t *x, const tt_xstep_t *xs,
                                    uint32_t slice)
{
    size_t off = (size_t)slice * x->slice_elems;

    return TT_MIN(x->slice_elems, xs->step->count - off);
}

static inline uint64_t tt_tag(const tt_exec_t *x, uint32_t msg)
{
    return ((uint64_t)(x->comm->seq & 0xffffffu) << 40) |
           ((uint64_t)x->s->tag_kind << 32) | msg;
}

/* ---------------------------------------------------------------------- */
/* data movement                                                          */
/* ---------------------------------------------------------------------- */

/* Transport delivery of a piece of a reducing receive: reduce straight out
 * of the transport's memory into dst. */
static void tt_exec_deliver_reduce(tt_req_t *req, size_t offset,
                                   const void *data, size_t len)
{
    tt_xreq_t  *xr = tt_container_of(req, tt_xreq_t, req);
    tt_xstep_t *xs = xr->xs;
    tt_exec_t  *x  = xs->x;
    size_t      at = (size_t)xr->slice * x->slice_elems * x->esize + offset;

    tt_assert(offset % x->esize == 0 && len % x->esize == 0);
    x->fn(xs->dst + at, xs->local + at, data, len / x->esize);
}

static void tt_exec_finalize(tt_exec_t *x, char *dst, size_t elems)
{
    tutti__reduce_div(dst, dst, elems, x->s->datatype, x->s->nranks);
}

static tutti_result_t tt_exec_post_recv(tt_exec_t *x, tt_xstep_t *xs,
                                        int *msgs)
{
    const tt_step_t *st   = xs->step;
    tt_peer_t       *peer = &x->comm->peers[st->recv_peer];
    uint32_t         sl   = xs->recv_posted;
    tt_xreq_t       *xr   = &xs->rreq[sl % x->depth];
    size_t           off  = (size_t)sl * x->slice_elems * x->esize;
    size_t           len  = tt_slice_elems(x, xs, sl) * x->esize;
    void            *buf  = xs->dst + off;
    tutti_result_t   res;

    xr->xs          = xs;
    xr->slice       = sl;
    xr->req.deliver = NULL;
    xr->req.status  = TUTTI_INPROGRESS;
    if (st->recv_mode == TT_RECV_REDUCE) {
        if (peer->ops->caps & TT_CAP_RECV_DELIVER) {
            xr->req.deliver = tt_exec_deliver_reduce;
            buf             = NULL;
        } else {
            buf = xr->staging;
        }
    }
    res = peer->ops->irecv(peer->ep, buf, len, tt_tag(x, (uint32_t)*msgs),
                           &xr->req);
    if (res < 0) {
        return res;
    }
    (*msgs)++;
    xs->recv_posted++;
    return TUTTI_SUCCESS;
}

static tutti_result_t tt_exec_post_send(tt_exec_t *x, tt_xstep_t *xs,
                                        int *msgs)
{
    const tt_step_t *st   = xs->step;
    tt_peer_t       *peer = &x->comm->peers[st->send_peer];
    uint32_t         sl   = xs->send_posted;
    tt_xreq_t       *xr   = &xs->sreq[sl % x->depth];
    size_t           off  = (size_t)sl * x->slice_elems * x->esize;
    const char      *src  = (st->flags & TT_STEP_FORWARD) ? xs->dst : xs->src;
    tutti_result_t   res;

    xr->xs          = xs;
    xr->slice       = sl;
    xr->req.deliver = NULL;
    xr->req.status  = TUTTI_INPROGRESS;
    res = peer->ops->isend(peer->ep, src + off,
                           tt_slice_elems(x, xs, sl) * x->esize,
                           tt_tag(x, (uint32_t)*msgs), &xr->req);
    if (res < 0) {
        return res;
    }
    (*msgs)++;
    xs->send_posted++;
    return TUTTI_SUCCESS;
}

/* Reaps completed slices of one direction; returns how many, or an error
 * through *res_p. */
static int tt_exec_reap(tt_exec_t *x, tt_xstep_t *xs, int is_recv,
                        tutti_result_t *res_p)
{
    uint32_t  *done   = is_recv ? &xs->recv_done : &xs->send_done;
    uint32_t   posted = is_recv ? xs->recv_posted : xs->send_posted;
    uint64_t  *mask   = is_recv ? &xs->recv_mask : &xs->send_mask;
    tt_xreq_t *reqs   = is_recv ? xs->rreq : xs->sreq;
    uint32_t   sl;
    int        n = 0;

    for (sl = *done; sl < posted; sl++) {
        uint64_t   bit = 1ull << (sl - *done);
        tt_xreq_t *xr  = &reqs[sl % x->depth];
        int        status;

        if (*mask & bit) {
            continue;
        }
        status = xr->req.status;
        if (status == TUTTI_INPROGRESS) {
            continue;
        }
        if (status < 0) {
            *res_p = (tutti_result_t)status;
            return n;
        }
        if (is_recv) {
            size_t elems = tt_slice_elems(x, xs, sl);
            char  *dst   = xs->dst + (size_t)sl * x->slice_elems * x->esize;

            if (xr->req.deliver == NULL &&
                xs->step->recv_mode == TT_RECV_REDUCE) {
                x->fn(dst,
                      xs->local + (size_t)sl * x->slice_elems * x->esize,
                      xr->staging, elems);
            }
            if (xs->step->flags & TT_STEP_FINALIZE) {
                tt_exec_finalize(x, dst, elems);
            }
        }
        *mask |= bit;
        n++;
    }
    while (*mask & 1) {
        *mask >>= 1;
        (*done)++;
    }
    return n;
}

static int tt_exec_deps_done(const tt_exec_t *x, const tt_xstep_t *xsv,
                             const tt_step_t *st)
{
    int i;

    (void)x;
    for (i = 0; i < st->ndeps; i++) {
        if (xsv[st->deps[i]].state != TT_XS_DONE) {
            return 0;
        }
    }
    return 1;
}

/* ---------------------------------------------------------------------- */
/* the loop                                                               */
/* ---------------------------------------------------------------------- */

static tutti_result_t tt_exec_prepare(tt_exec_t *x, const tt_bufs_t *bufs)
{
    tutti_comm_t          comm = x->comm;
    const tt_sched_t     *s    = x->s;
    struct tt_exec_cache *c;
    size_t                slice_bytes = x->slice_elems * x->esize;
    size_t                nreqs = (size_t)s->nsteps * 2 * x->depth;
    size_t                staging = 0;
    int                   i, p, *send_last, *recv_last;
    int                   need_staging = 0;

    for (i = 0; i < s->nsteps; i++) {
        const tt_step_t *st = &s->steps[i];
        if ((st->flags & TT_STEP_RECV) && st->recv_mode == TT_RECV_REDUCE &&
            !(comm->peers[st->recv_peer].ops->caps & TT_CAP_RECV_DELIVER)) {
            need_staging = 1;
        }
    }
    if (need_staging) {
        staging = (size_t)s->nsteps * x->depth * slice_bytes;
    }
    TT_CHECK(tt_exec_reserve(comm, s, nreqs, staging,
                             s->scratch_count * x->esize));
    c = comm->exec;
    /* peer_cur: [0,n) send cursor, [n,2n) recv cursor, [2n,4n) scratch for
     * building the per-peer chains (last step seen per peer) */
    send_last = c->peer_cur + 2 * comm->nranks;
    recv_last = c->peer_cur + 3 * comm->nranks;
    for (p = 0; p < comm->nranks; p++) {
        c->peer_cur[p] = c->peer_cur[comm->nranks + p] = -1;
        send_last[p] = recv_last[p] = -1;
    }
    for (i = 0; i < s->nsteps; i++) {
        const tt_step_t *st = &s->steps[i];
        tt_xstep_t      *xs = &c->xs[i];

        memset(xs, 0, sizeof(*xs));
        xs->step      = st;
        xs->x         = x;
        xs->send_next = xs->recv_next = -1;
        xs->nslices   = (uint32_t)TT_DIV_UP(st->count, x->slice_elems);
        xs->rreq      = c->reqs + (size_t)i * 2 * x->depth;
        xs->sreq      = xs->rreq + x->depth;
        if (need_staging) {
            uint32_t k;
            for (k = 0; k < x->depth; k++) {
                xs->rreq[k].staging =
                    c->staging + ((size_t)i * x->depth + k) * slice_bytes;
            }
        }
        xs->dst   = tt_exec_ptr(bufs, c, st->dst, x->esize);
        xs->src   = tt_exec_ptr(bufs, c, st->src, x->esize);
        xs->local = tt_exec_ptr(bufs, c, st->local, x->esize);
        /* empty steps post nothing, so they take no place in the per-peer
         * order (they complete as soon as their dependencies have) */
        if ((st->flags & TT_STEP_SEND) && st->count > 0) {
            p = st->send_peer;
            tt_assert(p >= 0 && p < comm->nranks && p != comm->rank);
            if (send_last[p] < 0) {
                c->peer_cur[p] = i;
            } else {
                c->xs[send_last[p]].send_next = i;
            }
            send_last[p] = i;
        }
        if ((st->flags & TT_STEP_RECV) && st->count > 0) {
            p = st->recv_peer;
            tt_assert(p >= 0 && p < comm->nranks && p != comm->rank);
            if (recv_last[p] < 0) {
                c->peer_cur[comm->nranks + p] = i;
            } else {
                c->xs[recv_last[p]].recv_next = i;
            }
            recv_last[p] = i;
        }
    }
    /* reuse the scratch halves as per-peer message counters */
    for (p = 0; p < comm->nranks; p++) {
        send_last[p] = recv_last[p] = 0;
    }
    return TUTTI_SUCCESS;
}

/*
 * Advances one step as far as it can go without waiting. Returns the number
 * of events (posts, completions) or an error through *res_p.
 */
static int tt_exec_step(tt_exec_t *x, int i, tutti_result_t *res_p)
{
    tutti_comm_t          comm = x->comm;
    struct tt_exec_cache *c    = comm->exec;
    tt_xstep_t           *xs   = &c->xs[i];
    const tt_step_t      *st   = xs->step;
    int                   n    = comm->nranks;
    int                   ev   = 0;
    int                  *cur;

    if (xs->state == TT_XS_DONE || !tt_exec_deps_done(x, c->xs, st)) {
        return 0;
    }
    if ((st->flags & TT_STEP_COPY) && !xs->copied) {
        if (st->count > 0 && xs->dst != xs->src) {
            memcpy(xs->dst, xs->src, st->count * x->esize);
        }
        if (st->flags & TT_STEP_FINALIZE) {
            tt_exec_finalize(x, xs->dst, st->count);
        }
        xs->copied = 1;
        ev++;
    }
    if (st->flags & TT_STEP_RECV) {
        cur = &c->peer_cur[n + st->recv_peer];
        ev += tt_exec_reap(x, xs, 1, res_p);
        if (*res_p < 0) {
            return ev;
        }
        while (*cur == i && xs->recv_posted < xs->nslices &&
               xs->recv_posted - xs->recv_done < x->depth) {
            *res_p = tt_exec_post_recv(x, xs,
                                       &c->peer_cur[3 * n + st->recv_peer]);
            if (*res_p < 0) {
                return ev;
            }
            ev++;
        }
        if (*cur == i && xs->recv_posted == xs->nslices) {
            *cur = xs->recv_next;
        }
    }
    if (st->flags & TT_STEP_SEND) {
        uint32_t ready = (st->flags & TT_STEP_FORWARD) ? xs->recv_done
                                                       : xs->nslices;
        cur = &c->peer_cur[st->send_peer];
        ev += tt_exec_reap(x, xs, 0, res_p);
        if (*res_p < 0) {
            return ev;
        }
        while (*cur == i && xs->send_posted < ready &&
               xs->send_posted - xs->send_done < x->depth) {
            *res_p = tt_exec_post_send(x, xs,
                                       &c->peer_cur[2 * n + st->send_peer]);
            if (*res_p < 0) {
                return ev;
            }
            ev++;
        }
        if (*cur == i && xs->send_posted == xs->nslices) {
            *cur = xs->send_next;
        }
    }
    if ((!(st->flags & TT_STEP_COPY) || xs->copied) &&
        (!(st->flags & TT_STEP_RECV) || xs->recv_done == xs->nslices) &&
        (!(st->flags & TT_STEP_SEND) || xs->send_done == xs->nslices)) {
        xs->state = TT_XS_DONE;
        x->ndone++;
        ev++;
    }
    return ev;
}

/* Failure, abort and timeout checks, in that order of precedence. */
static tutti_result_t tt_exec_check(tt_exec_t *x, uint64_t deadline)
{
    tutti_comm_t comm = x->comm;

    if (atomic_load_explicit(&comm->aborted, memory_order_relaxed)) {
        return tutti__error_quiet(TUTTI_ERR_ABORTED,
                                  "%s: communicator aborted", x->s->algo);
    }
    if (atomic_load_explicit(&comm->async_error, memory_order_acquire)) {
        return tutti__error(TUTTI_ERR_REMOTE, "%s on rank %d: %s",
                            x->s->algo, comm->rank, comm->fail_why);
    }
    if (deadline != 0 && tutti__now_ns() > deadline) {
        return tutti__error(TUTTI_ERR_TIMEOUT,
                            "%s on rank %d: not complete after %d ms (%d of "
                            "%d steps done; a peer is slow, stuck or did not "
                            "call the same collective)", x->s->algo,
                            comm->rank, comm->cfg.timeout_ms, x->ndone,
                            x->s->nsteps);
    }
    return TUTTI_SUCCESS;
}

tutti_result_t tutti__sched_run(tutti_comm_t comm, const tt_sched_t *s,
                                const tt_bufs_t *bufs)
{
    tt_exec_t      x;
    tutti_result_t res   = TUTTI_SUCCESS;
    uint64_t       idle  = 0, iter = 0, deadline = 0;
    uint64_t       spin  = comm->oversubscribed ? 0 : (uint64_t)comm->cfg.spin_count;
    uint64_t       yield = spin + (uint64_t)comm->cfg.yield_count;
    int            t, i;

    memset(&x, 0, sizeof(x));
    x.comm  = comm;
    x.s     = s;
    x.esize = tutti_datatype_size(s->datatype);
    x.depth = (uint32_t)comm->cfg.pipeline_depth;
    x.fn    = tutti__reduce_fn(s->datatype, s->op);
    x.slice_elems = TT_MAX(comm->cfg.slice_size / x.esize, 1);
    tt_assert(x.esize > 0 && x.fn != NULL && x.depth <= 64);
    TT_CHECK(tt_exec_prepare(&x, bufs));
    if (comm->cfg.timeout_ms > 0) {
        deadline = tutti__now_ns() + (uint64_t)comm->cfg.timeout_ms * 1000000;
    }

    while (x.ndone < s->nsteps) {
        int ev = 0;

        for (t = 0; t < comm->ntps; t++) {
            if (comm->tp_used[t]) {
                ev += (int)comm->tp_ops[t]->progress(comm->tps[t]);
            }
        }
        for (i = x.lo; i < s->nsteps; i++) {
            ev += tt_exec_step(&x, i, &res);
            if (res < 0) {
                goto fail;
            }
        }
        while (x.lo < s->nsteps && comm->exec->xs[x.lo].state == TT_XS_DONE) {
            x.lo++;
        }
        if (ev > 0) {
            idle = 0;
            /* a long busy collective still honours abort and timeout */
            if ((++iter & 1023) == 0) {
                res = tt_exec_check(&x, deadline);
                if (res < 0) {
                    goto fail;
                }
            }
            continue;
        }
        idle++;
        if ((idle & 255) == 0 || idle > spin) {
            res = tt_exec_check(&x, deadline);
            if (res < 0) {
                goto fail;
            }
        }
        if (idle > yield) {
            struct timespec ts = {0, (long)comm->cfg.sleep_us * 1000};
            nanosleep(&ts, NULL);
        } else if (idle > spin) {
            sched_yield();
        }
    }
    return TUTTI_SUCCESS;

fail:
    /* posted requests may still reference the user's buffers: the
     * communicator cannot be used again, only destroyed */
    comm->broken = res;
    return res;
}
