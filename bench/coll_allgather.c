/*
 * Allgather as the runner sees it: sizes, bandwidth factors, buffer
 * placement, check data and the tutti call.
 *
 * Sizes follow nccl-tests (AllGatherGetCollByteCount and AllGatherGetBw):
 * the sweep's size is the bytes of the whole output; each rank sends
 * size / nranks bytes, rounded down to a multiple of 16 bytes so every
 * block stays aligned, so small sizes print as 0. The table's `size` column
 * is the output bytes actually used (count * nranks * type size) and its
 * `count` column is the per-rank element count, the count passed to the
 * call, as nccl-tests prints them. algbw = output bytes / time and
 * busbw = algbw * (n-1)/n: each rank receives every block but its own.
 * In place means sendbuf == recvbuf + rank * count * type size.
 */
#include "bench.h"

static void allgather_layout(size_t bytes, size_t tsize, int nranks,
                             size_t *count_p, size_t *send_bytes_p,
                             size_t *recv_bytes_p)
{
    size_t align = 16 / tsize;
    size_t count = bytes / tsize / (size_t)nranks / align * align;

    *count_p      = count;
    *send_bytes_p = count * tsize;
    *recv_bytes_p = count * tsize * (size_t)nranks;
}

static double allgather_alg_bytes(size_t count, size_t tsize, int nranks)
{
    return (double)count * (double)tsize * nranks;
}

static double allgather_bus_factor(int nranks)
{
    return (double)(nranks - 1) / nranks;
}

static void allgather_place(bench_call_t *call, void *sendbuf, void *recvbuf)
{
    size_t block = call->count * tutti_datatype_size(call->dtype);

    call->sendbuf =
        call->inplace ? (char *)recvbuf + (size_t)call->world->rank * block
                      : sendbuf;
    call->recvbuf = recvbuf;
}

static void allgather_fill(const bench_call_t *call)
{
    size_t tsize = tutti_datatype_size(call->dtype), i;

    /* poison first: in place, the input is a block of the output */
    bench_poison(call->recvbuf, call->count * tsize * call->world->nranks);
    for (i = 0; i < call->count; i++) {
        bench_store(call->dtype, (void *)call->sendbuf, i,
                    bench_gather_value(call->dtype, call->world->rank, i));
    }
}

static size_t allgather_check(const bench_call_t *call)
{
    size_t wrong = 0, i;
    int    r;

    for (r = 0; r < call->world->nranks; r++) {
        size_t base = (size_t)r * call->count;

        for (i = 0; i < call->count; i++) {
            double got = bench_load(call->dtype, call->recvbuf, base + i);

            if (got != bench_gather_value(call->dtype, r, i)) {
                wrong++;
            }
        }
    }
    return wrong;
}

static int allgather_run(bench_call_t *call)
{
    tutti_result_t rc = tutti_allgather(call->sendbuf, call->recvbuf,
                                        call->count, call->dtype,
                                        call->comm);

    return rc == TUTTI_SUCCESS ? 0 : bench_tutti_err(rc, "tutti_allgather");
}

const bench_coll_t bench_allgather = {
    .name       = "allgather",
    .id         = BENCH_ALLGATHER,
    .reduces    = 0,
    .rooted     = 0,
    .sized      = 1,
    .min_ranks  = 1,
    .no_inplace = NULL,
    .layout     = allgather_layout,
    .alg_bytes  = allgather_alg_bytes,
    .bus_factor = allgather_bus_factor,
    .bound_cost = 1.0,
    .place      = allgather_place,
    .fill       = allgather_fill,
    .check      = allgather_check,
    .run        = allgather_run,
};
