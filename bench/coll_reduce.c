/*
 * Reduce as the runner sees it: sizes, bandwidth factors, buffer
 * placement, check data and the tutti call.
 *
 * Sizes follow nccl-tests (ReduceGetCollByteCount and ReduceGetBw): the
 * sweep's size is the bytes of one buffer, the count is size / type size,
 * algbw = count * type size / time and busbw = algbw: every rank but the
 * root must send the whole buffer (reduced with what it received) once, as
 * a pipelined chain does on every link at once. -r picks the root
 * (default 0).
 *
 * Only the root's output is checked, as nccl-tests does: the API leaves
 * the other ranks' receive buffers to the caller, and some peers use them
 * as scratch. In place means sendbuf == recvbuf.
 */
#include "bench.h"

static void reduce_layout(size_t bytes, size_t tsize, int nranks,
                          size_t *count_p, size_t *send_bytes_p,
                          size_t *recv_bytes_p)
{
    size_t count = bytes / tsize;

    (void)nranks;
    *count_p      = count;
    *send_bytes_p = count * tsize;
    *recv_bytes_p = count * tsize;
}

static double reduce_alg_bytes(size_t count, size_t tsize, int nranks)
{
    (void)nranks;
    return (double)count * (double)tsize;
}

static double reduce_bus_factor(int nranks)
{
    (void)nranks;
    return 1.0;
}

static void reduce_place(bench_call_t *call, void *sendbuf, void *recvbuf)
{
    call->sendbuf = call->inplace ? recvbuf : sendbuf;
    call->recvbuf = recvbuf;
}

static void reduce_fill(const bench_call_t *call)
{
    int    rank = call->world->rank, n = call->world->nranks;
    size_t i;

    if (!call->inplace) {
        bench_poison(call->recvbuf,
                     call->count * tutti_datatype_size(call->dtype));
    }
    for (i = 0; i < call->count; i++) {
        bench_store(call->dtype, (void *)call->sendbuf, i,
                    bench_value(call->dtype, call->op, rank, n, i));
    }
}

static size_t reduce_check(const bench_call_t *call)
{
    int    n     = call->world->nranks;
    double tol   = bench_tolerance(call->dtype, call->op, n);
    size_t wrong = 0, i;

    if (call->world->rank != call->root) {
        return 0;
    }
    for (i = 0; i < call->count; i++) {
        double got = bench_load(call->dtype, call->recvbuf, i);
        double exp = bench_expect(call->dtype, call->op, n, i);

        /* written so that a NaN counts as wrong */
        if (!(got - exp <= tol && exp - got <= tol)) {
            wrong++;
        }
    }
    return wrong;
}

static int reduce_run(bench_call_t *call)
{
    tutti_result_t rc = tutti_reduce(call->sendbuf, call->recvbuf,
                                     call->count, call->dtype, call->op,
                                     call->root, call->comm);

    return rc == TUTTI_SUCCESS ? 0 : bench_tutti_err(rc, "tutti_reduce");
}

const bench_coll_t bench_reduce = {
    .name       = "reduce",
    .id         = BENCH_REDUCE,
    .reduces    = 1,
    .rooted     = 1,
    .sized      = 1,
    .min_ranks  = 1,
    .no_inplace = NULL,
    .layout     = reduce_layout,
    .alg_bytes  = reduce_alg_bytes,
    .bus_factor = reduce_bus_factor,
    .bound_cost = 1.5, /* every bus byte is reduced on its way */
    .place      = reduce_place,
    .fill       = reduce_fill,
    .check      = reduce_check,
    .run        = reduce_run,
};
