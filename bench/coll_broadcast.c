/*
 * Broadcast as the runner sees it: sizes, bandwidth factors, buffer
 * placement, check data and the tutti call.
 *
 * Sizes follow nccl-tests (BroadcastGetCollByteCount and BroadcastGetBw):
 * the sweep's size is the bytes of one buffer, the count is size / type
 * size, algbw = count * type size / time and busbw = algbw: every rank but
 * the root must receive the whole buffer once, and a pipelined chain
 * reaches that on every link at once. -r picks the root (default 0).
 *
 * The root's send buffer holds the data (the gather values of rank
 * `root`); every other rank's send buffer is poisoned, so a library that
 * reads it where the API says it is ignored gets caught. Every rank's
 * receive buffer, the root's included, must end with the root's data.
 * In place means sendbuf == recvbuf.
 */
#include "bench.h"

static void bcast_layout(size_t bytes, size_t tsize, int nranks,
                         size_t *count_p, size_t *send_bytes_p,
                         size_t *recv_bytes_p)
{
    size_t count = bytes / tsize;

    (void)nranks;
    *count_p      = count;
    *send_bytes_p = count * tsize;
    *recv_bytes_p = count * tsize;
}

static double bcast_alg_bytes(size_t count, size_t tsize, int nranks)
{
    (void)nranks;
    return (double)count * (double)tsize;
}

static double bcast_bus_factor(int nranks)
{
    (void)nranks;
    return 1.0;
}

static void bcast_place(bench_call_t *call, void *sendbuf, void *recvbuf)
{
    call->sendbuf = call->inplace ? recvbuf : sendbuf;
    call->recvbuf = recvbuf;
}

static void bcast_fill(const bench_call_t *call)
{
    size_t bytes = call->count * tutti_datatype_size(call->dtype), i;

    bench_poison(call->recvbuf, bytes);
    if (call->world->rank != call->root) {
        bench_poison((void *)call->sendbuf, bytes);
        return;
    }
    for (i = 0; i < call->count; i++) {
        bench_store(call->dtype, (void *)call->sendbuf, i,
                    bench_gather_value(call->dtype, call->root, i));
    }
}

static size_t bcast_check(const bench_call_t *call)
{
    size_t wrong = 0, i;

    for (i = 0; i < call->count; i++) {
        double got = bench_load(call->dtype, call->recvbuf, i);

        if (got != bench_gather_value(call->dtype, call->root, i)) {
            wrong++;
        }
    }
    return wrong;
}

static int bcast_run(bench_call_t *call)
{
    tutti_result_t rc = tutti_broadcast(call->sendbuf, call->recvbuf,
                                        call->count, call->dtype, call->root,
                                        call->comm);

    return rc == TUTTI_SUCCESS ? 0 : bench_tutti_err(rc, "tutti_broadcast");
}

const bench_coll_t bench_broadcast = {
    .name       = "broadcast",
    .id         = BENCH_BROADCAST,
    .reduces    = 0,
    .rooted     = 1,
    .sized      = 1,
    .min_ranks  = 1,
    .no_inplace = NULL,
    .layout     = bcast_layout,
    .alg_bytes  = bcast_alg_bytes,
    .bus_factor = bcast_bus_factor,
    .bound_cost = 1.0, /* a bus byte is one copy */
    .place      = bcast_place,
    .fill       = bcast_fill,
    .check      = bcast_check,
    .run        = bcast_run,
};
