/*
 * Rabenseifner allreduce: recursive-halving reduce-scatter, then
 * recursive-doubling allgather.
 *
 * On p = 2^L participants the vector is cut into p chunks. Reduce-scatter:
 * for mask = p/2 .. 1, each participant keeps the half of its window of
 * chunks on its side of `mask`, sends the other half to the participant
 * across it and reduces what it gets back into RECV; after L rounds
 * participant v holds chunk v complete (AVG divides it there). Allgather:
 * for mask = 1 .. p/2 the windows are swapped back and doubled. A round
 * sends and receives disjoint halves, so everything happens in RECV (the
 * halves may differ by an element per chunk: separate send and receive
 * steps). Other rank counts fold the extra ranks first (algo.h, tt_fold).
 *
 * Cost: 2L steps, L = floor(log2 n) (+2 with folding); each rank sends
 * 2(p-1)/p * count elements (+count with folding): latency 2L alpha,
 * bandwidth ~2 * bytes * beta. For medium messages. Any n; no SCRATCH.
 */
#include "algo.h"
#include "internal.h"

static tutti_result_t rab_allreduce_supports(const tt_coll_args_t *args,
                                             const char **why_p)
{
    (void)args;
    (void)why_p;
    return TUTTI_SUCCESS;
}

/* Elements [off(lo), off(hi)) of the p chunks. */
static tt_range_t rab_range(tt_buf_t buf, size_t count, int p, int lo)
{
    return tt_range(buf, tt_chunk_off(count, p, lo));
}

static size_t rab_count(size_t count, int p, int lo, int hi)
{
    return tt_chunk_off(count, p, hi) - tt_chunk_off(count, p, lo);
}

static tutti_result_t rab_allreduce_build(const tt_coll_args_t *args,
                                          tt_sched_t *s)
{
    int        n = args->nranks, r = args->rank;
    tt_fold_t  f = tt_fold(r, n);
    int        p = f.p, folded = r < 2 * f.rem;
    size_t     count = args->count;
    uint32_t   fin   = args->op == TUTTI_AVG ? TT_STEP_FINALIZE : 0;
    tt_buf_t   in    = args->inplace ? TT_BUF_RECV : TT_BUF_SEND;
    tt_buf_t   cur   = in;
    int        prev = -1, lo = 0, hi = p, mask;

    if (n == 1) {
        return tt_step_res(tutti__sched_add(s, &(tt_step_t){
            .flags = TT_STEP_COPY | fin, .count = count,
            .src = tt_range(in, 0), .dst = tt_range(TT_BUF_RECV, 0)}));
    }
    if (f.v < 0) {
        /* folded out: hand the vector over, get the result back */
        prev = tutti__sched_send(s, r + 1, tt_range(in, 0), count, 0, NULL);
        TT_CHECK(tt_step_res(prev));
        return tt_step_res(tutti__sched_recv(s, r + 1,
                                             tt_range(TT_BUF_RECV, 0), count,
                                             1, &prev));
    }
    if (folded) {
        prev = tutti__sched_add(s, &(tt_step_t){
            .flags = TT_STEP_RECV, .recv_mode = TT_RECV_REDUCE,
            .recv_peer = r - 1, .count = count,
            .dst = tt_range(TT_BUF_RECV, 0), .local = tt_range(in, 0)});
        TT_CHECK(tt_step_res(prev));
        cur = TT_BUF_RECV;
    }

    /* reduce-scatter by recursive halving */
    for (mask = p / 2; mask >= 1; mask /= 2) {
        int       peer = tt_fold_rank(&f, f.v ^ mask);
        int       mid  = lo + mask;
        int       klo  = (f.v & mask) ? mid : lo, khi = klo + mask;
        int       glo  = (f.v & mask) ? lo : mid;
        tt_step_t step = {
            .flags     = TT_STEP_RECV | (mask == 1 ? fin : 0),
            .recv_mode = TT_RECV_REDUCE,
            .recv_peer = peer,
            .count     = rab_count(count, p, klo, khi),
            .dst       = rab_range(TT_BUF_RECV, count, p, klo),
            .local     = rab_range(cur, count, p, klo)};
        int       st;

        /* the halves have the same number of chunks, not of elements:
         * the send and the receive are separate steps */
        st = tutti__sched_send(s, peer, rab_range(cur, count, p, glo),
                               rab_count(count, p, glo, glo + mask),
                               prev >= 0 ? 1 : 0, &prev);
        TT_CHECK(tt_step_res(st));
        if (prev >= 0) {
            step.ndeps   = 1;
            step.deps[0] = prev;
        }
        prev = tutti__sched_add(s, &step);
        TT_CHECK(tt_step_res(prev));
        lo  = klo;
        hi  = khi;
        cur = TT_BUF_RECV;
    }

    /* allgather by recursive doubling: swap windows, doubling them */
    for (mask = 1; mask < p; mask *= 2) {
        int peer = tt_fold_rank(&f, f.v ^ mask);
        int plo  = (f.v & mask) ? lo - mask : hi;
        int st;

        st = tutti__sched_send(s, peer, rab_range(TT_BUF_RECV, count, p, lo),
                               rab_count(count, p, lo, hi), 1, &prev);
        TT_CHECK(tt_step_res(st));
        prev = tutti__sched_recv(s, peer,
                                 rab_range(TT_BUF_RECV, count, p, plo),
                                 rab_count(count, p, plo, plo + mask), 1,
                                 &prev);
        TT_CHECK(tt_step_res(prev));
        lo = lo < plo ? lo : plo;
        hi = lo + 2 * mask;
    }
    if (folded) {
        prev = tutti__sched_send(s, r - 1, tt_range(TT_BUF_RECV, 0), count, 1,
                                 &prev);
    }
    return tt_step_res(prev);
}

const tt_algo_t tutti__algo_rabenseifner_allreduce = {
    .name     = "rabenseifner",
    .desc     = "recursive-halving reduce-scatter + recursive-doubling "
                "allgather; 2 log2(n) steps, ~2x bytes sent per rank",
    .coll     = TT_COLL_ALLREDUCE,
    .supports = rab_allreduce_supports,
    .build    = rab_allreduce_build,
};
