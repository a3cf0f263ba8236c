/*
 * Allreduce as the runner sees it: sizes, bandwidth factors, buffer
 * placement, check data and the tutti call.
 *
 * Sizes follow nccl-tests: the sweep's size is the bytes of one buffer, the
 * count is size / type size (so a size below the type's width gives count
 * 0), and algbw = count * type size / time. busbw = algbw * 2(n-1)/n, the
 * bytes each rank must send (and receive) in an optimal ring: (n-1)/n of
 * the buffer to reduce-scatter it, the same again to allgather the result.
 * In place means sendbuf == recvbuf.
 */
#include "bench.h"

static void allreduce_layout(size_t bytes, size_t tsize, int nranks,
                             size_t *count_p, size_t *send_bytes_p,
                             size_t *recv_bytes_p)
{
    size_t count = bytes / tsize;

    (void)nranks;
    *count_p      = count;
    *send_bytes_p = count * tsize;
    *recv_bytes_p = count * tsize;
}

static double allreduce_alg_bytes(size_t count, size_t tsize, int nranks)
{
    (void)nranks;
    return (double)count * (double)tsize;
}

static double allreduce_bus_factor(int nranks)
{
    return 2.0 * (nranks - 1) / nranks;
}

static void allreduce_place(bench_call_t *call, void *sendbuf, void *recvbuf)
{
    call->sendbuf = call->inplace ? recvbuf : sendbuf;
    call->recvbuf = recvbuf;
}

static void allreduce_fill(const bench_call_t *call)
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

static size_t allreduce_check(const bench_call_t *call)
{
    int    n     = call->world->nranks;
    double tol   = bench_tolerance(call->dtype, call->op, n);
    size_t wrong = 0, i;

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

static int allreduce_run(bench_call_t *call)
{
    tutti_result_t rc = tutti_allreduce(call->sendbuf, call->recvbuf,
                                        call->count, call->dtype, call->op,
                                        call->comm);

    return rc == TUTTI_SUCCESS ? 0 : bench_tutti_err(rc, "tutti_allreduce");
}

const bench_coll_t bench_allreduce = {
    .name       = "allreduce",
    .id         = BENCH_ALLREDUCE,
    .reduces    = 1,
    .rooted     = 0,
    .sized      = 1,
    .min_ranks  = 1,
    .no_inplace = NULL,
    .layout     = allreduce_layout,
    .alg_bytes  = allreduce_alg_bytes,
    .bus_factor = allreduce_bus_factor,
    .bound_cost = 1.25,
    .place      = allreduce_place,
    .fill       = allreduce_fill,
    .check      = allreduce_check,
    .run        = allreduce_run,
};
