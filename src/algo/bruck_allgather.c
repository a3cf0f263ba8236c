/*
 * Bruck allgather.
 *
 * Rank r gathers in SCRATCH, where slot i holds block (r + i) mod n. It
 * copies its own block to slot 0; then for d = 1, 2, 4, ... < n it sends
 * slots [0, m) to rank r - d and receives slots [d, d + m) from rank r + d,
 * m = min(d, n - d) (their slots [0, m) are blocks r + d .. r + d + m - 1).
 * A final rotation copies slots [1, n) into place in RECV; its own block
 * goes straight from SEND (never written when in place).
 *
 * Cost: ceil(log2 n) steps; each rank sends (n-1) * count elements:
 * latency ceil(log2 n) alpha, bandwidth (n-1)/n * total bytes * beta, plus
 * two local copies of the whole result. Any n; SCRATCH of n * count.
 */
#include "algo.h"
#include "internal.h"

static tutti_result_t bruck_allgather_supports(const tt_coll_args_t *args,
                                               const char **why_p)
{
    (void)args;
    (void)why_p;
    return TUTTI_SUCCESS;
}

static tutti_result_t bruck_allgather_build(const tt_coll_args_t *args,
                                            tt_sched_t *s)
{
    int        n = args->nranks, r = args->rank, d, st;
    size_t     count = args->count;
    tt_range_t own = args->inplace ? tt_range(TT_BUF_RECV, (size_t)r * count)
                                   : tt_range(TT_BUF_SEND, 0);

    if (!args->inplace) {
        TT_CHECK(tt_step_res(tutti__sched_copy(
            s, own, tt_range(TT_BUF_RECV, (size_t)r * count), count, 0,
            NULL)));
    }
    if (n == 1) {
        return TUTTI_SUCCESS;
    }
    s->scratch_count = (size_t)n * count;
    st = tutti__sched_copy(s, own, tt_range(TT_BUF_SCRATCH, 0), count, 0,
                           NULL);
    TT_CHECK(tt_step_res(st));
    for (d = 1; d < n; d *= 2) {
        size_t m = (size_t)TT_MIN(d, n - d) * count;

        st = tutti__sched_add(s, &(tt_step_t){
            .flags     = TT_STEP_RECV | TT_STEP_SEND,
            .recv_mode = TT_RECV_COPY,
            .recv_peer = (r + d) % n,
            .send_peer = (r - d + n) % n,
            .count     = m,
            .src       = tt_range(TT_BUF_SCRATCH, 0),
            .dst       = tt_range(TT_BUF_SCRATCH, (size_t)d * count),
            .ndeps     = 1,
            .deps      = {st}});
        TT_CHECK(tt_step_res(st));
    }
    /* rotate: slots [1, n - r) are blocks r+1 .. n-1, the rest 0 .. r-1 */
    TT_CHECK(tt_step_res(tutti__sched_copy(
        s, tt_range(TT_BUF_SCRATCH, count),
        tt_range(TT_BUF_RECV, (size_t)(r + 1) * count),
        (size_t)(n - r - 1) * count, 1, &st)));
    return tt_step_res(tutti__sched_copy(
        s, tt_range(TT_BUF_SCRATCH, (size_t)(n - r) * count),
        tt_range(TT_BUF_RECV, 0), (size_t)r * count, 1, &st));
}

const tt_algo_t tutti__algo_bruck_allgather = {
    .name     = "bruck",
    .desc     = "Bruck: log-step concatenation in SCRATCH, then a "
                "rotation; ceil(log2 n) steps, any n",
    .coll     = TT_COLL_ALLGATHER,
    .supports = bruck_allgather_supports,
    .build    = bruck_allgather_build,
};
