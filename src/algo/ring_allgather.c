/*
 * Ring allgather.
 *
 * Rank r copies its own block into place (unless in place) and sends it to
 * its right neighbour; then for k = 1 .. n-1 it receives block (r - k) from
 * its left into recvbuf and, but for the last round, forwards it to the
 * right slice by slice as it lands (recv-copy-send).
 *
 * Cost: n-1 steps of count elements each: latency (n-1) alpha, bandwidth
 * (n-1)/n * total bytes * beta. Bandwidth-optimal, linear latency.
 */
#include "algo.h"

static tutti_result_t ring_allgather_supports(const tt_coll_args_t *args,
                                              const char **why_p)
{
    (void)args;
    (void)why_p;
    return TUTTI_SUCCESS;
}

static tutti_result_t ring_allgather_build(const tt_coll_args_t *args,
                                           tt_sched_t *s)
{
    int       n = args->nranks, r = args->rank;
    int       left = (r + n - 1) % n, right = (r + 1) % n;
    size_t    count = args->count;
    int       k, st;
    tt_range_t own = args->inplace ? tt_range(TT_BUF_RECV, (size_t)r * count)
                                   : tt_range(TT_BUF_SEND, 0);

    if (!args->inplace) {
        st = tutti__sched_copy(s, own, tt_range(TT_BUF_RECV, (size_t)r * count),
                               count, 0, NULL);
        if (st < 0) {
            return (tutti_result_t)st;
        }
    }
    if (n == 1) {
        return TUTTI_SUCCESS;
    }
    st = tutti__sched_send(s, right, own, count, 0, NULL);
    if (st < 0) {
        return (tutti_result_t)st;
    }
    for (k = 1; k < n; k++) {
        int       c    = ((r - k) % n + n) % n;
        tt_step_t step = {
            .flags     = TT_STEP_RECV,
            .recv_mode = TT_RECV_COPY,
            .recv_peer = left,
            .count     = count,
            .dst       = tt_range(TT_BUF_RECV, (size_t)c * count)};

        if (k < n - 1) {
            step.flags    |= TT_STEP_SEND | TT_STEP_FORWARD;
            step.send_peer = right;
        }
        st = tutti__sched_add(s, &step);
        if (st < 0) {
            return (tutti_result_t)st;
        }
    }
    return TUTTI_SUCCESS;
}

const tt_algo_t tutti__algo_ring_allgather = {
    .name     = "ring",
    .desc     = "ring, pipelined recv-copy-send; bandwidth-optimal, n-1 "
                "steps",
    .coll     = TT_COLL_ALLGATHER,
    .supports = ring_allgather_supports,
    .build    = ring_allgather_build,
};
