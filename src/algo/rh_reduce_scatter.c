/*
 * Recursive-halving reduce-scatter.
 *
 * On p = 2^L participants: for mask = p/2 .. 1, each participant keeps the
 * half of its window of blocks on its side of `mask`, sends the other half
 * to the participant across it, and reduces what it receives into SCRATCH;
 * the last round reduces its own block into RECV (AVG divides it there).
 * Other rank counts fold the extra ranks first (algo.h, tt_fold): the extra
 * rank sends all n blocks to its partner, which stands for two blocks and
 * in the last round forwards the extra rank's block to it as it lands.
 * Participants' blocks are contiguous, so windows are contiguous ranges;
 * the last round sends one message per block (windows then differ).
 *
 * Cost: L = floor(log2 n) steps (+2 with folding); each rank sends
 * (n-1) * count elements (a folded-out rank n * count): latency L alpha,
 * bandwidth (n-1)/n * total bytes * beta. Any n; SCRATCH of half of SEND
 * (all of it on the folding partners).
 */
#include "algo.h"
#include "internal.h"

static tutti_result_t rh_rs_supports(const tt_coll_args_t *args,
                                     const char **why_p)
{
    (void)args;
    (void)why_p;
    return TUTTI_SUCCESS;
}

/* A buffer holding blocks from `base` (elements) on. */
typedef struct rh_buf {
    tt_buf_t buf;
    size_t   base;
} rh_buf_t;

static tt_range_t rh_at(rh_buf_t b, size_t block, size_t count)
{
    return tt_range(b.buf, block * count - b.base);
}

/* The last round: one message per block each way. */
static tutti_result_t rh_last(const tt_coll_args_t *args, tt_sched_t *s,
                              const tt_fold_t *f, rh_buf_t cur, rh_buf_t acc,
                              int prev)
{
    int      r = args->rank, peer = f->v ^ 1, b, st;
    size_t   count = args->count;
    uint32_t fin   = args->op == TUTTI_AVG ? TT_STEP_FINALIZE : 0;

    for (b = tt_fold_first(f, peer); b < tt_fold_first(f, peer + 1); b++) {
        st = tutti__sched_send(s, tt_fold_rank(f, peer),
                               rh_at(cur, (size_t)b, count), count,
                               prev >= 0 ? 1 : 0, &prev);
        TT_CHECK(tt_step_res(st));
    }
    for (b = tt_fold_first(f, f->v); b < tt_fold_first(f, f->v + 1); b++) {
        tt_step_t step = {
            .flags     = TT_STEP_RECV | fin,
            .recv_mode = TT_RECV_REDUCE,
            .recv_peer = tt_fold_rank(f, peer),
            .count     = count,
            .dst       = tt_range(TT_BUF_RECV, 0),
            .local     = rh_at(cur, (size_t)b, count),
            .ndeps     = prev >= 0 ? 1 : 0,
            .deps      = {prev}};

        if (b != r) {
            /* the folded-out partner's block: pass it on as it lands */
            step.flags    |= TT_STEP_SEND | TT_STEP_FORWARD;
            step.send_peer = b;
            step.dst       = rh_at(acc, (size_t)b, count);
        }
        TT_CHECK(tt_step_res(tutti__sched_add(s, &step)));
    }
    return TUTTI_SUCCESS;
}

static tutti_result_t rh_rs_build(const tt_coll_args_t *args, tt_sched_t *s)
{
    int       n = args->nranks, r = args->rank;
    tt_fold_t f = tt_fold(r, n);
    size_t    count = args->count, all = (size_t)n * count;
    rh_buf_t  cur = {TT_BUF_SEND, 0}, acc = {TT_BUF_SCRATCH, 0};
    int       prev = -1, lo = 0, mask;

    if (n == 1) {
        return tt_step_res(tutti__sched_add(s, &(tt_step_t){
            .flags = TT_STEP_COPY |
                     (args->op == TUTTI_AVG ? TT_STEP_FINALIZE : 0),
            .count = count,
            .src   = tt_range(TT_BUF_SEND, 0),
            .dst   = tt_range(TT_BUF_RECV, 0)}));
    }
    if (f.v < 0) {
        /* folded out: hand every block over, get its own back */
        prev = tutti__sched_send(s, r + 1, tt_range(TT_BUF_SEND, 0), all, 0,
                                 NULL);
        TT_CHECK(tt_step_res(prev));
        return tt_step_res(tutti__sched_recv(s, r + 1,
                                             tt_range(TT_BUF_RECV, 0), count,
                                             1, &prev));
    }
    if (r < 2 * f.rem) {
        s->scratch_count = all;
        prev = tutti__sched_add(s, &(tt_step_t){
            .flags = TT_STEP_RECV, .recv_mode = TT_RECV_REDUCE,
            .recv_peer = r - 1, .count = all,
            .dst = tt_range(TT_BUF_SCRATCH, 0),
            .local = tt_range(TT_BUF_SEND, 0)});
        TT_CHECK(tt_step_res(prev));
        cur = acc;
    } else if (f.p > 2) {
        /* SCRATCH holds the window kept in round 0 */
        int klo = (f.v & (f.p / 2)) ? f.p / 2 : 0;

        acc.base = (size_t)tt_fold_first(&f, klo) * count;
        s->scratch_count =
            (size_t)tt_fold_first(&f, klo + f.p / 2) * count - acc.base;
    }
    for (mask = f.p / 2; mask > 1; mask /= 2) {
        int    peer = tt_fold_rank(&f, f.v ^ mask);
        int    klo  = (f.v & mask) ? lo + mask : lo;
        int    glo  = (f.v & mask) ? lo : lo + mask;
        size_t k0   = (size_t)tt_fold_first(&f, klo);
        size_t k1   = (size_t)tt_fold_first(&f, klo + mask);
        size_t g0   = (size_t)tt_fold_first(&f, glo);
        size_t g1   = (size_t)tt_fold_first(&f, glo + mask);
        int    st;

        st = tutti__sched_send(s, peer, rh_at(cur, g0, count),
                               (g1 - g0) * count, prev >= 0 ? 1 : 0, &prev);
        TT_CHECK(tt_step_res(st));
        prev = tutti__sched_add(s, &(tt_step_t){
            .flags = TT_STEP_RECV, .recv_mode = TT_RECV_REDUCE,
            .recv_peer = peer, .count = (k1 - k0) * count,
            .dst = rh_at(acc, k0, count), .local = rh_at(cur, k0, count),
            .ndeps = prev >= 0 ? 1 : 0, .deps = {prev}});
        TT_CHECK(tt_step_res(prev));
        cur = acc;
        lo  = klo;
    }
    return rh_last(args, s, &f, cur, acc, prev);
}

const tt_algo_t tutti__algo_rh_reduce_scatter = {
    .name     = "rh",
    .desc     = "recursive halving; ceil(log2 n) steps (+2 if n is not a "
                "power of two), (n-1)/n of the data sent per rank",
    .coll     = TT_COLL_REDUCE_SCATTER,
    .supports = rh_rs_supports,
    .build    = rh_rs_build,
};
