/*
 * The schedule simulator (see sim.h for what it proves). Deliberately
 * simple and slow: correctness of the algorithms' schedules, not speed.
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
    sim_elem_t *data;
    int        *consumed; /* the sender's flag */
} sim_msg_t;

typedef struct sim_fifo {
    sim_msg_t *msgs;
    size_t     head, len, cap;
} sim_fifo_t;

typedef struct sim_xstep {
    int recv_done, sent, consumed, copied, done;
} sim_xstep_t;

typedef struct sim_rank {
    tt_sched_t   s;
    sim_xstep_t *xs;
    sim_elem_t  *buf[TT_BUF_COUNT];
    size_t       len[TT_BUF_COUNT];
    int         *send_cur, *recv_cur; /* per peer: step allowed next */
    size_t       msgs, elems;
} sim_rank_t;

typedef struct sim {
    const tt_coll_args_t *args;
    int                   n;
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

/* Resolves a range to physical memory: in place, the send buffer is a
 * view of the receive buffer. */
static sim_elem_t *sim_ptr(sim_t *sim, int rank, tt_range_t r, size_t count,
                           int *phys_buf, size_t *phys_off)
{
    sim_rank_t *sr  = &sim->r[rank];
    int         buf = r.buf;
    size_t      off = r.off;

    if (buf == TT_BUF_SEND && sim->args->inplace) {
        buf = TT_BUF_RECV;
        if (sim->args->coll == TT_COLL_ALLGATHER) {
            off += (size_t)rank * sim->args->count;
        }
    }
    if (buf <= TT_BUF_NONE || buf >= TT_BUF_COUNT || off + count > sr->len[buf]) {
        sim_fail(sim, "rank %d: range buf %d off %zu count %zu outside the "
                 "buffer (%zu)", rank, r.buf, r.off, count,
                 buf > 0 && buf < TT_BUF_COUNT ? sr->len[buf] : 0);
        return NULL;
    }
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
    for (i = 0; i < sr->s.nsteps; i++) {
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
    free(m->data);
    m->data = NULL;
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
    m->data     = malloc((st->count + 1) * sizeof(sim_elem_t));
    m->consumed = &sr->xs[j].consumed;
    memcpy(m->data, p, st->count * sizeof(sim_elem_t));
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
            sr->recv_cur[st->recv_peer] = -2; /* recomputed below */
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
        x->sent                     = 1;
        sr->send_cur[st->send_peer] = -2;
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

/* Per peer, the first step whose send (receive) to (from) it is not yet
 * posted: the executor's per-peer order. */
static void sim_cursors(sim_t *sim, int rank)
{
    sim_rank_t *sr = &sim->r[rank];
    int         p, i;

    for (p = 0; p < sim->n; p++) {
        sr->send_cur[p] = sr->recv_cur[p] = -1;
    }
    for (i = sr->s.nsteps - 1; i >= 0; i--) {
        const tt_step_t *st = &sr->s.steps[i];
        if (st->count == 0) {
            continue; /* posts nothing: not in the per-peer order */
        }
        if ((st->flags & TT_STEP_SEND) && !sr->xs[i].sent) {
            sr->send_cur[st->send_peer] = i;
        }
        if ((st->flags & TT_STEP_RECV) && !sr->xs[i].recv_done) {
            sr->recv_cur[st->recv_peer] = i;
        }
    }
}

static int sim_setup(sim_t *sim, const tt_algo_t *algo)
{
    const tt_coll_args_t *a = sim->args;
    int                   n = sim->n, r, b;
    size_t                k;

    for (r = 0; r < n; r++) {
        sim_rank_t    *sr = &sim->r[r];
        tt_coll_args_t ra = *a;

        ra.rank = r;
        tutti__sched_init(&sr->s, a->datatype, a->op, r, n);
        if (algo->build(&ra, &sr->s) != TUTTI_SUCCESS) {
            return sim_fail(sim, "rank %d: build failed: %s", r,
                            tutti_last_error());
        }
        for (k = 0; k < (size_t)sr->s.nsteps; k++) {
            const tt_step_t *st = &sr->s.steps[k];
            if (((st->flags & TT_STEP_SEND) &&
                 (st->send_peer < 0 || st->send_peer >= n ||
                  st->send_peer == r)) ||
                ((st->flags & TT_STEP_RECV) &&
                 (st->recv_peer < 0 || st->recv_peer >= n ||
                  st->recv_peer == r))) {
                return sim_fail(sim, "rank %d step %zu: bad peer", r, k);
            }
        }
        sr->xs        = calloc((size_t)sr->s.nsteps + 1, sizeof(*sr->xs));
        sr->send_cur  = calloc((size_t)n, sizeof(int));
        sr->recv_cur  = calloc((size_t)n, sizeof(int));
        sr->len[TT_BUF_SEND]    = a->count;
        sr->len[TT_BUF_RECV]    = a->coll == TT_COLL_ALLGATHER
                                      ? a->count * (size_t)n : a->count;
        sr->len[TT_BUF_SCRATCH] = sr->s.scratch_count;
        for (b = 1; b < TT_BUF_COUNT; b++) {
            sr->buf[b] = calloc(sr->len[b] + 1, sizeof(sim_elem_t));
        }
        for (k = 0; k < a->count; k++) {
            sim_elem_t e = {.ranks = 1ull << r, .idx = (uint32_t)k,
                            .valid = 1};
            if (!a->inplace) {
                sr->buf[TT_BUF_SEND][k] = e;
            } else if (a->coll == TT_COLL_ALLGATHER) {
                sr->buf[TT_BUF_RECV][(size_t)r * a->count + k] = e;
            } else {
                sr->buf[TT_BUF_RECV][k] = e;
            }
        }
    }
    return 0;
}

static int sim_verify(sim_t *sim)
{
    const tt_coll_args_t *a    = sim->args;
    int                   n    = sim->n, r;
    uint64_t              all  = n == 64 ? ~0ull : (1ull << n) - 1;
    int                   fin  = a->coll == TT_COLL_ALLREDUCE &&
                                 a->op == TUTTI_AVG;
    size_t                k;

    for (r = 0; r < n; r++) {
        sim_rank_t *sr = &sim->r[r];
        for (k = 0; k < sr->len[TT_BUF_RECV]; k++) {
            sim_elem_t e = sr->buf[TT_BUF_RECV][k];
            uint64_t   want_ranks = all;
            uint32_t   want_idx   = (uint32_t)k;

            if (a->coll == TT_COLL_ALLGATHER) {
                want_ranks = 1ull << (k / a->count);
                want_idx   = (uint32_t)(k % a->count);
            }
            if (!e.valid || e.ranks != want_ranks || e.idx != want_idx ||
                e.fin != fin) {
                return sim_fail(sim, "rank %d: recvbuf[%zu] holds ranks "
                                "%#llx index %u (divided %d times), expected "
                                "ranks %#llx index %u (divided %d times)", r,
                                k, (unsigned long long)e.ranks, e.idx, e.fin,
                                (unsigned long long)want_ranks, want_idx, fin);
            }
        }
    }
    return 0;
}

static void sim_free(sim_t *sim)
{
    int    r, b;
    size_t f, k;

    for (r = 0; r < sim->n; r++) {
        tutti__sched_fini(&sim->r[r].s);
        free(sim->r[r].xs);
        free(sim->r[r].send_cur);
        free(sim->r[r].recv_cur);
        for (b = 1; b < TT_BUF_COUNT; b++) {
            free(sim->r[r].buf[b]);
        }
    }
    for (f = 0; f < (size_t)sim->n * (size_t)sim->n; f++) {
        for (k = 0; k < sim->fifo[f].len; k++) {
            free(sim->fifo[f].msgs[k].data);
        }
        free(sim->fifo[f].msgs);
    }
    free(sim->fifo);
    free(sim->r);
}

int sim_run(const tt_algo_t *algo, const tt_coll_args_t *args,
            sim_stats_t *stats, char *err, size_t errlen)
{
    sim_t sim = {.args = args, .n = args->nranks, .err = err,
                 .errlen = errlen};
    int   r, j, ev, rc = -1;

    err[0]   = '\0';
    sim.r    = calloc((size_t)sim.n, sizeof(*sim.r));
    sim.fifo = calloc((size_t)sim.n * (size_t)sim.n, sizeof(*sim.fifo));
    if (sim_setup(&sim, algo) != 0) {
        goto out;
    }
    do {
        ev = 0;
        for (r = 0; r < sim.n; r++) {
            sim_cursors(&sim, r);
            for (j = 0; j < sim.r[r].s.nsteps; j++) {
                int e = sim_step(&sim, r, j);
                if (e < 0) {
                    goto out;
                }
                if (e > 0) {
                    sim_cursors(&sim, r);
                }
                ev += e;
            }
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
