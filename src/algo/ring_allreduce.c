/*
 * Ring allreduce: a reduce-scatter ring followed by an allgather ring.
 *
 * The buffer is cut into n chunks. In the reduce-scatter phase, rank r sends
 * chunk r to its right neighbour, then for k = 1 .. n-1 receives chunk
 * (r - k) from its left, reduces it with its own contribution and (but for
 * the last round) forwards the partial sum to the right, slice by slice as
 * it lands (recv-reduce-send). After n-1 rounds rank r holds the complete
 * chunk (r + 1); AVG divides it there, once. The allgather phase circulates
 * the finished chunks the same way with recv-copy-send.
 *
 * Cost: 2(n-1) steps, each moving count/n elements per rank: latency
 * 2(n-1) alpha, bandwidth 2(n-1)/n * bytes * beta, n-1 reductions of count/n.
 * Bandwidth-optimal; latency grows linearly with n, so small messages on
 * many ranks want a tree or recursive doubling instead.
 *
 * In place (sendbuf == recvbuf) works because chunk r, read by the first
 * send, is overwritten only by the allgather round that delivers it back,
 * which is made to depend on that send.
 */
#include "algo.h"

static tutti_result_t ring_allreduce_supports(const tt_coll_args_t *args,
                                              const char **why_p)
{
    (void)args;
    (void)why_p;
    return TUTTI_SUCCESS;
}

static tutti_result_t ring_allreduce_build(const tt_coll_args_t *args,
                                           tt_sched_t *s)
{
    int        n = args->nranks, r = args->rank;
    int        left = (r + n - 1) % n, right = (r + 1) % n;
    size_t     count = args->count;
    int        first, last = -1, k, st;
    tt_buf_t   in = args->inplace ? TT_BUF_RECV : TT_BUF_SEND;
    tt_step_t  step;

    if (n == 1) {
        st = tutti__sched_add(s, &(tt_step_t){
            .flags = TT_STEP_COPY |
                     (args->op == TUTTI_AVG ? TT_STEP_FINALIZE : 0),
            .count = count,
            .src   = tt_range(in, 0),
            .dst   = tt_range(TT_BUF_RECV, 0)});
        return st < 0 ? (tutti_result_t)st : TUTTI_SUCCESS;
    }

    /* reduce-scatter: send chunk r, then receive-reduce(-forward) */
    first = tutti__sched_send(s, right, tt_range(in, tt_chunk_off(count, n, r)),
                              tt_chunk_count(count, n, r), 0, NULL);
    if (first < 0) {
        return (tutti_result_t)first;
    }
    for (k = 1; k < n; k++) {
        int c = ((r - k) % n + n) % n;

        step = (tt_step_t){
            .flags     = TT_STEP_RECV,
            .recv_mode = TT_RECV_REDUCE,
            .recv_peer = left,
            .count     = tt_chunk_count(count, n, c),
            .dst       = tt_range(TT_BUF_RECV, tt_chunk_off(count, n, c)),
            .local     = tt_range(in, tt_chunk_off(count, n, c))};
        if (k < n - 1) {
            step.flags    |= TT_STEP_SEND | TT_STEP_FORWARD;
            step.send_peer = right;
        } else if (args->op == TUTTI_AVG) {
            step.flags |= TT_STEP_FINALIZE;
        }
        last = tutti__sched_add(s, &step);
        if (last < 0) {
            return (tutti_result_t)last;
        }
    }

    /* allgather: send the finished chunk r+1, then receive-copy(-forward) */
    st = tutti__sched_send(s, right,
                           tt_range(TT_BUF_RECV,
                                    tt_chunk_off(count, n, (r + 1) % n)),
                           tt_chunk_count(count, n, (r + 1) % n), 1, &last);
    if (st < 0) {
        return (tutti_result_t)st;
    }
    for (k = 1; k < n; k++) {
        int c = ((r + 1 - k) % n + n) % n;

        step = (tt_step_t){
            .flags     = TT_STEP_RECV,
            .recv_mode = TT_RECV_COPY,
            .recv_peer = left,
            .count     = tt_chunk_count(count, n, c),
            .dst       = tt_range(TT_BUF_RECV, tt_chunk_off(count, n, c))};
        if (k < n - 1) {
            step.flags    |= TT_STEP_SEND | TT_STEP_FORWARD;
            step.send_peer = right;
        }
        if (c == r) {
            /* overwrites chunk r, which the very first send reads */
            step.ndeps   = 1;
            step.deps[0] = first;
        }
        st = tutti__sched_add(s, &step);
        if (st < 0) {
            return (tutti_result_t)st;
        }
    }
    return TUTTI_SUCCESS;
}

const tt_algo_t tutti__algo_ring_allreduce = {
    .name     = "ring",
    .desc     = "reduce-scatter ring + allgather ring, pipelined; "
                "bandwidth-optimal, 2(n-1) steps",
    .coll     = TT_COLL_ALLREDUCE,
    .supports = ring_allreduce_supports,
    .build    = ring_allreduce_build,
};
