/*
 * Proves every algorithm's schedules with the symbolic simulator: for every
 * rank count 1..64, counts around the rank count (0, 1, 2, 7, n-1, n, n+1,
 * 3n+2, 97), in place and out of place, SUM and AVG for reductions, roots
 * 0, n/2 and n-1 for rooted collectives, every rank ends with exactly the
 * right data, no step reads data before it arrives or overwrites data still
 * to be read, every send meets its receive, and the messages and elements
 * each rank sends stay within the algorithm's stated cost (and meet it
 * where the formula is exact). Each case runs in index order (the most
 * eager interleaving) and, up to SIM_SHUFFLE_RANKS ranks, again in a
 * shuffled order, which catches dependencies a schedule forgot but the
 * eager order happens to respect. Then schedules broken on purpose, which
 * the simulator must reject.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>

#include "sim.h"

#define SIM_MAX_RANKS 64
/* Shuffled interleavings take a pass per hop: up to this many ranks. */
#define SIM_SHUFFLE_RANKS 16

/* A stated cost: the most messages and elements one rank sends, and which
 * of the two bounds some rank must reach. */
#define COST_MSGS  1
#define COST_ELEMS 2

typedef struct sim_cost {
    size_t msgs, elems;
    int    exact;
} sim_cost_t;

typedef void (*cost_fn)(const tt_coll_args_t *a, sim_cost_t *c);

static size_t ceil_log2(int n)
{
    size_t k = 0;

    while ((1 << k) < n) {
        k++;
    }
    return k;
}

static size_t div_up(size_t a, size_t b)
{
    return (a + b - 1) / b;
}

/* -------------------------------------------------------------------- */
/* stated costs, per algorithm (see each algorithm's header comment)     */
/* -------------------------------------------------------------------- */

static void cost_ring_allreduce(const tt_coll_args_t *a, sim_cost_t *c)
{
    size_t n = (size_t)a->nranks;

    c->msgs  = 2 * (n - 1);
    c->elems = 2 * (n - 1) * div_up(a->count, n);
    c->exact = (a->count >= n ? COST_MSGS : 0) |
               (a->count % n == 0 ? COST_ELEMS : 0);
}

static void cost_tree_allreduce(const tt_coll_args_t *a, sim_cost_t *c)
{
    /* chunks per tree: 64 KiB of the larger half, at most 64; an inner
     * node of one tree (3 messages a chunk) is a leaf of the other (1),
     * and from 4 ranks on some inner node has a parent and two children */
    size_t half    = div_up(a->count, 2) * tutti_datatype_size(a->datatype);
    size_t nchunks = div_up(half, 64 * 1024);

    nchunks  = nchunks < 1 ? 1 : nchunks > 64 ? 64 : nchunks;
    c->msgs  = a->nranks == 1 ? 0 : 4 * nchunks;
    c->elems = a->nranks == 1 ? 0 : 2 * a->count + a->count % 2;
    c->exact = a->nranks < 4 ? 0
                             : (a->count >= 2 * nchunks ? COST_MSGS : 0) |
                                   COST_ELEMS;
}

static void cost_rd_allreduce(const tt_coll_args_t *a, sim_cost_t *c)
{
    tt_fold_t f = tt_fold(0, a->nranks);

    c->msgs  = (size_t)f.log2p + (f.rem > 0);
    c->elems = c->msgs * a->count;
    c->exact = (a->count > 0 ? COST_MSGS : 0) | COST_ELEMS;
}

static void cost_rabenseifner(const tt_coll_args_t *a, sim_cost_t *c)
{
    tt_fold_t f = tt_fold(0, a->nranks);
    size_t    p = (size_t)f.p;

    c->msgs  = 2 * (size_t)f.log2p + (f.rem > 0);
    c->elems = 2 * (p - 1) * div_up(a->count, p) +
               (f.rem > 0 ? a->count : 0);
    c->exact = (a->count >= p ? COST_MSGS : 0) |
               (a->count % p == 0 ? COST_ELEMS : 0);
}

static void cost_ring_allgather(const tt_coll_args_t *a, sim_cost_t *c)
{
    c->msgs  = (size_t)(a->nranks - 1);
    c->elems = c->msgs * a->count;
    c->exact = (a->count > 0 ? COST_MSGS : 0) | COST_ELEMS;
}

static void cost_rd_allgather(const tt_coll_args_t *a, sim_cost_t *c)
{
    tt_fold_t f = tt_fold(0, a->nranks);
    size_t    n = (size_t)a->nranks;

    /* with folding, windows of up to 2 blocks per participant, then the
     * n - 1 blocks back to the folded-out rank */
    c->msgs  = (size_t)f.log2p + (f.rem > 0 ? 2 : 0);
    c->elems = (f.rem > 0 ? 2 * ((size_t)f.p - 1) + n - 1 : n - 1) *
               a->count;
    c->exact = f.rem > 0 ? 0 : (a->count > 0 ? COST_MSGS : 0) | COST_ELEMS;
}

static void cost_log_rounds(const tt_coll_args_t *a, sim_cost_t *c)
{
    c->msgs  = ceil_log2(a->nranks);
    c->elems = a->count * c->msgs;
    c->exact = (a->count > 0 ? COST_MSGS : 0) | COST_ELEMS;
}

static void cost_bruck(const tt_coll_args_t *a, sim_cost_t *c)
{
    c->msgs  = ceil_log2(a->nranks);
    c->elems = (size_t)(a->nranks - 1) * a->count;
    c->exact = (a->count > 0 ? COST_MSGS : 0) | COST_ELEMS;
}

static void cost_rh(const tt_coll_args_t *a, sim_cost_t *c)
{
    tt_fold_t f = tt_fold(0, a->nranks);
    size_t    n = (size_t)a->nranks;

    c->msgs  = (size_t)f.log2p + (f.rem > 0 ? 2 : 0);
    c->elems = (f.rem > 0 ? n : n - 1) * a->count;
    c->exact = (f.rem > 0 || a->count == 0 ? 0 : COST_MSGS) | COST_ELEMS;
}

/* one message of count elements per rank (chains, binomial reduce) */
static void cost_one(const tt_coll_args_t *a, sim_cost_t *c)
{
    c->msgs  = a->nranks > 1 ? 1 : 0;
    c->elems = c->msgs * a->count;
    c->exact = (a->count > 0 ? COST_MSGS : 0) | COST_ELEMS;
}

/* -------------------------------------------------------------------- */
/* the sweep                                                             */
/* -------------------------------------------------------------------- */

/* Simulates one case in index order, then (seed != 0) in the shuffled
 * order of that seed, and checks the cost of the first run. */
static void sim_check(const tt_algo_t *algo, cost_fn cost,
                      const tt_coll_args_t *a, unsigned seed)
{
    char        err[512];
    sim_stats_t st, st2;
    sim_cost_t  c;
    const char *what = a->inplace ? "in place" : "out of place";

    cr_assert_eq(sim_run(algo, a, 0, &st, err, sizeof(err)), 0,
                 "%s %s n=%d count=%zu root=%d %s %s: %s",
                 tutti__coll_name(a->coll), algo->name, a->nranks, a->count,
                 a->root, what, tutti_redop_name(a->op), err);
    cr_assert(seed == 0 || sim_run(algo, a, seed, &st2, err,
                                   sizeof(err)) == 0,
              "%s %s n=%d count=%zu root=%d %s %s, shuffled (seed %u): %s",
              tutti__coll_name(a->coll), algo->name, a->nranks, a->count,
              a->root, what, tutti_redop_name(a->op), seed, err);
    cost(a, &c);
    cr_assert_leq(st.msgs_max, c.msgs, "%s %s n=%d count=%zu root=%d %s: "
                  "%zu messages > %zu", tutti__coll_name(a->coll),
                  algo->name, a->nranks, a->count, a->root, what,
                  st.msgs_max, c.msgs);
    cr_assert_leq(st.elems_max, c.elems, "%s %s n=%d count=%zu root=%d %s: "
                  "%zu elements > %zu", tutti__coll_name(a->coll),
                  algo->name, a->nranks, a->count, a->root, what,
                  st.elems_max, c.elems);
    if (c.exact & COST_MSGS) {
        cr_assert_eq(st.msgs_max, c.msgs, "%s %s n=%d count=%zu: %zu "
                     "messages, stated %zu", tutti__coll_name(a->coll),
                     algo->name, a->nranks, a->count, st.msgs_max, c.msgs);
    }
    if (c.exact & COST_ELEMS) {
        cr_assert_eq(st.elems_max, c.elems, "%s %s n=%d count=%zu: %zu "
                     "elements, stated %zu", tutti__coll_name(a->coll),
                     algo->name, a->nranks, a->count, st.elems_max, c.elems);
    }
}

static void sim_sweep(const tt_algo_t *algo, cost_fn cost)
{
    tt_coll_t coll   = algo->coll;
    int       redop  = coll == TT_COLL_ALLREDUCE ||
                       coll == TT_COLL_REDUCE_SCATTER ||
                       coll == TT_COLL_REDUCE;
    int       rooted = coll == TT_COLL_BROADCAST || coll == TT_COLL_REDUCE;
    int       n, inplace, o, ri;
    unsigned  seed = 0;
    size_t    i;

    for (n = 1; n <= SIM_MAX_RANKS; n++) {
        size_t counts[] = {0, 1, 2, 7, (size_t)n - 1, (size_t)n,
                           (size_t)n + 1, 3 * (size_t)n + 2, 97};
        int    roots[]  = {0, n - 1, n / 2};
        size_t ncounts  = sizeof(counts) / sizeof(counts[0]);

        if (coll == TT_COLL_BARRIER) {
            tt_coll_args_t a = {.coll = coll, .count = 1,
                                .datatype = TUTTI_UINT8, .nranks = n};
            sim_check(algo, cost, &a, n <= SIM_SHUFFLE_RANKS ? ++seed : 0);
            continue;
        }
        for (i = 0; i < ncounts; i++) {
            for (inplace = 0; inplace < 2; inplace++) {
                for (o = 0; o < (redop ? 2 : 1); o++) {
                    for (ri = 0; ri < (rooted ? 3 : 1); ri++) {
                        tt_coll_args_t a = {
                            .coll     = coll,
                            .count    = counts[i],
                            .datatype = TUTTI_FLOAT32,
                            .op       = o ? TUTTI_AVG : TUTTI_SUM,
                            .root     = roots[ri],
                            .nranks   = n,
                            .inplace  = inplace};

                        if (ri > 0 && (roots[ri] == roots[0] ||
                                       roots[ri] == roots[ri - 1])) {
                            continue;
                        }
                        sim_check(algo, cost, &a,
                                  n <= SIM_SHUFFLE_RANKS ? ++seed : 0);
                    }
                }
            }
        }
    }
}

typedef struct sim_case {
    const tt_algo_t *algo;
    cost_fn          cost;
} sim_case_t;

static const sim_case_t sim_cases[] = {
    {&tutti__algo_ring_allreduce, cost_ring_allreduce},
    {&tutti__algo_tree_allreduce, cost_tree_allreduce},
    {&tutti__algo_rd_allreduce, cost_rd_allreduce},
    {&tutti__algo_rabenseifner_allreduce, cost_rabenseifner},
    {&tutti__algo_ring_allgather, cost_ring_allgather},
    {&tutti__algo_rd_allgather, cost_rd_allgather},
    {&tutti__algo_bruck_allgather, cost_bruck},
    {&tutti__algo_ring_reduce_scatter, cost_ring_allgather},
    {&tutti__algo_rh_reduce_scatter, cost_rh},
    {&tutti__algo_binomial_broadcast, cost_log_rounds},
    {&tutti__algo_chain_broadcast, cost_one},
    {&tutti__algo_binomial_reduce, cost_one},
    {&tutti__algo_chain_reduce, cost_one},
    {&tutti__algo_pairwise_alltoall, cost_ring_allgather},
    {&tutti__algo_dissemination_barrier, cost_log_rounds},
};

#define SIM_NCASES (sizeof(sim_cases) / sizeof(sim_cases[0]))

/* One test per algorithm, so that they run in parallel. The parameter
 * is an index: a test may run in a fresh process, where addresses differ. */
static int sim_case_index[SIM_NCASES];

ParameterizedTestParameters(sim, sweep)
{
    size_t i;

    for (i = 0; i < SIM_NCASES; i++) {
        sim_case_index[i] = (int)i;
    }
    return cr_make_param_array(int, sim_case_index, SIM_NCASES);
}

ParameterizedTest(int *i, sim, sweep, .timeout = 120)
{
    sim_sweep(sim_cases[*i].algo, sim_cases[*i].cost);
}

/* Every algorithm of the table is in the sweep. */
Test(sim, every_algorithm_is_swept)
{
    const tt_algo_t *const *a;
    size_t                  i;

    for (a = tutti__algos; *a != NULL; a++) {
        for (i = 0; i < SIM_NCASES && sim_cases[i].algo != *a; i++) {
        }
        cr_assert_lt(i, SIM_NCASES, "%s %s is not in the simulator sweep",
                     tutti__coll_name((*a)->coll), (*a)->name);
    }
}

/* The tree pipelines chunks of 64 KiB: counts large enough for several,
 * on rank counts that give every shape of the two trees a turn. */
Test(sim, tree_allreduce_chunked, .timeout = 120)
{
    static const int    ranks[]  = {2, 3, 4, 5, 6, 7, 8, 9, 13, 16};
    static const size_t counts[] = {100003, 3 * 32768, 65536 + 1};
    size_t              i, k;
    int                 inplace, o;

    for (i = 0; i < sizeof(ranks) / sizeof(ranks[0]); i++) {
        for (k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
            for (inplace = 0; inplace < 2; inplace++) {
                for (o = 0; o < 2; o++) {
                    tt_coll_args_t a = {.coll     = TT_COLL_ALLREDUCE,
                                        .count    = counts[k],
                                        .datatype = TUTTI_FLOAT32,
                                        .op = o ? TUTTI_AVG : TUTTI_SUM,
                                        .nranks   = ranks[i],
                                        .inplace  = inplace};
                    sim_check(&tutti__algo_tree_allreduce,
                              cost_tree_allreduce, &a, 0);
                }
            }
        }
    }
}

/* -------------------------------------------------------------------- */
/* broken schedules the simulator must reject                            */
/* -------------------------------------------------------------------- */

/* Runs `base` with its build replaced by `build`; the simulator must
 * fail, with a message containing `want` when it is not NULL. */
static void expect_caught(const tt_algo_t *base,
                          tutti_result_t (*build)(const tt_coll_args_t *,
                                                  tt_sched_t *),
                          const tt_coll_args_t *a, const char *want)
{
    tt_algo_t   broken = *base;
    char        err[512];
    sim_stats_t st;

    broken.build = build;
    cr_assert_neq(sim_run(&broken, a, 0, &st, err, sizeof(err)), 0,
                  "broken %s %s passed", tutti__coll_name(a->coll),
                  base->name);
    cr_log_info("simulator says: %s", err);
    if (want != NULL) {
        cr_assert(strstr(err, want) != NULL, "expected '%s' in: %s", want,
                  err);
    }
}

/* The ring without its in-place dependency: every dependency dropped. */
static tutti_result_t nodeps_ring_build(const tt_coll_args_t *a,
                                        tt_sched_t *s)
{
    tutti_result_t res = tutti__algo_ring_allreduce.build(a, s);
    int            i;

    for (i = 0; i < s->nsteps; i++) {
        s->steps[i].ndeps = 0;
    }
    return res;
}

Test(sim, detects_missing_dependency, .timeout = 60)
{
    tt_coll_args_t a = {.coll = TT_COLL_ALLREDUCE, .count = 8,
                        .datatype = TUTTI_FLOAT32, .op = TUTTI_SUM,
                        .nranks = 3, .inplace = 1};

    expect_caught(&tutti__algo_ring_allreduce, nodeps_ring_build, &a, NULL);
}

/* A receive size that does not match the send. */
static tutti_result_t short_build(const tt_coll_args_t *a, tt_sched_t *s)
{
    tutti_result_t res = tutti__algo_ring_allgather.build(a, s);
    if (a->rank == 1 && s->nsteps > 1) {
        s->steps[s->nsteps - 1].count--;
    }
    return res;
}

Test(sim, detects_size_mismatch, .timeout = 60)
{
    tt_coll_args_t a = {.coll = TT_COLL_ALLGATHER, .count = 4,
                        .datatype = TUTTI_FLOAT32, .nranks = 4};

    tt_algo_t      broken = tutti__algo_ring_allgather;
    char           err[512];
    sim_stats_t    st;

    broken.build = short_build;
    cr_assert_neq(sim_run(&broken, &a, 0, &st, err, sizeof(err)), 0);
    cr_assert(strstr(err, "receives") != NULL || strstr(err, "nobody") != NULL,
              "%s", err);
}

/* Recursive doubling receiving into the buffer it sends from. */
static tutti_result_t samebuf_rd_build(const tt_coll_args_t *a,
                                       tt_sched_t *s)
{
    tutti_result_t res = tutti__algo_rd_allreduce.build(a, s);
    int            i;

    for (i = 0; i < s->nsteps; i++) {
        tt_step_t *st = &s->steps[i];
        if ((st->flags & TT_STEP_SEND) && (st->flags & TT_STEP_RECV)) {
            st->dst = st->local = st->src;
        }
    }
    return res;
}

Test(sim, detects_send_from_own_receive, .timeout = 60)
{
    tt_coll_args_t a = {.coll = TT_COLL_ALLREDUCE, .count = 5,
                        .datatype = TUTTI_FLOAT32, .op = TUTTI_SUM,
                        .nranks = 4, .inplace = 1};

    expect_caught(&tutti__algo_rd_allreduce, samebuf_rd_build, &a,
                  "its own receive");
}

/* AVG divided at every reduction instead of once. */
static tutti_result_t divall_build(const tt_coll_args_t *a, tt_sched_t *s)
{
    tutti_result_t res = tutti__algo_ring_reduce_scatter.build(a, s);
    int            i;

    for (i = 0; i < s->nsteps; i++) {
        if (s->steps[i].flags & TT_STEP_RECV) {
            s->steps[i].flags |= TT_STEP_FINALIZE;
        }
    }
    return res;
}

Test(sim, detects_double_division, .timeout = 60)
{
    tt_coll_args_t a = {.coll = TT_COLL_REDUCE_SCATTER, .count = 3,
                        .datatype = TUTTI_FLOAT32, .op = TUTTI_AVG,
                        .nranks = 4};

    expect_caught(&tutti__algo_ring_reduce_scatter, divall_build, &a,
                  "divided");
}

/* A reduce that accumulates in RECV on every rank. */
static tutti_result_t recv_reduce_build(const tt_coll_args_t *a,
                                        tt_sched_t *s)
{
    tutti_result_t res = tutti__algo_binomial_reduce.build(a, s);
    int            i;

    for (i = 0; i < s->nsteps; i++) {
        if (s->steps[i].dst.buf == TT_BUF_SCRATCH) {
            s->steps[i].dst.buf = TT_BUF_RECV;
        }
        if (s->steps[i].local.buf == TT_BUF_SCRATCH) {
            s->steps[i].local.buf = TT_BUF_RECV;
        }
    }
    return res;
}

Test(sim, detects_reduce_touching_recv_off_root, .timeout = 60)
{
    tt_coll_args_t a = {.coll = TT_COLL_REDUCE, .count = 6,
                        .datatype = TUTTI_FLOAT32, .op = TUTTI_SUM,
                        .root = 2, .nranks = 5};

    expect_caught(&tutti__algo_binomial_reduce, recv_reduce_build, &a,
                  "names RECV");
}

/* A broadcast whose inner ranks send their own SEND on. */
static tutti_result_t send_bcast_build(const tt_coll_args_t *a,
                                       tt_sched_t *s)
{
    tutti_result_t res = tutti__algo_chain_broadcast.build(a, s);
    int            i;

    for (i = 0; i < s->nsteps; i++) {
        if (s->steps[i].flags & TT_STEP_FORWARD) {
            s->steps[i].flags &= ~(uint32_t)TT_STEP_FORWARD;
            s->steps[i].src = tt_range(TT_BUF_SEND, 0);
        }
    }
    return res;
}

Test(sim, detects_broadcast_reading_send_off_root, .timeout = 60)
{
    tt_coll_args_t a = {.coll = TT_COLL_BROADCAST, .count = 6,
                        .datatype = TUTTI_FLOAT32, .root = 1, .nranks = 4};

    expect_caught(&tutti__algo_chain_broadcast, send_bcast_build, &a,
                  "names SEND");
}

/* A dissemination barrier whose rounds do not wait for each other: the
 * messages all leave at once and carry no news. */
static tutti_result_t nodeps_barrier_build(const tt_coll_args_t *a,
                                           tt_sched_t *s)
{
    tutti_result_t res = tutti__algo_dissemination_barrier.build(a, s);
    int            i;

    for (i = 0; i < s->nsteps; i++) {
        s->steps[i].ndeps = 0;
    }
    return res;
}

Test(sim, detects_barrier_without_causality, .timeout = 60)
{
    tt_coll_args_t a = {.coll = TT_COLL_BARRIER, .count = 1,
                        .datatype = TUTTI_UINT8, .nranks = 8};

    expect_caught(&tutti__algo_dissemination_barrier, nodeps_barrier_build,
                  &a, "heard only");
}

/* An in-place alltoall that sends from RECV instead of its SCRATCH copy:
 * a round's receive overwrites a block a later round sends. */
static tutti_result_t nocopy_alltoall_build(const tt_coll_args_t *a,
                                            tt_sched_t *s)
{
    tutti_result_t res = tutti__algo_pairwise_alltoall.build(a, s);
    int            i;

    for (i = 0; i < s->nsteps; i++) {
        if (s->steps[i].src.buf == TT_BUF_SCRATCH &&
            (s->steps[i].flags & TT_STEP_SEND)) {
            s->steps[i].src.buf = TT_BUF_RECV;
        }
    }
    return res;
}

Test(sim, detects_alltoall_overwrite, .timeout = 60)
{
    tt_coll_args_t a = {.coll = TT_COLL_ALLTOALL, .count = 3,
                        .datatype = TUTTI_FLOAT32, .nranks = 7,
                        .inplace = 1};

    expect_caught(&tutti__algo_pairwise_alltoall, nocopy_alltoall_build, &a,
                  NULL);
}

/* A step that writes the user's send buffer. */
static tutti_result_t writesend_build(const tt_coll_args_t *a,
                                      tt_sched_t *s)
{
    tutti_result_t res = tutti__algo_bruck_allgather.build(a, s);

    if (s->nsteps > 0) {
        s->steps[s->nsteps - 1].dst = tt_range(TT_BUF_SEND, 0);
    }
    return res;
}

Test(sim, detects_write_to_send, .timeout = 60)
{
    tt_coll_args_t a = {.coll = TT_COLL_ALLGATHER, .count = 2,
                        .datatype = TUTTI_FLOAT32, .nranks = 5};

    expect_caught(&tutti__algo_bruck_allgather, writesend_build, &a,
                  "writes SEND");
}
