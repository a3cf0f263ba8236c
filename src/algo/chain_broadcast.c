/*
 * Pipelined chain broadcast.
 *
 * The ranks form a chain in ring order from the root: root, root + 1, ..,
 * root - 1. Each rank but the root receives from its predecessor into RECV
 * and forwards to its successor as the data lands (recv-copy-send); the
 * executor cuts the step into slices (SLICE_SIZE, PIPELINE_DEPTH in
 * flight), so the message streams down the chain and a chunk loop here
 * would only add steps. The root sends from SEND and copies it to RECV
 * (unless in place); other ranks never read SEND.
 *
 * Cost: one message of count elements per rank: latency (n-1) alpha plus
 * one slice per hop, bandwidth bytes * beta. For large messages. Any n and
 * root; no SCRATCH.
 */
#include "algo.h"
#include "internal.h"

static tutti_result_t chain_bcast_supports(const tt_coll_args_t *args,
                                           const char **why_p)
{
    (void)args;
    (void)why_p;
    return TUTTI_SUCCESS;
}

static tutti_result_t chain_bcast_build(const tt_coll_args_t *args,
                                        tt_sched_t *s)
{
    int       n = args->nranks, r = args->rank;
    int       v = (r - args->root + n) % n;
    size_t    count = args->count;
    tt_step_t step  = {.count = count, .send_peer = (r + 1) % n};

    if (v == 0) {
        if (!args->inplace) {
            TT_CHECK(tt_step_res(tutti__sched_copy(
                s, tt_range(TT_BUF_SEND, 0), tt_range(TT_BUF_RECV, 0),
                count, 0, NULL)));
        }
        if (n == 1) {
            return TUTTI_SUCCESS;
        }
        step.flags = TT_STEP_SEND;
        step.src   = tt_range(args->inplace ? TT_BUF_RECV : TT_BUF_SEND, 0);
    } else {
        step.flags     = TT_STEP_RECV;
        step.recv_mode = TT_RECV_COPY;
        step.recv_peer = (r + n - 1) % n;
        step.dst       = tt_range(TT_BUF_RECV, 0);
        if (v < n - 1) {
            step.flags |= TT_STEP_SEND | TT_STEP_FORWARD;
        }
    }
    return tt_step_res(tutti__sched_add(s, &step));
}

const tt_algo_t tutti__algo_chain_broadcast = {
    .name     = "chain",
    .desc     = "pipelined chain from the root, streamed slice by slice; "
                "one message per rank, n-1 hops",
    .coll     = TT_COLL_BROADCAST,
    .supports = chain_bcast_supports,
    .build    = chain_bcast_build,
};
