/*
 * Nonblocking collectives (tutti_i*, tutti_test, tutti_wait): several in
 * flight on one communicator, completed out of issue order, by waiting
 * and by polling; blocking calls issued while nonblocking ones are
 * outstanding; a burst of many small requests; count-0 calls, whose
 * request is complete at once; and an ibarrier that really holds every
 * rank. Each job runs on 2 to 9 forked ranks under one TUTTI_ALGO setting
 * (the default choice, or forced algorithms), so the overlap is exercised
 * on every algorithm family. Results are checked bit for bit (ops.c).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <tutti.h>

#include "ops.h"

#define TT_NB_NELEMS(_a) (sizeof(_a) / sizeof((_a)[0]))

/* Requests of one burst of small iallreduce calls. */
#define TT_NB_BURST 40
/* ibarrier rounds, and the flags raised before each (see below). */
#define TT_NB_BARRIER_ROUNDS 12

typedef struct tt_nb_shared {
    atomic_int in[TT_NB_BARRIER_ROUNDS][TT_OPS_MAX_RANKS];
} tt_nb_shared_t;

/* ---------------------------------------------------------------------- */
/* helpers                                                                */
/* ---------------------------------------------------------------------- */

/* Prepares and issues cases[0..n) as tutti_i* calls, in order. Returns 0,
 * or 1 after releasing what it prepared (reported). */
static int tt_nb_start_all(const tt_ops_case_t *cases, int n, int rank,
                           int nranks, tutti_comm_t comm, tt_ops_run_t *runs,
                           tutti_request_t *reqs)
{
    int i;

    for (i = 0; i < n; i++) {
        tutti_result_t res;

        if (tt_ops_prepare(&runs[i], &cases[i], rank, nranks) != 0) {
            break;
        }
        reqs[i] = NULL;
        res     = tt_ops_start(&runs[i], comm, &reqs[i]);
        if (res == TUTTI_SUCCESS && reqs[i] == NULL) {
            tt_test_fail(__FILE__, __LINE__, "%s: success without a request",
                         runs[i].what);
            tt_ops_release(&runs[i]);
            break;
        }
        if (res != TUTTI_SUCCESS) {
            tt_test_fail(__FILE__, __LINE__, "%s: %s (%s)", runs[i].what,
                         tutti_result_name(res), tutti_last_error());
            tt_ops_release(&runs[i]);
            break;
        }
    }
    if (i == n) {
        return 0;
    }
    /* the requests issued cannot be abandoned with buffers freed: the rank
     * fails, and its buffers stay until the process exits */
    return 1;
}

/* Waits for reqs in the order given by `order`, rotated by `shift` (ranks
 * pass their rank: each waits in its own order), then checks and releases
 * every run; returns the failures. */
static int tt_nb_wait_check(tt_ops_run_t *runs, tutti_request_t *reqs,
                            const int *order, int n, int shift)
{
    int i, bad = 0;

    for (i = 0; i < n; i++) {
        int            k   = order[(i + shift) % n];
        tutti_result_t res = tutti_wait(reqs[k]);

        reqs[k] = NULL;
        if (res != TUTTI_SUCCESS) {
            bad += tt_test_fail(__FILE__, __LINE__, "%s: wait (%d-th of %d):"
                                " %s (%s)", runs[k].what, i + 1, n,
                                tutti_result_name(res), tutti_last_error());
        }
    }
    for (i = 0; i < n; i++) {
        bad += tt_ops_check(&runs[i]);
        tt_ops_release(&runs[i]);
    }
    return bad;
}

static void tt_nb_seed(tt_ops_case_t *cases, int n, uint64_t *seed)
{
    int i;

    for (i = 0; i < n; i++) {
        cases[i].seed = tt_ops_seed_next(seed);
    }
}

/* ---------------------------------------------------------------------- */
/* the scenarios, each run by every rank                                  */
/* ---------------------------------------------------------------------- */

/*
 * Six iallreduce calls of different sizes, types and ops, one large
 * enough to be cut into many pipeline slices, in place and not; waited in
 * an order unrelated to issue order, and different on every rank.
 */
static int tt_nb_iallreduce_overlap(int rank, int nranks, tutti_comm_t comm,
                                    uint64_t *seed)
{
    tt_ops_case_t cases[] = {
        {TT_COLL_ALLREDUCE, TUTTI_FLOAT32, TUTTI_SUM, 1021, 0, TT_OPS_OOP,
         0, NULL},
        {TT_COLL_ALLREDUCE, TUTTI_INT32, TUTTI_MAX, 7, 0, TT_OPS_INPLACE, 0,
         NULL},
        {TT_COLL_ALLREDUCE, TUTTI_BFLOAT16, TUTTI_SUM, 70001, 0, TT_OPS_OOP,
         0, NULL},
        {TT_COLL_ALLREDUCE, TUTTI_INT64, TUTTI_SUM, 1, 0, TT_OPS_OOP, 0,
         NULL},
        {TT_COLL_ALLREDUCE, TUTTI_FLOAT32, TUTTI_AVG, 131075, 0,
         TT_OPS_INPLACE, 0, NULL},
        {TT_COLL_ALLREDUCE, TUTTI_UINT8, TUTTI_MIN, 4099, 0, TT_OPS_OOP, 0,
         NULL},
    };
    static const int order[] = {4, 1, 5, 0, 3, 2};
    enum { n = TT_NB_NELEMS(cases) };
    tt_ops_run_t    runs[n];
    tutti_request_t reqs[n];

    tt_nb_seed(cases, n, seed);
    if (tt_nb_start_all(cases, n, rank, nranks, comm, runs, reqs) != 0) {
        return -1;
    }
    return tt_nb_wait_check(runs, reqs, order, n, rank);
}

/*
 * One of every nonblocking collective in flight at once (and two
 * iallreduce around them), completed by polling tutti_test on all of them
 * in turn. Roots differ per collective; reduce's non-roots pass NULL.
 */
static int tt_nb_mixed_polled(int rank, int nranks, tutti_comm_t comm,
                              uint64_t *seed)
{
    int           last = nranks - 1;
    tt_ops_case_t cases[] = {
        {TT_COLL_ALLREDUCE, TUTTI_FLOAT32, TUTTI_SUM, 100, 0, TT_OPS_OOP, 0,
         NULL},
        {TT_COLL_ALLGATHER, TUTTI_FLOAT64, TUTTI_SUM, 1021, 0,
         TT_OPS_INPLACE, 0, NULL},
        {TT_COLL_REDUCE_SCATTER, TUTTI_INT32, TUTTI_MAX, 333, 0, TT_OPS_OOP,
         0, NULL},
        {TT_COLL_BROADCAST, TUTTI_INT8, TUTTI_SUM, 70001, last, TT_OPS_NULL,
         0, NULL},
        {TT_COLL_REDUCE, TUTTI_BFLOAT16, TUTTI_SUM, 2049, nranks / 2,
         TT_OPS_NULL, 0, NULL},
        {TT_COLL_ALLTOALL, TUTTI_INT8, TUTTI_SUM, 257, 0, TT_OPS_OOP, 0,
         NULL},
        {TT_COLL_BARRIER, TUTTI_UINT8, TUTTI_SUM, 1, 0, TT_OPS_OOP, 0, NULL},
        {TT_COLL_ALLREDUCE, TUTTI_FLOAT32, TUTTI_AVG, 65537, 0,
         TT_OPS_INPLACE, 0, NULL},
    };
    enum { n = TT_NB_NELEMS(cases) };
    tt_ops_run_t    runs[n];
    tutti_request_t reqs[n];
    int             i, bad;

    tt_nb_seed(cases, n, seed);
    if (tt_nb_start_all(cases, n, rank, nranks, comm, runs, reqs) != 0) {
        return -1;
    }
    bad = tt_ops_test_all(reqs, n, "mixed nonblocking collectives");
    for (i = 0; i < n; i++) {
        bad += tt_ops_check(&runs[i]);
        tt_ops_release(&runs[i]);
    }
    return bad;
}

/*
 * Blocking calls while nonblocking ones are outstanding: an iallreduce
 * and an ialltoall are issued, then a blocking allreduce, broadcast and
 * reduce_scatter run to completion (they must make progress on what is in
 * flight before them), then the two requests are waited, the later one
 * first.
 */
static int tt_nb_blocking_among(int rank, int nranks, tutti_comm_t comm,
                                uint64_t *seed)
{
    tt_ops_case_t pending[] = {
        {TT_COLL_ALLREDUCE, TUTTI_FLOAT32, TUTTI_SUM, 200003, 0, TT_OPS_OOP,
         0, NULL},
        {TT_COLL_ALLTOALL, TUTTI_FLOAT64, TUTTI_SUM, 1000, 0,
         TT_OPS_INPLACE, 0, NULL},
    };
    tt_ops_case_t blocking[] = {
        {TT_COLL_ALLREDUCE, TUTTI_INT32, TUTTI_MAX, 1021, 0, TT_OPS_INPLACE,
         0, NULL},
        {TT_COLL_BROADCAST, TUTTI_FLOAT64, TUTTI_SUM, 5000, nranks - 1,
         TT_OPS_OOP, 0, NULL},
        {TT_COLL_REDUCE_SCATTER, TUTTI_FLOAT32, TUTTI_AVG, 77, 0,
         TT_OPS_INPLACE, 0, NULL},
    };
    static const int order[] = {1, 0};
    enum { n = TT_NB_NELEMS(pending) };
    tt_ops_run_t    runs[n];
    tutti_request_t reqs[n];
    size_t          i;
    int             bad = 0;

    tt_nb_seed(pending, n, seed);
    tt_nb_seed(blocking, TT_NB_NELEMS(blocking), seed);
    if (tt_nb_start_all(pending, n, rank, nranks, comm, runs, reqs) != 0) {
        return -1;
    }
    for (i = 0; i < TT_NB_NELEMS(blocking); i++) {
        int rc = tt_ops_run_case(&blocking[i], rank, nranks, comm);

        if (rc < 0) {
            return -1;
        }
        bad += rc;
    }
    return bad + tt_nb_wait_check(runs, reqs, order, n, 0);
}

/*
 * TT_NB_BURST small iallreduce calls outstanding at once, waited last to
 * first (rotated by rank): many live executions on one communicator.
 */
static int tt_nb_burst(int rank, int nranks, tutti_comm_t comm,
                       uint64_t *seed)
{
    tt_ops_case_t   cases[TT_NB_BURST];
    tt_ops_run_t    runs[TT_NB_BURST];
    tutti_request_t reqs[TT_NB_BURST];
    int             order[TT_NB_BURST], i;

    for (i = 0; i < TT_NB_BURST; i++) {
        cases[i] = (tt_ops_case_t){.coll  = TT_COLL_ALLREDUCE,
                                   .dt    = i % 2 ? TUTTI_INT32
                                                  : TUTTI_FLOAT32,
                                   .op    = i % 2 ? TUTTI_MAX : TUTTI_SUM,
                                   .count = 1 + (size_t)i * 3,
                                   .mode  = i % 3 ? TT_OPS_OOP
                                                  : TT_OPS_INPLACE};
        order[i] = TT_NB_BURST - 1 - i;
    }
    tt_nb_seed(cases, TT_NB_BURST, seed);
    if (tt_nb_start_all(cases, TT_NB_BURST, rank, nranks, comm, runs,
                        reqs) != 0) {
        return -1;
    }
    return tt_nb_wait_check(runs, reqs, order, TT_NB_BURST, rank);
}

/* Count-0 calls of every kind return a request that tutti_test finds
 * complete at once, with TUTTI_SUCCESS. */
static int tt_nb_empty(int rank, tutti_comm_t comm)
{
    tutti_request_t reqs[8];
    float           x[1] = {0};
    int             i, bad = 0;

    memset(reqs, 0, sizeof(reqs));
    TT_TEST_CALL(tutti_iallreduce(x, x, 0, TUTTI_FLOAT32, TUTTI_SUM, comm,
                                  &reqs[0]));
    TT_TEST_CALL(tutti_iallgather(x, x, 0, TUTTI_FLOAT32, comm, &reqs[1]));
    TT_TEST_CALL(tutti_ireduce_scatter(x, x, 0, TUTTI_FLOAT32, TUTTI_SUM,
                                       comm, &reqs[2]));
    TT_TEST_CALL(tutti_ibroadcast(x, x, 0, TUTTI_FLOAT32, 0, comm,
                                  &reqs[3]));
    TT_TEST_CALL(tutti_ireduce(x, rank == 0 ? x : NULL, 0, TUTTI_FLOAT32,
                               TUTTI_SUM, 0, comm, &reqs[4]));
    TT_TEST_CALL(tutti_ialltoall(x, x, 0, TUTTI_FLOAT32, comm, &reqs[5]));
    TT_TEST_CALL(tutti_iallreduce(NULL, NULL, 0, TUTTI_INT8, TUTTI_MAX,
                                  comm, &reqs[6]));
    TT_TEST_CALL(tutti_ibroadcast(NULL, NULL, 0, TUTTI_INT8, 0, comm,
                                  &reqs[7]));
    for (i = 0; i < 8; i++) {
        int done = 0;

        bad += TT_TEST_EXPECT(reqs[i] != NULL, "count-0 call %d: no request",
                              i);
        if (reqs[i] == NULL) {
            continue;
        }
        TT_TEST_CALL(tutti_test(reqs[i], &done));
        bad += TT_TEST_EXPECT(done == 1, "count-0 call %d not complete at "
                              "once", i);
        if (!done) {
            TT_TEST_CALL(tutti_wait(reqs[i]));
        }
    }
    bad += TT_TEST_EXPECT(x[0] == 0.0f, "a count-0 call wrote %g", x[0]);
    return bad;
}

/* As the blocking barrier test: one rank is late each round, and nobody
 * may see ibarrier complete before every rank has raised its flag. The
 * request is polled with tutti_test, in between other work. */
static int tt_nb_ibarrier(int rank, int nranks, tutti_comm_t comm,
                          tt_nb_shared_t *sh)
{
    int round, r, bad = 0;

    for (round = 0; round < TT_NB_BARRIER_ROUNDS; round++) {
        tutti_request_t req;
        int             done = 0;

        if (rank == (round * 5) % nranks) {
            tt_test_sleep_ms(2);
        }
        atomic_store(&sh->in[round][rank], 1);
        TT_TEST_CALL(tutti_ibarrier(comm, &req));
        for (;;) {
            TT_TEST_CALL(tutti_test(req, &done));
            if (done) {
                break;
            }
            sched_yield(); /* ranks outnumber cores: let the late one run */
        }
        for (r = 0; r < nranks; r++) {
            bad += TT_TEST_EXPECT(atomic_load(&sh->in[round][r]) == 1,
                                  "round %d: ibarrier completed on rank %d "
                                  "before rank %d entered", round, rank, r);
        }
    }
    return bad;
}

/*
 * Two communicators over the same ranks, an iallreduce on each; rank 0
 * waits for the first communicator's request first, the others for the
 * second's. Legal by tutti.h (and in MPI and NCCL): it completes only
 * because waiting on one communicator also progresses the thread's other
 * communicators with work in flight (before that fix, each side waited
 * for a message the other never sent, until TUTTI_ERR_TIMEOUT).
 */
static int tt_nb_two_comms_rank(int rank, int nranks,
                                const tutti_unique_id_t *id, void *arg)
{
    tutti_comm_t    comm[2];
    tt_ops_run_t    runs[2];
    tutti_request_t reqs[2];
    uint64_t        seed = 0x78636fu;
    int             c, bad = 0;

    (void)arg;
    TT_TEST_CALL(tt_ops_comm_init(rank, nranks, id, NULL, &comm[0]));
    TT_TEST_CALL(tt_ops_comm_derive(comm[0], NULL, &comm[1]));
    for (c = 0; c < 2; c++) {
        tt_ops_case_t tc = {TT_COLL_ALLREDUCE, TUTTI_FLOAT32, TUTTI_SUM, 10,
                            0, TT_OPS_OOP, 0, NULL};

        tc.seed = tt_ops_seed_next(&seed);
        if (tt_nb_start_all(&tc, 1, rank, nranks, comm[c], &runs[c],
                            &reqs[c]) != 0) {
            return 1;
        }
    }
    for (c = 0; c < 2; c++) {
        int k = rank == 0 ? c : 1 - c;

        TT_TEST_CALL(tutti_wait(reqs[k]));
        bad += tt_ops_check(&runs[k]);
        tt_ops_release(&runs[k]);
    }
    TT_TEST_CALL(tutti_comm_destroy(comm[1]));
    TT_TEST_CALL(tutti_comm_destroy(comm[0]));
    return bad != 0;
}

/* ---------------------------------------------------------------------- */
/* the jobs                                                               */
/* ---------------------------------------------------------------------- */

typedef struct tt_nb_param {
    int nranks;
    int spec; /* index into tt_nb_specs */
} tt_nb_param_t;

static const char *const tt_nb_specs[] = {
    NULL, /* the default choice */
    "ring",
    "allreduce:tree;allgather:bruck;reduce_scatter:rh;broadcast:chain;"
    "reduce:chain",
    "allreduce:rabenseifner;allgather:rd;broadcast:binomial;"
    "reduce:binomial",
    "allreduce:rd;allgather:ring;reduce_scatter:ring",
};

static int tt_nb_rank(int rank, int nranks, const tutti_unique_id_t *id,
                      void *arg)
{
    tt_nb_shared_t *sh   = arg;
    tutti_comm_t    comm;
    uint64_t        seed = 0x6e62u;
    int             rc, bad = 0;

    TT_TEST_CALL(tt_ops_comm_init(rank, nranks, id, NULL, &comm));
#define TT_NB_STEP(_call)                                                    \
    do {                                                                     \
        rc = (_call);                                                        \
        if (rc < 0) {                                                        \
            return tt_test_fail(__FILE__, __LINE__, "%s: a call failed, "    \
                                "stopping", #_call);                         \
        }                                                                    \
        bad += rc;                                                           \
    } while (0)
    TT_NB_STEP(tt_nb_iallreduce_overlap(rank, nranks, comm, &seed));
    TT_NB_STEP(tt_nb_mixed_polled(rank, nranks, comm, &seed));
    TT_NB_STEP(tt_nb_blocking_among(rank, nranks, comm, &seed));
    TT_NB_STEP(tt_nb_burst(rank, nranks, comm, &seed));
    TT_NB_STEP(tt_nb_empty(rank, comm));
    TT_NB_STEP(tt_nb_ibarrier(rank, nranks, comm, sh));
#undef TT_NB_STEP
    TT_TEST_CALL(tutti_comm_destroy(comm));
    return bad != 0;
}

static tt_nb_param_t tt_nb_params[] = {
    {1, 0}, {2, 0}, {3, 0}, {4, 0}, {6, 0}, {9, 0},
    {3, 1}, {5, 1}, {8, 1},
    {3, 2}, {4, 2}, {7, 2},
    {2, 3}, {5, 3}, {6, 3},
    {3, 4}, {8, 4},
};

ParameterizedTestParameters(nonblocking, overlap)
{
    return cr_make_param_array(tt_nb_param_t, tt_nb_params,
                               TT_NB_NELEMS(tt_nb_params));
}

ParameterizedTest(tt_nb_param_t *p, nonblocking, overlap, .timeout = 200)
{
    const char     *spec = tt_nb_specs[p->spec];
    tt_nb_shared_t *sh;

    /* Criterion forks each test: the variable does not leak */
    if (spec != NULL) {
        cr_assert_eq(setenv("TUTTI_ALGO", spec, 1), 0);
    }
    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(sh, MAP_FAILED);
    memset(sh, 0, sizeof(*sh));
    cr_assert_eq(tt_test_spawn(p->nranks, tt_nb_rank, sh,
                               TT_OPS_JOB_TIMEOUT_MS), 0,
                 "nonblocking over %d ranks with TUTTI_ALGO '%s' failed (see "
                 "stderr)", p->nranks, spec != NULL ? spec : "");
    munmap(sh, sizeof(*sh));
}

/* Waiting on one communicator's request progresses the thread's other
 * communicators too (see tt_nb_two_comms_rank). */
Test(nonblocking, two_communicators_waited_in_other_orders, .timeout = 120)
{
    cr_assert_eq(tt_test_spawn(2, tt_nb_two_comms_rank, NULL,
                               TT_OPS_JOB_TIMEOUT_MS), 0,
                 "two communicators over 2 ranks failed (see stderr)");
}
