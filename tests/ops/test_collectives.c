/*
 * Every collective under every algorithm, over 1 to 9 forked ranks (8 and
 * 9 oversubscribe the test machines' 2 cores): allreduce ring, tree, rd,
 * rabenseifner; allgather ring, rd, bruck; reduce_scatter ring, rh;
 * broadcast and reduce binomial, chain; alltoall pairwise; barrier
 * dissemination.
 *
 * Reductions run float32 SUM and AVG, int32 MAX and bfloat16 SUM; data
 * movement runs float64 and int8. Counts are 0, 1, 7, 100 and the prime
 * 1021 (no rank count divides it), out of place and in place, and for
 * broadcast and reduce at roots 0, the middle rank and the last, with
 * non-roots also passing NULL for the buffer they do not use. A second
 * test runs one case of about 1 MiB per collective and algorithm on 2, 3
 * and 4 ranks. A third checks that a barrier really holds every rank.
 *
 * One job per rank count: the ranks join a world communicator, then one
 * communicator per algorithm set, each forcing one algorithm per
 * collective through config.algo (the TUTTI_ALGO grammar); before its
 * cases, each checks that the library selects the forced algorithm.
 * Results are checked bit for bit (ops.c, tests/helpers/ref.c).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <tutti.h>

#include "comm.h" /* the kept execution, comm->xcache */
#include "ops.h"

/* Algorithms per collective: communicator k forces algos[k] of each. */
#define TT_COLL_MAX_ALGOS 4

typedef struct tt_coll_algos {
    tt_coll_t   coll;
    const char *algos[TT_COLL_MAX_ALGOS];
} tt_coll_algos_t;

static const tt_coll_algos_t tt_coll_table[] = {
    {TT_COLL_ALLREDUCE, {"ring", "tree", "rd", "rabenseifner"}},
    {TT_COLL_ALLGATHER, {"ring", "rd", "bruck", NULL}},
    {TT_COLL_REDUCE_SCATTER, {"ring", "rh", NULL, NULL}},
    {TT_COLL_BROADCAST, {"binomial", "chain", NULL, NULL}},
    {TT_COLL_REDUCE, {"binomial", "chain", NULL, NULL}},
    {TT_COLL_ALLTOALL, {"pairwise", NULL, NULL, NULL}},
    {TT_COLL_BARRIER, {"dissemination", NULL, NULL, NULL}},
};

#define TT_COLL_NTABLE (sizeof(tt_coll_table) / sizeof(tt_coll_table[0]))

typedef struct tt_dt_op {
    tutti_datatype_t dt;
    tutti_redop_t    op;
} tt_dt_op_t;

static const tt_dt_op_t tt_reductions[] = {
    {TUTTI_FLOAT32, TUTTI_SUM},
    {TUTTI_FLOAT32, TUTTI_AVG},
    {TUTTI_INT32, TUTTI_MAX},
    {TUTTI_BFLOAT16, TUTTI_SUM},
};

/* op is ignored for data movement */
static const tt_dt_op_t tt_movements[] = {
    {TUTTI_FLOAT64, TUTTI_SUM},
    {TUTTI_INT8, TUTTI_SUM},
};

static const size_t tt_counts[] = {0, 1, 7, 100, 1021};

#define TT_NELEMS(_a) (sizeof(_a) / sizeof((_a)[0]))

/* Barrier rounds, and the flags every rank raises before each; shared by
 * the forked ranks (an anonymous shared mapping made before the fork). */
#define TT_BARRIER_ROUNDS 24

typedef struct tt_barrier_flags {
    atomic_int in[TT_BARRIER_ROUNDS][TT_OPS_MAX_RANKS];
} tt_barrier_flags_t;

typedef enum tt_coll_sweep {
    TT_SWEEP_SMALL, /* every count, mode, root and type */
    TT_SWEEP_LARGE, /* one case of about 1 MiB per algorithm */
    TT_SWEEP_BARRIER
} tt_coll_sweep_t;

typedef struct tt_coll_plan {
    tt_coll_sweep_t     sweep;
    tt_barrier_flags_t *flags; /* TT_SWEEP_BARRIER */
} tt_coll_plan_t;

/* The config.algo text of communicator k: "coll:algo;..." for every
 * collective that has a k-th algorithm. */
static void tt_coll_spec(int k, char *buf, size_t len)
{
    size_t i, used = 0;

    buf[0] = '\0';
    for (i = 0; i < TT_COLL_NTABLE; i++) {
        const char *algo = tt_coll_table[i].algos[k];

        if (algo != NULL) {
            used += (size_t)snprintf(buf + used, len - used, "%s%s:%s",
                                     used > 0 ? ";" : "",
                                     tutti__coll_name(tt_coll_table[i].coll),
                                     algo);
        }
    }
}

/* ---------------------------------------------------------------------- */
/* the sweeps                                                             */
/* ---------------------------------------------------------------------- */

/* Distinct roots 0, nranks / 2, nranks - 1 into roots; returns how many. */
static int tt_coll_roots(int nranks, int *roots)
{
    int n = 0;

    roots[n++] = 0;
    if (nranks / 2 != 0) {
        roots[n++] = nranks / 2;
    }
    if (nranks - 1 != roots[n - 1]) {
        roots[n++] = nranks - 1;
    }
    return n;
}

/* Every small case of one collective; returns the failures, -1 when a call
 * failed (the communicator may be broken). */
static int tt_coll_small(tt_coll_t coll, const char *algo, int rank,
                         int nranks, tutti_comm_t comm, uint64_t *seed)
{
    const tt_dt_op_t *types = tt_ops_is_reduction(coll) ? tt_reductions
                                                        : tt_movements;
    size_t            ntypes = tt_ops_is_reduction(coll)
                                   ? TT_NELEMS(tt_reductions)
                                   : TT_NELEMS(tt_movements);
    int               roots[3], nroots = 1, mode, bad = 0;
    size_t            n, t;

    roots[0] = 0;
    if (tt_ops_is_rooted(coll)) {
        nroots = tt_coll_roots(nranks, roots);
    }
    for (n = 0; n < TT_NELEMS(tt_counts); n++) {
        for (t = 0; t < ntypes; t++) {
            for (mode = 0; mode < TT_OPS_NUM_MODES; mode++) {
                int r;

                if (mode == TT_OPS_NULL && !tt_ops_is_rooted(coll)) {
                    continue;
                }
                for (r = 0; r < nroots; r++) {
                    tt_ops_case_t c = {.coll  = coll,
                                       .dt    = types[t].dt,
                                       .op    = types[t].op,
                                       .count = tt_counts[n],
                                       .root  = roots[r],
                                       .mode  = (tt_ops_mode_t)mode,
                                       .algo  = algo};
                    int           rc;

                    c.seed = tt_ops_seed_next(seed);
                    rc     = tt_ops_run_case(&c, rank, nranks, comm);
                    if (rc < 0) {
                        return -1;
                    }
                    bad += rc;
                }
            }
        }
    }
    return bad;
}

/* One case of about 1 MiB per buffer (ops.c, tt_ops_large_case). */
static int tt_coll_large(tt_coll_t coll, int k, const char *algo, int rank,
                         int nranks, tutti_comm_t comm, uint64_t *seed)
{
    tt_ops_case_t c;

    if (!tt_ops_large_case(coll, k, nranks, 1u << 20, &c)) {
        return 0;
    }
    c.algo = algo;
    c.seed = tt_ops_seed_next(seed);
    return tt_ops_run_case(&c, rank, nranks, comm);
}

/*
 * Each round, one rank (a different one each time) is late; every rank
 * raises its flag, enters the barrier, and on leaving must see every
 * rank's flag for the round: a barrier that lets a rank out early fails
 * here when the late rank has not arrived yet.
 */
static int tt_coll_barrier_rounds(int rank, int nranks, tutti_comm_t comm,
                                  tt_barrier_flags_t *flags)
{
    int round, r, bad = 0;

    for (round = 0; round < TT_BARRIER_ROUNDS; round++) {
        if (rank == round % nranks) {
            tt_test_sleep_ms(1 + round % 3);
        }
        atomic_store(&flags->in[round][rank], 1);
        TT_TEST_CALL(tutti_barrier(comm));
        for (r = 0; r < nranks; r++) {
            bad += TT_TEST_EXPECT(atomic_load(&flags->in[round][r]) == 1,
                                  "round %d: rank %d left the barrier before "
                                  "rank %d entered it", round, rank, r);
        }
    }
    return bad;
}

/* Runs the plan's cases for every collective that communicator k forces. */
static int tt_coll_run_comm(const tt_coll_plan_t *plan, int k, int rank,
                            int nranks, tutti_comm_t comm, uint64_t *seed)
{
    size_t i;
    int    bad = 0;

    for (i = 0; i < TT_COLL_NTABLE; i++) {
        const tt_coll_algos_t *e    = &tt_coll_table[i];
        tt_ops_case_t          c    = {.coll  = e->coll,
                                       .dt    = TUTTI_FLOAT32,
                                       .op    = TUTTI_SUM,
                                       .count = 7};
        int                    rc;

        if (e->algos[k] == NULL) {
            continue;
        }
        if (e->coll == TT_COLL_BARRIER) {
            c.dt = TUTTI_UINT8;
            c.count = 1;
        }
        if (tt_ops_expect_algo(comm, &c, nranks, e->algos[k]) != 0) {
            bad++;
            continue;
        }
        switch (plan->sweep) {
        case TT_SWEEP_SMALL:
            rc = tt_coll_small(e->coll, e->algos[k], rank, nranks, comm,
                               seed);
            break;
        case TT_SWEEP_LARGE:
            rc = tt_coll_large(e->coll, k, e->algos[k], rank, nranks, comm,
                               seed);
            break;
        default:
            rc = e->coll == TT_COLL_BARRIER
                     ? tt_coll_barrier_rounds(rank, nranks, comm, plan->flags)
                     : 0;
            break;
        }
        if (rc < 0) {
            return -1;
        }
        bad += rc;
    }
    return bad;
}

static int tt_coll_rank(int rank, int nranks, const tutti_unique_id_t *id,
                        void *arg)
{
    const tt_coll_plan_t *plan = arg;
    tutti_comm_t          world, comm;
    uint64_t              seed = 0x636f6c6cu;
    char                  spec[256];
    int                   k, rc, bad = 0;

    TT_TEST_CALL(tt_ops_comm_init(rank, nranks, id, NULL, &world));
    for (k = 0; k < TT_COLL_MAX_ALGOS; k++) {
        tt_coll_spec(k, spec, sizeof(spec));
        if (plan->sweep == TT_SWEEP_BARRIER && k > 0) {
            break;
        }
        TT_TEST_CALL(tt_ops_comm_derive(world, spec, &comm));
        rc = tt_coll_run_comm(plan, k, rank, nranks, comm, &seed);
        if (rc < 0) {
            tt_test_fail(__FILE__, __LINE__, "with config.algo '%s': a call "
                         "failed, stopping", spec);
            return 1;
        }
        bad += rc;
        TT_TEST_CALL(tutti_comm_destroy(comm));
    }
    /* every rank is done with the derived communicators before any
     * leaves */
    TT_TEST_CALL(tutti_barrier(world));
    TT_TEST_CALL(tutti_comm_destroy(world));
    return bad != 0;
}

/*
 * One shape of each collective, called again and again on new buffers with
 * new data, while the previous call's buffers are still allocated (so the
 * addresses differ): a blocking call of the last call's shape re-issues
 * that call's execution bound to the new buffers. The placement switches
 * to in place and back in the middle, roots move, and a point-to-point
 * pair runs between the collectives, so each rebinding, each change of
 * shape and each return to a shape seen before is checked.
 */
#define TT_REPEAT_CALLS 6

static int tt_coll_repeat_rank(int rank, int nranks,
                               const tutti_unique_id_t *id, void *arg)
{
    tutti_comm_t comm;
    uint64_t     seed = 0x72657065u;
    size_t       i;
    int          k, bad = 0;

    (void)arg;
    TT_TEST_CALL(tt_ops_comm_init(rank, nranks, id, NULL, &comm));
    for (i = 0; i < TT_COLL_NTABLE; i++) {
        tt_ops_run_t runs[2];
        int          have[2] = {0, 0};

        if (tt_coll_table[i].coll == TT_COLL_BARRIER) {
            continue;
        }
        for (k = 0; k < TT_REPEAT_CALLS; k++) {
            tt_ops_run_t *run = &runs[k % 2];
            tt_ops_case_t c   = {.coll  = tt_coll_table[i].coll,
                                 .dt    = TUTTI_FLOAT32,
                                 .op    = TUTTI_SUM,
                                 .count = 1021,
                                 .root  = (k / 2) % nranks,
                                 .mode  = k == 3 ? TT_OPS_INPLACE
                                                 : TT_OPS_OOP,
                                 .seed  = tt_ops_seed_next(&seed)};
            tutti_result_t res;

            if (have[k % 2]) {
                tt_ops_release(run);
                have[k % 2] = 0;
            }
            if (tt_ops_prepare(run, &c, rank, nranks) != 0) {
                bad++;
                break;
            }
            have[k % 2] = 1;
            res = tt_ops_start(run, comm, NULL);
            if (res != TUTTI_SUCCESS) {
                tt_test_fail(__FILE__, __LINE__, "%s: %s (%s)", run->what,
                             tutti_result_name(res), tutti_last_error());
                bad++;
                break;
            }
            bad += tt_ops_check(run);
            if (k == 4 && nranks > 1) {
                /* another shape in between: a ring of sends */
                float out = (float)rank, in = -1.0f;

                TT_TEST_CALL(tutti_group_start());
                TT_TEST_CALL(tutti_send(&out, 1, TUTTI_FLOAT32,
                                        (rank + 1) % nranks, comm));
                TT_TEST_CALL(tutti_recv(&in, 1, TUTTI_FLOAT32,
                                        (rank + nranks - 1) % nranks, comm));
                TT_TEST_CALL(tutti_group_end());
                bad += TT_TEST_EXPECT(in == (float)((rank + nranks - 1) %
                                                    nranks),
                                      "ring of sends: got %g", (double)in);
            }
        }
        for (k = 0; k < 2; k++) {
            if (have[k]) {
                tt_ops_release(&runs[k]);
            }
        }
    }
    TT_TEST_CALL(tutti_comm_destroy(comm));
    return bad != 0;
}

/* ---------------------------------------------------------------------- */
/* the tests                                                              */
/* ---------------------------------------------------------------------- */

static int tt_ranks_all[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static int tt_ranks_large[] = {2, 3, 4};

ParameterizedTestParameters(collectives, every_algorithm)
{
    return cr_make_param_array(int, tt_ranks_all, TT_NELEMS(tt_ranks_all));
}

ParameterizedTest(int *nranks, collectives, every_algorithm, .timeout = 200)
{
    tt_coll_plan_t plan = {.sweep = TT_SWEEP_SMALL};

    cr_assert_eq(tt_test_spawn(*nranks, tt_coll_rank, &plan,
                               TT_OPS_JOB_TIMEOUT_MS), 0,
                 "collectives over %d ranks failed (see stderr)", *nranks);
}

ParameterizedTestParameters(collectives, large)
{
    return cr_make_param_array(int, tt_ranks_large,
                               TT_NELEMS(tt_ranks_large));
}

ParameterizedTest(int *nranks, collectives, large, .timeout = 200)
{
    tt_coll_plan_t plan = {.sweep = TT_SWEEP_LARGE};

    cr_assert_eq(tt_test_spawn(*nranks, tt_coll_rank, &plan,
                               TT_OPS_JOB_TIMEOUT_MS), 0,
                 "1 MiB collectives over %d ranks failed (see stderr)",
                 *nranks);
}

static int tt_ranks_repeat[] = {1, 2, 3, 5};

ParameterizedTestParameters(collectives, repeated_shape_new_buffers)
{
    return cr_make_param_array(int, tt_ranks_repeat,
                               TT_NELEMS(tt_ranks_repeat));
}

ParameterizedTest(int *nranks, collectives, repeated_shape_new_buffers,
                  .timeout = 200)
{
    cr_assert_eq(tt_test_spawn(*nranks, tt_coll_repeat_rank, NULL,
                               TT_OPS_JOB_TIMEOUT_MS), 0,
                 "repeated calls over %d ranks failed (see stderr)",
                 *nranks);
}

/*
 * A repeated blocking call keeps its execution for the next one, but not
 * one holding megabytes of scratch: recursive doubling's scratch is as
 * large as the message, so after an 8 MiB allreduce the execution kept is
 * still the 16-float one before it. The sums are checked too.
 */
static int tt_coll_keep_rank(int rank, int nranks,
                             const tutti_unique_id_t *id, void *arg)
{
    const size_t counts[] = {16, 2u << 20, 16};
    tutti_comm_t comm;
    float       *buf;
    size_t       i, k;
    int          bad = 0;

    (void)arg;
    TT_TEST_CALL(tt_ops_comm_init(rank, nranks, id, "allreduce:rd", &comm));
    buf = malloc(counts[1] * sizeof(float));
    if (buf == NULL) {
        return tt_test_fail(__FILE__, __LINE__, "no memory");
    }
    for (k = 0; k < TT_NELEMS(counts); k++) {
        for (i = 0; i < counts[k]; i++) {
            buf[i] = (float)(rank + 1);
        }
        TT_TEST_CALL(tutti_allreduce(buf, buf, counts[k], TUTTI_FLOAT32,
                                     TUTTI_SUM, comm));
        bad += TT_TEST_EXPECT(buf[0] == (float)(nranks * (nranks + 1) / 2) &&
                              buf[counts[k] - 1] == buf[0],
                              "allreduce of %zu: got %g", counts[k],
                              (double)buf[0]);
        /* the small call's execution is kept, also across the large */
        bad += TT_TEST_EXPECT(comm->xcache != NULL &&
                              comm->xcache_args.count == 16,
                              "after an allreduce of %zu floats the kept "
                              "execution is %s (%zu bytes)", counts[k],
                              comm->xcache == NULL ? "none" : "another",
                              comm->xcache == NULL ? (size_t)0 :
                              tutti__exec_mem_bytes(comm->xcache));
    }
    free(buf);
    TT_TEST_CALL(tutti_comm_destroy(comm));
    return bad != 0;
}

Test(collectives, large_calls_keep_no_scratch, .timeout = 120)
{
    cr_assert_eq(tt_test_spawn(2, tt_coll_keep_rank, NULL,
                               TT_OPS_JOB_TIMEOUT_MS), 0,
                 "kept executions over 2 ranks (see stderr)");
}

static int tt_ranks_barrier[] = {2, 3, 5, 9};

ParameterizedTestParameters(collectives, barrier_holds_every_rank)
{
    return cr_make_param_array(int, tt_ranks_barrier,
                               TT_NELEMS(tt_ranks_barrier));
}

ParameterizedTest(int *nranks, collectives, barrier_holds_every_rank,
                  .timeout = 200)
{
    tt_coll_plan_t plan = {.sweep = TT_SWEEP_BARRIER};

    plan.flags = mmap(NULL, sizeof(*plan.flags), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(plan.flags, MAP_FAILED);
    memset(plan.flags, 0, sizeof(*plan.flags));
    cr_assert_eq(tt_test_spawn(*nranks, tt_coll_rank, &plan,
                               TT_OPS_JOB_TIMEOUT_MS), 0,
                 "barrier over %d ranks failed (see stderr)", *nranks);
    munmap(plan.flags, sizeof(*plan.flags));
}

/*
 * The table above names every algorithm the library has: an algorithm
 * added without being added here would otherwise go untested.
 */
Test(collectives, table_covers_every_algorithm, .timeout = 10)
{
    const tt_algo_t *const *a;

    for (a = tutti__algos; *a != NULL; a++) {
        size_t i;
        int    k, found = 0;

        for (i = 0; i < TT_COLL_NTABLE; i++) {
            for (k = 0; k < TT_COLL_MAX_ALGOS; k++) {
                const char *name = tt_coll_table[i].algos[k];

                found |= tt_coll_table[i].coll == (*a)->coll &&
                         name != NULL && strcmp(name, (*a)->name) == 0;
            }
        }
        cr_expect(found, "algorithm %s of %s is not in this suite's table",
                  (*a)->name, tutti__coll_name((*a)->coll));
    }
}
