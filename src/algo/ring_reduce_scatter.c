/*
 * Ring reduce-scatter.
 *
 * Block b is SEND[b * count, (b + 1) * count). Rank r sends block r - 1 to
 * its right neighbour; then for k = 1 .. n-1 it receives the partial sum of
 * block c = r - 1 - k from its left, adds its own block c and, but for the
 * last round, forwards the sum to the right as it lands (recv-reduce-send).
 * The last round is block r, reduced into RECV (AVG divides it there). The
 * partial sums in flight live in two SCRATCH slots used in turn; a round
 * waits for the round before last, the one that used its slot.
 *
 * Cost: n-1 steps of count elements: latency (n-1) alpha, bandwidth
 * (n-1)/n * total bytes * beta. Bandwidth-optimal. Any n; SCRATCH of
 * 2 * count (count when n = 3, none below).
 */
#include "algo.h"
#include "internal.h"

static tutti_result_t ring_rs_supports(const tt_coll_args_t *args,
                                       const char **why_p)
{
    (void)args;
    (void)why_p;
    return TUTTI_SUCCESS;
}

static tutti_result_t ring_rs_build(const tt_coll_args_t *args,
                                    tt_sched_t *s)
{
    int    n = args->nranks, r = args->rank;
    int    left = (r + n - 1) % n, right = (r + 1) % n;
    size_t count = args->count;
    int    k, st, round[2] = {-1, -1};

    if (n == 1) {
        return tt_step_res(tutti__sched_add(s, &(tt_step_t){
            .flags = TT_STEP_COPY |
                     (args->op == TUTTI_AVG ? TT_STEP_FINALIZE : 0),
            .count = count,
            .src   = tt_range(TT_BUF_SEND, 0),
            .dst   = tt_range(TT_BUF_RECV, 0)}));
    }
    s->scratch_count = (size_t)TT_MIN(n - 2, 2) * count;
    st = tutti__sched_send(s, right,
                           tt_range(TT_BUF_SEND, (size_t)left * count), count,
                           0, NULL);
    TT_CHECK(tt_step_res(st));
    for (k = 1; k < n; k++) {
        size_t    c    = (size_t)((r - 1 - k + 2 * n) % n);
        int       slot = (k - 1) % 2;
        tt_step_t step = {
            .flags     = TT_STEP_RECV,
            .recv_mode = TT_RECV_REDUCE,
            .recv_peer = left,
            .count     = count,
            .local     = tt_range(TT_BUF_SEND, c * count)};

        if (k < n - 1) {
            step.flags    |= TT_STEP_SEND | TT_STEP_FORWARD;
            step.send_peer = right;
            step.dst       = tt_range(TT_BUF_SCRATCH, (size_t)slot * count);
            if (round[slot] >= 0) {
                step.ndeps   = 1;
                step.deps[0] = round[slot];
            }
        } else {
            step.dst = tt_range(TT_BUF_RECV, 0);
            if (args->op == TUTTI_AVG) {
                step.flags |= TT_STEP_FINALIZE;
            }
        }
        st = tutti__sched_add(s, &step);
        TT_CHECK(tt_step_res(st));
        round[slot] = st;
    }
    return TUTTI_SUCCESS;
}

const tt_algo_t tutti__algo_ring_reduce_scatter = {
    .name     = "ring",
    .desc     = "ring, pipelined recv-reduce-send; bandwidth-optimal, n-1 "
                "steps",
    .coll     = TT_COLL_REDUCE_SCATTER,
    .supports = ring_rs_supports,
    .build    = ring_rs_build,
};
