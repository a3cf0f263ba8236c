/*
 * Multi-process allgather suite: every datatype, in place and out of place,
 * over 1 to 8 forked ranks, send counts 0, 1, 2, 7, a prime, counts whose
 * blocks sit at the shm transport's inline size, one that spans many
 * pipeline slices, a 16 MiB result for a few rank counts, and the same
 * under configurations with tiny slices and FIFO slots and with each
 * algorithm forced.
 *
 * Allgather moves bytes without looking at them, so every rank's block is
 * random bits (NaN and infinity patterns included for the float types) and
 * the result must equal, byte for byte, what each rank can regenerate
 * locally. Guard bytes around the buffers and (out of place) an untouched
 * send buffer are checked too. One communicator per job runs all cases.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tutti.h>

#include "spawn.h"

#define TT_AG_COLL_TIMEOUT_MS 30000
#define TT_AG_JOB_TIMEOUT_MS  90000

typedef struct tt_ag_plan {
    const size_t *counts;
    int           ncounts;
    unsigned      dts;   /* datatypes to run, bit per tutti_datatype_t */
    int           zero;  /* the count-0 cases too */
} tt_ag_plan_t;

static uint64_t tt_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Rank r's block for a case: bytes bytes of random bits. */
static void tt_ag_fill(uint64_t seed, int r, unsigned char *p, size_t bytes)
{
    size_t i;

    for (i = 0; i < bytes; i += 8) {
        uint64_t h = tt_mix(seed ^ ((uint64_t)(r + 1) << 44) ^ (i / 8));
        size_t   n = bytes - i < 8 ? bytes - i : 8;

        memcpy(p + i, &h, n);
    }
}

/* Returns 0 if recv holds every rank's block, 1 otherwise (reported). */
static int tt_ag_check(uint64_t seed, int nranks, const unsigned char *recv,
                       size_t block, const char *what)
{
    unsigned char *want = malloc(block > 0 ? block : 1);
    int            r, bad = 0;

    if (want == NULL) {
        return tt_test_fail(__FILE__, __LINE__, "out of memory");
    }
    for (r = 0; r < nranks; r++) {
        const unsigned char *got = recv + (size_t)r * block;

        tt_ag_fill(seed, r, want, block);
        if (memcmp(got, want, block) != 0) {
            size_t i = 0;

            while (got[i] == want[i]) {
                i++;
            }
            tt_test_fail(__FILE__, __LINE__, "%s: block of rank %d differs "
                         "from byte %zu of %zu (0x%02x, expected 0x%02x)",
                         what, r, i, block, got[i], want[i]);
            bad = 1;
        }
    }
    free(want);
    return bad;
}

/* One case; 0 passed, 1 wrong result, -1 the call failed. */
static int tt_ag_case(tutti_datatype_t dt, size_t count, int inplace,
                      uint64_t seed, int rank, int nranks, tutti_comm_t comm)
{
    size_t         esize = tutti_datatype_size(dt), block = count * esize;
    size_t         total = block * (size_t)nranks;
    tt_test_buf_t  send = {0}, recv = {0};
    unsigned char *own;
    tutti_result_t res;
    char           what[128];
    int            bad = 0;

    snprintf(what, sizeof(what), "allgather %s count %zu on %d ranks %s",
             tutti_datatype_name(dt), count, nranks,
             inplace ? "in place" : "out of place");
    if (tt_test_buf_alloc(&recv, total, esize) != 0 ||
        (!inplace && tt_test_buf_alloc(&send, block, 5 * esize) != 0)) {
        bad = -1;
        goto out;
    }
    memset(recv.p, 0x5a, total);
    own = recv.p + (size_t)rank * block;
    tt_ag_fill(seed, rank, inplace ? own : send.p, block);
    res = tutti_allgather(inplace ? own : send.p, recv.p, count, dt, comm);
    if (res != TUTTI_SUCCESS) {
        tt_test_fail(__FILE__, __LINE__, "%s: %s (%s)", what,
                     tutti_result_name(res), tutti_last_error());
        bad = -1;
        goto out;
    }
    bad += tt_ag_check(seed, nranks, recv.p, block, what);
    bad += !tt_test_buf_guards_ok(&recv, what);
    if (!inplace) {
        /* the send block regenerates into own's place for the compare */
        bad += !tt_test_buf_guards_ok(&send, what);
        bad += TT_TEST_EXPECT(memcmp(send.p, own, block) == 0,
                              "%s: the send buffer changed", what);
    }
    bad = bad != 0;
out:
    tt_test_buf_free(&send);
    tt_test_buf_free(&recv);
    return bad;
}

/* sendcount 0 succeeds and writes nothing, with NULL buffers too. */
static int tt_ag_zero(tutti_comm_t comm)
{
    unsigned char  sbuf[8], rbuf[64], want[64];
    tutti_result_t res;
    int            dt, bad = 0;

    memset(sbuf, 1, sizeof(sbuf));
    memset(want, 0x5a, sizeof(want));
    for (dt = 0; dt < TUTTI_NUM_DATATYPES; dt++) {
        memset(rbuf, 0x5a, sizeof(rbuf));
        res = tutti_allgather(sbuf, rbuf, 0, dt, comm);
        bad += TT_TEST_EXPECT(res == TUTTI_SUCCESS, "allgather count 0 %s: "
                              "%s (%s)", tutti_datatype_name(dt),
                              tutti_result_name(res), tutti_last_error());
        bad += TT_TEST_EXPECT(memcmp(rbuf, want, sizeof(rbuf)) == 0,
                              "allgather count 0 %s wrote to recvbuf",
                              tutti_datatype_name(dt));
        res = tutti_allgather(NULL, NULL, 0, dt, comm);
        bad += TT_TEST_EXPECT(res == TUTTI_SUCCESS, "allgather count 0 with "
                              "NULL buffers: %s (%s)", tutti_result_name(res),
                              tutti_last_error());
    }
    return bad;
}

static int tt_ag_rank(int rank, int nranks, const tutti_unique_id_t *id,
                      void *arg)
{
    const tt_ag_plan_t *plan   = arg;
    tutti_config_t      config = TUTTI_CONFIG_INIT;
    tutti_comm_t        comm;
    uint64_t            seed = 7;
    int                 c, dt, inplace, failed = 0;

    config.timeout_ms = TT_AG_COLL_TIMEOUT_MS;
    TT_TEST_CALL(tutti_comm_init(nranks, id, rank, &config, &comm));
    if (plan->zero) {
        failed += tt_ag_zero(comm);
    }
    for (c = 0; c < plan->ncounts; c++) {
        for (dt = 0; dt < TUTTI_NUM_DATATYPES; dt++) {
            if (!((plan->dts >> dt) & 1u)) {
                continue;
            }
            for (inplace = 0; inplace < 2; inplace++) {
                int r;

                seed = tt_mix(seed);
                r    = tt_ag_case(dt, plan->counts[c], inplace, seed, rank,
                                  nranks, comm);
                if (r < 0) {
                    return 1;
                }
                failed += r;
            }
        }
    }
    TT_TEST_CALL(tutti_comm_destroy(comm));
    return failed != 0;
}

/* 3, 12 and 24 make blocks of 24 bytes for 8-, 2- and 1-byte types (the
 * largest fragment a shm slot header carries inline), 25 one byte more */
static const size_t tt_counts_full[] = {1, 2, 3, 7, 12, 24, 25, 1021, 65537};

static int tt_ranks_1_to_8[] = {1, 2, 3, 4, 5, 6, 7, 8};

ParameterizedTestParameters(allgather, every_type)
{
    return cr_make_param_array(int, tt_ranks_1_to_8,
                               sizeof(tt_ranks_1_to_8) / sizeof(int));
}

ParameterizedTest(int *nranks, allgather, every_type, .timeout = 120)
{
    tt_ag_plan_t plan = {.counts  = tt_counts_full,
                         .ncounts = sizeof(tt_counts_full) /
                                    sizeof(tt_counts_full[0]),
                         .dts     = (1u << TUTTI_NUM_DATATYPES) - 1,
                         .zero    = 1};

    cr_assert_eq(tt_test_spawn(*nranks, tt_ag_rank, &plan,
                               TT_AG_JOB_TIMEOUT_MS), 0,
                 "allgather over %d ranks failed (see stderr)", *nranks);
}

/* Blocks of 4 MiB + 12 bytes: a result of more than 16 MiB on 4 ranks. */
static const size_t tt_counts_large[] = {(1u << 20) + 3};

static int tt_ranks_large[] = {2, 3, 4};

ParameterizedTestParameters(allgather, large)
{
    return cr_make_param_array(int, tt_ranks_large,
                               sizeof(tt_ranks_large) / sizeof(int));
}

ParameterizedTest(int *nranks, allgather, large, .timeout = 120)
{
    tt_ag_plan_t plan = {.counts  = tt_counts_large,
                         .ncounts = 1,
                         .dts     = 1u << TUTTI_FLOAT32,
                         .zero    = 0};

    cr_assert_eq(tt_test_spawn(*nranks, tt_ag_rank, &plan,
                               TT_AG_JOB_TIMEOUT_MS), 0,
                 "large allgather over %d ranks failed (see stderr)",
                 *nranks);
}

/*
 * Tiny slices and slots, a slice size that is no multiple of 8, one slice
 * in flight; and each allgather algorithm forced through TUTTI_ALGO on
 * rank counts that are and are not powers of two. Odd byte counts (int8
 * with 7 and 1021 elements) included.
 */
typedef struct tt_ag_env {
    int  nranks;
    char vars[160]; /* "NAME=value ...": no pointers in Criterion params */
} tt_ag_env_t;

static tt_ag_env_t tt_ag_envs[] = {
    {3, "TUTTI_SLICE_SIZE=100 TUTTI_SHM_SLOT_SIZE=256 TUTTI_SHM_NSLOTS=2 "
        "TUTTI_PIPELINE_DEPTH=1"},
    {3, "TUTTI_ALGO=allgather:ring TUTTI_SLICE_SIZE=256"},
    {6, "TUTTI_ALGO=allgather:ring"},
    {3, "TUTTI_ALGO=allgather:rd"},
    {4, "TUTTI_ALGO=allgather:rd TUTTI_SLICE_SIZE=256"},
    {6, "TUTTI_ALGO=allgather:rd"},
    {3, "TUTTI_ALGO=allgather:bruck"},
    {4, "TUTTI_ALGO=allgather:bruck TUTTI_SLICE_SIZE=256"},
    {7, "TUTTI_ALGO=allgather:bruck"},
};

static const size_t tt_counts_env[] = {1, 3, 7, 24, 1021, 20011};

ParameterizedTestParameters(allgather, configurations)
{
    return cr_make_param_array(tt_ag_env_t, tt_ag_envs,
                               sizeof(tt_ag_envs) / sizeof(tt_ag_envs[0]));
}

ParameterizedTest(tt_ag_env_t *env, allgather, configurations,
                  .timeout = 120)
{
    tt_ag_plan_t plan = {.counts  = tt_counts_env,
                         .ncounts = sizeof(tt_counts_env) /
                                    sizeof(tt_counts_env[0]),
                         .dts     = (1u << TUTTI_NUM_DATATYPES) - 1,
                         .zero    = 1};
    char         buf[sizeof(env->vars)];
    char        *tok, *save = NULL;

    /* Criterion forks each test: these variables do not leak */
    snprintf(buf, sizeof(buf), "%s", env->vars);
    for (tok = strtok_r(buf, " ", &save); tok != NULL;
         tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');

        cr_assert_not_null(eq, "bad variable '%s'", tok);
        *eq = '\0';
        cr_assert_eq(setenv(tok, eq + 1, 1), 0);
    }
    cr_assert_eq(tt_test_spawn(env->nranks, tt_ag_rank, &plan,
                               TT_AG_JOB_TIMEOUT_MS), 0,
                 "allgather over %d ranks with %s failed (see stderr)",
                 env->nranks, env->vars);
}
