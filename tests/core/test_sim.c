/*
 * Proves every algorithm's schedules with the symbolic simulator: for every
 * rank count 1..64, counts around the rank count (0, 1, below, equal,
 * above, odd), in place and out of place, every rank ends with exactly the
 * right contributions, no step reads data before it arrives or overwrites
 * data still to be read, every send meets its receive, and the messages and
 * elements each rank sends match the algorithm's stated cost.
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "sim.h"

#define SIM_MAX_RANKS 64

/* Stated costs, per rank, for count elements (per rank for allgather) on n
 * ranks, when every chunk is non-empty. */
static void cost_ring_allreduce(size_t count, int n, size_t *msgs,
                                size_t *elems)
{
    *msgs  = 2 * (size_t)(n - 1);
    *elems = 2 * (size_t)(n - 1) * ((count + (size_t)n - 1) / (size_t)n);
}

static void cost_ring_allgather(size_t count, int n, size_t *msgs,
                                size_t *elems)
{
    *msgs  = (size_t)(n - 1);
    *elems = (size_t)(n - 1) * count;
}

typedef struct algo_case {
    const tt_algo_t *algo;
    void (*cost)(size_t count, int n, size_t *msgs, size_t *elems);
    int chunked; /* cuts count into n chunks: exact cost needs count >= n */
} algo_case_t;

static void sim_sweep(const algo_case_t *c)
{
    char   err[512];
    int    n, inplace, o;
    size_t i;

    for (n = 1; n <= SIM_MAX_RANKS; n++) {
        size_t counts[] = {0, 1, 2, 7, (size_t)n - 1, (size_t)n,
                           (size_t)n + 1, 3 * (size_t)n + 2, 97};
        for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
            for (inplace = 0; inplace < 2; inplace++) {
                for (o = 0; o < 2; o++) {
                    tt_coll_args_t a = {
                        .coll     = c->algo->coll,
                        .count    = counts[i],
                        .datatype = TUTTI_FLOAT32,
                        .op       = o ? TUTTI_AVG : TUTTI_SUM,
                        .nranks   = n,
                        .inplace  = inplace};
                    sim_stats_t st;
                    size_t      msgs, elems;

                    if (o && c->algo->coll != TT_COLL_ALLREDUCE) {
                        continue;
                    }
                    cr_assert_eq(sim_run(c->algo, &a, &st, err, sizeof(err)),
                                 0, "%s %s n=%d count=%zu %s %s: %s",
                                 tutti__coll_name(a.coll), c->algo->name, n,
                                 a.count, inplace ? "in place" : "out of place",
                                 tutti_redop_name(a.op), err);
                    c->cost(a.count, n, &msgs, &elems);
                    cr_assert_leq(st.msgs_max, msgs, "%s n=%d count=%zu: %zu "
                                  "messages > %zu", c->algo->name, n, a.count,
                                  st.msgs_max, msgs);
                    cr_assert_leq(st.elems_max, elems, "%s n=%d count=%zu: "
                                  "%zu elements > %zu", c->algo->name, n,
                                  a.count, st.elems_max, elems);
                    if (a.count >= (c->chunked ? (size_t)n : 1)) {
                        cr_assert_eq(st.msgs_max, msgs, "%s n=%d count=%zu",
                                     c->algo->name, n, a.count);
                    }
                    if (c->chunked ? a.count % (size_t)n == 0 : 1) {
                        cr_assert_eq(st.elems_max, elems, "%s n=%d count=%zu",
                                     c->algo->name, n, a.count);
                    }
                }
            }
        }
    }
}

Test(sim, ring_allreduce, .timeout = 120)
{
    algo_case_t c = {&tutti__algo_ring_allreduce, cost_ring_allreduce, 1};
    sim_sweep(&c);
}

Test(sim, ring_allgather, .timeout = 120)
{
    algo_case_t c = {&tutti__algo_ring_allgather, cost_ring_allgather, 0};
    sim_sweep(&c);
}

/* The simulator must catch what it claims to catch: a schedule that
 * forgets the in-place dependency of the ring, simulated here by an
 * algorithm wrapper that drops every dependency. */
static tutti_result_t broken_build(const tt_coll_args_t *a, tt_sched_t *s)
{
    int i;

    tutti_result_t res = tutti__algo_ring_allreduce.build(a, s);
    for (i = 0; i < s->nsteps; i++) {
        s->steps[i].ndeps = 0;
    }
    return res;
}

Test(sim, detects_missing_dependency, .timeout = 60)
{
    tt_algo_t broken = tutti__algo_ring_allreduce;
    char      err[512];
    sim_stats_t st;
    tt_coll_args_t a = {.coll = TT_COLL_ALLREDUCE, .count = 8,
                        .datatype = TUTTI_FLOAT32, .op = TUTTI_SUM,
                        .nranks = 3, .inplace = 1};

    broken.build = broken_build;
    cr_assert_neq(sim_run(&broken, &a, &st, err, sizeof(err)), 0);
    cr_log_info("simulator says: %s", err);
}

/* ... and a schedule whose receive size does not match the send. */
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
    tt_algo_t      broken = tutti__algo_ring_allgather;
    char           err[512];
    sim_stats_t    st;
    tt_coll_args_t a = {.coll = TT_COLL_ALLGATHER, .count = 4,
                        .datatype = TUTTI_FLOAT32, .nranks = 4};

    broken.build = short_build;
    cr_assert_neq(sim_run(&broken, &a, &st, err, sizeof(err)), 0);
    cr_assert(strstr(err, "receives") != NULL || strstr(err, "nobody") != NULL,
              "%s", err);
}
