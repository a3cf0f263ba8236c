/*
 * Failure suite: what the ranks of a job see when something goes wrong.
 *
 *   - a rank never arrives: init gives TUTTI_ERR_TIMEOUT, no hang;
 *   - ranks disagree on nranks, or two claim the same rank: init fails;
 *   - a peer dies (SIGKILL from itself or from the harness, or a plain
 *     _exit) in the middle of collectives: the survivors' collective
 *     returns TUTTI_ERR_REMOTE (the watchdog noticed) or at worst
 *     TUTTI_ERR_TIMEOUT, the async error is set, later calls fail at once
 *     and destroy works; the hub (rank 0) dying is covered too;
 *   - a peer stays alive but never calls the collective: TIMEOUT;
 *   - tutti_comm_abort() from a second thread unblocks a collective with
 *     TUTTI_ERR_ABORTED, later calls give ABORTED, destroy works, and the
 *     peer learns of it through its async error;
 *   - the rendezvous rejects an id with a wrong secret, a client that sends
 *     garbage and one that connects and says nothing, and still lets the
 *     legitimate ranks in;
 *   - after each of these jobs no /dev/shm/tutti-<job id>-* segment is
 *     left behind.
 *
 * No assertion is about how long something took: the only clocks are the
 * library's own timeouts and the harness's hang protection.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tutti.h>

#include "bootstrap_net.h" /* decoding the id, for the raw-socket tests */
#include "internal.h"      /* TT_CHECK */
#include "transport.h"     /* tutti__transports */
#include "spawn.h"

/* Bound on init and collectives where a failure must be detected by the
 * watchdog: long enough that TIMEOUT means the watchdog missed it. */
#define TT_F_DETECT_MS 20000
#define TT_F_JOB_MS    60000
/* The large buffer survivors reduce while their peer dies. */
#define TT_F_BIG_COUNT (1u << 20)

static int tt_is_error(tutti_result_t res)
{
    return res < 0;
}

/* ------------------------------------------------------------------------ */
/* Init failures. */

static int tt_missing_rank(int rank, int nranks, const tutti_unique_id_t *id,
                           void *arg)
{
    tutti_config_t config = TUTTI_CONFIG_INIT;
    tutti_comm_t   comm   = NULL;
    tutti_result_t res;
    int            bad = 0;

    (void)arg;
    if (rank == nranks - 1) {
        return 0; /* this rank never shows up */
    }
    config.timeout_ms = 1500;
    res = tutti_comm_init(nranks, id, rank, &config, &comm);
    bad += TT_TEST_EXPECT(res == TUTTI_ERR_TIMEOUT, "init gave %s (%s)",
                          tutti_result_name(res), tutti_last_error());
    bad += TT_TEST_EXPECT(tutti_last_error()[0] != '\0', "no message");
    bad += TT_TEST_EXPECT(comm == NULL, "a failed init wrote *comm_p");
    return bad != 0;
}

Test(failure, init_times_out_when_a_rank_is_missing, .timeout = 30)
{
    tt_test_job_t job = TT_TEST_JOB_INIT(3);

    job.timeout_ms = 20000;
    cr_assert_eq(tt_test_spawn_job(&job, tt_missing_rank, NULL), 0);
    cr_expect_eq(tt_test_shm_leftovers(&job.id), 0);
}

/* Rank 0 believes in 2 ranks, rank 1 in 3: both must fail, not hang. */
static int tt_nranks_mismatch(int rank, int nranks,
                              const tutti_unique_id_t *id, void *arg)
{
    tutti_config_t config = TUTTI_CONFIG_INIT;
    tutti_comm_t   comm   = NULL;
    tutti_result_t res;

    (void)nranks;
    (void)arg;
    config.timeout_ms = 3000;
    res = tutti_comm_init(rank == 0 ? 2 : 3, id, rank, &config, &comm);
    if (res == TUTTI_SUCCESS) {
        tutti_comm_destroy(comm);
    }
    return TT_TEST_EXPECT(tt_is_error(res), "init with disagreeing nranks "
                          "gave %s", tutti_result_name(res));
}

Test(failure, init_fails_when_nranks_disagree, .timeout = 30)
{
    cr_assert_eq(tt_test_spawn(2, tt_nranks_mismatch, NULL, 20000), 0);
}

/* Both processes claim rank 0 of 2: neither may get a communicator. */
static int tt_duplicate_rank(int rank, int nranks,
                             const tutti_unique_id_t *id, void *arg)
{
    tutti_config_t config = TUTTI_CONFIG_INIT;
    tutti_comm_t   comm   = NULL;
    tutti_result_t res;

    (void)rank;
    (void)arg;
    config.timeout_ms = 3000;
    res = tutti_comm_init(nranks, id, 0, &config, &comm);
    if (res == TUTTI_SUCCESS) {
        tutti_comm_destroy(comm);
    }
    return TT_TEST_EXPECT(tt_is_error(res), "init of a duplicated rank 0 "
                          "gave %s", tutti_result_name(res));
}

Test(failure, init_fails_when_a_rank_is_claimed_twice, .timeout = 30)
{
    cr_assert_eq(tt_test_spawn(2, tt_duplicate_rank, NULL, 20000), 0);
}

/* ------------------------------------------------------------------------ */
/* A peer dies while the others are inside collectives. */

typedef enum tt_death {
    TT_DEATH_SIGKILL, /* the victim SIGKILLs itself from a second thread */
    TT_DEATH_EXIT,    /* the victim calls _exit(3) from a second thread */
    TT_DEATH_HARNESS  /* the harness SIGKILLs the victim */
} tt_death_t;

typedef struct tt_kill_case {
    int        nranks;
    int        victim;
    tt_death_t how;
} tt_kill_case_t;

static void *tt_die_soon(void *arg)
{
    const tt_kill_case_t *kc = arg;

    /* let the main thread get into its next allreduce */
    tt_test_sleep_ms(20);
    if (kc->how == TT_DEATH_EXIT) {
        _exit(3);
    }
    raise(SIGKILL);
    return NULL;
}

/*
 * Every rank inits and runs one small allreduce (so all are past init),
 * then loops over large allreduces. The victim dies during that loop; the
 * survivors must get an error back from one of their calls.
 */
static int tt_killed_peer(int rank, int nranks, const tutti_unique_id_t *id,
                          void *arg)
{
    const tt_kill_case_t *kc     = arg;
    tutti_config_t        config = TUTTI_CONFIG_INIT;
    tutti_comm_t          comm;
    tutti_result_t        res = TUTTI_SUCCESS, async;
    float                *buf;
    pthread_t             t;
    uint64_t              give_up;
    int                   one = 1, iters = 0, bad = 0;

    config.timeout_ms = TT_F_DETECT_MS;
    buf               = calloc(TT_F_BIG_COUNT, sizeof(float));
    if (buf == NULL) {
        return tt_test_fail(__FILE__, __LINE__, "out of memory");
    }
    res = tutti_comm_init(nranks, id, rank, &config, &comm);
    if (res != TUTTI_SUCCESS) {
        free(buf);
        /* only acceptable if the harness killed the victim this early */
        return TT_TEST_EXPECT(kc->how == TT_DEATH_HARNESS &&
                                  tt_is_error(res),
                              "init: %s (%s)", tutti_result_name(res),
                              tutti_last_error());
    }
    TT_TEST_CALL(tutti_allreduce(&one, &one, 1, TUTTI_INT32, TUTTI_SUM,
                                 comm));
    if (rank == kc->victim && kc->how != TT_DEATH_HARNESS &&
        pthread_create(&t, NULL, tt_die_soon, (void *)kc) != 0) {
        return tt_test_fail(__FILE__, __LINE__, "pthread_create failed");
    }
    /* a bound on the loop, not an assertion: the victim is long dead by
     * then, and every survivor's call should have failed */
    give_up = tt_test_now_ms() + 2u * TT_F_DETECT_MS;
    while (res == TUTTI_SUCCESS && tt_test_now_ms() < give_up) {
        res = tutti_allreduce(buf, buf, TT_F_BIG_COUNT, TUTTI_FLOAT32,
                              TUTTI_SUM, comm);
        iters++;
    }
    if (rank == kc->victim) {
        return tt_test_fail(__FILE__, __LINE__, "the victim survived (%s)",
                            tutti_result_name(res));
    }
    if (res == TUTTI_ERR_TIMEOUT) {
        fprintf(stderr, "[rank %d] note: the peer's death surfaced as "
                "TUTTI_ERR_TIMEOUT, not TUTTI_ERR_REMOTE: the watchdog did "
                "not notice it within %d ms\n", rank, TT_F_DETECT_MS);
    }
    bad += TT_TEST_EXPECT(res == TUTTI_ERR_REMOTE ||
                              res == TUTTI_ERR_TIMEOUT,
                          "after %d allreduces, the last gave %s (%s)", iters,
                          tutti_result_name(res), tutti_last_error());
    bad += TT_TEST_EXPECT(tutti_last_error()[0] != '\0', "no message");
    if (res == TUTTI_ERR_REMOTE) {
        async = TUTTI_SUCCESS;
        TT_TEST_CALL(tutti_comm_get_async_error(comm, &async));
        bad += TT_TEST_EXPECT(async == TUTTI_ERR_REMOTE, "async error %s",
                              tutti_result_name(async));
    }
    /* later calls fail at once instead of waiting for the timeout */
    res = tutti_allreduce(&one, &one, 1, TUTTI_INT32, TUTTI_SUM, comm);
    bad += TT_TEST_EXPECT(tt_is_error(res), "a later allreduce gave %s",
                          tutti_result_name(res));
    res = tutti_allgather(&one, buf, 1, TUTTI_INT32, comm);
    bad += TT_TEST_EXPECT(tt_is_error(res), "a later allgather gave %s",
                          tutti_result_name(res));
    TT_TEST_CALL(tutti_comm_destroy(comm));
    free(buf);
    return bad != 0;
}

static tt_kill_case_t tt_kill_cases[] = {
    {2, 1, TT_DEATH_SIGKILL},
    {3, 1, TT_DEATH_SIGKILL},
    {3, 0, TT_DEATH_SIGKILL}, /* the bootstrap hub */
    {4, 3, TT_DEATH_EXIT},
    {3, 2, TT_DEATH_HARNESS},
};

ParameterizedTestParameters(failure, peer_dies_mid_allreduce)
{
    return cr_make_param_array(tt_kill_case_t, tt_kill_cases,
                               sizeof(tt_kill_cases) /
                                   sizeof(tt_kill_cases[0]));
}

ParameterizedTest(tt_kill_case_t *kc, failure, peer_dies_mid_allreduce,
                  .timeout = 90)
{
    tt_test_job_t job = TT_TEST_JOB_INIT(kc->nranks);
    int           st;

    job.timeout_ms = TT_F_JOB_MS;
    job.may_fail   = 1ull << kc->victim;
    if (kc->how == TT_DEATH_HARNESS) {
        /* late enough that init is over even under ASan on a loaded
         * machine: a rank killed inside init can leave its shm segment */
        job.kill_rank     = kc->victim;
        job.kill_after_ms = 3000;
    }
    cr_assert_eq(tt_test_spawn_job(&job, tt_killed_peer, kc), 0,
                 "%d ranks, rank %d dies: a survivor failed (see stderr)",
                 kc->nranks, kc->victim);
    st = job.status[kc->victim];
    if (kc->how == TT_DEATH_EXIT) {
        cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 3,
                  "victim status 0x%x", st);
    } else {
        cr_expect(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                  "victim status 0x%x", st);
    }
    cr_expect_eq(tt_test_shm_leftovers(&job.id), 0);
}

/* ------------------------------------------------------------------------ */
/* A peer that is alive but never joins the collective. */

static int tt_idle_peer(int rank, int nranks, const tutti_unique_id_t *id,
                        void *arg)
{
    int           *fds    = arg; /* pipe: rank 0 -> rank 1 "done" */
    tutti_config_t config = TUTTI_CONFIG_INIT;
    tutti_comm_t   comm;
    tutti_result_t res;
    float          x[64] = {0};
    char           c;
    int            bad = 0;

    config.timeout_ms = 1000;
    TT_TEST_CALL(tutti_comm_init(nranks, id, rank, &config, &comm));
    if (rank == 1) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};

        close(fds[1]);
        /* wait for rank 0's verdict (bounded: it never needs this long) */
        if (poll(&p, 1, TT_F_JOB_MS) != 1 || read(fds[0], &c, 1) != 1) {
            return tt_test_fail(__FILE__, __LINE__, "rank 0 never reported");
        }
        TT_TEST_CALL(tutti_comm_destroy(comm));
        return 0;
    }
    close(fds[0]);
    res = tutti_allreduce(x, x, 64, TUTTI_FLOAT32, TUTTI_SUM, comm);
    bad += TT_TEST_EXPECT(res == TUTTI_ERR_TIMEOUT, "allreduce with an idle "
                          "peer gave %s (%s)", tutti_result_name(res),
                          tutti_last_error());
    res = tutti_allreduce(x, x, 64, TUTTI_FLOAT32, TUTTI_SUM, comm);
    bad += TT_TEST_EXPECT(tt_is_error(res), "the call after a timeout gave "
                          "%s", tutti_result_name(res));
    if (write(fds[1], "x", 1) != 1) {
        bad += tt_test_fail(__FILE__, __LINE__, "write to the pipe failed");
    }
    TT_TEST_CALL(tutti_comm_destroy(comm));
    return bad != 0;
}

Test(failure, collective_times_out_when_a_peer_never_joins, .timeout = 30)
{
    tt_test_job_t job = TT_TEST_JOB_INIT(2);
    int           fds[2];

    cr_assert_eq(pipe(fds), 0);
    job.timeout_ms = 20000;
    cr_assert_eq(tt_test_spawn_job(&job, tt_idle_peer, fds), 0);
    cr_expect_eq(tt_test_shm_leftovers(&job.id), 0);
}

/* ------------------------------------------------------------------------ */
/* Abort. */

static void *tt_abort_later(void *arg)
{
    tutti_comm_t comm = arg;

    /* the main thread is (almost certainly) blocked by now; if not, its
     * collective still has to return ABORTED */
    tt_test_sleep_ms(300);
    if (tutti_comm_abort(comm) != TUTTI_SUCCESS) {
        tt_test_fail(__FILE__, __LINE__, "tutti_comm_abort failed: %s",
                     tutti_last_error());
    }
    return NULL;
}

/* Waits (bounded) until the watchdog reports the peer's abort. */
static tutti_result_t tt_wait_async_error(tutti_comm_t comm)
{
    tutti_result_t async = TUTTI_SUCCESS;
    uint64_t       give_up = tt_test_now_ms() + TT_F_DETECT_MS;

    while (async == TUTTI_SUCCESS && tt_test_now_ms() < give_up) {
        if (tutti_comm_get_async_error(comm, &async) != TUTTI_SUCCESS) {
            return TUTTI_ERR_INTERNAL;
        }
        if (async == TUTTI_SUCCESS) {
            tt_test_sleep_ms(5);
        }
    }
    return async;
}

/* The peer's side of both abort tests: never calls a collective until the
 * abort has reached it, then its calls must fail at once. */
static int tt_abort_observer(tutti_comm_t comm)
{
    tutti_result_t async = tt_wait_async_error(comm), res;
    int            x = 1, bad = 0;

    bad += TT_TEST_EXPECT(async == TUTTI_ERR_REMOTE ||
                              async == TUTTI_ERR_ABORTED,
                          "the peer's abort shows as async error %s",
                          tutti_result_name(async));
    res = tutti_allreduce(&x, &x, 1, TUTTI_INT32, TUTTI_SUM, comm);
    bad += TT_TEST_EXPECT(res == TUTTI_ERR_REMOTE ||
                              res == TUTTI_ERR_ABORTED,
                          "an allreduce after the peer aborted gave %s",
                          tutti_result_name(res));
    TT_TEST_CALL(tutti_comm_destroy(comm));
    return bad != 0;
}

static int tt_abort_checks_after(tutti_comm_t comm)
{
    tutti_result_t res, async = TUTTI_SUCCESS;
    int            x = 1, y[TT_TEST_MAX_RANKS], bad = 0;

    TT_TEST_CALL(tutti_comm_get_async_error(comm, &async));
    bad += TT_TEST_EXPECT(async == TUTTI_ERR_ABORTED, "async error %s",
                          tutti_result_name(async));
    res = tutti_allreduce(&x, &x, 1, TUTTI_INT32, TUTTI_SUM, comm);
    bad += TT_TEST_EXPECT(res == TUTTI_ERR_ABORTED, "allreduce after abort "
                          "gave %s", tutti_result_name(res));
    res = tutti_allgather(&x, y, 1, TUTTI_INT32, comm);
    bad += TT_TEST_EXPECT(res == TUTTI_ERR_ABORTED, "allgather after abort "
                          "gave %s", tutti_result_name(res));
    res = tutti_comm_abort(comm);
    bad += TT_TEST_EXPECT(res == TUTTI_SUCCESS || res == TUTTI_ERR_ABORTED,
                          "a second abort gave %s", tutti_result_name(res));
    TT_TEST_CALL(tutti_comm_destroy(comm));
    return bad != 0;
}

static int tt_abort_blocked(int rank, int nranks, const tutti_unique_id_t *id,
                            void *arg)
{
    tutti_config_t config = TUTTI_CONFIG_INIT;
    tutti_comm_t   comm;
    tutti_result_t res;
    pthread_t      t;
    float         *buf;
    int            bad = 0;

    (void)arg;
    config.timeout_ms = TT_F_DETECT_MS;
    TT_TEST_CALL(tutti_comm_init(nranks, id, rank, &config, &comm));
    if (rank != 0) {
        return tt_abort_observer(comm);
    }
    buf = calloc(TT_F_BIG_COUNT, sizeof(float));
    if (buf == NULL || pthread_create(&t, NULL, tt_abort_later, comm) != 0) {
        return tt_test_fail(__FILE__, __LINE__, "setup failed");
    }
    res = tutti_allreduce(buf, buf, TT_F_BIG_COUNT, TUTTI_FLOAT32, TUTTI_SUM,
                          comm);
    pthread_join(t, NULL);
    bad += TT_TEST_EXPECT(res == TUTTI_ERR_ABORTED, "the blocked allreduce "
                          "gave %s (%s)", tutti_result_name(res),
                          tutti_last_error());
    free(buf);
    return (tt_abort_checks_after(comm) + bad) != 0;
}

Test(failure, abort_from_another_thread_unblocks_collective, .timeout = 60)
{
    tt_test_job_t job = TT_TEST_JOB_INIT(2);

    job.timeout_ms = TT_F_JOB_MS;
    cr_assert_eq(tt_test_spawn_job(&job, tt_abort_blocked, NULL), 0);
    cr_expect_eq(tt_test_shm_leftovers(&job.id), 0);
}

/* Abort with no collective in flight, on 3 ranks: every later call on the
 * aborting rank gives ABORTED, and both peers learn of it. */
static int tt_abort_idle(int rank, int nranks, const tutti_unique_id_t *id,
                         void *arg)
{
    tutti_config_t config = TUTTI_CONFIG_INIT;
    tutti_comm_t   comm;
    int            aborter = *(const int *)arg;

    config.timeout_ms = TT_F_DETECT_MS;
    TT_TEST_CALL(tutti_comm_init(nranks, id, rank, &config, &comm));
    if (rank != aborter) {
        return tt_abort_observer(comm);
    }
    TT_TEST_CALL(tutti_comm_abort(comm));
    return tt_abort_checks_after(comm);
}

static int tt_aborters[] = {0, 2};

ParameterizedTestParameters(failure, abort_idle_communicator)
{
    return cr_make_param_array(int, tt_aborters,
                               sizeof(tt_aborters) / sizeof(int));
}

ParameterizedTest(int *aborter, failure, abort_idle_communicator,
                  .timeout = 60)
{
    tt_test_job_t job = TT_TEST_JOB_INIT(3);

    job.timeout_ms = TT_F_JOB_MS;
    cr_assert_eq(tt_test_spawn_job(&job, tt_abort_idle, aborter), 0);
    cr_expect_eq(tt_test_shm_leftovers(&job.id), 0);
}

/* ------------------------------------------------------------------------ */
/* The rendezvous keeps intruders out and lets the real ranks in. */

/* Byte 40 of the id lies in the 32-byte secret (bytes 32..63, see the id
 * layout in src/bootstrap_net.h). */
#define TT_F_SECRET_BYTE 40

static int tt_legit_rank(int rank, int nranks, const tutti_unique_id_t *id,
                         void *arg)
{
    tutti_config_t config = TUTTI_CONFIG_INIT;
    tutti_comm_t   comm;
    int            x = rank + 1, bad = 0;

    (void)arg;
    config.timeout_ms = TT_F_DETECT_MS;
    TT_TEST_CALL(tutti_comm_init(nranks, id, rank, &config, &comm));
    TT_TEST_CALL(tutti_allreduce(&x, &x, 1, TUTTI_INT32, TUTTI_SUM, comm));
    bad += TT_TEST_EXPECT(x == nranks * (nranks + 1) / 2, "sum %d", x);
    TT_TEST_CALL(tutti_comm_destroy(comm));
    return bad != 0;
}

/*
 * The job's id maker (run by the harness once the ranks are forked, before
 * they get the id): an intruder holding the id with one secret bit flipped
 * tries to join first, as rank 0 of 2, from the test process. Its init must
 * fail with TUTTI_ERR_REMOTE (the root refused its proof), not hang and not
 * with INVALID_ARGUMENT (the forged id itself is well formed).
 */
static tutti_result_t tt_make_id_after_intruder(tutti_unique_id_t *id_p,
                                                void *ctx)
{
    tutti_result_t   *intruder = ctx;
    tutti_unique_id_t forged;
    tutti_config_t    config = TUTTI_CONFIG_INIT;
    tutti_comm_t      comm   = NULL;
    char              text[TUTTI_UNIQUE_ID_TEXT_LEN];
    char             *digit;

    TT_CHECK(tutti_get_unique_id(id_p));
    TT_CHECK(tutti_unique_id_to_text(id_p, text));
    digit  = &text[2 * TT_F_SECRET_BYTE + 1];
    *digit = *digit == '0' ? '1' : '0';
    TT_CHECK(tutti_unique_id_from_text(text, &forged));
    config.timeout_ms = 5000;
    *intruder = tutti_comm_init(2, &forged, 0, &config, &comm);
    if (*intruder == TUTTI_SUCCESS) {
        tutti_comm_destroy(comm);
    } else {
        fprintf(stderr, "intruder: %s (%s)\n", tutti_result_name(*intruder),
                tutti_last_error());
    }
    return TUTTI_SUCCESS;
}

Test(failure, rendezvous_rejects_a_wrong_secret, .timeout = 60)
{
    tt_test_job_t  job      = TT_TEST_JOB_INIT(2);
    tutti_result_t intruder = TUTTI_INPROGRESS;

    job.timeout_ms  = TT_F_JOB_MS;
    job.make_id     = tt_make_id_after_intruder;
    job.make_id_ctx = &intruder;
    /* the real ranks still form the communicator */
    cr_assert_eq(tt_test_spawn_job(&job, tt_legit_rank, NULL), 0);
    cr_expect_eq(intruder, TUTTI_ERR_REMOTE, "init with a forged secret gave "
                 "%s", tutti_result_name(intruder));
}

/* Opens a TCP connection to the root of `id`; returns the fd or -1. */
static int tt_connect_root(const tutti_unique_id_t *id)
{
    struct sockaddr_storage ss;
    tt_boot_id_t            bid;
    socklen_t               len;
    int                     fd;

    if (tutti__boot_id_decode(id, &bid) != TUTTI_SUCCESS) {
        return -1;
    }
    len = tutti__boot_addr_to_sockaddr(&bid.root, &ss);
    fd  = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * The job's id maker for the next test: one client sends garbage and
 * closes, another connects and stays silent for the whole rendezvous
 * (ctx receives its fd). Neither may stop the real ranks.
 */
static tutti_result_t tt_make_id_after_garbage(tutti_unique_id_t *id_p,
                                               void *ctx)
{
    int          *silent = ctx;
    unsigned char junk[300];
    int           noisy;

    TT_CHECK(tutti_get_unique_id(id_p));
    memset(junk, 0xff, sizeof(junk));
    noisy = tt_connect_root(id_p);
    if (noisy < 0 || send(noisy, junk, sizeof(junk), MSG_NOSIGNAL) !=
                         (ssize_t)sizeof(junk)) {
        return TUTTI_ERR_SYSTEM;
    }
    close(noisy);
    *silent = tt_connect_root(id_p);
    return *silent >= 0 ? TUTTI_SUCCESS : TUTTI_ERR_SYSTEM;
}

Test(failure, rendezvous_survives_garbage_and_silent_clients, .timeout = 60)
{
    tt_test_job_t job    = TT_TEST_JOB_INIT(3);
    int           silent = -1;

    job.timeout_ms  = TT_F_JOB_MS;
    job.make_id     = tt_make_id_after_garbage;
    job.make_id_ctx = &silent;
    cr_assert_eq(tt_test_spawn_job(&job, tt_legit_rank, NULL), 0);
    cr_expect_geq(silent, 0);
    close(silent);
}

/* ------------------------------------------------------------------------ */
/* UCX's TCP segment sizes must agree between ranks                        */

/* What each rank sets (NULL: nothing) and what every rank's init must
 * give. */
typedef struct {
    const char    *tx[2], *rx[2];
    tutti_result_t want;
} tt_seg_case_t;

static void tt_seg_env(const char *name, const char *value)
{
    if (value != NULL) {
        setenv(name, value, 1);
    } else {
        unsetenv(name);
    }
}

static int tt_seg_rank(int rank, int nranks, const tutti_unique_id_t *id,
                       void *arg)
{
    const tt_seg_case_t *sc     = arg;
    tutti_config_t       config = TUTTI_CONFIG_INIT;
    tutti_comm_t         comm   = NULL;
    tutti_result_t       res;
    float                x      = 1.0f;
    int                  bad    = 0;

    /* whatever the caller's environment holds, only the case decides */
    tt_seg_env("UCX_TCP_TX_SEG_SIZE", sc->tx[rank]);
    tt_seg_env("UCX_TCP_RX_SEG_SIZE", sc->rx[rank]);
    setenv("TUTTI_TRANSPORT", "ucx", 1);
    setenv("UCX_TLS", "tcp", 1);
    setenv("UCX_NET_DEVICES", "lo", 1);
    config.timeout_ms = 5000;
    res = tutti_comm_init(nranks, id, rank, &config, &comm);
    if (sc->want == TUTTI_SUCCESS) {
        bad += TT_TEST_EXPECT(res == TUTTI_SUCCESS, "init gave %s (%s)",
                              tutti_result_name(res), tutti_last_error());
        if (res == TUTTI_SUCCESS) {
            res = tutti_allreduce(&x, &x, 1, TUTTI_FLOAT32, TUTTI_SUM, comm);
            bad += TT_TEST_EXPECT(res == TUTTI_SUCCESS && x == (float)nranks,
                                  "allreduce gave %s, %g",
                                  tutti_result_name(res), (double)x);
            tutti_comm_destroy(comm);
        }
        return bad != 0;
    }
    /* each rank finds the other's segments differ from its own */
    bad += TT_TEST_EXPECT(res == sc->want, "init gave %s (%s), not %s",
                          tutti_result_name(res), tutti_last_error(),
                          tutti_result_name(sc->want));
    bad += TT_TEST_EXPECT(strstr(tutti_last_error(),
                                 "UCX_TCP_TX_SEG_SIZE") != NULL,
                          "the message does not name the variable: %s",
                          tutti_last_error());
    bad += TT_TEST_EXPECT(comm == NULL, "a failed init wrote *comm_p");
    return bad != 0;
}

Test(failure, ucx_tcp_segments_must_agree, .timeout = 60)
{
    /* rank 1 alone sets UCX's own sizes, rank 0 gets tutti's (256K): both
     * must refuse. The same on both, tutti's spelt out on one, or
     * nothing: fine. */
    tt_seg_case_t differ  = {{NULL, "8K"}, {NULL, "64K"},
                             TUTTI_ERR_INVALID_USAGE};
    tt_seg_case_t alike   = {{"128K", "128K"}, {"128K", "128K"},
                             TUTTI_SUCCESS};
    tt_seg_case_t spelled = {{NULL, "262144"}, {NULL, "256K"},
                             TUTTI_SUCCESS};
    tt_seg_case_t unset   = {{NULL, NULL}, {NULL, NULL}, TUTTI_SUCCESS};
    int           t, have = 0;

    for (t = 0; tutti__transports[t] != NULL; t++) {
        have |= strcmp(tutti__transports[t]->name, "ucx") == 0;
    }
    if (!have) {
        cr_skip_test("transport ucx is not compiled in");
    }
    cr_expect_eq(tt_test_spawn(2, tt_seg_rank, &differ, 30000), 0,
                 "UCX's sizes set on rank 1 only (see stderr)");
    cr_expect_eq(tt_test_spawn(2, tt_seg_rank, &alike, 30000), 0,
                 "segment sizes set alike (see stderr)");
    cr_expect_eq(tt_test_spawn(2, tt_seg_rank, &spelled, 30000), 0,
                 "tutti's sizes spelt out on rank 1 (see stderr)");
    cr_expect_eq(tt_test_spawn(2, tt_seg_rank, &unset, 30000), 0,
                 "segment sizes unset (see stderr)");
}
