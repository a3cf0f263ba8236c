/*
 * Pairwise-exchange alltoall.
 *
 * Rank r copies its own block into place (unless in place), then in round
 * k = 1 .. n-1 sends block (r + k) mod n to rank r + k and receives block
 * (r - k) mod n from rank r - k: every round is a perfect matching, so no
 * rank is the target of two senders at once. A round waits for the one
 * TT_PAIRWISE_WINDOW before it, which bounds the messages in flight. In
 * place, the blocks are copied to SCRATCH first and sent from there (a
 * round's receive would overwrite a block a later round still sends).
 *
 * Cost: n-1 steps of count elements each way: latency (n-1) alpha,
 * bandwidth (n-1)/n * total bytes * beta. Any n; SCRATCH of n * count in
 * place, none otherwise.
 */
#include "algo.h"
#include "internal.h"

/* Rounds in flight; provisional until the tuner measures. */
#define TT_PAIRWISE_WINDOW 4

static tutti_result_t pairwise_supports(const tt_coll_args_t *args,
                                        const char **why_p)
{
    (void)args;
    (void)why_p;
    return TUTTI_SUCCESS;
}

static tutti_result_t pairwise_build(const tt_coll_args_t *args,
                                     tt_sched_t *s)
{
    int      n = args->nranks, r = args->rank, k, st;
    size_t   count = args->count;
    tt_buf_t from  = args->inplace ? TT_BUF_SCRATCH : TT_BUF_SEND;

    if (args->inplace && n == 1) {
        return TUTTI_SUCCESS;
    }
    /* step 0 is the copy, step k round k */
    if (args->inplace) {
        s->scratch_count = (size_t)n * count;
        st = tutti__sched_copy(s, tt_range(TT_BUF_RECV, 0),
                               tt_range(TT_BUF_SCRATCH, 0),
                               (size_t)n * count, 0, NULL);
    } else {
        st = tutti__sched_copy(s, tt_range(TT_BUF_SEND, (size_t)r * count),
                               tt_range(TT_BUF_RECV, (size_t)r * count),
                               count, 0, NULL);
    }
    TT_CHECK(tt_step_res(st));
    for (k = 1; k < n; k++) {
        int       to = (r + k) % n, fr = (r - k + n) % n;
        tt_step_t step = {
            .flags     = TT_STEP_SEND | TT_STEP_RECV,
            .recv_mode = TT_RECV_COPY,
            .send_peer = to,
            .recv_peer = fr,
            .count     = count,
            .src       = tt_range(from, (size_t)to * count),
            .dst       = tt_range(TT_BUF_RECV, (size_t)fr * count)};

        if (args->inplace) {
            /* the copy read what the receive overwrites */
            step.deps[step.ndeps++] = 0;
        }
        if (k > TT_PAIRWISE_WINDOW) {
            step.deps[step.ndeps++] = k - TT_PAIRWISE_WINDOW;
        }
        TT_CHECK(tt_step_res(tutti__sched_add(s, &step)));
    }
    return TUTTI_SUCCESS;
}

const tt_algo_t tutti__algo_pairwise_alltoall = {
    .name     = "pairwise",
    .desc     = "pairwise exchange, round k with ranks r+k and r-k; n-1 "
                "steps, a window of rounds in flight",
    .coll     = TT_COLL_ALLTOALL,
    .supports = pairwise_supports,
    .build    = pairwise_build,
};
