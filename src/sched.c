/*
 * Schedule building helpers and the executor: the one progress engine that
 * runs every algorithm's schedule over the transports.
 *
 * The executor walks the steps of one rank's schedule. A step starts once
 * its dependencies are complete and it is at the head of its peer's queue
 * on its schedule's channel (sends to a peer, and receives from a peer, are
 * posted strictly in step order per channel: that is what makes the FIFO
 * matching of the transports line up). Collectives and point-to-point calls
 * have a channel each (transport.h), with its own queues, message numbers
 * and tag bit 63, so "isend; allreduce; irecv" works on every rank: the
 * send does not take the place of the allreduce's first message.
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
#include <poll.h>
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

struct tt_xstep;

/* What the steps of one operation share. */
typedef struct tt_xop {
    const tt_sched_t *s;
    uint64_t          tag_hi;  /* channel bit and kind, OR-ed into tags */
    size_t            esize;
    size_t            slice_elems;
    tt_reduce_fn      fn;
    char             *scratch;
} tt_xop_t;

/* One posted slice: the transport's request plus where it belongs. */
typedef struct tt_xreq {
    tt_req_t         req;
    struct tt_xstep *xs;
    uint32_t         slice;
    uint8_t         *staging; /* reduce without delivery: lands here */
} tt_xreq_t;

typedef struct tt_xstep {
    const tt_step_t *step;
    const tt_xop_t  *op;
    tt_exec_t       *x;
    int              done;
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
    struct tt_xstep *send_next, *recv_next; /* per-peer order */
} tt_xstep_t;

struct tt_exec {
    tutti_comm_t    comm;
    int             nops;
    tt_op_t        *ops;
    tt_xop_t       *xops;
    int             nsteps;
    tt_xstep_t     *xs;
    tt_xreq_t      *reqs;
    uint8_t        *mem;   /* scratch and staging, one allocation */
    size_t          mem_bytes;
    uint32_t        depth;
    int             ndone;
    int             lo;    /* steps below lo are all done */
    uint64_t        since_ns; /* last progress seen by a test */
    tutti_result_t  status;
    int             orphan; /* freed by its owner before it completed */
    struct tt_exec *next;  /* comm->execs list */
};

static inline size_t tt_slice_elems(const tt_xstep_t *xs, uint32_t slice)
{
    size_t off = (size_t)slice * xs->op->slice_elems;

    return TT_MIN(xs->op->slice_elems, xs->step->count - off);
}

static inline size_t tt_slice_off(const tt_xstep_t *xs, uint32_t slice)
{
    return (size_t)slice * xs->op->slice_elems * xs->op->esize;
}

/* Tags: the channel (bit 63), the collective's kind (bits 32-39) and the
 * number of the message in this direction and channel between the two
 * ranks, which both sides count alike. */
static inline uint64_t tt_tag(const tt_xstep_t *xs, uint32_t msg)
{
    return xs->op->tag_hi | msg;
}

/* The peer's posting order on the channel of xs's schedule. */
static inline tt_peer_chan_t *tt_peer_chan(tt_peer_t *peer,
                                           const tt_xstep_t *xs)
{
    return &peer->chan[xs->op->s->channel];
}

/* ---------------------------------------------------------------------- */
/* data movement                                                          */
/* ---------------------------------------------------------------------- */

/* Transport delivery of a piece of a reducing receive: reduce straight out
 * of the transport's memory into dst. */
static void tt_exec_deliver_reduce(tt_req_t *req, size_t offset,
                                   const void *data, size_t len)
{
    tt_xreq_t      *xr = tt_container_of(req, tt_xreq_t, req);
    tt_xstep_t     *xs = xr->xs;
    const tt_xop_t *op = xs->op;
    size_t          at = tt_slice_off(xs, xr->slice) + offset;

    tt_assert(offset % op->esize == 0 && len % op->esize == 0);
    op->fn(xs->dst + at, xs->local + at, data, len / op->esize);
}

static void tt_exec_finalize(const tt_xstep_t *xs, char *dst, size_t elems)
{
    tutti__reduce_div(dst, dst, elems, xs->op->s->datatype,
                      xs->op->s->nranks);
}

static tutti_result_t tt_exec_post_recv(tt_xstep_t *xs, tt_peer_t *peer,
                                        tt_peer_chan_t *ch)
{
    const tt_step_t *st  = xs->step;
    uint32_t         sl  = xs->recv_posted;
    tt_xreq_t       *xr  = &xs->rreq[sl % xs->x->depth];
    void            *buf = xs->dst + tt_slice_off(xs, sl);
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
    res = peer->ops->irecv(peer->ep, buf, tt_slice_elems(xs, sl) * xs->op->esize,
                           tt_tag(xs, ch->recv_msgs), &xr->req);
    if (res < 0) {
        return res;
    }
    ch->recv_msgs++;
    xs->recv_posted++;
    return TUTTI_SUCCESS;
}

static tutti_result_t tt_exec_post_send(tt_xstep_t *xs, tt_peer_t *peer,
                                        tt_peer_chan_t *ch)
{
    const tt_step_t *st  = xs->step;
    uint32_t         sl  = xs->send_posted;
    tt_xreq_t       *xr  = &xs->sreq[sl % xs->x->depth];
    const char      *src = (st->flags & TT_STEP_FORWARD) ? xs->dst : xs->src;
    tutti_result_t   res;

    xr->xs          = xs;
    xr->slice       = sl;
    xr->req.deliver = NULL;
    xr->req.status  = TUTTI_INPROGRESS;
    res = peer->ops->isend(peer->ep, src + tt_slice_off(xs, sl),
                           tt_slice_elems(xs, sl) * xs->op->esize,
                           tt_tag(xs, ch->send_msgs), &xr->req);
    if (res < 0) {
        return res;
    }
    ch->send_msgs++;
    xs->send_posted++;
    return TUTTI_SUCCESS;
}

/* Reaps completed slices of one direction; returns how many, or an error
 * through *res_p. */
static int tt_exec_reap(tt_xstep_t *xs, int is_recv, tutti_result_t *res_p)
{
    uint32_t  *done   = is_recv ? &xs->recv_done : &xs->send_done;
    uint32_t   posted = is_recv ? xs->recv_posted : xs->send_posted;
    uint64_t  *mask   = is_recv ? &xs->recv_mask : &xs->send_mask;
    tt_xreq_t *reqs   = is_recv ? xs->rreq : xs->sreq;
    uint32_t   depth  = xs->x->depth;
    uint32_t   sl;
    int        n = 0;

    for (sl = *done; sl < posted; sl++) {
        uint64_t   bit = 1ull << (sl - *done);
        tt_xreq_t *xr  = &reqs[sl % depth];
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
            size_t elems = tt_slice_elems(xs, sl);
            char  *dst   = xs->dst + tt_slice_off(xs, sl);

            if (xr->req.deliver == NULL &&
                xs->step->recv_mode == TT_RECV_REDUCE) {
                xs->op->fn(dst, xs->local + tt_slice_off(xs, sl),
                           xr->staging, elems);
            }
            if (xs->step->flags & TT_STEP_FINALIZE) {
                tt_exec_finalize(xs, dst, elems);
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

/* ---------------------------------------------------------------------- */
/* issue                                                                  */
/* ---------------------------------------------------------------------- */

static char *tt_exec_ptr(const tt_bufs_t *bufs, const tt_xop_t *op,
                         tt_range_t r)
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
        base = op->scratch;
        break;
    default:
        return NULL;
    }
    return base == NULL ? NULL : base + r.off * op->esize;
}

/* Appends a step to a peer's send or receive order on one channel. */
static void tt_exec_link(tt_xstep_t **head, tt_xstep_t **tail,
                         tt_xstep_t *xs, int is_recv)
{
    if (*tail == NULL) {
        *head = xs;
    } else if (is_recv) {
        (*tail)->recv_next = xs;
    } else {
        (*tail)->send_next = xs;
    }
    *tail = xs;
}

static void tt_exec_release(tt_exec_t *x)
{
    int k;

    for (k = 0; k < x->nops; k++) {
        tutti__sched_fini(&x->ops[k].sched);
    }
    free(x->ops);
    free(x->xops);
    free(x->xs);
    free(x->reqs);
    free(x->mem);
    free(x);
}

/* Staging bytes per receive slot of a step: a reducing receive whose
 * transport does not deliver lands in staging first, a slice of it or the
 * whole step if smaller; 0 for every other step. */
static size_t tt_exec_staging(tutti_comm_t comm, const tt_sched_t *s,
                              const tt_step_t *st, size_t slice_bytes)
{
    size_t bytes = st->count * tutti_datatype_size(s->datatype);

    if (!(st->flags & TT_STEP_RECV) || st->recv_mode != TT_RECV_REDUCE ||
        (comm->peers[st->recv_peer].ops->caps & TT_CAP_RECV_DELIVER)) {
        return 0;
    }
    return TT_ALIGN_UP(TT_MIN(bytes, slice_bytes), 64);
}

/* Sizes and allocates an execution's arrays and scratch/staging memory. */
static tutti_result_t tt_exec_alloc(tt_exec_t *x, size_t slice_bytes)
{
    tutti_comm_t comm = x->comm;
    size_t       mem = 0, staging = 0;
    int          k, i, j = 0;

    for (k = 0; k < x->nops; k++) {
        const tt_sched_t *s = &x->ops[k].sched;

        x->nsteps += s->nsteps;
        mem += TT_ALIGN_UP(s->scratch_count *
                           tutti_datatype_size(s->datatype), 64);
        for (i = 0; i < s->nsteps; i++) {
            staging += x->depth *
                       tt_exec_staging(comm, s, &s->steps[i], slice_bytes);
        }
    }
    tt_assert(x->nops > 0);
    x->xops = calloc((size_t)(unsigned)x->nops, sizeof(*x->xops));
    x->xs   = calloc((size_t)x->nsteps + 1, sizeof(*x->xs));
    x->reqs = calloc((size_t)x->nsteps * 2 * x->depth + 1, sizeof(*x->reqs));
    x->mem_bytes = mem + staging;
    x->mem  = x->mem_bytes > 0 ? malloc(x->mem_bytes) : NULL;
    if (x->xops == NULL || x->xs == NULL || x->reqs == NULL ||
        (mem + staging > 0 && x->mem == NULL)) {
        return tutti__error(TUTTI_ERR_NO_MEMORY,
                            "executor state for %d steps and %zu bytes of "
                            "scratch", x->nsteps, mem + staging);
    }
    /* staging buffers, one per receive slot of each delivering-less step */
    staging = mem;
    for (k = 0; k < x->nops; k++) {
        const tt_sched_t *s = &x->ops[k].sched;
        for (i = 0; i < s->nsteps; i++, j++) {
            size_t   slot = tt_exec_staging(comm, s, &s->steps[i],
                                            slice_bytes);
            uint32_t d;

            x->xs[j].rreq = x->reqs + (size_t)j * 2 * x->depth;
            x->xs[j].sreq = x->xs[j].rreq + x->depth;
            for (d = 0; slot > 0 && d < x->depth; d++) {
                x->xs[j].rreq[d].staging = x->mem + staging;
                staging += slot;
            }
        }
    }
    return TUTTI_SUCCESS;
}

static void tt_live_add(tutti_comm_t comm);

/*
 * Starts an execution whose steps are set up (step, op, nslices and request
 * slots): clears their progress, points them at the operations' buffers,
 * links them into the per-peer orders and the communicator's list.
 */
static void tt_exec_start(tt_exec_t *x)
{
    tutti_comm_t comm = x->comm;
    int          j;

    x->ndone  = 0;
    x->lo     = 0;
    x->status = TUTTI_INPROGRESS;
    x->orphan = 0;
    x->next   = NULL;
    for (j = 0; j < x->nsteps; j++) {
        tt_xstep_t       *xs = &x->xs[j];
        const tt_step_t  *st = xs->step;
        const tt_xop_t   *op = xs->op;
        const tt_bufs_t  *bufs = &x->ops[op - x->xops].bufs;
        tt_peer_chan_t   *ch;

        xs->done        = 0;
        xs->copied      = 0;
        xs->recv_posted = xs->recv_done = 0;
        xs->send_posted = xs->send_done = 0;
        xs->recv_mask   = xs->send_mask = 0;
        xs->send_next   = xs->recv_next = NULL;
        xs->dst         = tt_exec_ptr(bufs, op, st->dst);
        xs->src         = tt_exec_ptr(bufs, op, st->src);
        xs->local       = tt_exec_ptr(bufs, op, st->local);
        /* empty steps post nothing, so they take no place in the per-peer
         * order (they complete once their dependencies have); the others
         * join their peer's order on the schedule's channel */
        if ((st->flags & TT_STEP_SEND) && st->count > 0) {
            tt_assert(st->send_peer >= 0 && st->send_peer < comm->nranks &&
                      st->send_peer != comm->rank);
            ch = &comm->peers[st->send_peer].chan[op->s->channel];
            tt_exec_link(&ch->send_head, &ch->send_tail, xs, 0);
        }
        if ((st->flags & TT_STEP_RECV) && st->count > 0) {
            tt_assert(st->recv_peer >= 0 && st->recv_peer < comm->nranks &&
                      st->recv_peer != comm->rank);
            ch = &comm->peers[st->recv_peer].chan[op->s->channel];
            tt_exec_link(&ch->recv_head, &ch->recv_tail, xs, 1);
        }
    }
    x->since_ns = tutti__now_ns();
    if (comm->execs_tail == NULL) {
        comm->execs_head = x;
    } else {
        comm->execs_tail->next = x;
    }
    comm->execs_tail = x;
    tt_live_add(comm);
}

tutti_result_t tutti__exec_issue(tutti_comm_t comm, tt_op_t *ops, int nops,
                                 tt_exec_t **x_p)
{
    size_t         slice_bytes = TT_ALIGN_UP(comm->slice_size, 64);
    size_t         scratch = 0;
    tt_exec_t     *x;
    tutti_result_t res;
    int            k, i, j = 0;

    x = calloc(1, sizeof(*x));
    if (x == NULL || (x->ops = calloc((size_t)nops, sizeof(*ops))) == NULL) {
        free(x);
        for (k = 0; k < nops; k++) {
            tutti__sched_fini(&ops[k].sched);
        }
        return tutti__error(TUTTI_ERR_NO_MEMORY, "execution of %d ops",
                            nops);
    }
    /* the execution owns the schedules from here on */
    memcpy(x->ops, ops, (size_t)nops * sizeof(*ops));
    for (k = 0; k < nops; k++) {
        memset(&ops[k].sched, 0, sizeof(ops[k].sched));
    }
    x->comm   = comm;
    x->nops   = nops;
    x->depth  = (uint32_t)comm->cfg.pipeline_depth;
    x->status = TUTTI_INPROGRESS;
    tt_assert(x->depth >= 1 && x->depth <= 64);
    TT_CHECK_GOTO(tt_exec_alloc(x, slice_bytes), res, err_release);

    for (k = 0; k < nops; k++) {
        const tt_sched_t *s  = &x->ops[k].sched;
        tt_xop_t         *op = &x->xops[k];

        tt_assert(s->channel < TT_NUM_CHANNELS);
        op->s           = s;
        op->tag_hi      = ((uint64_t)s->channel << TT_TAG_CHANNEL_BIT) |
                          ((uint64_t)s->tag_kind << 32);
        op->esize       = tutti_datatype_size(s->datatype);
        op->fn          = tutti__reduce_fn(s->datatype, s->op);
        op->slice_elems = TT_MAX(slice_bytes / op->esize, 1);
        op->scratch     = s->scratch_count > 0 ? (char *)x->mem + scratch
                                               : NULL;
        scratch += TT_ALIGN_UP(s->scratch_count * op->esize, 64);
        tt_assert(op->esize > 0 && op->fn != NULL);
        for (i = 0; i < s->nsteps; i++, j++) {
            x->xs[j].step    = &s->steps[i];
            x->xs[j].op      = op;
            x->xs[j].x       = x;
            x->xs[j].nslices = (uint32_t)TT_DIV_UP(s->steps[i].count,
                                                   op->slice_elems);
        }
    }
    tt_exec_start(x);
    *x_p = x;
    return TUTTI_SUCCESS;

err_release:
    tt_exec_release(x);
    return res;
}

/* ---------------------------------------------------------------------- */
/* progress                                                               */
/* ---------------------------------------------------------------------- */

static int tt_exec_deps_done(const tt_xstep_t *xs)
{
    const tt_step_t  *st   = xs->step;
    const tt_xstep_t *base = xs - (st - xs->op->s->steps);
    int               i;

    for (i = 0; i < st->ndeps; i++) {
        if (!base[st->deps[i]].done) {
            return 0;
        }
    }
    return 1;
}

/*
 * Advances one step as far as it can go without waiting. Returns the number
 * of events (posts, completions) or an error through *res_p.
 */
static int tt_exec_step(tutti_comm_t comm, tt_xstep_t *xs,
                        tutti_result_t *res_p)
{
    const tt_step_t *st = xs->step;
    int              ev = 0;
    tt_peer_t       *peer;
    tt_peer_chan_t  *ch;

    if (xs->done || !tt_exec_deps_done(xs)) {
        return 0;
    }
    if ((st->flags & TT_STEP_COPY) && !xs->copied) {
        if (st->count > 0 && xs->dst != xs->src) {
            memcpy(xs->dst, xs->src, st->count * xs->op->esize);
        }
        if (st->flags & TT_STEP_FINALIZE) {
            tt_exec_finalize(xs, xs->dst, st->count);
        }
        xs->copied = 1;
        ev++;
    }
    if (st->flags & TT_STEP_RECV) {
        peer = &comm->peers[st->recv_peer];
        ch   = tt_peer_chan(peer, xs);
        ev += tt_exec_reap(xs, 1, res_p);
        if (*res_p < 0) {
            return ev;
        }
        while (ch->recv_head == xs && xs->recv_posted < xs->nslices &&
               xs->recv_posted - xs->recv_done < xs->x->depth) {
            *res_p = tt_exec_post_recv(xs, peer, ch);
            if (*res_p < 0) {
                return ev;
            }
            ev++;
        }
        if (ch->recv_head == xs && xs->recv_posted == xs->nslices) {
            ch->recv_head = xs->recv_next;
            if (ch->recv_head == NULL) {
                ch->recv_tail = NULL;
            }
        }
    }
    if (st->flags & TT_STEP_SEND) {
        uint32_t ready = (st->flags & TT_STEP_FORWARD) ? xs->recv_done
                                                       : xs->nslices;
        peer = &comm->peers[st->send_peer];
        ch   = tt_peer_chan(peer, xs);
        ev += tt_exec_reap(xs, 0, res_p);
        if (*res_p < 0) {
            return ev;
        }
        while (ch->send_head == xs && xs->send_posted < ready &&
               xs->send_posted - xs->send_done < xs->x->depth) {
            *res_p = tt_exec_post_send(xs, peer, ch);
            if (*res_p < 0) {
                return ev;
            }
            ev++;
        }
        if (ch->send_head == xs && xs->send_posted == xs->nslices) {
            ch->send_head = xs->send_next;
            if (ch->send_head == NULL) {
                ch->send_tail = NULL;
            }
        }
    }
    if ((!(st->flags & TT_STEP_COPY) || xs->copied) &&
        (!(st->flags & TT_STEP_RECV) || xs->recv_done == xs->nslices) &&
        (!(st->flags & TT_STEP_SEND) || xs->send_done == xs->nslices)) {
        xs->done = 1;
        xs->x->ndone++;
        ev++;
    }
    return ev;
}

/* Unlinks a finished execution from the communicator's list. */
static void tt_exec_unlink(tutti_comm_t comm, tt_exec_t *x)
{
    tt_exec_t **pp = &comm->execs_head, *prev = NULL;

    while (*pp != NULL && *pp != x) {
        prev = *pp;
        pp   = &(*pp)->next;
    }
    if (*pp == x) {
        *pp = x->next;
        if (comm->execs_tail == x) {
            comm->execs_tail = prev;
        }
    }
    x->next = NULL;
}

/*
 * The communicators this thread has executions in flight on. Waiting on
 * one request progresses them all, so that two ranks waiting on requests
 * of two communicators in opposite orders do not wait on each other (MPI
 * and NCCL behave so). Per thread, because a communicator is used by one
 * thread at a time: a thread only ever drives communicators it issued
 * work on. A communicator leaves the list when its last execution ends.
 */
#define TT_LIVE_MAX 64

static _Thread_local tutti_comm_t tt_live[TT_LIVE_MAX];
static _Thread_local int          tt_nlive;

static void tt_live_add(tutti_comm_t comm)
{
    int i;

    for (i = 0; i < tt_nlive; i++) {
        if (tt_live[i] == comm) {
            return;
        }
    }
    if (tt_nlive < TT_LIVE_MAX) {
        tt_live[tt_nlive++] = comm;
    }
}

static void tt_live_del(tutti_comm_t comm)
{
    int i;

    for (i = 0; i < tt_nlive; i++) {
        if (tt_live[i] == comm) {
            tt_live[i] = tt_live[--tt_nlive];
            return;
        }
    }
}

/*
 * One progress pass over the communicator: the transports, then every live
 * execution in issue order. Returns the number of events, or an error,
 * which breaks the communicator: posted requests may still reference the
 * users' buffers, so it can only be destroyed.
 */
static int tt_comm_progress(tutti_comm_t comm, tutti_result_t *res_p)
{
    tt_exec_t *x, *next;
    int        t, i, ev = 0;

    for (t = 0; t < comm->ntps; t++) {
        if (comm->tp_used[t]) {
            ev += (int)comm->tp_ops[t]->progress(comm->tps[t]);
        }
    }
    for (x = comm->execs_head; x != NULL; x = next) {
        next = x->next;
        if (x->status != TUTTI_INPROGRESS) {
            continue;
        }
        for (i = x->lo; i < x->nsteps; i++) {
            ev += tt_exec_step(comm, &x->xs[i], res_p);
            if (*res_p < 0) {
                comm->broken = *res_p;
                if (*res_p == TUTTI_ERR_REMOTE) {
                    /* a transport saw the peer fail before the watchdog
                     * did: the communicator's async error says so too */
                    tutti__comm_set_async_error(comm, -2, *res_p,
                                                tutti_last_error());
                }
                return ev;
            }
        }
        while (x->lo < x->nsteps && x->xs[x->lo].done) {
            x->lo++;
        }
        if (x->ndone == x->nsteps) {
            x->status = TUTTI_SUCCESS;
            tt_exec_unlink(comm, x);
            if (x->orphan) {
                tt_exec_release(x);
            }
        }
    }
    if (comm->execs_head == NULL) {
        tt_live_del(comm);
    }
    return ev;
}

/* A pass over this thread's other communicators with work in flight.
 * Their errors stay theirs (they break that communicator and surface in
 * its own requests). Backwards, because a pass may drop the entry. */
static int tt_progress_others(tutti_comm_t self)
{
    int i, ev = 0;

    for (i = tt_nlive - 1; i >= 0; i--) {
        tutti_comm_t   c   = tt_live[i];
        tutti_result_t res = TUTTI_SUCCESS;

        if (c != self && c->broken == TUTTI_SUCCESS) {
            ev += tt_comm_progress(c, &res);
        }
    }
    return ev;
}

/*
 * Failure, abort and timeout checks, in that order of precedence. The
 * timeout counts time without progress while the caller waits (since_ns is
 * the last progress seen), so a large but moving collective never times
 * out, and neither does one the user simply waits for late.
 */
static tutti_result_t tt_exec_check(tt_exec_t *x, uint64_t since_ns,
                                    uint64_t now_ns)
{
    tutti_comm_t comm = x->comm;

    if (comm->broken < 0) {
        return comm->broken;
    }
    if (atomic_load_explicit(&comm->aborted, memory_order_relaxed)) {
        return tutti__error_quiet(TUTTI_ERR_ABORTED,
                                  "rank %d: communicator aborted",
                                  comm->rank);
    }
    if (atomic_load_explicit(&comm->async_error, memory_order_acquire)) {
        return tutti__error(TUTTI_ERR_REMOTE, "%s on rank %d: %s",
                            x->ops[0].sched.algo, comm->rank, comm->fail_why);
    }
    if (comm->cfg.timeout_ms > 0 &&
        now_ns - since_ns > (uint64_t)comm->cfg.timeout_ms * 1000000ull) {
        return tutti__error(TUTTI_ERR_TIMEOUT,
                            "%s on rank %d: no progress for %d ms (%d of %d "
                            "steps done; a peer is stuck or did not make the "
                            "same call)", x->ops[0].sched.algo, comm->rank,
                            comm->cfg.timeout_ms, x->ndone, x->nsteps);
    }
    return TUTTI_SUCCESS;
}

tutti_result_t tutti__exec_test(tt_exec_t *x)
{
    tutti_result_t res = TUTTI_SUCCESS;
    uint64_t       now;
    int            ev;

    if (x->status != TUTTI_INPROGRESS) {
        return x->status;
    }
    ev = tt_comm_progress(x->comm, &res);
    if (res < 0) {
        x->status = res;
        return res;
    }
    if (tt_nlive > 1) {
        ev += tt_progress_others(x->comm);
    }
    if (x->status == TUTTI_INPROGRESS) {
        now = tutti__now_ns();
        if (ev > 0) {
            x->since_ns = now;
        }
        res = tt_exec_check(x, x->since_ns, now);
        if (res < 0) {
            x->comm->broken = res;
            x->status       = res;
        }
    }
    return x->status;
}

/*
 * The sleeping phase of a long wait. When every transport in use has a wait
 * fd (UCX's worker event fd, libfabric's CQ wait fd), the rank blocks in
 * ppoll() on them, armed first, so that a message wakes it at once instead
 * of at the end of a sleep; shm has none (a peer writes memory, nothing
 * signals it), and with it in use the rank sleeps SLEEP_US. The poll is
 * bounded by TT_WAIT_MAX_NS, so that abort, a peer's failure seen by the
 * watchdog, and the timeout are noticed.
 */
#define TT_WAIT_MAX_NS 10000000L

static void tt_comm_sleep(tutti_comm_t comm)
{
    struct pollfd   fds[TT_MAX_TRANSPORTS];
    struct timespec ts = {0, TT_WAIT_MAX_NS};
    nfds_t          n = 0;
    int             t;

    for (t = 0; t < comm->ntps; t++) {
        const tt_transport_ops_t *ops = comm->tp_ops[t];
        tutti_result_t            res;
        int                       fd = -1;

        if (!comm->tp_used[t]) {
            continue;
        }
        if (!(ops->caps & TT_CAP_WAIT_FD) ||
            ops->wait_fd(comm->tps[t], &fd) != TUTTI_SUCCESS || fd < 0) {
            goto plain;
        }
        res = ops->arm(comm->tps[t]);
        if (res == TUTTI_INPROGRESS) {
            return; /* events are pending: progress now */
        }
        if (res != TUTTI_SUCCESS) {
            goto plain;
        }
        fds[n].fd      = fd;
        fds[n].events  = POLLIN;
        fds[n].revents = 0;
        n++;
    }
    if (n > 0) {
        (void)ppoll(fds, n, &ts, NULL);
        return;
    }
plain:
    ts.tv_sec  = comm->cfg.sleep_us / 1000000;
    ts.tv_nsec = (long)(comm->cfg.sleep_us % 1000000) * 1000L;
    nanosleep(&ts, NULL);
}

tutti_result_t tutti__exec_wait(tt_exec_t *x)
{
    tutti_comm_t   comm  = x->comm;
    uint64_t       idle  = 0, iter = 0, since = tutti__now_ns();
    uint64_t       spin  = comm->oversubscribed ? 0
                                                : (uint64_t)comm->cfg.spin_count;
    uint64_t       yield = spin + (uint64_t)comm->cfg.yield_count;
    tutti_result_t res   = TUTTI_SUCCESS;
    int            progressed = 0;

    while (x->status == TUTTI_INPROGRESS) {
        int ev = tt_comm_progress(comm, &res);

        if (res < 0) {
            x->status = res;
            break;
        }
        if (x->status != TUTTI_INPROGRESS) {
            break;
        }
        if (tt_nlive > 1) {
            ev += tt_progress_others(comm);
        }
        if (ev > 0) {
            idle       = 0;
            progressed = 1;
            /* a long busy collective still honours abort and failures */
            if ((++iter & 1023) != 0) {
                continue;
            }
        } else {
            idle++;
        }
        if (ev > 0 || (idle & 255) == 0 || idle > spin) {
            uint64_t now = tutti__now_ns();

            if (progressed) {
                since      = now;
                progressed = 0;
            }
            res = tt_exec_check(x, since, now);
            if (res < 0) {
                comm->broken = res;
                x->status    = res;
                break;
            }
        }
        if (idle > yield) {
            tt_comm_sleep(comm);
        } else if (idle > spin) {
            sched_yield();
        }
    }
    return x->status;
}

void tutti__exec_free(tt_exec_t *x)
{
    if (x == NULL) {
        return;
    }
    if (x->status != TUTTI_SUCCESS) {
        /* still linked, and transports may still hold its requests: the
         * communicator frees it when it completes or is destroyed */
        x->orphan = 1;
        return;
    }
    tt_exec_release(x);
}

tutti_result_t tutti__exec_reissue(tt_exec_t *x, const tt_bufs_t *bufs)
{
    tt_assert(x->status == TUTTI_SUCCESS && x->nops == 1 && x->next == NULL);
    if (x->comm->broken < 0) {
        return x->comm->broken;
    }
    x->ops[0].bufs = *bufs;
    tt_exec_start(x);
    return TUTTI_SUCCESS;
}

size_t tutti__exec_mem_bytes(const tt_exec_t *x)
{
    return x->mem_bytes;
}

void tutti__exec_cleanup(tutti_comm_t comm)
{
    tt_exec_t *x = comm->execs_head, *next;

    if (comm->xcache != NULL) {
        tt_exec_release(comm->xcache);
        comm->xcache = NULL;
    }
    tt_live_del(comm);
    for (; x != NULL; x = next) {
        next = x->next;
        tt_exec_release(x);
    }
    comm->execs_head = comm->execs_tail = NULL;
}

tutti_result_t tutti__sched_run(tutti_comm_t comm, tt_sched_t *s,
                                const tt_bufs_t *bufs)
{
    tt_op_t        op = {.sched = *s, .bufs = *bufs};
    tt_exec_t     *x = NULL;
    tutti_result_t res;

    memset(s, 0, sizeof(*s));
    TT_CHECK(tutti__exec_issue(comm, &op, 1, &x));
    res = tutti__exec_wait(x);
    tutti__exec_free(x);
    return res;
}
