/*
 * Dissemination barrier.
 *
 * In round k = 0 .. ceil(log2 n) - 1, rank r sends one byte to r + 2^k
 * and receives one from r - 2^k (mod n); a round starts when the one
 * before has completed. After round k a rank has heard, directly or
 * through others, from the 2^(k+1) ranks before it, so after the last
 * round from all of them: none can leave before every rank has entered.
 * The bytes carry nothing: they go from SCRATCH[0] into SCRATCH[1].
 *
 * Cost: ceil(log2 n) steps of one byte each way: latency ceil(log2 n)
 * alpha. Any n; SCRATCH of 2 bytes. Expects datatype uint8, count 1.
 */
#include "algo.h"
#include "internal.h"

static tutti_result_t dissemination_supports(const tt_coll_args_t *args,
                                             const char **why_p)
{
    if (tutti_datatype_size(args->datatype) != 1) {
        *why_p = "the barrier moves bytes: datatype must be 1 byte wide";
        return TUTTI_ERR_UNSUPPORTED;
    }
    return TUTTI_SUCCESS;
}

static tutti_result_t dissemination_build(const tt_coll_args_t *args,
                                          tt_sched_t *s)
{
    int n = args->nranks, r = args->rank, d, st = -1;

    s->scratch_count = n > 1 ? 2 : 0;
    for (d = 1; d < n; d *= 2) {
        st = tutti__sched_add(s, &(tt_step_t){
            .flags     = TT_STEP_SEND | TT_STEP_RECV,
            .recv_mode = TT_RECV_COPY,
            .send_peer = (r + d) % n,
            .recv_peer = (r - d + n) % n,
            .count     = 1,
            .src       = tt_range(TT_BUF_SCRATCH, 0),
            .dst       = tt_range(TT_BUF_SCRATCH, 1),
            .ndeps     = st >= 0 ? 1 : 0,
            .deps      = {st}});
        TT_CHECK(tt_step_res(st));
    }
    return TUTTI_SUCCESS;
}

const tt_algo_t tutti__algo_dissemination_barrier = {
    .name     = "dissemination",
    .desc     = "dissemination, round k with ranks r+2^k and r-2^k; "
                "ceil(log2 n) steps of one byte",
    .coll     = TT_COLL_BARRIER,
    .supports = dissemination_supports,
    .build    = dissemination_build,
};
