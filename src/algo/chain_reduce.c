/*
 * Pipelined chain reduce.
 *
 * The ranks form a chain in ring order ending at the root: root + 1 sends
 * its vector to root + 2, .., root - 1 to the root. Each rank between
 * receives its predecessor's partial sum, adds its own into SCRATCH (it
 * never touches RECV) and forwards the result as it lands
 * (recv-reduce-send); the root reduces into RECV and divides (AVG). The
 * executor cuts each step into slices, so the sum streams along the chain
 * and a chunk loop here would only add steps.
 *
 * Cost: one message of count elements per rank: latency (n-1) alpha plus
 * one slice per hop, bandwidth bytes * beta; one reduction per rank. For
 * large messages. Any n and root; SCRATCH of count on ranks in between.
 */
#include "algo.h"
#include "internal.h"

static tutti_result_t chain_reduce_supports(const tt_coll_args_t *args,
                                            const char **why_p)
{
    (void)args;
    (void)why_p;
    return TUTTI_SUCCESS;
}

static tutti_result_t chain_reduce_build(const tt_coll_args_t *args,
                                         tt_sched_t *s)
{
    int        n = args->nranks, r = args->rank;
    int        v = (r - args->root + n) % n;
    size_t     count = args->count;
    uint32_t   fin   = args->op == TUTTI_AVG ? TT_STEP_FINALIZE : 0;
    tt_range_t in    = tt_range(v == 0 && args->inplace ? TT_BUF_RECV
                                                        : TT_BUF_SEND, 0);
    tt_step_t  step  = {
        .flags     = TT_STEP_RECV,
        .recv_mode = TT_RECV_REDUCE,
        .recv_peer = (r + 1) % n,
        .send_peer = (r + n - 1) % n,
        .count     = count,
        .local     = in};

    if (n == 1) {
        return tt_step_res(tutti__sched_add(s, &(tt_step_t){
            .flags = TT_STEP_COPY | fin, .count = count, .src = in,
            .dst = tt_range(TT_BUF_RECV, 0)}));
    }
    if (v == n - 1) {
        /* the start of the chain */
        return tt_step_res(tutti__sched_send(s, step.send_peer, in, count, 0,
                                             NULL));
    }
    if (v == 0) {
        step.flags |= fin;
        step.dst    = tt_range(TT_BUF_RECV, 0);
    } else {
        s->scratch_count = count;
        step.flags      |= TT_STEP_SEND | TT_STEP_FORWARD;
        step.dst         = tt_range(TT_BUF_SCRATCH, 0);
    }
    return tt_step_res(tutti__sched_add(s, &step));
}

const tt_algo_t tutti__algo_chain_reduce = {
    .name     = "chain",
    .desc     = "pipelined chain to the root, recv-reduce-send streamed "
                "slice by slice; one message per rank, n-1 hops",
    .coll     = TT_COLL_REDUCE,
    .supports = chain_reduce_supports,
    .build    = chain_reduce_build,
};
