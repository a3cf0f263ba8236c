/*
 * Argument and usage errors of the issue-4 calls, and TUTTI_ALGO values
 * naming a collective/algorithm pair that does not exist.
 *
 * Every rank makes the same bad calls, each of which the library must
 * refuse locally, at once: a root of -1, nranks or beyond for broadcast
 * and reduce; a peer that is the rank itself or out of range for
 * send/recv; a NULL req_p for every tutti_i* call; a NULL request for
 * tutti_test/tutti_wait; tutti_group_end without tutti_group_start; waiting
 * for a request of a group that has not ended. Each must give the
 * documented code, leave the receive buffer and *req_p as they were, and
 * say in tutti_last_error() what was wrong; the communicator must still
 * work afterwards. A bad TUTTI_ALGO (environment or config.algo) must fail
 * tutti_comm_init with TUTTI_ERR_INVALID_ARGUMENT and a message naming
 * TUTTI_ALGO, on every rank, without waiting for the others.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tutti.h>

#include "ops.h"

#define TT_ERR_NELEMS(_a) (sizeof(_a) / sizeof((_a)[0]))
#define TT_ERR_COUNT      16
#define TT_ERR_POISON     0x5a

/* A request handle no call returns: a call that fails must leave it. */
static struct tutti_request *const tt_err_sentinel =
    (struct tutti_request *)(uintptr_t)0x7e57;

/* The buffers the bad calls get. */
typedef struct tt_err_bufs {
    float send[TT_ERR_COUNT * TT_OPS_MAX_RANKS];
    float recv[TT_ERR_COUNT * TT_OPS_MAX_RANKS];
} tt_err_bufs_t;

/*
 * Checks the outcome of one bad call: the code, the message (it must
 * contain `word`), the receive buffer and the request handle untouched.
 */
static int tt_err_expect(const char *call, tutti_result_t res,
                         tutti_result_t want, const char *word,
                         const tt_err_bufs_t *b, tutti_request_t req)
{
    char what[160];
    int  bad = 0;

    snprintf(what, sizeof(what), "%s: recvbuf", call);
    bad += TT_TEST_EXPECT(res == want, "%s gave %s, expected %s (%s)", call,
                          tutti_result_name(res), tutti_result_name(want),
                          tutti_last_error());
    bad += TT_TEST_EXPECT(strstr(tutti_last_error(), word) != NULL,
                          "%s: the message '%s' does not mention '%s'", call,
                          tutti_last_error(), word);
    bad += tt_ref_check_bytes(b->recv, sizeof(b->recv), TT_ERR_POISON, what);
    bad += TT_TEST_EXPECT(req == tt_err_sentinel, "%s: failed, but set "
                          "*req_p to %p", call, (void *)req);
    return bad;
}

/*
 * One bad call: `_expr` made with the bad value `_v` (a root or a peer),
 * which the message must mention as `_word`. In a function with `bad`,
 * `b` and `req` in scope.
 */
#define TT_ERR_BAD_VALUE(_name, _word, _v, _expr)                            \
    do {                                                                     \
        char tt_err__call[64];                                               \
        snprintf(tt_err__call, sizeof(tt_err__call), "%s %s %d", (_name),    \
                 (_word), (_v));                                             \
        bad += tt_err_expect(tt_err__call, (_expr),                          \
                             TUTTI_ERR_INVALID_ARGUMENT, (_word), b, req);   \
    } while (0)

/* broadcast, reduce and their nonblocking forms at one bad root. */
static int tt_err_root(int root, tutti_comm_t comm, tt_err_bufs_t *b)
{
    tutti_request_t req = tt_err_sentinel;
    float          *s = b->send, *r = b->recv;
    int             bad = 0;

    TT_ERR_BAD_VALUE("tutti_broadcast", "root", root,
                     tutti_broadcast(s, r, TT_ERR_COUNT, TUTTI_FLOAT32, root,
                                     comm));
    TT_ERR_BAD_VALUE("tutti_broadcast in place", "root", root,
                     tutti_broadcast(r, r, TT_ERR_COUNT, TUTTI_FLOAT32, root,
                                     comm));
    TT_ERR_BAD_VALUE("tutti_reduce", "root", root,
                     tutti_reduce(s, r, TT_ERR_COUNT, TUTTI_FLOAT32,
                                  TUTTI_SUM, root, comm));
    TT_ERR_BAD_VALUE("tutti_ibroadcast", "root", root,
                     tutti_ibroadcast(s, r, TT_ERR_COUNT, TUTTI_FLOAT32, root,
                                      comm, &req));
    TT_ERR_BAD_VALUE("tutti_ireduce", "root", root,
                     tutti_ireduce(s, r, TT_ERR_COUNT, TUTTI_FLOAT32,
                                   TUTTI_MAX, root, comm, &req));
    return bad;
}

/* send, recv and their nonblocking forms at one bad peer. */
static int tt_err_peer(int peer, tutti_comm_t comm, tt_err_bufs_t *b)
{
    tutti_request_t req = tt_err_sentinel;
    float          *s = b->send, *r = b->recv;
    int             bad = 0;

    TT_ERR_BAD_VALUE("tutti_send", "peer", peer,
                     tutti_send(s, TT_ERR_COUNT, TUTTI_FLOAT32, peer, comm));
    TT_ERR_BAD_VALUE("tutti_recv", "peer", peer,
                     tutti_recv(r, TT_ERR_COUNT, TUTTI_FLOAT32, peer, comm));
    TT_ERR_BAD_VALUE("tutti_isend", "peer", peer,
                     tutti_isend(s, TT_ERR_COUNT, TUTTI_FLOAT32, peer, comm,
                                 &req));
    TT_ERR_BAD_VALUE("tutti_irecv", "peer", peer,
                     tutti_irecv(r, TT_ERR_COUNT, TUTTI_FLOAT32, peer, comm,
                                 &req));
    return bad;
}

/* Every nonblocking call with valid arguments but req_p NULL. */
static int tt_err_null_req(int rank, int nranks, tutti_comm_t comm,
                           tt_err_bufs_t *b)
{
    int peer = (rank + 1) % nranks, bad = 0;

#define TT_ERR_CASE(_name, _expr)                                            \
    bad += tt_err_expect((_name), (_expr), TUTTI_ERR_INVALID_ARGUMENT,       \
                         "req_p", b, tt_err_sentinel)
    TT_ERR_CASE("tutti_iallreduce",
                tutti_iallreduce(b->send, b->recv, TT_ERR_COUNT,
                                 TUTTI_FLOAT32, TUTTI_SUM, comm, NULL));
    TT_ERR_CASE("tutti_iallgather",
                tutti_iallgather(b->send, b->recv, TT_ERR_COUNT,
                                 TUTTI_FLOAT32, comm, NULL));
    TT_ERR_CASE("tutti_ireduce_scatter",
                tutti_ireduce_scatter(b->send, b->recv, 1, TUTTI_FLOAT32,
                                      TUTTI_SUM, comm, NULL));
    TT_ERR_CASE("tutti_ibroadcast",
                tutti_ibroadcast(b->send, b->recv, TT_ERR_COUNT,
                                 TUTTI_FLOAT32, 0, comm, NULL));
    TT_ERR_CASE("tutti_ireduce",
                tutti_ireduce(b->send, b->recv, TT_ERR_COUNT, TUTTI_FLOAT32,
                              TUTTI_SUM, 0, comm, NULL));
    TT_ERR_CASE("tutti_ialltoall",
                tutti_ialltoall(b->send, b->recv, 1, TUTTI_FLOAT32, comm,
                                NULL));
    TT_ERR_CASE("tutti_ibarrier", tutti_ibarrier(comm, NULL));
    if (nranks > 1) {
        TT_ERR_CASE("tutti_isend", tutti_isend(b->send, TT_ERR_COUNT,
                                               TUTTI_FLOAT32, peer, comm,
                                               NULL));
        TT_ERR_CASE("tutti_irecv", tutti_irecv(b->recv, TT_ERR_COUNT,
                                               TUTTI_FLOAT32, peer, comm,
                                               NULL));
    }
#undef TT_ERR_CASE
    return bad;
}

/* tutti_test/tutti_wait without a request, and tutti_test without done_p
 * (the request stays valid and is waited afterwards). */
static int tt_err_requests(tutti_comm_t comm, tt_err_bufs_t *b)
{
    tutti_request_t req = NULL;
    tutti_result_t  res;
    int             done = -1, bad = 0;

    res = tutti_test(NULL, &done);
    bad += TT_TEST_EXPECT(res == TUTTI_ERR_INVALID_ARGUMENT && done == -1,
                          "tutti_test(NULL) gave %s, done %d",
                          tutti_result_name(res), done);
    res = tutti_wait(NULL);
    bad += TT_TEST_EXPECT(res == TUTTI_ERR_INVALID_ARGUMENT,
                          "tutti_wait(NULL) gave %s", tutti_result_name(res));
    memset(b->send, 0, sizeof(b->send));
    TT_TEST_CALL(tutti_iallreduce(b->send, b->send, TT_ERR_COUNT,
                                  TUTTI_FLOAT32, TUTTI_SUM, comm, &req));
    res = tutti_test(req, NULL);
    bad += TT_TEST_EXPECT(res == TUTTI_ERR_INVALID_ARGUMENT,
                          "tutti_test(req, NULL) gave %s",
                          tutti_result_name(res));
    TT_TEST_CALL(tutti_wait(req));
    return bad;
}

/*
 * Groups: an end without a start (also after a balanced pair) is
 * TUTTI_ERR_INVALID_USAGE; waiting for a request of an open group is
 * TUTTI_ERR_INVALID_USAGE and leaves the request valid; a bad call inside a
 * group fails at once and makes its end fail, and the next group works.
 */
static int tt_err_groups(int rank, int nranks, tutti_comm_t comm,
                         tt_err_bufs_t *b)
{
    tutti_request_t req = tt_err_sentinel;
    tutti_result_t  res;
    float           x[4];
    int             i, done = 0, bad = 0;

    for (i = 0; i < 2; i++) {
        res = tutti_group_end();
        bad += TT_TEST_EXPECT(res == TUTTI_ERR_INVALID_USAGE, "tutti_group_"
                              "end without start gave %s",
                              tutti_result_name(res));
        bad += TT_TEST_EXPECT(strstr(tutti_last_error(), "tutti_group_start")
                              != NULL, "the message '%s' does not name "
                              "tutti_group_start", tutti_last_error());
        TT_TEST_CALL(tutti_group_start());
        TT_TEST_CALL(tutti_group_end());
    }

    for (i = 0; i < 4; i++) {
        x[i] = (float)(rank + i);
    }
    TT_TEST_CALL(tutti_group_start());
    TT_TEST_CALL(tutti_iallreduce(x, x, 4, TUTTI_FLOAT32, TUTTI_SUM, comm,
                                  &req));
    res = tutti_wait(req);
    bad += TT_TEST_EXPECT(res == TUTTI_ERR_INVALID_USAGE, "tutti_wait in an "
                          "open group gave %s", tutti_result_name(res));
    res = tutti_test(req, &done);
    bad += TT_TEST_EXPECT(res == TUTTI_ERR_INVALID_USAGE && done == 0,
                          "tutti_test in an open group gave %s, done %d",
                          tutti_result_name(res), done);
    TT_TEST_CALL(tutti_group_end());
    TT_TEST_CALL(tutti_wait(req));
    for (i = 0; i < 4; i++) {
        float want = (float)(nranks * (nranks - 1) / 2 + nranks * i);

        bad += TT_TEST_EXPECT(x[i] == want, "group iallreduce element %d is "
                              "%g, expected %g", i, x[i], want);
    }

    TT_TEST_CALL(tutti_group_start());
    req = tt_err_sentinel;
    res = tutti_ibroadcast(b->send, b->recv, TT_ERR_COUNT, TUTTI_FLOAT32, -1,
                           comm, &req);
    bad += tt_err_expect("tutti_ibroadcast root -1 in a group", res,
                         TUTTI_ERR_INVALID_ARGUMENT, "root", b, req);
    res = tutti_group_end();
    bad += TT_TEST_EXPECT(res == TUTTI_ERR_INVALID_ARGUMENT, "the end of a "
                          "group with a bad call gave %s",
                          tutti_result_name(res));
    TT_TEST_CALL(tutti_group_start());
    TT_TEST_CALL(tutti_allreduce(x, x, 1, TUTTI_FLOAT32, TUTTI_MAX, comm));
    TT_TEST_CALL(tutti_group_end());
    return bad;
}

static int tt_err_rank(int rank, int nranks, const tutti_unique_id_t *id,
                       void *arg)
{
    static tt_err_bufs_t b;
    const int            roots[] = {-1, nranks, nranks + 7, INT_MIN,
                                    INT_MAX};
    const int            peers[] = {rank, -1, nranks, nranks + 3};
    tutti_comm_t         comm;
    tutti_result_t       async = TUTTI_ERR_INTERNAL;
    float                one = 1.0f;
    size_t               i;
    int                  bad = 0;

    (void)arg;
    memset(b.send, 0, sizeof(b.send));
    memset(b.recv, TT_ERR_POISON, sizeof(b.recv));
    TT_TEST_CALL(tt_ops_comm_init(rank, nranks, id, NULL, &comm));
    for (i = 0; i < TT_ERR_NELEMS(roots); i++) {
        bad += tt_err_root(roots[i], comm, &b);
    }
    for (i = 0; i < TT_ERR_NELEMS(peers); i++) {
        bad += tt_err_peer(peers[i], comm, &b);
    }
    bad += tt_err_null_req(rank, nranks, comm, &b);
    bad += tt_err_requests(comm, &b);
    bad += tt_err_groups(rank, nranks, comm, &b);

    /* argument errors do not break the communicator */
    TT_TEST_CALL(tutti_allreduce(&one, &one, 1, TUTTI_FLOAT32, TUTTI_SUM,
                                 comm));
    bad += TT_TEST_EXPECT(one == (float)nranks, "allreduce after the errors "
                          "gave %g", one);
    TT_TEST_CALL(tutti_comm_get_async_error(comm, &async));
    bad += TT_TEST_EXPECT(async == TUTTI_SUCCESS, "async error %s",
                          tutti_result_name(async));
    TT_TEST_CALL(tutti_comm_destroy(comm));
    return bad != 0;
}

static int tt_err_ranks[] = {1, 2, 4};

ParameterizedTestParameters(errors, bad_arguments)
{
    return cr_make_param_array(int, tt_err_ranks,
                               TT_ERR_NELEMS(tt_err_ranks));
}

ParameterizedTest(int *nranks, errors, bad_arguments, .timeout = 120)
{
    cr_assert_eq(tt_test_spawn(*nranks, tt_err_rank, NULL,
                               TT_OPS_JOB_TIMEOUT_MS), 0,
                 "argument errors over %d ranks (see stderr)", *nranks);
}

/* tutti_group_end without start needs no communicator at all. */
Test(errors, group_end_without_start, .timeout = 10)
{
    cr_expect_eq(tutti_group_end(), TUTTI_ERR_INVALID_USAGE);
    cr_expect_eq(tutti_group_start(), TUTTI_SUCCESS);
    cr_expect_eq(tutti_group_end(), TUTTI_SUCCESS);
    cr_expect_eq(tutti_group_end(), TUTTI_ERR_INVALID_USAGE);
}

/* ---------------------------------------------------------------------- */
/* TUTTI_ALGO                                                             */
/* ---------------------------------------------------------------------- */

/* Values naming a collective/algorithm pair (or a collective) that does
 * not exist, with the word the error must show. */
static const struct {
    const char *spec;
    const char *word;
} tt_err_algos[] = {
    {"broadcast:ring", "ring"},
    {"reduce:rd", "rd"},
    {"allgather:tree", "tree"},
    {"alltoall:ring", "ring"},
    {"reduce_scatter:bruck", "bruck"},
    {"barrier:binomial", "binomial"},
    {"allreduce:pairwise", "pairwise"},
    {"allreduce:chain", "chain"},
    {"allgather:rabenseifner", "rabenseifner"},
    {"allreduce:tree;reduce:rh", "rh"},
    {"allreduce:0-64k:ring,64k-inf:binomial", "binomial"},
    {"gather:ring", "gather"},
    {"dissemination_barrier", "dissemination_barrier"},
};

/* Init of one rank with the value in the environment or in config.algo:
 * must fail at once (the rendezvous is never reached) and say why. */
static void tt_err_expect_algo_rejected(const tutti_unique_id_t *id,
                                        const char *spec, const char *word,
                                        int by_env)
{
    tutti_config_t config = TUTTI_CONFIG_INIT;
    tutti_comm_t   comm   = NULL;
    tutti_result_t res;
    const char    *how    = by_env ? "TUTTI_ALGO" : "config.algo";

    config.timeout_ms = 5000; /* a wrong wait fails instead of hanging */
    if (by_env) {
        cr_assert_eq(setenv("TUTTI_ALGO", spec, 1), 0);
    } else {
        config.algo = spec;
    }
    res = tutti_comm_init(1, id, 0, &config, &comm);
    unsetenv("TUTTI_ALGO");
    if (res == TUTTI_SUCCESS) {
        tutti_comm_destroy(comm);
    }
    cr_expect_eq(res, TUTTI_ERR_INVALID_ARGUMENT, "%s '%s': init gave %s",
                 how, spec, tutti_result_name(res));
    cr_expect(res == TUTTI_SUCCESS || comm == NULL, "%s '%s': *comm_p set "
              "on failure", how, spec);
    cr_expect_not_null(strstr(tutti_last_error(), "TUTTI_ALGO"),
                       "%s '%s': the message '%s' does not name TUTTI_ALGO",
                       how, spec, tutti_last_error());
    cr_expect_not_null(strstr(tutti_last_error(), word),
                       "%s '%s': the message '%s' does not name '%s'", how,
                       spec, tutti_last_error(), word);
}

Test(errors, algo_pair_that_does_not_exist, .timeout = 60)
{
    tutti_unique_id_t id;
    tutti_comm_t      comm;
    size_t            i;

    cr_assert_eq(tutti_get_unique_id(&id), TUTTI_SUCCESS);
    for (i = 0; i < TT_ERR_NELEMS(tt_err_algos); i++) {
        tt_err_expect_algo_rejected(&id, tt_err_algos[i].spec,
                                    tt_err_algos[i].word, 1);
        tt_err_expect_algo_rejected(&id, tt_err_algos[i].spec,
                                    tt_err_algos[i].word, 0);
    }
    /* the pairs that do exist, in the same grammar, are accepted */
    cr_assert_eq(tutti_get_unique_id(&id), TUTTI_SUCCESS);
    cr_assert_eq(setenv("TUTTI_ALGO", "broadcast:chain;reduce:binomial;"
                        "alltoall:pairwise;barrier:dissemination;"
                        "reduce_scatter:0-64k:rh,64k-inf:ring", 1), 0);
    cr_assert_eq(tutti_comm_init(1, &id, 0, NULL, &comm), TUTTI_SUCCESS,
                 "%s", tutti_last_error());
    cr_assert_eq(tutti_comm_destroy(comm), TUTTI_SUCCESS);
}

/* With several ranks, each one refuses the value by itself: no rank waits
 * for the others, and each says why. */
static int tt_err_algo_rank(int rank, int nranks, const tutti_unique_id_t *id,
                            void *arg)
{
    tutti_comm_t   comm = NULL;
    tutti_result_t res;
    int            bad = 0;

    (void)arg;
    res = tt_ops_comm_init(rank, nranks, id, NULL, &comm);
    bad += TT_TEST_EXPECT(res == TUTTI_ERR_INVALID_ARGUMENT, "init gave %s",
                          tutti_result_name(res));
    bad += TT_TEST_EXPECT(strstr(tutti_last_error(), "TUTTI_ALGO") != NULL,
                          "the message '%s' does not name TUTTI_ALGO",
                          tutti_last_error());
    if (res == TUTTI_SUCCESS) {
        tutti_comm_destroy(comm);
    }
    return bad != 0;
}

Test(errors, algo_pair_that_does_not_exist_every_rank, .timeout = 60)
{
    cr_assert_eq(setenv("TUTTI_ALGO", "allreduce:ring;alltoall:bruck", 1), 0);
    cr_assert_eq(tt_test_spawn(3, tt_err_algo_rank, NULL, 30000), 0,
                 "see stderr");
}
