/*
 * Reduce-scatter as the runner sees it: sizes, bandwidth factors, buffer
 * placement, check data and the tutti call.
 *
 * Sizes follow nccl-tests (ReduceScatterGetCollByteCount and
 * ReduceScatterGetBw): the sweep's size is the bytes of the whole input;
 * each rank receives size / nranks bytes, rounded down to a multiple of 16
 * bytes so every block stays aligned, so small sizes print as 0. The
 * table's `size` column is the input bytes actually used (count * nranks *
 * type size) and its `count` column is the per-rank element count, the
 * count passed to the call. algbw = input bytes / time and busbw = algbw *
 * (n-1)/n: each rank must send out every block but its own once.
 * In place means recvbuf == sendbuf + rank * count * type size.
 */
#include "bench.h"

static void rs_layout(size_t bytes, size_t tsize, int nranks,
                      size_t *count_p, size_t *send_bytes_p,
                      size_t *recv_bytes_p)
{
    size_t align = 16 / tsize;
    size_t count = bytes / tsize / (size_t)nranks / align * align;

    *count_p      = count;
    *send_bytes_p = count * tsize * (size_t)nranks;
    *recv_bytes_p = count * tsize;
}

static double rs_alg_bytes(size_t count, size_t tsize, int nranks)
{
    return (double)count * (double)tsize * nranks;
}

static double rs_bus_factor(int nranks)
{
    return (double)(nranks - 1) / nranks;
}

/* In place the whole input lives in the send buffer, which is the big one. */
static void rs_place(bench_call_t *call, void *sendbuf, void *recvbuf)
{
    size_t block = call->count * tutti_datatype_size(call->dtype);

    call->sendbuf = sendbuf;
    call->recvbuf = call->inplace
                        ? (char *)sendbuf + (size_t)call->world->rank * block
                        : recvbuf;
}

static void rs_fill(const bench_call_t *call)
{
    int    rank = call->world->rank, n = call->world->nranks;
    size_t i;

    if (!call->inplace) {
        bench_poison(call->recvbuf,
                     call->count * tutti_datatype_size(call->dtype));
    }
    for (i = 0; i < call->count * (size_t)n; i++) {
        bench_store(call->dtype, (void *)call->sendbuf, i,
                    bench_value(call->dtype, call->op, rank, n, i));
    }
}

/* Element i of this rank's output is element rank * count + i of the
 * reduction of every rank's input. */
static size_t rs_check(const bench_call_t *call)
{
    int    n     = call->world->nranks;
    size_t base  = (size_t)call->world->rank * call->count;
    double tol   = bench_tolerance(call->dtype, call->op, n);
    size_t wrong = 0, i;

    for (i = 0; i < call->count; i++) {
        double got = bench_load(call->dtype, call->recvbuf, i);
        double exp = bench_expect(call->dtype, call->op, n, base + i);

        /* written so that a NaN counts as wrong */
        if (!(got - exp <= tol && exp - got <= tol)) {
            wrong++;
        }
    }
    return wrong;
}

static int rs_run(bench_call_t *call)
{
    tutti_result_t rc = tutti_reduce_scatter(call->sendbuf, call->recvbuf,
                                             call->count, call->dtype,
                                             call->op, call->comm);

    return rc == TUTTI_SUCCESS ? 0
                               : bench_tutti_err(rc, "tutti_reduce_scatter");
}

const bench_coll_t bench_reduce_scatter = {
    .name       = "reduce_scatter",
    .id         = BENCH_REDUCE_SCATTER,
    .reduces    = 1,
    .rooted     = 0,
    .sized      = 1,
    .min_ranks  = 1,
    .no_inplace = NULL,
    .layout     = rs_layout,
    .alg_bytes  = rs_alg_bytes,
    .bus_factor = rs_bus_factor,
    .bound_cost = 1.5, /* every bus byte is reduced on its way */
    .place      = rs_place,
    .fill       = rs_fill,
    .check      = rs_check,
    .run        = rs_run,
};
