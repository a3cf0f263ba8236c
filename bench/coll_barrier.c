/*
 * Barrier as the runner sees it: latency only. A barrier moves no user
 * data, so it has no sizes, types or placements: the sweep is one row of
 * size 0 and type "none" whatever -b, -e and -d say, algbw and busbw are
 * 0, the in-place columns are n/a, and -c has nothing to compare (#wrong
 * is always 0). What it reports is the time per tutti_barrier() call,
 * combined across ranks like every other time (-a).
 */
#include "bench.h"

static void barrier_layout(size_t bytes, size_t tsize, int nranks,
                           size_t *count_p, size_t *send_bytes_p,
                           size_t *recv_bytes_p)
{
    (void)bytes;
    (void)tsize;
    (void)nranks;
    *count_p      = 0;
    *send_bytes_p = 0;
    *recv_bytes_p = 0;
}

static double barrier_alg_bytes(size_t count, size_t tsize, int nranks)
{
    (void)count;
    (void)tsize;
    (void)nranks;
    return 0;
}

static double barrier_bus_factor(int nranks)
{
    (void)nranks;
    return 1.0;
}

static void barrier_place(bench_call_t *call, void *sendbuf, void *recvbuf)
{
    call->sendbuf = sendbuf;
    call->recvbuf = recvbuf;
}

static void barrier_fill(const bench_call_t *call)
{
    (void)call;
}

static size_t barrier_check(const bench_call_t *call)
{
    (void)call;
    return 0;
}

static int barrier_run(bench_call_t *call)
{
    tutti_result_t rc = tutti_barrier(call->comm);

    return rc == TUTTI_SUCCESS ? 0 : bench_tutti_err(rc, "tutti_barrier");
}

const bench_coll_t bench_barrier_coll = {
    .name       = "barrier",
    .id         = BENCH_BARRIER,
    .reduces    = 0,
    .rooted     = 0,
    .sized      = 0,
    .min_ranks  = 1,
    .no_inplace = "a barrier has no buffers",
    .layout     = barrier_layout,
    .alg_bytes  = barrier_alg_bytes,
    .bus_factor = barrier_bus_factor,
    .bound_cost = 1.0, /* unused: no bytes */
    .place      = barrier_place,
    .fill       = barrier_fill,
    .check      = barrier_check,
    .run        = barrier_run,
};
