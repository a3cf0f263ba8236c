/*
 * Binomial-tree reduce.
 *
 * The mirror of the binomial broadcast: ranks are renumbered from the root
 * (v = (rank - root) mod n); rank v receive-reduces from its children
 * v + m, m = 1, 2, 4, .. below v's lowest set bit (every power of two < n
 * at the root), smallest subtree first, and forwards the sum to its parent
 * v - b as the last child's data lands (recv-reduce-send). The sum
 * accumulates in SCRATCH on other ranks (they never touch RECV) and in
 * RECV at the root, where AVG divides it.
 *
 * Cost: ceil(log2 n) rounds; each rank sends one message of count
 * elements; the root reduces log2(n) times: latency ceil(log2 n) alpha,
 * bandwidth log2(n) * bytes * beta at the root. For small messages. Any n
 * and root; SCRATCH of count on inner ranks.
 */
#include "algo.h"
#include "internal.h"

static tutti_result_t binomial_reduce_supports(const tt_coll_args_t *args,
                                               const char **why_p)
{
    (void)args;
    (void)why_p;
    return TUTTI_SUCCESS;
}

static tutti_result_t binomial_reduce_build(const tt_coll_args_t *args,
                                            tt_sched_t *s)
{
    int        n = args->nranks, root = args->root;
    int        v = (args->rank - root + n) % n;
    int        top = v == 0 ? n : (v & -v), m, last = 1, st = -1;
    size_t     count = args->count;
    uint32_t   fin   = args->op == TUTTI_AVG ? TT_STEP_FINALIZE : 0;
    tt_range_t in    = tt_range(v == 0 && args->inplace ? TT_BUF_RECV
                                                        : TT_BUF_SEND, 0);
    tt_range_t acc   = tt_range(v == 0 ? TT_BUF_RECV : TT_BUF_SCRATCH, 0);

    /* last: the largest child distance */
    while (last * 2 < top && v + last * 2 < n) {
        last *= 2;
    }
    if (v + 1 >= n || top == 1) {
        /* a leaf (or the root alone) */
        if (v == 0) {
            return tt_step_res(tutti__sched_add(s, &(tt_step_t){
                .flags = TT_STEP_COPY | fin, .count = count, .src = in,
                .dst = acc}));
        }
        return tt_step_res(tutti__sched_send(s, (v - top + root) % n, in,
                                             count, 0, NULL));
    }
    if (v != 0) {
        s->scratch_count = count;
    }
    for (m = 1; m <= last; m *= 2) {
        tt_step_t step = {
            .flags     = TT_STEP_RECV,
            .recv_mode = TT_RECV_REDUCE,
            .recv_peer = (v + m + root) % n,
            .count     = count,
            .dst       = acc,
            .local     = m == 1 ? in : acc,
            .ndeps     = st >= 0 ? 1 : 0,
            .deps      = {st}};

        if (m == last) {
            if (v != 0) {
                step.flags    |= TT_STEP_SEND | TT_STEP_FORWARD;
                step.send_peer = (v - top + root) % n;
            } else {
                step.flags |= fin;
            }
        }
        st = tutti__sched_add(s, &step);
        TT_CHECK(tt_step_res(st));
    }
    return TUTTI_SUCCESS;
}

const tt_algo_t tutti__algo_binomial_reduce = {
    .name     = "binomial",
    .desc     = "binomial tree, recv-reduce-send to the parent; "
                "ceil(log2 n) steps, one message per rank",
    .coll     = TT_COLL_REDUCE,
    .supports = binomial_reduce_supports,
    .build    = binomial_reduce_build,
};
