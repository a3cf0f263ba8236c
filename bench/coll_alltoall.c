/*
 * Alltoall as the runner sees it: sizes, bandwidth factors, buffer
 * placement, check data and the tutti call.
 *
 * Sizes follow nccl-tests (AlltoAllGetCollByteCount and AlltoAllGetBw):
 * the sweep's size is the bytes of the whole send (and receive) buffer;
 * each rank sends size / nranks bytes to every rank, rounded down to a
 * multiple of 16 bytes so every block stays aligned, so small sizes print
 * as 0. The table's `size` column is the buffer bytes actually used
 * (count * nranks * type size) and its `count` column is the per-peer
 * element count, the count passed to the call. algbw = buffer bytes /
 * time and busbw = algbw * (n-1)/n: every block but a rank's own crosses
 * a link once.
 *
 * Element i of block p on rank r is the gather value of (r, p * count +
 * i), so each block differs by source and destination; rank r's received
 * block p must be rank p's block r. In place means sendbuf == recvbuf.
 */
#include "bench.h"

static void a2a_layout(size_t bytes, size_t tsize, int nranks,
                       size_t *count_p, size_t *send_bytes_p,
                       size_t *recv_bytes_p)
{
    size_t align = 16 / tsize;
    size_t count = bytes / tsize / (size_t)nranks / align * align;

    *count_p      = count;
    *send_bytes_p = count * tsize * (size_t)nranks;
    *recv_bytes_p = count * tsize * (size_t)nranks;
}

static double a2a_alg_bytes(size_t count, size_t tsize, int nranks)
{
    return (double)count * (double)tsize * nranks;
}

static double a2a_bus_factor(int nranks)
{
    return (double)(nranks - 1) / nranks;
}

static void a2a_place(bench_call_t *call, void *sendbuf, void *recvbuf)
{
    call->sendbuf = call->inplace ? recvbuf : sendbuf;
    call->recvbuf = recvbuf;
}

static void a2a_fill(const bench_call_t *call)
{
    size_t total = call->count * (size_t)call->world->nranks, i;

    if (!call->inplace) {
        bench_poison(call->recvbuf,
                     total * tutti_datatype_size(call->dtype));
    }
    for (i = 0; i < total; i++) {
        bench_store(call->dtype, (void *)call->sendbuf, i,
                    bench_gather_value(call->dtype, call->world->rank, i));
    }
}

static size_t a2a_check(const bench_call_t *call)
{
    size_t mine  = (size_t)call->world->rank * call->count;
    size_t wrong = 0, i;
    int    p;

    for (p = 0; p < call->world->nranks; p++) {
        size_t base = (size_t)p * call->count;

        for (i = 0; i < call->count; i++) {
            double got = bench_load(call->dtype, call->recvbuf, base + i);

            if (got != bench_gather_value(call->dtype, p, mine + i)) {
                wrong++;
            }
        }
    }
    return wrong;
}

static int a2a_run(bench_call_t *call)
{
    tutti_result_t rc = tutti_alltoall(call->sendbuf, call->recvbuf,
                                       call->count, call->dtype, call->comm);

    return rc == TUTTI_SUCCESS ? 0 : bench_tutti_err(rc, "tutti_alltoall");
}

const bench_coll_t bench_alltoall = {
    .name       = "alltoall",
    .id         = BENCH_ALLTOALL,
    .reduces    = 0,
    .rooted     = 0,
    .sized      = 1,
    .min_ranks  = 1,
    .no_inplace = NULL,
    .layout     = a2a_layout,
    .alg_bytes  = a2a_alg_bytes,
    .bus_factor = a2a_bus_factor,
    .bound_cost = 1.0, /* a bus byte is one copy */
    .place      = a2a_place,
    .fill       = a2a_fill,
    .check      = a2a_check,
    .run        = a2a_run,
};
