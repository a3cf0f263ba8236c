/*
 * The schedule simulator (see sim.h for what it proves). Simple rather
 * than fast: passes over every step of every rank until nothing moves.
 * Messages point at the sender's memory instead of copying it (a write
 * there before the receiver consumes it is reported anyway), and element
 * memory is kept from one run to the next; that is all the speed it needs.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

typedef struct sim_elem {
    uint64_t ranks; /* contributions held */
    uint32_t idx;   /* element index it belongs to */
    uint8_t  valid;
    uint8_t  fin;   /* AVG divisions applied */
} sim_elem_t;

typedef struct sim_msg {
    size_t      count;
    sim_elem_t *data;     /* the sender's memory: no write may touch it
                             before the message is consumed (checked) */
    int        *consumed; /* the sender's flag */
    uint64_t    heard;    /* the sender's causal past when it sent */
} sim_msg_t;

typedef struct sim_fifo {
    sim_msg_t *msgs;
    size_t     head, len, cap;
} sim_fifo_t;

typedef struct sim_xstep {
    int recv_done, sent, consumed, copied, done;
    int send_next, recv_next; /* the next step to the same peer, or -1 */
} sim_xstep_t;

typedef struct sim_rank {
    tt_sched_t   s;
    sim_xstep_t *xs;
    sim_elem_t  *buf[TT_BUF_COUNT];
    size_t       len[TT_BUF_COUNT]; /* as the schedule names them */
    int         *send_cur, *recv_cur; /* per peer: step allowed next */
    int          lo; /* steps below lo are all done */
    size_t       msgs, elems;
    uint64_t     heard; /* ranks this one has (transitively) heard from */
} sim_rank_t;

typedef struct sim {
    const tt_coll_args_t *args;
    int                   n;
    uint64_t              rng; /* 0: run in index order */
    int                  *order; /* ranks' order, then one rank's steps' */
    sim_rank_t           *r;
    sim_fifo_t           *fifo; /* [from * n + to] */
    char                 *err;
    size_t                errlen;
    int                   failed;
} sim_t;

static int sim_fail(sim_t *sim, const char *fmt, ...)
{
    va_list ap;

    if (!sim->failed) {
        va_start(ap, fmt);
        vsnprintf(sim->err, sim->errlen, fmt, ap);
        va_end(ap);
        sim->failed = 1;
    }
    return -1;
}

/* In place, one user buffer is a view of the other (algo.h's table):
 * maps a named buffer and offset to the physical one. Rooted collectives
 * alias only at the root (the other ranks use one buffer only). */
static void sim_alias(const sim_t *sim, int rank, int *buf, size_t *off)
{
    const tt_coll_args_t *a    = sim->args;
    int                   root = a->coll == TT_COLL_BROADCAST ||
                                 a->coll == TT_COLL_REDUCE;

    if (!a->inplace || (root && rank != a->root)) {
        return;
    }
    if (a->coll == TT_COLL_REDUCE_SCATTER) {
        if (*buf == TT_BUF_RECV) {
            *buf = TT_BUF_SEND;
            *off += (size_t)rank * a->count;
        }
    } else if (*buf == TT_BUF_SEND) {
        *buf = TT_BUF_RECV;
        if (a->coll == TT_COLL_ALLGATHER) {
            *off += (size_t)rank * a->count;
        }
    }
}

/* Resolves a range to physical memory. The range was checked against the
 * buffer's size when the schedule was built (sim_check_static). */
static sim_elem_t *sim_ptr(sim_t *sim, int rank, tt_range_t r, size_t count,
                           int *phys_buf, size_t *phys_off)
{
    sim_rank_t *sr  = &sim->r[rank];
    int         buf = r.buf;
    size_t      off = r.off;

    if (buf <= TT_BUF_NONE || buf >= TT_BUF_COUNT ||
        r.off + count > sr->len[buf]) {
        sim_fail(sim, "rank %d: range buf %d off %zu count %zu outside the "
                 "buffer (%zu)", rank, r.buf, r.off, count,
                 buf > 0 && buf < TT_BUF_COUNT ? sr->len[buf] : 0);
        return NULL;
    }
    sim_alias(sim, rank, &buf, &off);
    if (phys_buf != NULL) {
        *phys_buf = buf;
        *phys_off = off;
    }
    return sr->buf[buf] + off;
}

static int sim_overlap(sim_t *sim, int rank, tt_range_t a, size_t na,
                       int wbuf, size_t woff, size_t wn)
{
    int    buf;
    size_t off;

    if (na == 0 || wn == 0 || sim_ptr(sim, rank, a, na, &buf, &off) == NULL) {
        return 0;
    }
    return buf == wbuf && off < woff + wn && woff < off + na;
}

/* A step of `rank` writes count elements at range w: no unfinished step
 * may still have to read them. */
static int sim_check_write(sim_t *sim, int rank, int j, tt_range_t w,
                           size_t count)
{
    sim_rank_t *sr = &sim->r[rank];
    int         wbuf, i;
    size_t      woff;

    if (sim_ptr(sim, rank, w, count, &wbuf, &woff) == NULL) {
        return -1;
    }
    for (i = sr->lo; i < sr->s.nsteps; i++) {
        const tt_step_t   *st = &sr->s.steps[i];
        const sim_xstep_t *x  = &sr->xs[i];
        int                hit = 0;

        if (i == j || x->done) {
            continue;
        }
        /* a read in flight (posted, not yet consumed), or one that an
         * earlier step has still to do: later steps are assumed to be
         * ordered after this write (their data is checked at the end) */
        if ((st->flags & TT_STEP_SEND) && !x->consumed) {
            if (st->flags & TT_STEP_FORWARD) {
                hit = (x->recv_done || i < j) &&
                      sim_overlap(sim, rank, st->dst, st->count, wbuf, woff,
                                  count);
            } else {
                hit = (x->sent || i < j) &&
                      sim_overlap(sim, rank, st->src, st->count, wbuf, woff,
                                  count);
            }
        }
        if ((st->flags & TT_STEP_COPY) && !x->copied && i < j) {
            hit |= sim_overlap(sim, rank, st->src, st->count, wbuf, woff,
                               count);
        }
        if ((st->flags & TT_STEP_RECV) && st->recv_mode == TT_RECV_REDUCE &&
            !x->recv_done && i < j) {
            hit |= sim_overlap(sim, rank, st->local, st->count, wbuf, woff,
                               count);
        }
        if (hit) {
            return sim_fail(sim, "rank %d: step %d writes data that "
                            "unfinished step %d still reads", rank, j, i);
        }
    }
    return 0;
}

static int sim_check_valid(sim_t *sim, int rank, int j, const sim_elem_t *e,
                           size_t count, const char *what)
{
    size_t k;

    for (k = 0; k < count; k++) {
        if (!e[k].valid) {
            return sim_fail(sim, "rank %d: step %d reads %s element %zu "
                            "before it was written", rank, j, what, k);
        }
    }
    return 0;
}

static void sim_finalize(sim_elem_t *e, size_t count)
{
    size_t k;

    for (k = 0; k < count; k++) {
        e[k].fin++;
    }
}

static int sim_recv(sim_t *sim, int rank, int j)
{
    sim_rank_t      *sr = &sim->r[rank];
    const tt_step_t *st = &sr->s.steps[j];
    sim_fifo_t      *f  = &sim->fifo[st->recv_peer * sim->n + rank];
    sim_msg_t       *m;
    sim_elem_t      *dst, *local = NULL;
    size_t           k;

    if (f->head == f->len) {
        return 0;
    }
    m = &f->msgs[f->head++];
    if (m->count != st->count) {
        return sim_fail(sim, "rank %d step %d receives %zu elements from rank "
                        "%d, which sent %zu", rank, j, st->count,
                        st->recv_peer, m->count);
    }
    *m->consumed = 1;
    sr->heard |= m->heard;
    dst = sim_ptr(sim, rank, st->dst, st->count, NULL, NULL);
    if (st->recv_mode == TT_RECV_REDUCE) {
        local = sim_ptr(sim, rank, st->local, st->count, NULL, NULL);
        if (local == NULL ||
            sim_check_valid(sim, rank, j, local, st->count, "local") != 0) {
            return -1;
        }
    }
    if (dst == NULL || sim_check_write(sim, rank, j, st->dst, st->count)) {
        return -1;
    }
    for (k = 0; k < st->count; k++) {
        sim_elem_t in = m->data[k];

        if (local != NULL) {
            sim_elem_t l = local[k];
            if (l.idx != in.idx || (l.ranks & in.ranks) != 0 || l.fin ||
                in.fin) {
                return sim_fail(sim, "rank %d step %d: bad reduction at "
                                "element %zu (index %u with %u, ranks %#llx "
                                "with %#llx, divided %d/%d times)", rank, j,
                                k, l.idx, in.idx,
                                (unsigned long long)l.ranks,
                                (unsigned long long)in.ranks, l.fin, in.fin);
            }
            in.ranks |= l.ranks;
        }
        dst[k] = in;
    }
    if (st->flags & TT_STEP_FINALIZE) {
        sim_finalize(dst, st->count);
    }
    return 1;
}

static int sim_send(sim_t *sim, int rank, int j)
{
    sim_rank_t      *sr  = &sim->r[rank];
    const tt_step_t *st  = &sr->s.steps[j];
    sim_fifo_t      *f   = &sim->fifo[rank * sim->n + st->send_peer];
    tt_range_t       src = (st->flags & TT_STEP_FORWARD) ? st->dst : st->src;
    sim_elem_t      *p   = sim_ptr(sim, rank, src, st->count, NULL, NULL);
    sim_msg_t       *m;

    if (p == NULL || sim_check_valid(sim, rank, j, p, st->count, "send")) {
        return -1;
    }
    if (f->len == f->cap) {
        f->cap  = f->cap ? f->cap * 2 : 8;
        f->msgs = realloc(f->msgs, f->cap * sizeof(*f->msgs));
    }
    m           = &f->msgs[f->len++];
    m->count    = st->count;
    m->data     = p;
    m->consumed = &sr->xs[j].consumed;
    m->heard    = sr->heard;
    sr->msgs++;
    sr->elems += st->count;
    return 1;
}

/* Advances step j of rank as far as possible; returns events, or -1. */
static int sim_step(sim_t *sim, int rank, int j)
{
    sim_rank_t      *sr = &sim->r[rank];
    const tt_step_t *st = &sr->s.steps[j];
    sim_xstep_t     *x  = &sr->xs[j];
    int              ev = 0, d, rc;

    if (x->done) {
        return 0;
    }
    for (d = 0; d < st->ndeps; d++) {
        if (!sr->xs[st->deps[d]].done) {
            return 0;
        }
    }
    if ((st->flags & TT_STEP_COPY) && !x->copied) {
        sim_elem_t *src = sim_ptr(sim, rank, st->src, st->count, NULL, NULL);
        sim_elem_t *dst = sim_ptr(sim, rank, st->dst, st->count, NULL, NULL);

        if (src == NULL || dst == NULL ||
            sim_check_valid(sim, rank, j, src, st->count, "copy source") ||
            sim_check_write(sim, rank, j, st->dst, st->count)) {
            return -1;
        }
        memmove(dst, src, st->count * sizeof(*dst));
        if (st->flags & TT_STEP_FINALIZE) {
            sim_finalize(dst, st->count);
        }
        x->copied = 1;
        ev++;
    }
    if ((st->flags & TT_STEP_RECV) && !x->recv_done &&
        (st->count == 0 || sr->recv_cur[st->recv_peer] == j)) {
        rc = st->count == 0 ? 1 : sim_recv(sim, rank, j);
        if (rc < 0) {
            return -1;
        }
        if (rc > 0) {
            x->recv_done = 1;
            if (st->count > 0) {
                sr->recv_cur[st->recv_peer] = x->recv_next;
            }
            ev++;
        }
    }
    if ((st->flags & TT_STEP_SEND) && !x->sent &&
        (st->count == 0 || sr->send_cur[st->send_peer] == j) &&
        (!(st->flags & TT_STEP_FORWARD) || x->recv_done)) {
        if (st->count == 0) {
            x->consumed = 1;
        } else if (sim_send(sim, rank, j) < 0) {
            return -1;
        }
        x->sent = 1;
        if (st->count > 0) {
            sr->send_cur[st->send_peer] = x->send_next;
        }
        ev++;
    }
    if ((!(st->flags & TT_STEP_COPY) || x->copied) &&
        (!(st->flags & TT_STEP_RECV) || x->recv_done) &&
        (!(st->flags & TT_STEP_SEND) || x->consumed)) {
        x->done = 1;
        ev++;
    }
    return ev;
}

/* The executor's per-peer order: sends to (receives from) a peer are
 * posted in step order, steps of count 0 taking no place in it. Links
 * each step to the next one on the same peer. */
static void sim_chain_peers(sim_t *sim, int rank)
{
    sim_rank_t *sr = &sim->r[rank];
    int         p, i;

    for (p = 0; p < sim->n; p++) {
        sr->send_cur[p] = sr->recv_cur[p] = -1;
    }
    for (i = sr->s.nsteps - 1; i >= 0; i--) {
        const tt_step_t *st = &sr->s.steps[i];

        sr->xs[i].send_next = sr->xs[i].recv_next = -1;
        if (st->count == 0) {
            continue;
        }
        if (st->flags & TT_STEP_SEND) {
            sr->xs[i].send_next         = sr->send_cur[st->send_peer];
            sr->send_cur[st->send_peer] = i;
        }
        if (st->flags & TT_STEP_RECV) {
            sr->xs[i].recv_next         = sr->recv_cur[st->recv_peer];
            sr->recv_cur[st->recv_peer] = i;
        }
    }
}

/* Sizes of SEND and RECV as algo.h's table names them for rank r. */
static void sim_lengths(const tt_coll_args_t *a, int r, size_t *send_p,
                        size_t *recv_p)
{
    size_t c = a->count, nc = c * (size_t)a->nranks;

    switch (a->coll) {
    case TT_COLL_ALLGATHER:
        *send_p = c;
        *recv_p = nc;
        break;
    case TT_COLL_REDUCE_SCATTER:
        *send_p = nc;
        *recv_p = c;
        break;
    case TT_COLL_BROADCAST:
        *send_p = r == a->root ? c : 0;
        *recv_p = c;
        break;
    case TT_COLL_REDUCE:
        *send_p = c;
        *recv_p = r == a->root ? c : 0;
        break;
    case TT_COLL_ALLTOALL:
        *send_p = *recv_p = nc;
        break;
    case TT_COLL_BARRIER:
        *send_p = *recv_p = 0;
        break;
    default:
        *send_p = *recv_p = c;
        break;
    }
}

/* A range a step reads or writes: it must lie in its buffer, and a rooted
 * collective's ranks other than the root must not name the user buffer
 * that is undefined there. */
static int sim_check_ref(sim_t *sim, int r, int j, tt_range_t rg,
                         size_t count, const char *what)
{
    const tt_coll_args_t *a  = sim->args;
    sim_rank_t           *sr = &sim->r[r];

    if (a->coll == TT_COLL_BROADCAST && r != a->root &&
        rg.buf == TT_BUF_SEND) {
        return sim_fail(sim, "rank %d step %d: %s names SEND, which only "
                        "the root of a broadcast has", r, j, what);
    }
    if (a->coll == TT_COLL_REDUCE && r != a->root && rg.buf == TT_BUF_RECV) {
        return sim_fail(sim, "rank %d step %d: %s names RECV, which a "
                        "reduce must not touch off the root", r, j, what);
    }
    if (a->coll == TT_COLL_BARRIER && rg.buf != TT_BUF_SCRATCH) {
        return sim_fail(sim, "rank %d step %d: %s names a user buffer in a "
                        "barrier", r, j, what);
    }
    if (rg.buf <= TT_BUF_NONE || rg.buf >= TT_BUF_COUNT ||
        rg.off + count > sr->len[rg.buf]) {
        return sim_fail(sim, "rank %d step %d: %s (buf %d off %zu count "
                        "%zu) outside the buffer (%zu)", r, j, what, rg.buf,
                        rg.off, count,
                        rg.buf > 0 && rg.buf < TT_BUF_COUNT ? sr->len[rg.buf]
                                                            : 0);
    }
    return 0;
}

/* Two ranges of one step must be the same memory or not overlap at all
 * (partial overlap would be a race or an aliasing bug), or, with
 * `disjoint`, must not overlap at all. */
static int sim_check_pair(sim_t *sim, int r, int j, tt_range_t x,
                          tt_range_t y, size_t count, int disjoint,
                          const char *what)
{
    int    bx, by;
    size_t ox, oy;

    if (count == 0) {
        return 0;
    }
    sim_ptr(sim, r, x, count, &bx, &ox);
    sim_ptr(sim, r, y, count, &by, &oy);
    if (bx != by || ox + count <= oy || oy + count <= ox ||
        (ox == oy && !disjoint)) {
        return 0;
    }
    return sim_fail(sim, "rank %d step %d: %s", r, j, what);
}

/* What can be checked on a step before running it. */
static int sim_check_static(sim_t *sim, int r, int j)
{
    const tt_step_t *st = &sim->r[r].s.steps[j];
    int              n  = sim->n;
    int              rc = 0, d;

    if (((st->flags & TT_STEP_SEND) &&
         (st->send_peer < 0 || st->send_peer >= n || st->send_peer == r)) ||
        ((st->flags & TT_STEP_RECV) &&
         (st->recv_peer < 0 || st->recv_peer >= n || st->recv_peer == r))) {
        return sim_fail(sim, "rank %d step %d: bad peer", r, j);
    }
    if ((st->flags & TT_STEP_FORWARD) &&
        (st->flags & (TT_STEP_SEND | TT_STEP_RECV)) !=
            (TT_STEP_SEND | TT_STEP_RECV)) {
        return sim_fail(sim, "rank %d step %d: FORWARD without both a "
                        "receive and a send", r, j);
    }
    if (!(st->flags & (TT_STEP_SEND | TT_STEP_RECV | TT_STEP_COPY))) {
        return sim_fail(sim, "rank %d step %d does nothing", r, j);
    }
    if ((st->flags & (TT_STEP_RECV | TT_STEP_COPY)) &&
        st->dst.buf == TT_BUF_SEND) {
        return sim_fail(sim, "rank %d step %d writes SEND", r, j);
    }
    if (st->flags & TT_STEP_COPY) {
        rc |= sim_check_ref(sim, r, j, st->src, st->count, "copy source");
        rc |= sim_check_ref(sim, r, j, st->dst, st->count, "copy target");
        rc |= rc ? 0 : sim_check_pair(sim, r, j, st->src, st->dst, st->count,
                                      0, "copy between overlapping ranges");
    }
    if (st->flags & TT_STEP_RECV) {
        rc |= sim_check_ref(sim, r, j, st->dst, st->count, "receive target");
        if (st->recv_mode == TT_RECV_REDUCE) {
            rc |= sim_check_ref(sim, r, j, st->local, st->count,
                                "reduce operand");
            rc |= rc ? 0 : sim_check_pair(sim, r, j, st->local, st->dst,
                                          st->count, 0, "reduce operand "
                                          "partly overlaps its target");
        }
    }
    if ((st->flags & TT_STEP_SEND) && !(st->flags & TT_STEP_FORWARD)) {
        rc |= sim_check_ref(sim, r, j, st->src, st->count, "send source");
        /* the parts of a step run concurrently, slice by slice */
        if ((st->flags & TT_STEP_RECV) && !rc) {
            rc |= sim_check_pair(sim, r, j, st->src, st->dst, st->count, 1,
                                 "sends from the range its own receive "
                                 "writes (without FORWARD)");
        }
    }
    for (d = 0; d < st->ndeps && !rc; d++) {
        if (st->deps[d] < 0 || st->deps[d] >= j) {
            return sim_fail(sim, "rank %d step %d: dependency %d is not an "
                            "earlier step", r, j, st->deps[d]);
        }
    }
    return rc ? -1 : 0;
}

/* Element memory, kept from one run to the next: fresh pages for every
 * run of a large alltoall cost more than the simulation itself. */
static struct {
    sim_elem_t *mem;
    size_t      cap, used;
} sim_arena;

/* Zeroed elements for one buffer; NULL if out of memory. The arena only
 * grows between runs (pointers into it must stay valid during one). */
static sim_elem_t *sim_alloc(size_t count)
{
    sim_elem_t *e;

    if (sim_arena.used + count + 1 > sim_arena.cap) {
        return NULL;
    }
    e = sim_arena.mem + sim_arena.used;
    memset(e, 0, (count + 1) * sizeof(*e));
    sim_arena.used += count + 1;
    return e;
}

/* Sizes the arena for every buffer of a run before any is handed out. */
static int sim_arena_reserve(size_t count)
{
    sim_arena.used = 0;
    if (count > sim_arena.cap) {
        sim_elem_t *mem = realloc(sim_arena.mem, count * sizeof(*mem));

        if (mem == NULL) {
            return -1;
        }
        sim_arena.mem = mem;
        sim_arena.cap = count;
    }
    return 0;
}

static int sim_setup(sim_t *sim, const tt_algo_t *algo)
{
    const tt_coll_args_t *a = sim->args;
    int                   n = sim->n, r, b, j;
    size_t                k, total = 0;

    for (r = 0; r < n; r++) {
        sim_rank_t    *sr = &sim->r[r];
        tt_coll_args_t ra = *a;

        ra.rank = r;
        if ((a->coll == TT_COLL_BROADCAST || a->coll == TT_COLL_REDUCE) &&
            r != a->root) {
            ra.inplace = 0; /* as the API sets it: only the root's counts */
        }
        tutti__sched_init(&sr->s, a->datatype, a->op, r, n);
        sr->heard = 1ull << r;
        if (algo->build(&ra, &sr->s) != TUTTI_SUCCESS) {
            return sim_fail(sim, "rank %d: build failed: %s", r,
                            tutti_last_error());
        }
        sr->xs       = calloc((size_t)sr->s.nsteps + 1, sizeof(*sr->xs));
        sr->send_cur = calloc((size_t)n, sizeof(int));
        sr->recv_cur = calloc((size_t)n, sizeof(int));
        if (sr->xs == NULL || sr->send_cur == NULL || sr->recv_cur == NULL) {
            return sim_fail(sim, "out of memory");
        }
        sim_lengths(a, r, &sr->len[TT_BUF_SEND], &sr->len[TT_BUF_RECV]);
        sr->len[TT_BUF_SCRATCH] = sr->s.scratch_count;
        for (b = 1; b < TT_BUF_COUNT; b++) {
            total += sr->len[b] + 1;
        }
    }
    if (sim_arena_reserve(total) != 0) {
        return sim_fail(sim, "out of memory for %zu elements", total);
    }
    for (r = 0; r < n; r++) {
        sim_rank_t *sr = &sim->r[r];

        for (b = 1; b < TT_BUF_COUNT; b++) {
            sr->buf[b] = sim_alloc(sr->len[b]);
        }
        for (j = 0; j < sr->s.nsteps; j++) {
            if (sim_check_static(sim, r, j) != 0) {
                return -1;
            }
        }
        sim_chain_peers(sim, r);
        /* each rank's contribution: element k of its SEND */
        for (k = 0; k < sr->len[TT_BUF_SEND]; k++) {
            sim_elem_t e = {.ranks = 1ull << r, .idx = (uint32_t)k,
                            .valid = 1};
            *sim_ptr(sim, r, tt_range(TT_BUF_SEND, k), 1, NULL, NULL) = e;
        }
        /* a barrier's bytes carry nothing: whatever SCRATCH holds */
        for (k = 0; a->coll == TT_COLL_BARRIER && k < sr->s.scratch_count;
             k++) {
            sr->buf[TT_BUF_SCRATCH][k].valid = 1;
        }
    }
    return 0;
}

/* What RECV[k] of rank r must hold; 0 if nothing is expected there. */
static int sim_expect(const sim_t *sim, int r, size_t k, sim_elem_t *e)
{
    const tt_coll_args_t *a   = sim->args;
    size_t                c   = a->count;
    uint64_t              all = sim->n == 64 ? ~0ull
                                             : (1ull << sim->n) - 1;
    int                   avg = a->op == TUTTI_AVG;

    *e = (sim_elem_t){.ranks = all, .idx = (uint32_t)k, .valid = 1};
    switch (a->coll) {
    case TT_COLL_ALLREDUCE:
        e->fin = (uint8_t)avg;
        return 1;
    case TT_COLL_ALLGATHER:
        e->ranks = 1ull << (k / c);
        e->idx   = (uint32_t)(k % c);
        return 1;
    case TT_COLL_REDUCE_SCATTER:
        e->idx = (uint32_t)((size_t)r * c + k);
        e->fin = (uint8_t)avg;
        return 1;
    case TT_COLL_BROADCAST:
        e->ranks = 1ull << a->root;
        return 1;
    case TT_COLL_REDUCE:
        e->fin = (uint8_t)avg;
        return r == a->root;
    case TT_COLL_ALLTOALL:
        e->ranks = 1ull << (k / c);
        e->idx   = (uint32_t)((size_t)r * c + k % c);
        return 1;
    default:
        return 0;
    }
}

static int sim_verify(sim_t *sim)
{
    uint64_t all = sim->n == 64 ? ~0ull : (1ull << sim->n) - 1;
    int      r;
    size_t   k;

    for (r = 0; r < sim->n; r++) {
        sim_rank_t *sr = &sim->r[r];

        if (sim->args->coll == TT_COLL_BARRIER && sr->heard != all) {
            return sim_fail(sim, "rank %d leaves the barrier having heard "
                            "only from ranks %#llx", r,
                            (unsigned long long)sr->heard);
        }
        for (k = 0; k < sr->len[TT_BUF_RECV]; k++) {
            sim_elem_t want, e;

            if (!sim_expect(sim, r, k, &want)) {
                continue;
            }
            e = *sim_ptr(sim, r, tt_range(TT_BUF_RECV, k), 1, NULL, NULL);
            if (!e.valid || e.ranks != want.ranks || e.idx != want.idx ||
                e.fin != want.fin) {
                return sim_fail(sim, "rank %d: recvbuf[%zu] holds ranks "
                                "%#llx index %u (divided %d times), expected "
                                "ranks %#llx index %u (divided %d times)", r,
                                k, (unsigned long long)e.ranks, e.idx, e.fin,
                                (unsigned long long)want.ranks, want.idx,
                                want.fin);
            }
        }
    }
    return 0;
}

static void sim_free(sim_t *sim)
{
    int    r;
    size_t f;

    for (r = 0; sim->r != NULL && r < sim->n; r++) {
        tutti__sched_fini(&sim->r[r].s);
        free(sim->r[r].xs);
        free(sim->r[r].send_cur);
        free(sim->r[r].recv_cur);
    }
    for (f = 0; sim->fifo != NULL && f < (size_t)sim->n * (size_t)sim->n;
         f++) {
        free(sim->fifo[f].msgs);
    }
    free(sim->fifo);
    free(sim->r);
    free(sim->order);
}

/* xorshift64*: the interleaving is random but reproducible. */
static uint32_t sim_rand(sim_t *sim)
{
    sim->rng ^= sim->rng >> 12;
    sim->rng ^= sim->rng << 25;
    sim->rng ^= sim->rng >> 27;
    return (uint32_t)((sim->rng * 0x2545f4914f6cdd1dull) >> 32);
}

/* Fills order with lo .. hi-1, shuffled unless in index order. */
static void sim_order(sim_t *sim, int *order, int lo, int hi)
{
    int i;

    for (i = lo; i < hi; i++) {
        order[i - lo] = i;
    }
    for (i = hi - lo - 1; sim->rng != 0 && i > 0; i--) {
        int k = (int)(sim_rand(sim) % (uint32_t)(i + 1)), t = order[i];

        order[i] = order[k];
        order[k] = t;
    }
}

/* One pass over every rank and step; returns the events, or -1. */
static int sim_pass(sim_t *sim)
{
    int ev = 0, i, *ranks = sim->order, *steps = sim->order + sim->n;

    sim_order(sim, ranks, 0, sim->n);
    for (i = 0; i < sim->n; i++) {
        sim_rank_t *sr = &sim->r[ranks[i]];
        int         j;

        sim_order(sim, steps, sr->lo, sr->s.nsteps);
        for (j = 0; j < sr->s.nsteps - sr->lo; j++) {
            int e = sim_step(sim, ranks[i], steps[j]);
            if (e < 0) {
                return -1;
            }
            ev += e;
        }
        while (sr->lo < sr->s.nsteps && sr->xs[sr->lo].done) {
            sr->lo++;
        }
    }
    return ev;
}

int sim_run(const tt_algo_t *algo, const tt_coll_args_t *args,
            unsigned seed, sim_stats_t *stats, char *err, size_t errlen)
{
    sim_t sim = {.args = args, .n = args->nranks, .err = err,
                 .errlen = errlen};
    int   r, j, ev, rc = -1, maxsteps = 0;

    err[0]   = '\0';
    sim.rng  = seed == 0 ? 0 : 0x9e3779b97f4a7c15ull * seed;
    sim.r    = calloc((size_t)sim.n, sizeof(*sim.r));
    sim.fifo = calloc((size_t)sim.n * (size_t)sim.n, sizeof(*sim.fifo));
    if (sim.r == NULL || sim.fifo == NULL) {
        sim_fail(&sim, "out of memory");
        goto out;
    }
    if (sim_setup(&sim, algo) != 0) {
        goto out;
    }
    for (r = 0; r < sim.n; r++) {
        maxsteps = sim.r[r].s.nsteps > maxsteps ? sim.r[r].s.nsteps
                                                : maxsteps;
    }
    sim.order = malloc(((size_t)maxsteps + (size_t)sim.n) * sizeof(int));
    if (sim.order == NULL) {
        sim_fail(&sim, "out of memory");
        goto out;
    }
    do {
        ev = sim_pass(&sim);
        if (ev < 0) {
            goto out;
        }
    } while (ev > 0);
    for (r = 0; r < sim.n; r++) {
        for (j = 0; j < sim.r[r].s.nsteps; j++) {
            if (!sim.r[r].xs[j].done) {
                sim_fail(&sim, "deadlock: rank %d step %d of %d never "
                         "completes", r, j, sim.r[r].s.nsteps);
                goto out;
            }
        }
    }
    for (r = 0; r < sim.n * sim.n; r++) {
        if (sim.fifo[r].head != sim.fifo[r].len) {
            sim_fail(&sim, "rank %d sent rank %d a message nobody received",
                     r / sim.n, r % sim.n);
            goto out;
        }
    }
    if (sim_verify(&sim) != 0) {
        goto out;
    }
    memset(stats, 0, sizeof(*stats));
    for (r = 0; r < sim.n; r++) {
        if (sim.r[r].msgs > stats->msgs_max) {
            stats->msgs_max = sim.r[r].msgs;
        }
        if (sim.r[r].elems > stats->elems_max) {
            stats->elems_max = sim.r[r].elems;
        }
        if (sim.r[r].s.nsteps > stats->steps_max) {
            stats->steps_max = sim.r[r].s.nsteps;
        }
    }
    rc = 0;
out:
    sim_free(&sim);
    return rc;
}
