/*
 * Send/recv as the runner sees it: a ring in which every rank sends its
 * buffer to the right (rank + 1) and receives the left one's (rank - 1),
 * both in one tutti_group_start()/tutti_group_end(), as nccl-tests'
 * sendrecv test does. It measures point-to-point bandwidth with every
 * link busy at once.
 *
 * Sizes follow nccl-tests (SendRecvGetCollByteCount and SendRecvGetBw):
 * the sweep's size is the bytes of one buffer, the count is size / type
 * size, algbw = count * type size / time and busbw = algbw (factor 1):
 * each rank sends and receives the buffer once. There is no in-place
 * form: a rank's receive would overwrite what its send is still reading
 * (tutti's send and receive buffers must not alias), and a rank cannot
 * send to itself, so the ring needs 2 ranks or more.
 */
#include "bench.h"

static void sendrecv_layout(size_t bytes, size_t tsize, int nranks,
                            size_t *count_p, size_t *send_bytes_p,
                            size_t *recv_bytes_p)
{
    size_t count = bytes / tsize;

    (void)nranks;
    *count_p      = count;
    *send_bytes_p = count * tsize;
    *recv_bytes_p = count * tsize;
}

static double sendrecv_alg_bytes(size_t count, size_t tsize, int nranks)
{
    (void)nranks;
    return (double)count * (double)tsize;
}

static double sendrecv_bus_factor(int nranks)
{
    (void)nranks;
    return 1.0;
}

static void sendrecv_place(bench_call_t *call, void *sendbuf, void *recvbuf)
{
    call->sendbuf = sendbuf;
    call->recvbuf = recvbuf;
}

static int left_of(const bench_call_t *call)
{
    int n = call->world->nranks;

    return (call->world->rank + n - 1) % n;
}

static void sendrecv_fill(const bench_call_t *call)
{
    size_t i;

    bench_poison(call->recvbuf,
                 call->count * tutti_datatype_size(call->dtype));
    for (i = 0; i < call->count; i++) {
        bench_store(call->dtype, (void *)call->sendbuf, i,
                    bench_gather_value(call->dtype, call->world->rank, i));
    }
}

static size_t sendrecv_check(const bench_call_t *call)
{
    int    left  = left_of(call);
    size_t wrong = 0, i;

    for (i = 0; i < call->count; i++) {
        double got = bench_load(call->dtype, call->recvbuf, i);

        if (got != bench_gather_value(call->dtype, left, i)) {
            wrong++;
        }
    }
    return wrong;
}

/* The group issues both together, so neither waits for the other. */
static int sendrecv_run(bench_call_t *call)
{
    int            right = (call->world->rank + 1) % call->world->nranks;
    tutti_result_t rc, end;

    rc = tutti_group_start();
    if (rc != TUTTI_SUCCESS) {
        return bench_tutti_err(rc, "tutti_group_start");
    }
    rc = tutti_send(call->sendbuf, call->count, call->dtype, right,
                    call->comm);
    if (rc == TUTTI_SUCCESS) {
        rc = tutti_recv(call->recvbuf, call->count, call->dtype,
                        left_of(call), call->comm);
    }
    end = tutti_group_end(); /* always: the group must be closed */
    if (rc != TUTTI_SUCCESS) {
        return bench_tutti_err(rc, "tutti_send/tutti_recv");
    }
    return end == TUTTI_SUCCESS ? 0 : bench_tutti_err(end, "tutti_group_end");
}

const bench_coll_t bench_sendrecv = {
    .name       = "sendrecv",
    .id         = BENCH_SENDRECV,
    .reduces    = 0,
    .rooted     = 0,
    .sized      = 1,
    .min_ranks  = 2,
    .no_inplace = "send and receive buffers must differ",
    .layout     = sendrecv_layout,
    .alg_bytes  = sendrecv_alg_bytes,
    .bus_factor = sendrecv_bus_factor,
    .bound_cost = 1.0, /* a bus byte is one copy */
    .place      = sendrecv_place,
    .fill       = sendrecv_fill,
    .check      = sendrecv_check,
    .run        = sendrecv_run,
};
