/*
 * The multi-process test harness: runs one function as every rank of a job,
 * each rank in its own forked process, and reports how each one ended.
 *
 * The parent (the Criterion test process) forks the ranks, then calls
 * tutti_get_unique_id(), so it hosts the rendezvous thread, and hands the id
 * to each rank through a pipe (forking after the rendezvous thread exists
 * could give a child a lock held by that thread; see spawn.c). Each child
 * runs fn and leaves with _exit(), so neither Criterion's atexit machinery
 * nor stdio buffers inherited from the parent run twice. The parent waits
 * with a deadline, kills whatever is left when the deadline passes or a
 * rank crashes, prints one line per failed rank to stderr and returns 0
 * only if every rank exited 0. With TT_TEST_GDB=1 in the environment it
 * prints the stacks of the ranks it has to kill.
 *
 * Rank functions must not use cr_assert(): Criterion's reporting belongs to
 * the parent. They use TT_TEST_CALL() and TT_TEST_EXPECT() below, which
 * print "[rank r] file:line: ..." to stderr, and return nonzero on failure.
 */
#ifndef TT_TEST_SPAWN_H
#define TT_TEST_SPAWN_H

#include <stdint.h>

#include <tutti.h>

#define TT_TEST_MAX_RANKS 64

/* What each rank runs; its return value becomes the rank's exit status
 * (0 success, 1..255 as is, anything else 255). */
typedef int (*tt_test_rank_fn)(int rank, int nranks,
                               const tutti_unique_id_t *id, void *arg);

/*
 * One job, for tt_test_spawn_job(). Start from TT_TEST_JOB_INIT(n) and set
 * what the test needs; the fields marked "out" are filled by the call.
 */
typedef struct tt_test_job {
    int      nranks;        /* processes to fork, 1..TT_TEST_MAX_RANKS */
    int      timeout_ms;    /* deadline for the whole job; <= 0: 60 s */
    uint64_t may_fail;      /* bit r: rank r may die or exit nonzero
                               without failing the job (a victim) */
    int      kill_rank;     /* rank the parent SIGKILLs (a victim), -1 for
                               none ... */
    int      kill_after_ms; /* ... this long after the ranks were forked */
    /* Creates the job's id, after the fork; NULL: tutti_get_unique_id().
     * For tests that act on the rendezvous before the ranks arrive. */
    tutti_result_t (*make_id)(tutti_unique_id_t *id_p, void *ctx);
    void    *make_id_ctx;
    /* out */
    tutti_unique_id_t id;   /* the job's rendezvous id */
    int      status[TT_TEST_MAX_RANKS]; /* wait status of each rank */
    int      killed[TT_TEST_MAX_RANKS]; /* 1: the parent had to kill it */
} tt_test_job_t;

#define TT_TEST_JOB_INIT(_n)                                                 \
    {.nranks = (_n), .timeout_ms = 0, .may_fail = 0, .kill_rank = -1,        \
     .kill_after_ms = 0, .make_id = NULL, .make_id_ctx = NULL}

/*
 * Runs fn as ranks 0..nranks-1 and waits at most timeout_ms (<= 0: 60 s).
 * Returns 0 if every rank exited 0, else nonzero (reasons on stderr).
 */
int tt_test_spawn(int nranks, tt_test_rank_fn fn, void *arg, int timeout_ms);

/*
 * The same with the job's options: ranks that may fail (victims), a rank the
 * parent kills after a delay, and each rank's wait status afterwards.
 * Returns 0 if every rank outside job->may_fail exited 0.
 */
int tt_test_spawn_job(tt_test_job_t *job, tt_test_rank_fn fn, void *arg);

/* The rank of this process inside a job, -1 in the parent. */
extern int tt_test_rank;

/*
 * Number of shared-memory segments of the job that owns `id` still present
 * in /dev/shm (the shm transport names them /tutti-<job id>-<rank>).
 */
int tt_test_shm_leftovers(const tutti_unique_id_t *id);

/*
 * A heap buffer with guard zones on both sides, to catch writes outside
 * [p, p + bytes). p sits `misalign` bytes past a 64-byte boundary, so tests
 * can hand the library buffers that are only element-aligned.
 */
typedef struct tt_test_buf {
    unsigned char *base;
    unsigned char *p;
    size_t         bytes;
    size_t         lead; /* guard bytes before p */
} tt_test_buf_t;

#define TT_TEST_GUARD      64
#define TT_TEST_GUARD_BYTE 0xa5

/* Allocates and fills both guards; returns 0, or 1 (reported) on ENOMEM. */
int tt_test_buf_alloc(tt_test_buf_t *b, size_t bytes, size_t misalign);
/* 1 if both guards are intact; reports the first damaged byte otherwise. */
int tt_test_buf_guards_ok(const tt_test_buf_t *b, const char *what);
void tt_test_buf_free(tt_test_buf_t *b);

/* Milliseconds on the monotonic clock; for deadlines, never for asserts. */
uint64_t tt_test_now_ms(void);

/* Sleeps ms milliseconds (restarting after signals). */
void tt_test_sleep_ms(int ms);

/* Prints "[rank r] file:line: message" to stderr; returns 1. */
int tt_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * In a rank function: evaluates _cond; if false, reports the condition and
 * the formatted message. Evaluates to 1 on failure and 0 otherwise, so
 * `errors += TT_TEST_EXPECT(...)` counts failures without stopping.
 */
#define TT_TEST_EXPECT(_cond, ...)                                           \
    ((_cond) ? 0                                                             \
             : (tt_test_fail(__FILE__, __LINE__, "expected %s", #_cond),     \
                tt_test_fail(__FILE__, __LINE__, __VA_ARGS__)))

/*
 * In a rank function returning int: runs a tutti call and, unless it returns
 * TUTTI_SUCCESS, reports the call, its result and tutti_last_error() and
 * returns 1 from the function.
 */
#define TT_TEST_CALL(_call)                                                  \
    do {                                                                     \
        tutti_result_t tt_test__res = (_call);                               \
        if (tt_test__res != TUTTI_SUCCESS) {                                 \
            return tt_test_fail(__FILE__, __LINE__, "%s: %s (%s)", #_call,   \
                                tutti_result_name(tt_test__res),             \
                                tutti_last_error());                         \
        }                                                                    \
    } while (0)

#endif /* TT_TEST_SPAWN_H */
