/*
 * The rank program of the multi-host suite: one process of a job started
 * by netbed.c inside a namespace "host", which learns its rank, the job's
 * size and layout, and the id file from the TT_NETBED_* environment
 * (netbed.h). Rank 0 creates the unique id (so the rendezvous listens in
 * host 0) and publishes its text in the id file; the others wait for it.
 *
 *   mh_rank coll small|large   every collective under every algorithm,
 *                              checked against tests/helpers/ref.c
 *   mh_rank init               join, check the transports, one allreduce
 *   mh_rank init-fails RESULT TEXT
 *                              tutti_comm_init must fail with RESULT
 *                              (e.g. TUTTI_ERR_UNSUPPORTED) and a message
 *                              containing TEXT
 *   mh_rank loop COUNT         allreduce COUNT floats until a call fails
 *                              (for the link-cut test): event "ready" after
 *                              the first calls, then "error <RESULT> <ms>"
 *                              when one fails, <ms> since the last success
 *
 * After the world communicator is up, every mode checks the transport of
 * each peer against TT_MH_EXPECT_LOCAL (peers on this host) and
 * TT_MH_EXPECT_REMOTE (peers elsewhere), when they are set.
 *
 * The collective cases come from tests/ops/ops.c: one communicator per
 * algorithm set, each forcing the k-th algorithm of every collective that
 * has one through config.algo, the algorithms taken from the library's own
 * table, so a new algorithm is covered here without a change. Exit status:
 * 0 when everything held, 1 otherwise (reasons on stderr).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tutti.h>

#include "comm.h" /* peers[p].ops: the transport chosen for each peer */
#include "netbed.h"
#include "ops.h"

/* How long ranks other than 0 wait for the id file. */
#define MH_ID_WAIT_MS 60000
/* Upper bound of the loop mode, in calls and in time. */
#define MH_LOOP_MAX_CALLS 1000000
#define MH_LOOP_MAX_MS    120000
/* Calls of the loop mode before it says "ready". */
#define MH_LOOP_READY     3

#define MH_NELEMS(_a) (sizeof(_a) / sizeof((_a)[0]))

typedef struct mh_job {
    int         rank, nranks, host, rph;
    int         evfd;
    const char *id_file;
} mh_job_t;

static int mh_env_int(const char *name, int dflt)
{
    const char *v = getenv(name);

    return v != NULL && v[0] != '\0' ? atoi(v) : dflt;
}

/* One event line to the harness (netbed.h); one write, so it is whole. */
static void mh_event(const mh_job_t *job, const char *fmt, ...)
{
    char    line[128];
    va_list ap;
    int     n;

    if (job->evfd < 0) {
        return;
    }
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || n > (int)sizeof(line) - 2) {
        n = (int)sizeof(line) - 2;
    }
    line[n++] = '\n';
    if (write(job->evfd, line, (size_t)n) < 0) {
        /* the harness is gone; nothing to tell */
    }
}

/* ---------------------------------------------------------------------- */
/* the id                                                                 */
/* ---------------------------------------------------------------------- */

/* Rank 0: writes the id's text to file.tmp and renames it into place. */
static int mh_id_publish(const char *file, const tutti_unique_id_t *id)
{
    char  text[TUTTI_UNIQUE_ID_TEXT_LEN], tmp[PATH_MAX + 32];
    FILE *f;

    TT_TEST_CALL(tutti_unique_id_to_text(id, text));
    snprintf(tmp, sizeof(tmp), "%s.tmp", file);
    f = fopen(tmp, "w");
    if (f == NULL) {
        return tt_test_fail(__FILE__, __LINE__, "fopen %s: %s", tmp,
                            strerror(errno));
    }
    if (fprintf(f, "%s\n", text) < 0 || fclose(f) != 0) {
        return tt_test_fail(__FILE__, __LINE__, "write %s: %s", tmp,
                            strerror(errno));
    }
    if (rename(tmp, file) != 0) {
        return tt_test_fail(__FILE__, __LINE__, "rename %s: %s", tmp,
                            strerror(errno));
    }
    return 0;
}

/* The other ranks: waits (bounded) for the file, then parses it. */
static int mh_id_read(const char *file, tutti_unique_id_t *id_p)
{
    uint64_t deadline = tt_test_now_ms() + MH_ID_WAIT_MS;
    char     text[TUTTI_UNIQUE_ID_TEXT_LEN + 2];
    FILE    *f;

    while ((f = fopen(file, "r")) == NULL) {
        if (tt_test_now_ms() > deadline) {
            return tt_test_fail(__FILE__, __LINE__, "no id file %s after "
                                "%d ms", file, MH_ID_WAIT_MS);
        }
        tt_test_sleep_ms(10);
    }
    if (fgets(text, sizeof(text), f) == NULL) {
        fclose(f);
        return tt_test_fail(__FILE__, __LINE__, "id file %s is empty", file);
    }
    fclose(f);
    text[strcspn(text, "\n")] = '\0';
    TT_TEST_CALL(tutti_unique_id_from_text(text, id_p));
    return 0;
}

static int mh_id(const mh_job_t *job, tutti_unique_id_t *id_p)
{
    if (job->rank == 0) {
        TT_TEST_CALL(tutti_get_unique_id(id_p));
        return mh_id_publish(job->id_file, id_p);
    }
    return mh_id_read(job->id_file, id_p);
}

/* ---------------------------------------------------------------------- */
/* transports                                                             */
/* ---------------------------------------------------------------------- */

/* Each peer's transport against TT_MH_EXPECT_LOCAL / _REMOTE. */
static int mh_check_transports(const mh_job_t *job, tutti_comm_t comm)
{
    const char *local  = getenv("TT_MH_EXPECT_LOCAL");
    const char *remote = getenv("TT_MH_EXPECT_REMOTE");
    int         p, bad = 0;

    for (p = 0; p < job->nranks; p++) {
        int         same = p / job->rph == job->host;
        const char *want = same ? local : remote;
        const char *got;

        if (p == job->rank || want == NULL || want[0] == '\0') {
            continue;
        }
        got = comm->peers[p].ops != NULL ? comm->peers[p].ops->name : "none";
        bad += TT_TEST_EXPECT(strcmp(got, want) == 0, "rank %d (host %d) "
                              "reaches rank %d (host %d, %s) via %s, not %s",
                              job->rank, job->host, p, p / job->rph,
                              same ? "same host" : "another host", got,
                              want);
    }
    return bad;
}

/* ---------------------------------------------------------------------- */
/* collectives                                                            */
/* ---------------------------------------------------------------------- */

/* A small case: count, placement, root (0 first, -1 last) and which of
 * the two type choices of its kind of collective. */
typedef struct mh_small {
    size_t        count;
    tt_ops_mode_t mode;
    int           root;
    int           type;
} mh_small_t;

static const mh_small_t mh_smalls[] = {
    {0, TT_OPS_OOP, 0, 0},
    {1, TT_OPS_OOP, -1, 0},
    {7, TT_OPS_INPLACE, 0, 1},
    {1021, TT_OPS_OOP, 0, 0},
    {1021, TT_OPS_NULL, -1, 1},
};

/* type 0 and 1 of reductions, then of data movements */
static const tutti_datatype_t mh_types[2][2] = {
    {TUTTI_FLOAT32, TUTTI_INT32},
    {TUTTI_FLOAT64, TUTTI_INT8},
};
static const tutti_redop_t mh_ops[2] = {TUTTI_SUM, TUTTI_MAX};

static int mh_coll_small(tt_coll_t coll, const char *algo,
                         const mh_job_t *job, tutti_comm_t comm,
                         uint64_t *seed)
{
    int    red = tt_ops_is_reduction(coll), bad = 0;
    size_t i;

    for (i = 0; i < MH_NELEMS(mh_smalls); i++) {
        const mh_small_t *s = &mh_smalls[i];
        tt_ops_case_t     c = {.coll  = coll,
                               .dt    = mh_types[red ? 0 : 1][s->type],
                               .op    = mh_ops[s->type],
                               .count = s->count,
                               .root  = s->root < 0 ? job->nranks - 1 : 0,
                               .mode  = s->mode,
                               .algo  = algo};
        int               rc;

        if (c.mode == TT_OPS_NULL && !tt_ops_is_rooted(coll)) {
            c.mode = TT_OPS_INPLACE;
        }
        c.seed = tt_ops_seed_next(seed);
        rc     = tt_ops_run_case(&c, job->rank, job->nranks, comm);
        if (rc < 0) {
            return -1;
        }
        bad += rc;
    }
    return bad;
}

/* One case of about 512 KiB per buffer, with counts no layout divides:
 * more than one pipeline window (TUTTI_SLICE_SIZE x depth) crosses the
 * network. In place for odd algorithm sets. */
static int mh_coll_large(tt_coll_t coll, int k, const char *algo,
                         const mh_job_t *job, tutti_comm_t comm,
                         uint64_t *seed)
{
    size_t        n = (size_t)job->nranks;
    tt_ops_case_t c = {.coll = coll, .root = job->nranks - 1,
                       .mode = k % 2 ? TT_OPS_INPLACE : TT_OPS_OOP,
                       .algo = algo};

    switch (coll) {
    case TT_COLL_ALLREDUCE:
        c.dt    = TUTTI_FLOAT32;
        c.op    = TUTTI_SUM;
        c.count = (1u << 17) + 3;
        break;
    case TT_COLL_REDUCE_SCATTER:
        c.dt    = TUTTI_INT32;
        c.op    = TUTTI_MAX;
        c.count = (1u << 17) / n + 1;
        break;
    case TT_COLL_REDUCE:
        c.dt    = TUTTI_BFLOAT16;
        c.op    = TUTTI_SUM;
        c.count = (1u << 18) + 1;
        break;
    case TT_COLL_BROADCAST:
        c.dt    = TUTTI_INT8;
        c.count = (1u << 19) + 5;
        c.root  = job->nranks / 2;
        break;
    case TT_COLL_ALLGATHER:
    case TT_COLL_ALLTOALL:
        c.dt    = TUTTI_FLOAT64;
        c.count = (1u << 16) / n + 1;
        break;
    default:
        return 0;
    }
    c.seed = tt_ops_seed_next(seed);
    return tt_ops_run_case(&c, job->rank, job->nranks, comm);
}

/* The k-th algorithm of coll in the library's table, or NULL. */
static const tt_algo_t *mh_algo(tt_coll_t coll, int k)
{
    const tt_algo_t *const *a;

    for (a = tutti__algos; *a != NULL; a++) {
        if ((*a)->coll == coll && k-- == 0) {
            return *a;
        }
    }
    return NULL;
}

/* "allreduce:ring;allgather:ring;..." for algorithm set k; 0 when no
 * collective has a k-th algorithm. */
static int mh_spec(int k, char *buf, size_t len)
{
    size_t used = 0;
    int    c, n = 0;

    buf[0] = '\0';
    for (c = 0; c < TT_COLL_NUM; c++) {
        const tt_algo_t *a = mh_algo((tt_coll_t)c, k);

        if (a != NULL && used < len) {
            used += (size_t)snprintf(buf + used, len - used, "%s%s:%s",
                                     n++ > 0 ? ";" : "",
                                     tutti__coll_name((tt_coll_t)c), a->name);
        }
    }
    return n;
}

/* Every case of algorithm set k on comm; -1 when a call failed. */
static int mh_coll_set(int k, int large, const mh_job_t *job,
                       tutti_comm_t comm, uint64_t *seed)
{
    int c, rc, bad = 0;

    for (c = 0; c < TT_COLL_NUM; c++) {
        const tt_algo_t *a     = mh_algo((tt_coll_t)c, k);
        tt_ops_case_t    probe = {.coll  = (tt_coll_t)c,
                                  .dt    = TUTTI_FLOAT32,
                                  .op    = TUTTI_SUM,
                                  .count = 7};

        if (a == NULL) {
            continue;
        }
        if (c == TT_COLL_BARRIER) {
            probe.dt = TUTTI_UINT8;
            probe.count = 1;
        }
        if (tt_ops_expect_algo(comm, &probe, job->nranks, a->name) != 0) {
            bad++;
            continue;
        }
        rc = large ? mh_coll_large((tt_coll_t)c, k, a->name, job, comm, seed)
                   : mh_coll_small((tt_coll_t)c, a->name, job, comm, seed);
        if (rc < 0) {
            return -1;
        }
        bad += rc;
    }
    return bad;
}

static int mh_mode_coll(const mh_job_t *job, tutti_comm_t world, int large)
{
    uint64_t     seed = 0x6d686f7374u;
    char         spec[512];
    tutti_comm_t comm;
    int          k, rc, bad = 0;

    for (k = 0; mh_spec(k, spec, sizeof(spec)) > 0; k++) {
        TT_TEST_CALL(tt_ops_comm_derive(world, spec, &comm));
        rc = mh_coll_set(k, large, job, comm, &seed);
        if (rc < 0) {
            tt_test_fail(__FILE__, __LINE__, "with config.algo '%s': a call "
                         "failed, stopping", spec);
            return 1;
        }
        bad += rc;
        TT_TEST_CALL(tutti_comm_destroy(comm));
    }
    return bad != 0;
}

/* ---------------------------------------------------------------------- */
/* the link cut                                                           */
/* ---------------------------------------------------------------------- */

/* Destroys `world` (broken after the cut) before it frees the buffer:
 * after an error, posted requests may still reference it until then. The
 * error is reported first, with its message (destroy clears it), and
 * without the time destroy takes. */
static int mh_mode_loop(const mh_job_t *job, tutti_comm_t world,
                        size_t count)
{
    uint64_t       start = tt_test_now_ms(), last = start;
    float         *buf   = calloc(count, sizeof(float));
    tutti_result_t res   = TUTTI_SUCCESS;
    int            i;

    if (buf == NULL) {
        tutti_comm_destroy(world);
        return tt_test_fail(__FILE__, __LINE__, "no memory for %zu floats",
                            count);
    }
    for (i = 0; i < MH_LOOP_MAX_CALLS; i++) {
        res = tutti_allreduce(buf, buf, count, TUTTI_FLOAT32, TUTTI_SUM,
                              world);
        if (res != TUTTI_SUCCESS) {
            break;
        }
        last = tt_test_now_ms();
        if (i + 1 == MH_LOOP_READY) {
            mh_event(job, "ready");
        }
        if (last - start > MH_LOOP_MAX_MS) {
            break;
        }
    }
    if (res == TUTTI_SUCCESS) {
        mh_event(job, "done %d", i);
        tutti_comm_destroy(world);
        free(buf);
        return tt_test_fail(__FILE__, __LINE__, "%d allreduce calls in %d "
                            "ms and none failed", i,
                            (int)(tt_test_now_ms() - start));
    }
    mh_event(job, "error %s %d", tutti_result_name(res),
             (int)(tt_test_now_ms() - last));
    fprintf(stderr, "[rank %d] call %d failed: %s (%s)\n", job->rank, i,
            tutti_result_name(res), tutti_last_error());
    tutti_comm_destroy(world);
    free(buf);
    return TT_TEST_EXPECT(res == TUTTI_ERR_REMOTE ||
                              res == TUTTI_ERR_TIMEOUT,
                          "the cut link gave %s, not TUTTI_ERR_REMOTE or "
                          "TUTTI_ERR_TIMEOUT", tutti_result_name(res));
}

/* ---------------------------------------------------------------------- */
/* main                                                                   */
/* ---------------------------------------------------------------------- */

static int mh_mode_init_fails(const mh_job_t *job, const char *want,
                              const char *text)
{
    tutti_unique_id_t id;
    tutti_comm_t      comm = NULL;
    tutti_result_t    res;

    if (mh_id(job, &id) != 0) {
        return 1;
    }
    res = tt_ops_comm_init(job->rank, job->nranks, &id, NULL, &comm);
    if (res == TUTTI_SUCCESS) {
        tutti_comm_destroy(comm);
        return tt_test_fail(__FILE__, __LINE__, "tutti_comm_init succeeded; "
                            "expected %s", want);
    }
    return TT_TEST_EXPECT(strcmp(tutti_result_name(res), want) == 0 &&
                              strstr(tutti_last_error(), text) != NULL,
                          "tutti_comm_init: %s (%s); expected %s with "
                          "'%s'", tutti_result_name(res),
                          tutti_last_error(), want, text);
}

static int mh_usage(void)
{
    fprintf(stderr, "usage: mh_rank coll small|large | init | init-fails "
            "RESULT TEXT | loop COUNT\n(started by the multi-host suite's "
            "netbed.c, which sets TT_NETBED_*)\n");
    return 2;
}

int main(int argc, char **argv)
{
    mh_job_t          job;
    tutti_unique_id_t id;
    tutti_comm_t      world;
    int               bad;

    job.rank    = mh_env_int(TT_NETBED_ENV_RANK, -1);
    job.nranks  = mh_env_int(TT_NETBED_ENV_NRANKS, 0);
    job.host    = mh_env_int(TT_NETBED_ENV_HOST, 0);
    job.rph     = mh_env_int(TT_NETBED_ENV_RPH, 1);
    job.evfd    = mh_env_int(TT_NETBED_ENV_EVENT_FD, -1);
    job.id_file = getenv(TT_NETBED_ENV_ID_FILE);
    tt_test_rank = job.rank;
    if (argc < 2 || job.rank < 0 || job.nranks < 1 || job.rph < 1 ||
        job.id_file == NULL) {
        return mh_usage();
    }
    if (strcmp(argv[1], "init-fails") == 0) {
        return argc == 4 ? mh_mode_init_fails(&job, argv[2], argv[3])
                         : mh_usage();
    }
    if (mh_id(&job, &id) != 0) {
        return 1;
    }
    TT_TEST_CALL(tt_ops_comm_init(job.rank, job.nranks, &id, NULL, &world));
    bad = mh_check_transports(&job, world);
    if (strcmp(argv[1], "coll") == 0 && argc == 3) {
        bad += mh_mode_coll(&job, world, strcmp(argv[2], "large") == 0);
    } else if (strcmp(argv[1], "loop") == 0 && argc == 3) {
        /* the communicator is broken afterwards: the mode destroys it,
         * no barrier */
        bad += mh_mode_loop(&job, world, strtoul(argv[2], NULL, 10));
        return bad != 0;
    } else if (strcmp(argv[1], "init") != 0) {
        tutti_comm_destroy(world);
        return mh_usage();
    }
    {
        float one = 1.0f;

        TT_TEST_CALL(tutti_allreduce(&one, &one, 1, TUTTI_FLOAT32, TUTTI_SUM,
                                     world));
        bad += TT_TEST_EXPECT(one == (float)job.nranks, "allreduce of 1.0 "
                              "over %d ranks gave %g", job.nranks,
                              (double)one);
    }
    /* every rank is done before any leaves */
    TT_TEST_CALL(tutti_barrier(world));
    TT_TEST_CALL(tutti_comm_destroy(world));
    return bad != 0;
}
