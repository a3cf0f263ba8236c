/*
 * Recursive-doubling allreduce.
 *
 * On p = 2^L participants, round k exchanges the whole vector with the
 * participant whose number differs in bit k and reduces: after L rounds
 * every participant holds the sum. A round sends one buffer and receives
 * into another (dst = cur OP incoming), so rounds alternate between RECV
 * and SCRATCH, arranged so that the last lands in RECV (in place with L
 * odd, a local copy to SCRATCH comes first). Other rank counts fold the
 * extra ranks first (algo.h, tt_fold): the extra rank sends its vector to
 * its partner before the rounds and receives the result after them.
 *
 * Cost: L = floor(log2 n) steps of count elements each (L + 2 with
 * folding), each costing alpha + bytes * beta on the critical path; a rank
 * sends at most L + 1 messages. Latency-optimal, for small messages. Any
 * n; SCRATCH of count elements.
 */
#include "algo.h"
#include "internal.h"

static tutti_result_t rd_allreduce_supports(const tt_coll_args_t *args,
                                            const char **why_p)
{
    (void)args;
    (void)why_p;
    return TUTTI_SUCCESS;
}

/* Where write w of `writes` goes: alternating, the last one in RECV. */
static tt_range_t rd_target(int w, int writes)
{
    return tt_range((writes - 1 - w) % 2 == 0 ? TT_BUF_RECV : TT_BUF_SCRATCH,
                    0);
}

static tutti_result_t rd_allreduce_build(const tt_coll_args_t *args,
                                         tt_sched_t *s)
{
    int        n = args->nranks, r = args->rank;
    tt_fold_t  f = tt_fold(r, n);
    int        folded = r < 2 * f.rem;
    size_t     count  = args->count;
    uint32_t   fin    = args->op == TUTTI_AVG ? TT_STEP_FINALIZE : 0;
    tt_range_t in  = tt_range(args->inplace ? TT_BUF_RECV : TT_BUF_SEND, 0);
    tt_range_t cur = in;
    int        prev = -1, k, w = 0, writes;

    if (n == 1) {
        return tt_step_res(tutti__sched_add(s, &(tt_step_t){
            .flags = TT_STEP_COPY | fin, .count = count, .src = in,
            .dst = tt_range(TT_BUF_RECV, 0)}));
    }
    if (f.v < 0) {
        /* folded out: hand the vector over, get the result back */
        prev = tutti__sched_send(s, r + 1, in, count, 0, NULL);
        if (prev < 0) {
            return (tutti_result_t)prev;
        }
        return tt_step_res(tutti__sched_recv(s, r + 1,
                                             tt_range(TT_BUF_RECV, 0), count,
                                             1, &prev));
    }
    writes = f.log2p + folded;
    if (folded) {
        /* a receive without a send may reduce in place */
        cur  = rd_target(w++, writes);
        prev = tutti__sched_add(s, &(tt_step_t){
            .flags = TT_STEP_RECV, .recv_mode = TT_RECV_REDUCE,
            .recv_peer = r - 1, .count = count, .dst = cur, .local = in});
        TT_CHECK(tt_step_res(prev));
    } else if (args->inplace && writes % 2 == 1) {
        /* round 0 would receive into RECV while sending from it */
        cur  = tt_range(TT_BUF_SCRATCH, 0);
        prev = tutti__sched_copy(s, in, cur, count, 0, NULL);
        TT_CHECK(tt_step_res(prev));
    }
    if (writes > 1 || cur.buf == TT_BUF_SCRATCH) {
        s->scratch_count = count;
    }
    for (k = 0; k < f.log2p; k++) {
        int       peer = tt_fold_rank(&f, f.v ^ (1 << k));
        tt_step_t step = {
            .flags     = TT_STEP_RECV | TT_STEP_SEND,
            .recv_mode = TT_RECV_REDUCE,
            .recv_peer = peer,
            .send_peer = peer,
            .count     = count,
            .dst       = rd_target(w++, writes),
            .src       = cur,
            .local     = cur};

        if (k == f.log2p - 1) {
            step.flags |= fin;
        }
        if (prev >= 0) {
            step.ndeps   = 1;
            step.deps[0] = prev;
        }
        prev = tutti__sched_add(s, &step);
        TT_CHECK(tt_step_res(prev));
        cur = step.dst;
    }
    if (folded) {
        prev = tutti__sched_send(s, r - 1, tt_range(TT_BUF_RECV, 0), count,
                                 1, &prev);
    }
    return tt_step_res(prev);
}

const tt_algo_t tutti__algo_rd_allreduce = {
    .name     = "rd",
    .desc     = "recursive doubling, whole vector each round; "
                "latency-optimal, log2(n) steps (+2 if n is not a power "
                "of two)",
    .coll     = TT_COLL_ALLREDUCE,
    .supports = rd_allreduce_supports,
    .build    = rd_allreduce_build,
};
