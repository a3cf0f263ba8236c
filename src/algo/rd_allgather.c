/*
 * Recursive-doubling allgather.
 *
 * On p = 2^L participants, round k (k = 0 .. L-1) swaps the window of
 * blocks gathered so far with the participant whose number differs in bit
 * k; windows double each round and are always contiguous in RECV. Other
 * rank counts fold the extra ranks first (algo.h, tt_fold): the extra rank
 * sends its block to its partner, which then stands for two blocks, and at
 * the end the partner sends it every block but its own (two messages, so
 * the extra rank's own block, its send buffer when in place, is never
 * written). Windows of unequal sizes mean separate send and receive steps.
 *
 * Cost: L = log2(p) steps (+3 with folding); each rank sends (n-1) * count
 * elements (a folding partner, whose windows hold up to 2 blocks per
 * participant, up to (2(p-1) + n-1) * count): latency L alpha, bandwidth
 * (n-1)/n * total bytes * beta. Any n; no SCRATCH.
 */
#include "algo.h"
#include "internal.h"

static tutti_result_t rd_allgather_supports(const tt_coll_args_t *args,
                                            const char **why_p)
{
    (void)args;
    (void)why_p;
    return TUTTI_SUCCESS;
}

static tutti_result_t rd_allgather_build(const tt_coll_args_t *args,
                                         tt_sched_t *s)
{
    int        n = args->nranks, r = args->rank;
    tt_fold_t  f = tt_fold(r, n);
    size_t     count = args->count;
    tt_range_t own = args->inplace ? tt_range(TT_BUF_RECV, (size_t)r * count)
                                   : tt_range(TT_BUF_SEND, 0);
    int        have = -1, st, lo, hi, mask;

    if (!args->inplace) {
        have = tutti__sched_copy(s, own, tt_range(TT_BUF_RECV,
                                                  (size_t)r * count),
                                 count, 0, NULL);
        TT_CHECK(tt_step_res(have));
    }
    if (n == 1) {
        return TUTTI_SUCCESS;
    }
    if (f.v < 0) {
        /* folded out: hand the block over, get the others back */
        TT_CHECK(tt_step_res(tutti__sched_send(s, r + 1, own, count, 0,
                                               NULL)));
        TT_CHECK(tt_step_res(tutti__sched_recv(s, r + 1,
                                               tt_range(TT_BUF_RECV, 0),
                                               (size_t)r * count, 0, NULL)));
        return tt_step_res(tutti__sched_recv(
            s, r + 1, tt_range(TT_BUF_RECV, (size_t)(r + 1) * count),
            (size_t)(n - r - 1) * count, 0, NULL));
    }
    if (r < 2 * f.rem) {
        st = tutti__sched_recv(s, r - 1,
                               tt_range(TT_BUF_RECV, (size_t)(r - 1) * count),
                               count, have >= 0 ? 1 : 0, &have);
        TT_CHECK(tt_step_res(st));
        have = st;
    }
    /* `have` is the last step that wrote the window: every receive so far
     * is chained through it */
    lo = f.v;
    hi = f.v + 1;
    for (mask = 1; mask < f.p; mask *= 2) {
        int    peer = tt_fold_rank(&f, f.v ^ mask);
        int    plo  = (f.v & mask) ? lo - mask : hi;
        size_t b0   = (size_t)tt_fold_first(&f, lo);
        size_t b1   = (size_t)tt_fold_first(&f, hi);
        size_t p0   = (size_t)tt_fold_first(&f, plo);
        size_t p1   = (size_t)tt_fold_first(&f, plo + mask);

        st = tutti__sched_send(s, peer, tt_range(TT_BUF_RECV, b0 * count),
                               (b1 - b0) * count, have >= 0 ? 1 : 0, &have);
        TT_CHECK(tt_step_res(st));
        st = tutti__sched_recv(s, peer, tt_range(TT_BUF_RECV, p0 * count),
                               (p1 - p0) * count, have >= 0 ? 1 : 0, &have);
        TT_CHECK(tt_step_res(st));
        have = st;
        lo   = lo < plo ? lo : plo;
        hi   = lo + 2 * mask;
    }
    if (r < 2 * f.rem) {
        /* everything but block r - 1, in two pieces */
        st = tutti__sched_send(s, r - 1, tt_range(TT_BUF_RECV, 0),
                               (size_t)(r - 1) * count, 1, &have);
        TT_CHECK(tt_step_res(st));
        st = tutti__sched_send(s, r - 1,
                               tt_range(TT_BUF_RECV, (size_t)r * count),
                               (size_t)(n - r) * count, 1, &have);
        TT_CHECK(tt_step_res(st));
    }
    return TUTTI_SUCCESS;
}

const tt_algo_t tutti__algo_rd_allgather = {
    .name     = "rd",
    .desc     = "recursive doubling, windows swapped and doubled; "
                "ceil(log2 n) steps (+3 if n is not a power of two)",
    .coll     = TT_COLL_ALLGATHER,
    .supports = rd_allgather_supports,
    .build    = rd_allgather_build,
};
