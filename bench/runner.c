/*
 * The shared runner: what one rank does from tutti_comm_init() to its exit
 * code. It sweeps algorithms (--algo), types, ops and sizes; for each size
 * it checks, then times tutti out of place and in place, then the peer
 * library the same way, then (--bound) the memcpy bound, and hands the row
 * to report.c.
 *
 * Communicators: the run's own one carries the bench's bookkeeping (the
 * barrier, time combining, #wrong sums, rank info). Without --algo tutti's
 * measured calls run on it too. With --algo each algorithm gets a
 * communicator of its own, opened with config.algo = "<coll>:<name>" (the
 * TUTTI_ALGO grammar) before its rows and destroyed after them, so the
 * forced algorithm never runs the bookkeeping and one run can sweep them
 * all; rank 0 makes its id and broadcasts it over the run's communicator.
 *
 * Timing, per size and placement: -w untimed calls, a barrier (a
 * one-element allreduce), then -N calls between two clock readings, with
 * nothing in the loop but the call through its bench_call_t. Each rank's
 * time per call is combined across ranks (-a: max by default) with one
 * float64 allreduce after the loop. The check (-c) runs before the timing,
 * once, on freshly filled buffers, and is not timed. -I adds a second loop
 * that reads the clock after every call; per-iteration times are combined
 * across ranks element by element, then ranked for p50, p99 and max, so
 * the mean of the first loop never pays for the clock reads.
 */
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

char bench_errbuf[512];

int bench_err(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(bench_errbuf, sizeof(bench_errbuf), fmt, ap);
    va_end(ap);
    return -1;
}

int bench_tutti_err(tutti_result_t rc, const char *what)
{
    return bench_err("%s: %s (%s): %s", what, tutti_strerror(rc),
                     tutti_result_name(rc), tutti_last_error());
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int bench_barrier(bench_world_t *w)
{
    static int32_t token;
    tutti_result_t rc = tutti_allreduce(&token, &token, 1, TUTTI_INT32,
                                        TUTTI_SUM, w->comm);

    return rc == TUTTI_SUCCESS ? 0 : bench_tutti_err(rc, "barrier");
}

/* Combines n per-rank values element-wise across ranks, in place. */
static int combine(bench_world_t *w, bench_combine_t how, double *v, size_t n)
{
    tutti_redop_t  op;
    tutti_result_t rc;

    switch (how) {
    case BENCH_COMBINE_RANK0:
        return 0; /* only rank 0 reports, with its own values */
    case BENCH_COMBINE_MIN:
        op = TUTTI_MIN;
        break;
    case BENCH_COMBINE_AVG:
        op = TUTTI_AVG;
        break;
    default:
        op = TUTTI_MAX;
        break;
    }
    rc = tutti_allreduce(v, v, n, TUTTI_FLOAT64, op, w->comm);
    return rc == TUTTI_SUCCESS ? 0 : bench_tutti_err(rc, "time combine");
}

static int sum_ll(bench_world_t *w, long long *v)
{
    int64_t        x  = *v;
    tutti_result_t rc = tutti_allreduce(&x, &x, 1, TUTTI_INT64, TUTTI_SUM,
                                        w->comm);

    *v = x;
    return rc == TUTTI_SUCCESS ? 0 : bench_tutti_err(rc, "#wrong sum");
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[n]. */
static double percentile(const double *v, int n, double p)
{
    int k = (int)ceil(p * n) - 1;

    return v[k < 0 ? 0 : k];
}

static int latency_loop(const bench_opts_t *o, bench_world_t *w,
                        bench_call_t *call, double *lat, bench_result_t *res)
{
    double prev, t;
    int    i;

    if (bench_barrier(w)) {
        return -1;
    }
    prev = now_s();
    for (i = 0; i < o->iters; i++) {
        if (call->fn(call) != 0) {
            return -1;
        }
        t      = now_s();
        lat[i] = (t - prev) * 1e6;
        prev   = t;
    }
    if (combine(w, o->combine, lat, (size_t)o->iters)) {
        return -1;
    }
    qsort(lat, (size_t)o->iters, sizeof(*lat), cmp_double);
    res->p50_us = percentile(lat, o->iters, 0.50);
    res->p99_us = percentile(lat, o->iters, 0.99);
    res->max_us = lat[o->iters - 1];
    return 0;
}

/* Check, warm up, time: one library, one placement, one size. */
static int measure(const bench_opts_t *o, bench_world_t *w,
                   bench_call_t *call, double alg_bytes, double *lat,
                   bench_result_t *res)
{
    const bench_coll_t *coll = o->coll;
    double              t0, us;
    int                 i;

    res->wrong  = -1;
    res->p50_us = res->p99_us = res->max_us = NAN;
    if (o->check) {
        coll->fill(call);
        if (call->fn(call) != 0) {
            return -1;
        }
        res->wrong = (long long)coll->check(call);
        if (sum_ll(w, &res->wrong)) {
            return -1;
        }
    }
    for (i = 0; i < o->warmup; i++) {
        if (call->fn(call) != 0) {
            return -1;
        }
    }
    if (bench_barrier(w)) {
        return -1;
    }
    t0 = now_s();
    for (i = 0; i < o->iters; i++) {
        if (call->fn(call) != 0) {
            return -1;
        }
    }
    us = (now_s() - t0) * 1e6 / o->iters;
    if (combine(w, o->combine, &us, 1)) {
        return -1;
    }
    res->done    = 1;
    res->time_us = us;
    res->algbw   = us > 0 ? alg_bytes / us / 1e3 : 0;
    res->busbw   = res->algbw * coll->bus_factor(w->nranks);
    if (o->latency) {
        return latency_loop(o, w, call, lat, res);
    }
    return 0;
}

/* What a rank holds for the whole run. */
typedef struct bench_run {
    const bench_opts_t     *o;
    bench_world_t          *w;
    tutti_comm_t            comm; /* the measured calls' (see the top) */
    const char             *algo; /* the rows' bench_algo_label() */
    void                   *sendbuf, *recvbuf;
    double                 *lat;
    const bench_peer_ops_t *peer;
    void                   *peer_ctx;
    long long               wrong, peer_wrong;
} bench_run_t;

static int run_peer(bench_run_t *run, bench_call_t *call, double alg_bytes,
                    bench_row_t *row)
{
    int p;

    for (p = 0; p < 2; p++) {
        bench_result_t *res = &row->peer[p];
        const char     *why = p ? run->o->coll->no_inplace : NULL;

        call->inplace = p;
        if (why == NULL) {
            why = run->peer->supports(run->o->coll->id, call);
        }
        if (why != NULL) {
            res->skip = why;
            continue;
        }
        call->peer    = run->peer_ctx;
        call->prep    = NULL;
        run->o->coll->place(call, run->sendbuf, run->recvbuf);
        if (run->peer->prepare(run->o->coll->id, call) != 0) {
            return -1;
        }
        if (measure(run->o, run->w, call, alg_bytes, run->lat, res) != 0) {
            run->peer->release(call);
            return -1;
        }
        run->peer->release(call);
        run->peer_wrong += res->wrong > 0 ? res->wrong : 0;
    }
    return 0;
}

static int run_size(bench_run_t *run, tutti_datatype_t dt, int op,
                    size_t bytes)
{
    const bench_opts_t *o     = run->o;
    size_t              tsize = tutti_datatype_size(dt);
    size_t              send_bytes, recv_bytes;
    bench_call_t        call;
    bench_row_t         row;
    double              alg_bytes;
    int                 p;

    memset(&call, 0, sizeof(call));
    memset(&row, 0, sizeof(row));
    call.dtype = dt;
    call.op    = op < 0 ? TUTTI_SUM : (tutti_redop_t)op;
    call.root  = o->root;
    call.world = run->w;
    call.comm  = run->comm;
    o->coll->layout(bytes, tsize, run->w->nranks, &call.count, &send_bytes,
                    &recv_bytes);
    alg_bytes = o->coll->alg_bytes(call.count, tsize, run->w->nranks);
    row.size  = send_bytes > recv_bytes ? send_bytes : recv_bytes;
    row.count = call.count;
    row.dtype = dt;
    row.op    = op;
    row.root  = o->coll->rooted ? o->root : -1;
    row.algo  = run->algo;
    row.memcpy_single = row.memcpy_concurrent = row.bound_busbw = NAN;
    for (p = 0; p < 2; p++) {
        if (p == 1 && o->coll->no_inplace != NULL) {
            row.tutti[p].skip = o->coll->no_inplace;
            continue;
        }
        call.inplace = p;
        call.fn      = o->coll->run;
        o->coll->place(&call, run->sendbuf, run->recvbuf);
        if (measure(o, run->w, &call, alg_bytes, run->lat, &row.tutti[p])) {
            return -1;
        }
        run->wrong += row.tutti[p].wrong > 0 ? row.tutti[p].wrong : 0;
    }
    if (run->peer != NULL && run_peer(run, &call, alg_bytes, &row) != 0) {
        return -1;
    }
    if (o->bound) {
        if (bench_bound_measure(run->w, run->recvbuf, run->sendbuf,
                                row.size, &row.memcpy_single,
                                &row.memcpy_concurrent) != 0) {
            return -1;
        }
        row.bound_busbw = row.memcpy_concurrent / o->coll->bound_cost;
    }
    if (run->w->rank == 0) {
        bench_report_row(o, run->w, &row);
    }
    return 0;
}

static void progress(const bench_run_t *run, tutti_datatype_t dt, int op,
                     int i, int n, size_t bytes)
{
    if (run->w->rank != 0 || !run->o->progress) {
        return;
    }
    fprintf(stderr, "\r\033[Ktutti-bench: %s%s%s%s%s size %d of %d (%zu B)",
            run->o->algo ? run->algo : "", run->o->algo ? " " : "",
            tutti_datatype_name(dt), op < 0 ? "" : " ",
            op < 0 ? "" : tutti_redop_name((tutti_redop_t)op), i + 1, n,
            bytes);
    fflush(stderr);
}

static int sweep(bench_run_t *run)
{
    const bench_opts_t *o      = run->o;
    int                 nops   = o->coll->reduces ? o->nops : 1;
    int                 ntypes = o->coll->sized ? o->ndtypes : 1;
    size_t             *sizes  = malloc(BENCH_MAX_SIZES * sizeof(*sizes));
    int                 nsizes, t, k, i, rc = 0;

    if (sizes == NULL) {
        return bench_err("out of memory for the size list");
    }
    if (o->coll->sized) {
        nsizes = bench_sizes(o, sizes, BENCH_MAX_SIZES);
    } else {
        nsizes   = 1; /* one row, whatever -b and -e say */
        sizes[0] = 0;
    }
    for (t = 0; t < ntypes && rc == 0; t++) {
        for (k = 0; k < nops && rc == 0; k++) {
            int op = o->coll->reduces ? (int)o->ops[k] : -1;

            for (i = 0; i < nsizes && rc == 0; i++) {
                progress(run, o->dtypes[t], op, i, nsizes, sizes[i]);
                rc = run_size(run, o->dtypes[t], op, sizes[i]);
            }
        }
    }
    free(sizes);
    return rc;
}

/* The largest buffers any type and size of the sweep needs, page-aligned
 * and touched so that no page fault lands in a timed loop. */
static int alloc_buffers(bench_run_t *run)
{
    const bench_opts_t *o        = run->o;
    size_t              max_send = 0, max_recv = 0, count, sb, rb;
    int                 t;

    for (t = 0; t < o->ndtypes; t++) {
        o->coll->layout(o->max_bytes, tutti_datatype_size(o->dtypes[t]),
                        run->w->nranks, &count, &sb, &rb);
        max_send = sb > max_send ? sb : max_send;
        max_recv = rb > max_recv ? rb : max_recv;
    }
    if (o->bound) { /* the bound copies the row's size between the two */
        max_send = max_recv = max_send > max_recv ? max_send : max_recv;
    }
    max_send += max_send == 0;
    max_recv += max_recv == 0;
    if (posix_memalign(&run->sendbuf, 4096, max_send) != 0 ||
        posix_memalign(&run->recvbuf, 4096, max_recv) != 0) {
        return bench_err("cannot allocate %zu + %zu bytes of buffers",
                         max_send, max_recv);
    }
    memset(run->sendbuf, 0, max_send);
    memset(run->recvbuf, 0, max_recv);
    run->lat = calloc((size_t)o->iters, sizeof(double));
    return run->lat ? 0 : bench_err("out of memory for -I");
}

static int gather_info(bench_world_t *w)
{
    bench_rank_info_t me;
    tutti_result_t    rc;
    int               r;

    memset(&me, 0, sizeof(me));
    me.pid = (int)getpid();
    gethostname(me.host, sizeof(me.host) - 1);
    w->info = calloc((size_t)w->nranks, sizeof(me));
    if (w->info == NULL) {
        return bench_err("out of memory for %d ranks", w->nranks);
    }
    rc = tutti_allgather(&me, w->info, sizeof(me), TUTTI_UINT8, w->comm);
    if (rc != TUTTI_SUCCESS) {
        return bench_tutti_err(rc, "tutti_allgather of rank info");
    }
    w->same_host = 1;
    for (r = 0; r < w->nranks; r++) {
        w->same_host &= strcmp(w->info[r].host, w->info[0].host) == 0;
    }
    return 0;
}

/*
 * --bind core: when every rank is on one host and they fit its CPUs, rank r
 * runs on the r-th CPU this process may use, as MPI launchers bind by
 * default. Unbound, forked ranks start on their parent's CPU and a short
 * run may end before the scheduler spreads them: on 2 cores, 8-byte
 * allreduce runs then took 2-6 us instead of 0.2-0.4 us, in one run of
 * three. MPI and Gloo run in the same processes, so peers are bound alike.
 */
static void bind_rank(const bench_opts_t *o, bench_world_t *w)
{
    cpu_set_t allowed, one;
    int       cpu, n = -1;

    w->cpu = -1;
    if (!o->bind || !w->same_host ||
        sched_getaffinity(0, sizeof(allowed), &allowed) != 0 ||
        w->nranks > CPU_COUNT(&allowed)) {
        return;
    }
    for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (CPU_ISSET(cpu, &allowed) && ++n == w->rank) {
            break;
        }
    }
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (sched_setaffinity(0, sizeof(one), &one) == 0) {
        w->cpu = cpu;
    }
}

static const bench_peer_ops_t *peer_ops(bench_peer_id_t id)
{
    switch (id) {
    case BENCH_PEER_MPI:
        return bench_peer_mpi();
    case BENCH_PEER_GLOO:
        return bench_peer_gloo();
    default:
        return NULL;
    }
}

/*
 * Opens the communicator the measured calls of algorithm `algo` (an
 * o->algos entry) run on: the run's own for NULL, else a new one whose
 * config forces the algorithm for this collective.
 */
static int open_algo_comm(bench_run_t *run, const char *algo)
{
    const bench_opts_t *o   = run->o;
    tutti_config_t      cfg = TUTTI_CONFIG_INIT;
    tutti_unique_id_t   id;
    tutti_result_t      rc;
    char                spec[128];

    run->algo = bench_algo_label(algo);
    if (algo == NULL) {
        run->comm = run->w->comm;
        return 0;
    }
    memset(&id, 0, sizeof(id));
    if (run->w->rank == 0) {
        rc = tutti_get_unique_id(&id);
        if (rc != TUTTI_SUCCESS) {
            return bench_tutti_err(rc, "tutti_get_unique_id for --algo");
        }
    }
    rc = tutti_broadcast(&id, &id, sizeof(id), TUTTI_UINT8, 0,
                         run->w->comm);
    if (rc != TUTTI_SUCCESS) {
        return bench_tutti_err(rc, "tutti_broadcast of the --algo id");
    }
    snprintf(spec, sizeof(spec), "%s:%s", o->coll->name, algo);
    cfg.timeout_ms = o->timeout_ms;
    cfg.algo       = spec;
    rc = tutti_comm_init(run->w->nranks, &id, run->w->rank, &cfg,
                         &run->comm);
    if (rc != TUTTI_SUCCESS) {
        run->comm = NULL;
        return bench_tutti_err(rc, "tutti_comm_init with --algo");
    }
    return 0;
}

static void close_algo_comm(bench_run_t *run)
{
    if (run->comm != NULL && run->comm != run->w->comm) {
        tutti_comm_destroy(run->comm);
    }
    run->comm = NULL;
}

/* Everything after init; 0 or bench_err(). */
static int run_all(bench_run_t *run)
{
    const bench_opts_t *o = run->o;
    int                 a;

    if (gather_info(run->w) != 0) {
        return -1;
    }
    bind_rank(o, run->w);
    if (alloc_buffers(run) != 0) {
        return -1;
    }
    if (o->coll->rooted && o->root >= run->w->nranks) {
        return bench_err("-r %d is not below the %d ranks", o->root,
                         run->w->nranks);
    }
    if (run->w->nranks < o->coll->min_ranks) {
        return bench_err("%s needs %d ranks or more, not %d", o->coll->name,
                         o->coll->min_ranks, run->w->nranks);
    }
    run->peer = peer_ops(o->peer);
    if (run->peer != NULL &&
        run->peer->init(run->w, &run->peer_ctx) != 0) {
        return -1;
    }
    if (run->w->rank == 0) {
        bench_report_begin(o, run->w, run->peer ? run->peer->name : NULL,
                           run->peer ? run->peer->version() : NULL);
    }
    for (a = 0; a < o->nalgos; a++) {
        if (open_algo_comm(run, o->algos[a]) != 0 || sweep(run) != 0) {
            return -1; /* the caller aborts and closes run->comm */
        }
        close_algo_comm(run);
    }
    if (run->peer != NULL) {
        run->peer->fini(run->peer_ctx);
    }
    if (run->w->rank == 0 && bench_report_end(o, run->w) != 0) {
        return -1;
    }
    return 0;
}

int bench_rank_main(const bench_opts_t *o, bench_launch_t launch, int rank,
                    int nranks, const tutti_unique_id_t *id)
{
    tutti_config_t cfg = TUTTI_CONFIG_INIT;
    bench_world_t  w;
    bench_run_t    run;
    tutti_result_t rc;
    int            ret;

    memset(&w, 0, sizeof(w));
    memset(&run, 0, sizeof(run));
    w.rank       = rank;
    w.nranks     = nranks;
    w.launch     = launch;
    run.o        = o;
    run.w        = &w;
    cfg.timeout_ms = o->timeout_ms;
    rc = tutti_comm_init(nranks, id, rank, &cfg, &w.comm);
    if (rc != TUTTI_SUCCESS) {
        bench_tutti_err(rc, "tutti_comm_init");
        fprintf(stderr, "tutti-bench: rank %d: %s\n", rank, bench_errbuf);
        return BENCH_EXIT_ERROR;
    }
    if (run_all(&run) != 0) {
        if (rank == 0 && o->progress) {
            fputs("\r\033[K", stderr);
        }
        fprintf(stderr, "tutti-bench: rank %d: %s\n", rank, bench_errbuf);
        /* tell the others now rather than let them wait for a timeout */
        if (run.comm != NULL && run.comm != w.comm) {
            tutti_comm_abort(run.comm);
        }
        tutti_comm_abort(w.comm);
        close_algo_comm(&run);
        ret = BENCH_EXIT_ERROR;
    } else {
        ret = run.wrong + run.peer_wrong > 0 ? BENCH_EXIT_WRONG
                                             : BENCH_EXIT_OK;
    }
    tutti_comm_destroy(w.comm);
    free(run.sendbuf);
    free(run.recvbuf);
    free(run.lat);
    free(w.info);
    return ret;
}
