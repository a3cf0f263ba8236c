/*
 * Binomial-tree broadcast.
 *
 * Ranks are renumbered from the root (v = (rank - root) mod n). Rank v > 0
 * receives from v - b (b = v's lowest set bit) into RECV, then sends to
 * v + m for m = b/2, b/4, .. 1 (the root: for every power of two m < n),
 * the largest subtree first; the first child is fed slice by slice as the
 * data lands (recv-copy-send), the others once all of it has. The root
 * sends straight from SEND and copies SEND to RECV (unless in place);
 * other ranks never read SEND.
 *
 * Cost: ceil(log2 n) rounds; the root sends ceil(log2 n) messages of count
 * elements: latency ceil(log2 n) alpha, bandwidth log2(n) * bytes * beta.
 * For small messages. Any n and root; no SCRATCH.
 */
#include "algo.h"
#include "internal.h"

static tutti_result_t binomial_bcast_supports(const tt_coll_args_t *args,
                                              const char **why_p)
{
    (void)args;
    (void)why_p;
    return TUTTI_SUCCESS;
}

static tutti_result_t binomial_bcast_build(const tt_coll_args_t *args,
                                           tt_sched_t *s)
{
    int        n = args->nranks, root = args->root;
    int        v = (args->rank - root + n) % n, m, src = -1;
    size_t     count = args->count;
    tt_range_t from  = tt_range(TT_BUF_RECV, 0);

    /* m walks the children's distances, largest first */
    if (v == 0) {
        m = 1;
        while (m < n) {
            m *= 2;
        }
        m /= 2;
        if (!args->inplace) {
            from = tt_range(TT_BUF_SEND, 0);
            TT_CHECK(tt_step_res(tutti__sched_copy(
                s, from, tt_range(TT_BUF_RECV, 0), count, 0, NULL)));
        }
    } else {
        tt_step_t step = {
            .flags     = TT_STEP_RECV,
            .recv_mode = TT_RECV_COPY,
            .recv_peer = (v - (v & -v) + root) % n,
            .count     = count,
            .dst       = tt_range(TT_BUF_RECV, 0)};

        m = (v & -v) / 2;
        while (m > 0 && v + m >= n) {
            m /= 2;
        }
        if (m > 0) {
            step.flags    |= TT_STEP_SEND | TT_STEP_FORWARD;
            step.send_peer = (v + m + root) % n;
            m /= 2;
        }
        src = tutti__sched_add(s, &step);
        TT_CHECK(tt_step_res(src));
    }
    for (; m > 0; m /= 2) {
        if (v + m < n) {
            TT_CHECK(tt_step_res(tutti__sched_send(
                s, (v + m + root) % n, from, count, src >= 0 ? 1 : 0,
                &src)));
        }
    }
    return TUTTI_SUCCESS;
}

const tt_algo_t tutti__algo_binomial_broadcast = {
    .name     = "binomial",
    .desc     = "binomial tree; ceil(log2 n) steps, the root sends "
                "log2(n) copies",
    .coll     = TT_COLL_BROADCAST,
    .supports = binomial_bcast_supports,
    .build    = binomial_bcast_build,
};
