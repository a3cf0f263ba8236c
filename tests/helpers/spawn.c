/*
 * The multi-process test harness (spawn.h): forks the ranks of a job, runs
 * the test's rank function in each, waits for them with a deadline, kills
 * the ones left over, and says how each rank ended. Also the small helpers
 * the rank functions use: failure reports and buffers with guard zones; and
 * the /dev/shm check that failure tests run after a job.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bootstrap.h" /* tutti__boot_job_id(): names the shm segments */
#include "spawn.h"

#define TT_SPAWN_DEFAULT_TIMEOUT_MS 60000
/* After a rank exits nonzero, the others get this long to notice and report
 * before they are killed: their messages say whether the library saw the
 * failure. A rank killed by a signal gets the others killed at once. */
#define TT_SPAWN_GRACE_MS 3000
#define TT_SPAWN_POLL_US  1000

int tt_test_rank = -1;

uint64_t tt_test_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void tt_test_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int tt_test_fail(const char *file, int line, const char *fmt, ...)
{
    char    msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* One write per line, so that ranks' lines do not interleave. */
    fprintf(stderr, "[rank %d] %s:%d: %s\n", tt_test_rank, file, line, msg);
    return 1;
}

/*
 * The child side: never returns. The id arrives through `fd` once every
 * rank is forked (see tt_test_spawn_job); `wfds` are the write ends of the
 * pipes forked so far, which the child must not keep open.
 */
static void tt_spawn_child(pid_t parent, int rank, tt_test_job_t *job,
                           int fd, const int *wfds, tt_test_rank_fn fn,
                           void *arg)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ssize_t       got;
    int           rc, r;

    /* If the test process dies (Criterion's timeout kills it), so do the
     * ranks, instead of waiting forever for peers that are gone. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
        _exit(127);
    }
    for (r = 0; r <= rank; r++) {
        close(wfds[r]);
    }
    tt_test_rank = rank;
    if (poll(&p, 1, job->timeout_ms) != 1) {
        _exit(126);
    }
    got = read(fd, &job->id, sizeof(job->id));
    close(fd);
    if (got != (ssize_t)sizeof(job->id)) {
        _exit(126); /* the parent could not create the id */
    }
    rc = fn(rank, job->nranks, &job->id, arg);
    fflush(NULL);
    _exit(rc == 0 ? 0 : (rc > 0 && rc < 256 ? rc : 255));
}

static void tt_spawn_describe(const tt_test_job_t *job, int r)
{
    int st = job->status[r];

    if (job->killed[r]) {
        fprintf(stderr, "tt_test_spawn: rank %d of %d: still running, killed "
                "by the harness\n", r, job->nranks);
    } else if (WIFEXITED(st)) {
        fprintf(stderr, "tt_test_spawn: rank %d of %d: exited with status "
                "%d\n", r, job->nranks, WEXITSTATUS(st));
    } else if (WIFSIGNALED(st)) {
        fprintf(stderr, "tt_test_spawn: rank %d of %d: killed by signal %d "
                "(%s)\n", r, job->nranks, WTERMSIG(st),
                strsignal(WTERMSIG(st)));
    } else {
        fprintf(stderr, "tt_test_spawn: rank %d of %d: wait status 0x%x\n", r,
                job->nranks, st);
    }
}

/*
 * With TT_TEST_GDB=1 in the environment, prints every thread's stack of
 * each rank about to be killed, which is what a hang report needs.
 */
static void tt_spawn_dump_stacks(const tt_test_job_t *job, const pid_t *pids,
                                 const int *done)
{
    const char *opt = getenv("TT_TEST_GDB");
    char        cmd[160];
    int         r;

    if (opt == NULL || strcmp(opt, "1") != 0) {
        return;
    }
    for (r = 0; r < job->nranks; r++) {
        if (!done[r] && pids[r] > 0) {
            fprintf(stderr, "tt_test_spawn: stacks of rank %d (pid %d):\n", r,
                    (int)pids[r]);
            snprintf(cmd, sizeof(cmd), "gdb -p %d -batch -nx -ex 'thread "
                     "apply all bt' </dev/null 1>&2 2>/dev/null",
                     (int)pids[r]);
            if (system(cmd) != 0) {
                fprintf(stderr, "tt_test_spawn: gdb failed\n");
            }
        }
    }
}

static void tt_spawn_kill_all(tt_test_job_t *job, const pid_t *pids,
                              const int *done)
{
    int r;

    tt_spawn_dump_stacks(job, pids, done);
    for (r = 0; r < job->nranks; r++) {
        if (!done[r] && pids[r] > 0) {
            kill(pids[r], SIGKILL);
            job->killed[r] = 1;
        }
    }
}

/* Reaps every rank, enforcing the deadline and the planned kill. */
static void tt_spawn_wait(tt_test_job_t *job, const pid_t *pids, int *done)
{
    uint64_t start    = tt_test_now_ms();
    uint64_t deadline = start + (uint64_t)job->timeout_ms;
    uint64_t kill_at  = start + (uint64_t)(job->kill_after_ms > 0
                                               ? job->kill_after_ms : 0);
    int      left     = job->nranks, planned = job->kill_rank >= 0;
    int      r;

    while (left > 0) {
        uint64_t now = tt_test_now_ms();

        for (r = 0; r < job->nranks; r++) {
            int   st;
            pid_t p;

            if (done[r]) {
                continue;
            }
            p = waitpid(pids[r], &st, WNOHANG);
            if (p == 0 || (p < 0 && errno == EINTR)) {
                continue;
            }
            done[r]        = 1;
            job->status[r] = p > 0 ? st : 0x7f00; /* unreapable: failure */
            left--;
            if ((job->may_fail >> r) & 1u) {
                continue;
            }
            if (WIFSIGNALED(job->status[r])) {
                tt_spawn_kill_all(job, pids, done);
            } else if (!WIFEXITED(job->status[r]) ||
                       WEXITSTATUS(job->status[r]) != 0) {
                if (deadline > now + TT_SPAWN_GRACE_MS) {
                    deadline = now + TT_SPAWN_GRACE_MS;
                }
            }
        }
        if (planned && now >= kill_at) {
            planned = 0;
            if (!done[job->kill_rank]) {
                kill(pids[job->kill_rank], SIGKILL);
            }
        }
        if (left > 0 && now >= deadline) {
            fprintf(stderr, "tt_test_spawn: job of %d ranks not finished "
                    "after %d ms\n", job->nranks, (int)(now - start));
            tt_spawn_kill_all(job, pids, done);
            deadline = UINT64_MAX; /* killed once; now only reap */
        }
        if (left > 0) {
            struct timespec ts = {.tv_sec = 0,
                                  .tv_nsec = TT_SPAWN_POLL_US * 1000L};
            nanosleep(&ts, NULL);
        }
    }
}

int tt_test_spawn_job(tt_test_job_t *job, tt_test_rank_fn fn, void *arg)
{
    pid_t            pids[TT_TEST_MAX_RANKS] = {0};
    int              done[TT_TEST_MAX_RANKS] = {0};
    int              wfds[TT_TEST_MAX_RANKS];
    pid_t            self = getpid();
    struct sigaction ign  = {.sa_handler = SIG_IGN}, old_pipe;
    tutti_result_t   res;
    int              r, forked = 0, failed = 0;

    if (job->nranks < 1 || job->nranks > TT_TEST_MAX_RANKS ||
        job->kill_rank >= job->nranks) {
        fprintf(stderr, "tt_test_spawn: bad job (%d ranks, kill rank %d)\n",
                job->nranks, job->kill_rank);
        return -1;
    }
    if (job->timeout_ms <= 0) {
        job->timeout_ms = TT_SPAWN_DEFAULT_TIMEOUT_MS;
    }
    if (job->kill_rank >= 0) {
        /* the rank the harness kills is a victim by definition */
        job->may_fail |= 1ull << job->kill_rank;
    }
    memset(job->status, 0, sizeof(job->status));
    memset(job->killed, 0, sizeof(job->killed));
    /*
     * Fork first, then create the id and hand it over through a pipe per
     * rank. tutti_get_unique_id() starts the rendezvous thread, and a fork
     * while another thread holds a lock (ASan's allocator, the library's
     * own) gives the child a lock nobody will release: under ASan that hung
     * ranks at their first allocation on a new thread. So the parent forks
     * while it has no thread of this job yet.
     */
    fflush(NULL); /* else every child that flushes writes it once more */
    for (r = 0; r < job->nranks; r++) {
        int fds[2];

        if (pipe(fds) != 0) {
            fprintf(stderr, "tt_test_spawn: pipe: %s\n", strerror(errno));
            break;
        }
        wfds[r] = fds[1];
        pids[r] = fork();
        if (pids[r] == 0) {
            tt_spawn_child(self, r, job, fds[0], wfds, fn, arg);
        }
        close(fds[0]);
        if (pids[r] < 0) {
            fprintf(stderr, "tt_test_spawn: fork of rank %d: %s\n", r,
                    strerror(errno));
            close(wfds[r]);
            break;
        }
        forked++;
    }
    if (forked < job->nranks) {
        res = TUTTI_ERR_SYSTEM;
    } else if (job->make_id != NULL) {
        res = job->make_id(&job->id, job->make_id_ctx);
    } else {
        res = tutti_get_unique_id(&job->id);
    }
    if (res != TUTTI_SUCCESS && forked == job->nranks) {
        fprintf(stderr, "tt_test_spawn: creating the id: %s (%s)\n",
                tutti_result_name(res), tutti_last_error());
    }
    /* a rank that died already must not kill the test with SIGPIPE */
    sigaction(SIGPIPE, &ign, &old_pipe);
    for (r = 0; r < forked; r++) {
        /* on failure, closing the pipe makes the rank leave at once */
        if (res == TUTTI_SUCCESS &&
            write(wfds[r], &job->id, sizeof(job->id)) !=
                (ssize_t)sizeof(job->id)) {
            fprintf(stderr, "tt_test_spawn: passing the id to rank %d: %s\n",
                    r, strerror(errno));
            res = TUTTI_ERR_SYSTEM;
        }
        close(wfds[r]);
    }
    sigaction(SIGPIPE, &old_pipe, NULL);
    for (r = forked; r < job->nranks; r++) {
        done[r]        = 1; /* never started */
        job->status[r] = 0x7f00;
    }
    if (res != TUTTI_SUCCESS) {
        tt_spawn_kill_all(job, pids, done);
    }
    tt_spawn_wait(job, pids, done);
    for (r = 0; r < job->nranks; r++) {
        int ok = !job->killed[r] && WIFEXITED(job->status[r]) &&
                 WEXITSTATUS(job->status[r]) == 0;

        if (!ok && !((job->may_fail >> r) & 1u)) {
            tt_spawn_describe(job, r);
            failed = 1;
        }
    }
    return failed;
}

int tt_test_spawn(int nranks, tt_test_rank_fn fn, void *arg, int timeout_ms)
{
    tt_test_job_t job = TT_TEST_JOB_INIT(nranks);

    job.timeout_ms = timeout_ms;
    return tt_test_spawn_job(&job, fn, arg);
}

int tt_test_buf_alloc(tt_test_buf_t *b, size_t bytes, size_t misalign)
{
    size_t total;

    b->lead  = TT_TEST_GUARD + misalign;
    b->bytes = bytes;
    total    = b->lead + bytes + TT_TEST_GUARD;
    b->base  = aligned_alloc(64, (total + 63) / 64 * 64);
    if (b->base == NULL) {
        b->p = NULL;
        return tt_test_fail(__FILE__, __LINE__, "out of memory for a buffer "
                            "of %zu bytes", bytes);
    }
    b->p = b->base + b->lead;
    memset(b->base, TT_TEST_GUARD_BYTE, b->lead);
    memset(b->p + bytes, TT_TEST_GUARD_BYTE, TT_TEST_GUARD);
    return 0;
}

int tt_test_buf_guards_ok(const tt_test_buf_t *b, const char *what)
{
    size_t i;

    for (i = 0; i < b->lead; i++) {
        if (b->base[i] != TT_TEST_GUARD_BYTE) {
            tt_test_fail(__FILE__, __LINE__, "%s: byte %zd before the buffer "
                         "was overwritten (0x%02x)", what,
                         (ssize_t)i - (ssize_t)b->lead, b->base[i]);
            return 0;
        }
    }
    for (i = 0; i < TT_TEST_GUARD; i++) {
        if (b->p[b->bytes + i] != TT_TEST_GUARD_BYTE) {
            tt_test_fail(__FILE__, __LINE__, "%s: byte %zu after the end of "
                         "the buffer (%zu bytes) was overwritten (0x%02x)",
                         what, i, b->bytes, b->p[b->bytes + i]);
            return 0;
        }
    }
    return 1;
}

void tt_test_buf_free(tt_test_buf_t *b)
{
    free(b->base);
    b->base = NULL;
    b->p    = NULL;
}

int tt_test_shm_leftovers(const tutti_unique_id_t *id)
{
    char           prefix[64];
    DIR           *dir;
    struct dirent *e;
    int            n = 0;

    snprintf(prefix, sizeof(prefix), "tutti-%016" PRIx64 "-",
             tutti__boot_job_id(id));
    dir = opendir("/dev/shm");
    if (dir == NULL) {
        return 0;
    }
    while ((e = readdir(dir)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            fprintf(stderr, "tt_test_shm_leftovers: /dev/shm/%s\n",
                    e->d_name);
            n++;
        }
    }
    closedir(dir);
    return n;
}
