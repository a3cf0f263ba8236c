/*
 * Communicator suite: result codes and names, datatype and operator names,
 * the unique id's text form and the TUTTI_UNIQUE_ID path, the rank and size
 * getters, two communicators alive at once over the same processes, the
 * thread-local last error, and argument checking: every bad argument to
 * init or to a collective gives TUTTI_ERR_INVALID_ARGUMENT with a message
 * and writes nothing, and bad TUTTI_* values fail init with a message that
 * names the variable.
 *
 * Tests that need no peers run in the Criterion process itself (a 1-rank
 * communicator, whose rendezvous thread runs in the same process); the
 * others fork their ranks through tests/helpers/spawn.c.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tutti.h>

#include "spawn.h"

#define TT_COMM_TIMEOUT_MS 20000
#define TT_COMM_JOB_MS     60000

/* ------------------------------------------------------------------------ */
/* Names and codes. */

static const struct {
    tutti_result_t code;
    const char    *name;
} tt_codes[] = {
    {TUTTI_SUCCESS, "TUTTI_SUCCESS"},
    {TUTTI_INPROGRESS, "TUTTI_INPROGRESS"},
    {TUTTI_ERR_INVALID_ARGUMENT, "TUTTI_ERR_INVALID_ARGUMENT"},
    {TUTTI_ERR_INVALID_USAGE, "TUTTI_ERR_INVALID_USAGE"},
    {TUTTI_ERR_SYSTEM, "TUTTI_ERR_SYSTEM"},
    {TUTTI_ERR_INTERNAL, "TUTTI_ERR_INTERNAL"},
    {TUTTI_ERR_REMOTE, "TUTTI_ERR_REMOTE"},
    {TUTTI_ERR_TIMEOUT, "TUTTI_ERR_TIMEOUT"},
    {TUTTI_ERR_ABORTED, "TUTTI_ERR_ABORTED"},
    {TUTTI_ERR_UNSUPPORTED, "TUTTI_ERR_UNSUPPORTED"},
    {TUTTI_ERR_NO_MEMORY, "TUTTI_ERR_NO_MEMORY"},
};

#define TT_NCODES (sizeof(tt_codes) / sizeof(tt_codes[0]))

Test(comm, result_names_and_strings, .timeout = 30)
{
    size_t i, j;

    for (i = 0; i < TT_NCODES; i++) {
        const char *s = tutti_strerror(tt_codes[i].code);

        cr_assert_str_eq(tutti_result_name(tt_codes[i].code),
                         tt_codes[i].name);
        cr_assert_not_null(s);
        cr_assert_gt(strlen(s), 0, "%s has an empty description",
                     tt_codes[i].name);
        for (j = 0; j < i; j++) {
            cr_assert_str_neq(s, tutti_strerror(tt_codes[j].code),
                              "%s and %s share the description '%s'",
                              tt_codes[i].name, tt_codes[j].name, s);
        }
    }
    /* never NULL, even for values outside the enum */
    cr_assert_not_null(tutti_strerror((tutti_result_t)42));
    cr_assert_not_null(tutti_strerror((tutti_result_t)-1000));
    cr_assert_not_null(tutti_result_name((tutti_result_t)42));
    cr_assert_not_null(tutti_result_name((tutti_result_t)-1000));
    cr_assert_eq(tutti_version(), TUTTI_VERSION_CODE);
}

Test(comm, datatype_and_op_names, .timeout = 30)
{
    static const struct {
        tutti_datatype_t dt;
        size_t           size;
        const char      *name;
    } dts[] = {
        {TUTTI_INT8, 1, "int8"},         {TUTTI_UINT8, 1, "uint8"},
        {TUTTI_INT32, 4, "int32"},       {TUTTI_UINT32, 4, "uint32"},
        {TUTTI_INT64, 8, "int64"},       {TUTTI_UINT64, 8, "uint64"},
        {TUTTI_FLOAT16, 2, "float16"},   {TUTTI_FLOAT32, 4, "float32"},
        {TUTTI_FLOAT64, 8, "float64"},   {TUTTI_BFLOAT16, 2, "bfloat16"},
    };
    static const char *const ops[] = {"sum", "prod", "max", "min", "avg"};
    size_t i;

    cr_assert_eq(sizeof(dts) / sizeof(dts[0]), TUTTI_NUM_DATATYPES);
    for (i = 0; i < TUTTI_NUM_DATATYPES; i++) {
        cr_assert_eq(tutti_datatype_size(dts[i].dt), dts[i].size);
        cr_assert_str_eq(tutti_datatype_name(dts[i].dt), dts[i].name);
    }
    for (i = 0; i < TUTTI_NUM_REDOPS; i++) {
        cr_assert_str_eq(tutti_redop_name((tutti_redop_t)i), ops[i]);
    }
    cr_assert_eq(tutti_datatype_size(TUTTI_NUM_DATATYPES), 0);
    cr_assert_eq(tutti_datatype_size((tutti_datatype_t)-1), 0);
    cr_assert_null(tutti_datatype_name(TUTTI_NUM_DATATYPES));
    cr_assert_null(tutti_datatype_name((tutti_datatype_t)-1));
    cr_assert_null(tutti_redop_name(TUTTI_NUM_REDOPS));
    cr_assert_null(tutti_redop_name((tutti_redop_t)-1));
}

/* ------------------------------------------------------------------------ */
/* Unique ids and their text. */

/* Expects INVALID_ARGUMENT and a message. */
#define TT_EXPECT_INVALID(_call)                                             \
    do {                                                                     \
        tutti_result_t tt__r = (_call);                                      \
        cr_expect_eq(tt__r, TUTTI_ERR_INVALID_ARGUMENT, "%s gave %s",       \
                     #_call, tutti_result_name(tt__r));                      \
        cr_expect_gt(strlen(tutti_last_error()), 0,                          \
                     "%s left no message", #_call);                          \
    } while (0)

Test(comm, unique_id_text_round_trip, .timeout = 30)
{
    tutti_unique_id_t id, back, sentinel;
    char              text[TUTTI_UNIQUE_ID_TEXT_LEN];
    char              bad[TUTTI_UNIQUE_ID_TEXT_LEN + 8];
    size_t            i;

    cr_assert_eq(tutti_get_unique_id(&id), TUTTI_SUCCESS, "%s",
                 tutti_last_error());
    cr_assert_eq(tutti_unique_id_to_text(&id, text), TUTTI_SUCCESS);
    cr_assert_eq(strlen(text), TUTTI_UNIQUE_ID_TEXT_LEN - 1);
    for (i = 0; i < strlen(text); i++) {
        cr_assert(isxdigit((unsigned char)text[i]), "'%c' at %zu in %s",
                  text[i], i, text);
    }
    memset(&back, 0, sizeof(back));
    cr_assert_eq(tutti_unique_id_from_text(text, &back), TUTTI_SUCCESS,
                 "%s", tutti_last_error());
    cr_assert_eq(memcmp(&id, &back, sizeof(id)), 0);

    /* malformed text: short, long, not hex; the output stays untouched */
    memset(&sentinel, 0x77, sizeof(sentinel));
    back = sentinel;
    TT_EXPECT_INVALID(tutti_unique_id_from_text("", &back));
    TT_EXPECT_INVALID(tutti_unique_id_from_text("00ff", &back));
    snprintf(bad, sizeof(bad), "%.*s", (int)strlen(text) - 1, text);
    TT_EXPECT_INVALID(tutti_unique_id_from_text(bad, &back));
    snprintf(bad, sizeof(bad), "%s0", text);
    TT_EXPECT_INVALID(tutti_unique_id_from_text(bad, &back));
    snprintf(bad, sizeof(bad), "%s", text);
    bad[10] = 'g';
    TT_EXPECT_INVALID(tutti_unique_id_from_text(bad, &back));
    bad[10] = ' ';
    TT_EXPECT_INVALID(tutti_unique_id_from_text(bad, &back));
    cr_expect_eq(memcmp(&back, &sentinel, sizeof(back)), 0,
                 "a failed tutti_unique_id_from_text wrote its output");

    TT_EXPECT_INVALID(tutti_unique_id_from_text(NULL, &back));
    TT_EXPECT_INVALID(tutti_unique_id_from_text(text, NULL));
    TT_EXPECT_INVALID(tutti_unique_id_to_text(NULL, text));
    TT_EXPECT_INVALID(tutti_unique_id_to_text(&id, NULL));
    TT_EXPECT_INVALID(tutti_get_unique_id(NULL));
}

/* Every rank joins through TUTTI_UNIQUE_ID (id NULL) and checks an
 * allreduce, so the text really carries the rendezvous. */
static int tt_env_id_rank(int rank, int nranks, const tutti_unique_id_t *id,
                          void *arg)
{
    char           text[TUTTI_UNIQUE_ID_TEXT_LEN];
    tutti_config_t config = TUTTI_CONFIG_INIT;
    tutti_comm_t   comm;
    int32_t        v = rank + 1;

    (void)arg;
    config.timeout_ms = TT_COMM_TIMEOUT_MS;
    TT_TEST_CALL(tutti_unique_id_to_text(id, text));
    if (setenv("TUTTI_UNIQUE_ID", text, 1) != 0) {
        return tt_test_fail(__FILE__, __LINE__, "setenv failed");
    }
    TT_TEST_CALL(tutti_comm_init(nranks, NULL, rank, &config, &comm));
    TT_TEST_CALL(tutti_allreduce(&v, &v, 1, TUTTI_INT32, TUTTI_SUM, comm));
    TT_TEST_CALL(tutti_comm_destroy(comm));
    if (TT_TEST_EXPECT(v == nranks * (nranks + 1) / 2, "sum is %d", v)) {
        return 1;
    }
    return 0;
}

Test(comm, unique_id_from_environment, .timeout = 60)
{
    cr_assert_eq(tt_test_spawn(3, tt_env_id_rank, NULL, TT_COMM_JOB_MS), 0);
}

/* ------------------------------------------------------------------------ */
/* Two communicators over the same processes, alive at once. */

/*
 * Comm A comes from the parent's id. Rank 0 of A creates the id of comm B
 * (so this process hosts B's rendezvous) and hands it to the others through
 * an allgather on A, the way an MPI program would broadcast it. B numbers
 * the ranks in reverse. Collectives on A and B then interleave with
 * different data, and each result must belong to its own communicator.
 */
static int tt_two_comms_rank(int rank, int nranks,
                             const tutti_unique_id_t *id, void *arg)
{
    tutti_config_t    config = TUTTI_CONFIG_INIT;
    tutti_unique_id_t idb;
    tutti_unique_id_t *all;
    tutti_comm_t      a, b;
    int               brank = nranks - 1 - rank, got, iter, r, bad = 0;

    (void)arg;
    config.timeout_ms = TT_COMM_TIMEOUT_MS;
    TT_TEST_CALL(tutti_comm_init(nranks, id, rank, &config, &a));
    memset(&idb, 0, sizeof(idb));
    if (rank == 0) {
        TT_TEST_CALL(tutti_get_unique_id(&idb));
    }
    all = calloc((size_t)nranks, sizeof(*all));
    if (all == NULL) {
        return tt_test_fail(__FILE__, __LINE__, "out of memory");
    }
    TT_TEST_CALL(tutti_allgather(&idb, all, sizeof(idb), TUTTI_UINT8, a));
    idb = all[0];
    free(all);
    TT_TEST_CALL(tutti_comm_init(nranks, &idb, brank, &config, &b));

    TT_TEST_CALL(tutti_comm_rank(b, &got));
    bad += TT_TEST_EXPECT(got == brank, "rank in B is %d", got);
    TT_TEST_CALL(tutti_comm_size(b, &got));
    bad += TT_TEST_EXPECT(got == nranks, "size of B is %d", got);
    TT_TEST_CALL(tutti_comm_rank(a, &got));
    bad += TT_TEST_EXPECT(got == rank, "rank in A is %d", got);

    for (iter = 0; iter < 20; iter++) {
        int64_t sa[3], sb[3], ga[TT_TEST_MAX_RANKS], gb[TT_TEST_MAX_RANKS];
        int64_t va = rank + 100 * iter, vb = 1000 + 10 * brank + iter;
        int     i;

        for (i = 0; i < 3; i++) {
            sa[i] = va + i;
            sb[i] = vb * (i + 1);
        }
        /* A and B alternate; B's allgather runs between A's two calls */
        TT_TEST_CALL(tutti_allreduce(sa, sa, 3, TUTTI_INT64, TUTTI_SUM, a));
        TT_TEST_CALL(tutti_allgather(&vb, gb, 1, TUTTI_INT64, b));
        TT_TEST_CALL(tutti_allgather(&va, ga, 1, TUTTI_INT64, a));
        TT_TEST_CALL(tutti_allreduce(sb, sb, 3, TUTTI_INT64, TUTTI_MAX, b));
        for (i = 0; i < 3; i++) {
            int64_t want_a = 0;

            for (r = 0; r < nranks; r++) {
                want_a += r + 100 * iter + i;
            }
            bad += TT_TEST_EXPECT(sa[i] == want_a, "iteration %d: A sum[%d] "
                                  "%lld, expected %lld", iter, i,
                                  (long long)sa[i], (long long)want_a);
            bad += TT_TEST_EXPECT(sb[i] == (1000 + 10 * (nranks - 1) + iter) *
                                               (i + 1),
                                  "iteration %d: B max[%d] %lld", iter, i,
                                  (long long)sb[i]);
        }
        for (r = 0; r < nranks; r++) {
            bad += TT_TEST_EXPECT(ga[r] == r + 100 * iter, "iteration %d: "
                                  "A gathered %lld from rank %d", iter,
                                  (long long)ga[r], r);
            bad += TT_TEST_EXPECT(gb[r] == 1000 + 10 * r + iter,
                                  "iteration %d: B gathered %lld from its "
                                  "rank %d", iter, (long long)gb[r], r);
        }
        if (bad != 0) {
            break;
        }
    }
    /* destroying one leaves the other working */
    TT_TEST_CALL(tutti_comm_destroy(a));
    {
        float x = 1.0f;
        TT_TEST_CALL(tutti_allreduce(&x, &x, 1, TUTTI_FLOAT32, TUTTI_SUM, b));
        bad += TT_TEST_EXPECT(x == (float)nranks, "B after A's destroy: %g",
                              x);
    }
    TT_TEST_CALL(tutti_comm_destroy(b));
    return bad != 0;
}

Test(comm, two_communicators_interleaved, .timeout = 60)
{
    cr_assert_eq(tt_test_spawn(4, tt_two_comms_rank, NULL, TT_COMM_JOB_MS),
                 0);
}

/* ------------------------------------------------------------------------ */
/* Argument checking. */

Test(comm, init_rejects_bad_arguments, .timeout = 30)
{
    tutti_unique_id_t id;
    tutti_config_t    small = TUTTI_CONFIG_INIT;
    tutti_comm_t      sentinel = (tutti_comm_t)(uintptr_t)0x1234;
    tutti_comm_t      comm     = sentinel;

    cr_assert_eq(tutti_get_unique_id(&id), TUTTI_SUCCESS);
    TT_EXPECT_INVALID(tutti_comm_init(0, &id, 0, NULL, &comm));
    TT_EXPECT_INVALID(tutti_comm_init(-1, &id, 0, NULL, &comm));
    TT_EXPECT_INVALID(tutti_comm_init(2, &id, -1, NULL, &comm));
    TT_EXPECT_INVALID(tutti_comm_init(2, &id, 2, NULL, &comm));
    TT_EXPECT_INVALID(tutti_comm_init(1, &id, 5, NULL, &comm));
    TT_EXPECT_INVALID(tutti_comm_init(1, &id, 0, NULL, NULL));
    /* id NULL and no TUTTI_UNIQUE_ID, then a garbled one */
    unsetenv("TUTTI_UNIQUE_ID");
    TT_EXPECT_INVALID(tutti_comm_init(1, NULL, 0, NULL, &comm));
    setenv("TUTTI_UNIQUE_ID", "not an id", 1);
    TT_EXPECT_INVALID(tutti_comm_init(1, NULL, 0, NULL, &comm));
    unsetenv("TUTTI_UNIQUE_ID");
    /* a config from an older, smaller header layout than this one */
    small.size = sizeof(size_t);
    TT_EXPECT_INVALID(tutti_comm_init(1, &id, 0, &small, &comm));
    cr_expect_eq(comm, sentinel, "a failed init wrote *comm_p");
}

Test(comm, null_communicator, .timeout = 30)
{
    float          x = 1, y = 2;
    int            v = 7;
    tutti_result_t err = (tutti_result_t)99;

    TT_EXPECT_INVALID(tutti_allreduce(&x, &y, 1, TUTTI_FLOAT32, TUTTI_SUM,
                                      NULL));
    cr_expect_eq(y, 2.0f);
    TT_EXPECT_INVALID(tutti_allgather(&x, &y, 1, TUTTI_FLOAT32, NULL));
    cr_expect_eq(y, 2.0f);
    TT_EXPECT_INVALID(tutti_comm_rank(NULL, &v));
    TT_EXPECT_INVALID(tutti_comm_size(NULL, &v));
    cr_expect_eq(v, 7);
    {
        const char *tp = NULL;

        TT_EXPECT_INVALID(tutti_comm_peer_transport(NULL, 0, &tp));
        cr_expect_null(tp);
    }
    TT_EXPECT_INVALID(tutti_comm_get_async_error(NULL, &err));
    cr_expect_eq(err, (tutti_result_t)99);
    TT_EXPECT_INVALID(tutti_comm_abort(NULL));
    TT_EXPECT_INVALID(tutti_comm_destroy(NULL));
}

/* One bad collective call: INVALID_ARGUMENT, a message, recvbuf as it was. */
static int tt_expect_rejected(tutti_result_t res, const char *what,
                              const unsigned char *recv, size_t len)
{
    size_t i;
    int    bad = 0;

    bad += TT_TEST_EXPECT(res == TUTTI_ERR_INVALID_ARGUMENT, "%s gave %s",
                          what, tutti_result_name(res));
    bad += TT_TEST_EXPECT(tutti_last_error()[0] != '\0', "%s left no "
                          "message", what);
    for (i = 0; i < len; i++) {
        if (recv[i] != 0x5a) {
            return bad + tt_test_fail(__FILE__, __LINE__, "%s wrote byte %zu "
                                      "of recvbuf", what, i);
        }
    }
    return bad;
}

#define TT_REJECT(_call)                                                     \
    do {                                                                     \
        memset(buf, 0x5a, sizeof(buf));                                      \
        bad += tt_expect_rejected((_call), #_call, rb, sizeof(buf) - 64);    \
    } while (0)

/*
 * Every rank makes the same bad calls: each must fail locally, before any
 * communication, so the communicator stays usable, which an allreduce at
 * the end checks. rb is recvbuf, sb a disjoint sendbuf.
 */
static int tt_bad_args_rank(int rank, int nranks, const tutti_unique_id_t *id,
                            void *arg)
{
    tutti_config_t config = TUTTI_CONFIG_INIT;
    tutti_comm_t   comm;
    unsigned char  buf[64 * TT_TEST_MAX_RANKS + 64] = {0};
    unsigned char *rb = buf, *sb = buf + sizeof(buf) - 64;
    float          big[1];
    tutti_result_t async;
    int            bad = 0;
    size_t         huge32 = SIZE_MAX / 4 + 1;

    (void)arg;
    config.timeout_ms = TT_COMM_TIMEOUT_MS;
    TT_TEST_CALL(tutti_comm_init(nranks, id, rank, &config, &comm));

    /* NULL buffers with a count */
    TT_REJECT(tutti_allreduce(NULL, rb, 4, TUTTI_FLOAT32, TUTTI_SUM, comm));
    TT_REJECT(tutti_allreduce(sb, NULL, 4, TUTTI_FLOAT32, TUTTI_SUM, comm));
    TT_REJECT(tutti_allgather(NULL, rb, 4, TUTTI_INT8, comm));
    TT_REJECT(tutti_allgather(sb, NULL, 4, TUTTI_INT8, comm));
    /* datatypes and ops outside their enums */
    TT_REJECT(tutti_allreduce(sb, rb, 4, TUTTI_NUM_DATATYPES, TUTTI_SUM,
                              comm));
    TT_REJECT(tutti_allreduce(sb, rb, 4, (tutti_datatype_t)-1, TUTTI_SUM,
                              comm));
    TT_REJECT(tutti_allreduce(sb, rb, 4, TUTTI_INT32, TUTTI_NUM_REDOPS,
                              comm));
    TT_REJECT(tutti_allreduce(sb, rb, 4, TUTTI_INT32, (tutti_redop_t)-1,
                              comm));
    TT_REJECT(tutti_allgather(sb, rb, 4, TUTTI_NUM_DATATYPES, comm));
    TT_REJECT(tutti_allgather(sb, rb, 4, (tutti_datatype_t)-7, comm));
    /* count * size overflows size_t (checked before any access) */
    TT_REJECT(tutti_allreduce(sb, rb, huge32, TUTTI_FLOAT32, TUTTI_SUM,
                              comm));
    TT_REJECT(tutti_allreduce(sb, rb, SIZE_MAX, TUTTI_INT64, TUTTI_MAX,
                              comm));
    TT_REJECT(tutti_allgather(sb, rb, huge32, TUTTI_FLOAT32, comm));
    if (nranks > 1) {
        /* fits one block, but not nranks of them */
        TT_REJECT(tutti_allgather(sb, rb, SIZE_MAX / 4 / (size_t)nranks + 1,
                                  TUTTI_FLOAT32, comm));
    }
    /* overlapping but not equal buffers */
    TT_REJECT(tutti_allreduce(rb + 4, rb, 8, TUTTI_FLOAT32, TUTTI_SUM, comm));
    TT_REJECT(tutti_allreduce(rb, rb + 4, 8, TUTTI_FLOAT32, TUTTI_SUM, comm));
    TT_REJECT(tutti_allreduce(rb + 1, rb, 8, TUTTI_UINT8, TUTTI_SUM, comm));
    /* allgather: sendbuf inside recvbuf but not this rank's block */
    TT_REJECT(tutti_allgather(rb + (size_t)rank * 16 + 4, rb, 4, TUTTI_INT32,
                              comm));
    if (nranks > 1) {
        int other = (rank + 1) % nranks;
        TT_REJECT(tutti_allgather(rb + (size_t)other * 16, rb, 4,
                                  TUTTI_INT32, comm));
    }
    /* getters with NULL outputs */
    bad += TT_TEST_EXPECT(tutti_comm_rank(comm, NULL) ==
                              TUTTI_ERR_INVALID_ARGUMENT, "rank_p NULL");
    bad += TT_TEST_EXPECT(tutti_comm_size(comm, NULL) ==
                              TUTTI_ERR_INVALID_ARGUMENT, "size_p NULL");
    bad += TT_TEST_EXPECT(tutti_comm_get_async_error(comm, NULL) ==
                              TUTTI_ERR_INVALID_ARGUMENT, "error_p NULL");
    {
        const char *tp = "untouched";

        bad += TT_TEST_EXPECT(tutti_comm_peer_transport(comm, 0, NULL) ==
                                  TUTTI_ERR_INVALID_ARGUMENT, "name_p NULL");
        bad += TT_TEST_EXPECT(tutti_comm_peer_transport(comm, nranks, &tp) ==
                                  TUTTI_ERR_INVALID_ARGUMENT,
                              "peer == nranks");
        bad += TT_TEST_EXPECT(tutti_comm_peer_transport(comm, -1, &tp) ==
                                  TUTTI_ERR_INVALID_ARGUMENT, "peer -1");
        bad += TT_TEST_EXPECT(strcmp(tp, "untouched") == 0,
                              "name written on error: %s", tp);
        /* forked ranks share this host: shm to every other rank */
        TT_TEST_CALL(tutti_comm_peer_transport(comm, rank, &tp));
        bad += TT_TEST_EXPECT(strcmp(tp, "self") == 0, "self is %s", tp);
        if (nranks > 1) {
            TT_TEST_CALL(tutti_comm_peer_transport(comm, (rank + 1) % nranks,
                                                   &tp));
            bad += TT_TEST_EXPECT(strcmp(tp, "shm") == 0,
                                  "next rank via %s", tp);
        }
    }

    /* none of that broke the communicator */
    big[0] = (float)(rank + 1);
    TT_TEST_CALL(tutti_allreduce(big, big, 1, TUTTI_FLOAT32, TUTTI_SUM,
                                 comm));
    bad += TT_TEST_EXPECT(big[0] == (float)(nranks * (nranks + 1) / 2),
                          "sum after the bad calls is %g", big[0]);
    async = TUTTI_ERR_INTERNAL;
    TT_TEST_CALL(tutti_comm_get_async_error(comm, &async));
    bad += TT_TEST_EXPECT(async == TUTTI_SUCCESS, "async error %s",
                          tutti_result_name(async));
    TT_TEST_CALL(tutti_comm_destroy(comm));
    return bad != 0;
}

Test(comm, collectives_reject_bad_arguments, .timeout = 60)
{
    cr_assert_eq(tt_test_spawn(3, tt_bad_args_rank, NULL, TT_COMM_JOB_MS),
                 0);
}

Test(comm, collectives_reject_bad_arguments_one_rank, .timeout = 60)
{
    cr_assert_eq(tt_test_spawn(1, tt_bad_args_rank, NULL, TT_COMM_JOB_MS),
                 0);
}

/*
 * A bad TUTTI_* value (or config field) fails init with INVALID_ARGUMENT
 * and a message naming it. A 1-rank communicator in this process is
 * enough: whether the value is checked before or after the rendezvous,
 * init must fail, and the timeout makes a wrong wait fail instead of hang.
 */
static void tt_expect_init_rejects(const char *var, const char *value,
                                   const char *field, const char *field_value)
{
    tutti_unique_id_t id;
    tutti_config_t    config = TUTTI_CONFIG_INIT;
    tutti_comm_t      comm   = NULL;
    tutti_result_t    res;
    const char       *name   = var != NULL ? var : field;

    config.timeout_ms = 5000;
    if (field != NULL && strcmp(field, "algo") == 0) {
        config.algo = field_value;
        name        = "ALGO";
    } else if (field != NULL) {
        config.transport = field_value;
        name             = "TRANSPORT";
    }
    cr_assert_eq(tutti_get_unique_id(&id), TUTTI_SUCCESS);
    if (var != NULL) {
        cr_assert_eq(setenv(var, value, 1), 0);
    }
    res = tutti_comm_init(1, &id, 0, &config, &comm);
    if (var != NULL) {
        unsetenv(var);
    }
    if (res == TUTTI_SUCCESS) {
        tutti_comm_destroy(comm);
    }
    cr_expect_eq(res, TUTTI_ERR_INVALID_ARGUMENT, "%s='%s': init gave %s "
                 "(%s)", var != NULL ? var : field,
                 var != NULL ? value : field_value, tutti_result_name(res),
                 tutti_last_error());
    cr_expect_not_null(strstr(tutti_last_error(), name),
                       "the message '%s' does not name %s",
                       tutti_last_error(), name);
}

Test(comm, bad_environment_fails_init, .timeout = 60)
{
    tt_expect_init_rejects("TUTTI_ALGO", "no-such-algorithm", NULL, NULL);
    tt_expect_init_rejects("TUTTI_ALGO", "allreduce:ring;frobnicate:ring",
                           NULL, NULL);
    tt_expect_init_rejects("TUTTI_ALGO", "allreduce:64k-1k:ring", NULL, NULL);
    tt_expect_init_rejects("TUTTI_TRANSPORT", "carrier-pigeon", NULL, NULL);
    tt_expect_init_rejects("TUTTI_TIMEOUT_MS", "soon", NULL, NULL);
    tt_expect_init_rejects("TUTTI_TIMEOUT_MS", "-5", NULL, NULL);
    tt_expect_init_rejects("TUTTI_TIMEOUT_MS", "99999999999", NULL, NULL);
    tt_expect_init_rejects("TUTTI_TIMEOUT_MS", "", NULL, NULL);
    tt_expect_init_rejects("TUTTI_SLICE_SIZE", "12q", NULL, NULL);
    tt_expect_init_rejects("TUTTI_SHM_SLOT_SIZE", "100", NULL, NULL);
    tt_expect_init_rejects(NULL, NULL, "algo", "no-such-algorithm");
    tt_expect_init_rejects(NULL, NULL, "transport", "carrier-pigeon");
}

/* A good 1-rank communicator in this process works, and so do the values
 * the bad ones were variations of. */
Test(comm, single_rank_in_process, .timeout = 60)
{
    tutti_unique_id_t id;
    tutti_comm_t      comm;
    double            x[5] = {1, 2, 3, 4, 5}, y[5];
    int               i, v;

    cr_assert_eq(setenv("TUTTI_ALGO", "allreduce:0-64k:ring,64k-inf:ring;"
                        "allgather:ring", 1), 0);
    cr_assert_eq(setenv("TUTTI_TRANSPORT", "auto", 1), 0);
    cr_assert_eq(setenv("TUTTI_TIMEOUT_MS", "20000", 1), 0);
    cr_assert_eq(tutti_get_unique_id(&id), TUTTI_SUCCESS);
    cr_assert_eq(tutti_comm_init(1, &id, 0, NULL, &comm), TUTTI_SUCCESS,
                 "%s", tutti_last_error());
    cr_assert_eq(tutti_comm_rank(comm, &v), TUTTI_SUCCESS);
    cr_assert_eq(v, 0);
    cr_assert_eq(tutti_comm_size(comm, &v), TUTTI_SUCCESS);
    cr_assert_eq(v, 1);
    cr_assert_eq(tutti_allreduce(x, y, 5, TUTTI_FLOAT64, TUTTI_AVG, comm),
                 TUTTI_SUCCESS, "%s", tutti_last_error());
    for (i = 0; i < 5; i++) {
        cr_expect_eq(y[i], x[i]);
    }
    cr_assert_eq(tutti_allgather(x, y, 5, TUTTI_FLOAT64, comm),
                 TUTTI_SUCCESS);
    cr_expect_eq(memcmp(x, y, sizeof(x)), 0);
    cr_assert_eq(tutti_comm_destroy(comm), TUTTI_SUCCESS);
}

/* ------------------------------------------------------------------------ */
/* The last error is per thread and says what was wrong. */

static void *tt_other_thread(void *arg)
{
    char *out = arg;

    /* this thread has made no call: its last error is empty */
    snprintf(out, 256, "%s", tutti_last_error());
    /* its own failure does not touch the main thread's message */
    tutti_comm_size(NULL, NULL);
    return NULL;
}

Test(comm, last_error_is_per_thread, .timeout = 30)
{
    char      seen[256] = "unset";
    char      before[512];
    pthread_t t;
    float     x = 0;

    cr_assert_str_empty(tutti_last_error());
    cr_assert_eq(tutti_allreduce(&x, &x, 1, TUTTI_FLOAT32, (tutti_redop_t)77,
                                 NULL), TUTTI_ERR_INVALID_ARGUMENT);
    snprintf(before, sizeof(before), "%s", tutti_last_error());
    cr_assert_gt(strlen(before), 0);
    cr_assert_eq(pthread_create(&t, NULL, tt_other_thread, seen), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
    cr_expect_str_empty(seen, "a new thread sees another's error '%s'",
                        seen);
    cr_expect_str_eq(tutti_last_error(), before);
}
