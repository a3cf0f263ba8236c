/*
 * The forked-ranks harness of the transport conformance suite (see
 * tp_harness.h): the shared world region, the probe, spawning and reaping
 * ranks, the barrier, one rank's set-up and tear-down through the ops
 * table, and a progress-and-yield wait loop.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tp_harness.h"

#define TPH_BARRIER_NS (60ull * 1000000000ull)
#define TPH_EXIT_SKIP  77

tph_world_t *tph_world_create(const tt_transport_ops_t *ops, int nranks)
{
    tph_world_t *w;

    if (nranks < 1 || nranks > TPH_MAX_RANKS) {
        return NULL;
    }
    w = mmap(NULL, sizeof(*w), PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (w == MAP_FAILED) {
        return NULL;
    }
    memset(w, 0, sizeof(*w));
    w->ops    = ops;
    w->nranks = nranks;
    if (tutti__random_bytes(&w->job_id, sizeof(w->job_id)) != 0) {
        w->job_id = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull;
    }
    return w;
}

void tph_world_destroy(tph_world_t *w)
{
    if (w != NULL) {
        munmap(w, sizeof(*w));
    }
}

/* Identity of every rank: one host, all ranks local. */
static void tph_rank_identity(tph_rank_t *r, tph_world_t *w, int rank)
{
    int i;

    r->world = w;
    r->ops   = w->ops;
    r->rank  = rank;
    tutti__config_defaults(&r->cfg);
    for (i = 0; i < w->nranks; i++) {
        r->info[i].rank = i;
        r->info[i].pid  = 0;
        snprintf(r->info[i].hostid, TT_HOSTID_MAX, "%s", TPH_HOSTID);
        r->local[i] = i;
    }
}

static tt_tp_params_t tph_params(tph_rank_t *r)
{
    return (tt_tp_params_t){
        .rank        = r->rank,
        .nranks      = r->world->nranks,
        .job_id      = r->world->job_id,
        .self        = &r->info[r->rank],
        .config      = &r->cfg,
        .local_ranks = r->local,
        .nlocal      = r->world->nranks,
        .log         = tutti__log,
    };
}

/* The probe's child: init, address, fini; the reason on failure. */
static int tph_probe_child(tph_world_t *w)
{
    tph_rank_t     r;
    tt_tp_params_t params;
    uint8_t        addr[TT_ADDR_MAX];
    size_t         len = sizeof(addr);

    memset(&r, 0, sizeof(r));
    tph_rank_identity(&r, w, 0);
    params = tph_params(&r);
    if (w->ops->init(&params, &r.tp) != TUTTI_SUCCESS) {
        snprintf(w->reason, sizeof(w->reason), "init: %s",
                 tutti_last_error());
        return TPH_EXIT_SKIP;
    }
    if (w->ops->address(r.tp, addr, &len) != TUTTI_SUCCESS) {
        snprintf(w->reason, sizeof(w->reason), "address: %s",
                 tutti_last_error());
        w->ops->fini(r.tp);
        return TPH_EXIT_SKIP;
    }
    w->ops->fini(r.tp);
    return 0;
}

int tph_probe(const tt_transport_ops_t *ops, int nranks, char *reason,
              size_t len)
{
    tph_world_t *w = tph_world_create(ops, nranks);
    int          st, rc = -1;
    pid_t        pid;

    if (w == NULL) {
        snprintf(reason, len, "cannot map the world");
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid == 0) {
        int code = tph_probe_child(w);

        fflush(stderr);
        _exit(code);
    }
    if (pid > 0 && waitpid(pid, &st, 0) == pid) {
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            rc = 0;
        } else if (WIFEXITED(st) && WEXITSTATUS(st) == TPH_EXIT_SKIP) {
            rc = 1;
        }
    }
    snprintf(reason, len, "%s", rc < 0 ? "the probe process failed"
                                       : w->reason);
    tph_world_destroy(w);
    return rc;
}

/* Leaves without unwinding: tells the others first. */
static void tph_abandon(tph_world_t *w, const char *why)
{
    fprintf(stderr, "pid %d: %s\n", (int)getpid(), why);
    atomic_store(&w->failed, 1);
    fflush(stderr);
    _exit(1);
}

static int tph_join(tph_world_t *w, const pid_t *pids)
{
    int left = 0, failed = 0, i;

    for (i = 0; i < w->nranks; i++) {
        left += pids[i] > 0;
        failed += pids[i] <= 0; /* fork failed */
    }
    while (left > 0) {
        int   st, rank = -1;
        pid_t pid = waitpid(-1, &st, 0);

        if (pid < 0) {
            fprintf(stderr, "waitpid: %s\n", strerror(errno));
            return failed + left;
        }
        for (i = 0; i < w->nranks; i++) {
            if (pids[i] == pid) {
                rank = i;
            }
        }
        if (rank < 0) {
            continue;
        }
        left--;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            continue;
        }
        if (WIFSIGNALED(st)) {
            fprintf(stderr, "rank %d died of signal %d\n", rank,
                    WTERMSIG(st));
        } else {
            fprintf(stderr, "rank %d exited with %d\n", rank,
                    WEXITSTATUS(st));
        }
        failed++;
        atomic_store(&w->failed, 1);
    }
    return failed;
}

int tph_run(tph_world_t *w, tph_rank_fn fn, void *arg)
{
    pid_t pids[TPH_MAX_RANKS];
    pid_t parent = getpid();
    int   i;

    fflush(stdout);
    fflush(stderr);
    for (i = 0; i < w->nranks; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            tph_rank_t r;
            int        rc;

            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent) {
                _exit(1);
            }
            memset(&r, 0, sizeof(r));
            tph_rank_identity(&r, w, i);
            rc = fn(&r, arg);
            if (rc != 0) {
                atomic_store(&w->failed, 1);
            }
            fflush(stdout);
            fflush(stderr);
            _exit(rc == 0 ? 0 : 1);
        }
        if (pids[i] < 0) {
            fprintf(stderr, "fork of rank %d: %s\n", i, strerror(errno));
            atomic_store(&w->failed, 1); /* release the others */
        }
    }
    return tph_join(w, pids);
}

/* Sense by generation: the last to arrive resets the count and moves the
 * generation on, which releases the others. */
void tph_barrier(tph_world_t *w)
{
    int      gen   = atomic_load(&w->generation);
    unsigned spins = 0;
    uint64_t deadline;

    if (atomic_fetch_add(&w->arrived, 1) == w->nranks - 1) {
        atomic_store(&w->arrived, 0);
        atomic_fetch_add(&w->generation, 1);
        return;
    }
    deadline = tutti__now_ns() + TPH_BARRIER_NS;
    while (atomic_load(&w->generation) == gen) {
        if (++spins < 100) {
            continue;
        }
        sched_yield();
        if (atomic_load(&w->failed)) {
            tph_abandon(w, "left a barrier: another rank failed");
        }
        if ((spins & 1023) == 0 && tutti__now_ns() > deadline) {
            tph_abandon(w, "barrier timed out");
        }
    }
}

int tph_rank_setup(tph_rank_t *r)
{
    tph_world_t   *w      = r->world;
    tt_tp_params_t params = tph_params(r);
    size_t         len    = TT_ADDR_MAX;
    int            i;

    TPH_CHECK(r->ops->init(&params, &r->tp) == TUTTI_SUCCESS,
              "%s init: %s", r->ops->name, tutti_last_error());
    TPH_CHECK(r->ops->address(r->tp, w->addr[r->rank], &len) ==
                  TUTTI_SUCCESS,
              "%s address: %s", r->ops->name, tutti_last_error());
    TPH_CHECK(len > 0 && len <= TT_ADDR_MAX, "address of %zu bytes", len);
    w->addr_len[r->rank] = (uint32_t)len;
    tph_barrier(w);

    for (i = 0; i < w->nranks; i++) {
        if (i == r->rank) {
            continue;
        }
        TPH_CHECK(r->ops->reachable(r->tp, &r->info[i]),
                  "%s: rank %d does not reach rank %d", r->ops->name,
                  r->rank, i);
        TPH_CHECK(r->ops->connect(r->tp, &r->info[i], w->addr[i],
                                  w->addr_len[i], &r->ep[i]) ==
                      TUTTI_SUCCESS,
                  "%s connect %d -> %d: %s", r->ops->name, r->rank, i,
                  tutti_last_error());
    }
    tph_barrier(w);

    if (r->ops->connect_done != NULL) {
        TPH_CHECK(r->ops->connect_done(r->tp) == TUTTI_SUCCESS,
                  "%s connect_done: %s", r->ops->name, tutti_last_error());
    }
    tph_barrier(w);
    return 0;
}

void tph_rank_fini(tph_rank_t *r)
{
    int i;

    for (i = 0; i < TPH_MAX_RANKS; i++) {
        if (r->ep[i] != NULL) {
            r->ops->ep_close(r->ep[i]);
            r->ep[i] = NULL;
        }
    }
    if (r->tp != NULL) {
        r->ops->fini(r->tp);
        r->tp = NULL;
    }
}

int tph_wait(tph_rank_t *r, tt_req_t *const *reqs, int n, int timeout_ms)
{
    uint64_t deadline = tutti__now_ns() + (uint64_t)timeout_ms * 1000000ull;
    unsigned idle = 0, iter = 0;
    int      first = 0;

    for (;;) {
        while (first < n && reqs[first]->status != TUTTI_INPROGRESS) {
            first++;
        }
        if (first == n) {
            return 0;
        }
        if (r->ops->progress(r->tp) > 0) {
            idle = 0;
        } else if (++idle > 16) {
            sched_yield();
        }
        if ((++iter & 255) == 0) {
            if (atomic_load(&r->world->failed)) {
                fprintf(stderr, "rank %d: stops waiting: another rank "
                        "failed\n", r->rank);
                return 1;
            }
            if (tutti__now_ns() > deadline) {
                fprintf(stderr, "rank %d: %d of %d requests still pending "
                        "after %d ms\n", r->rank, n - first, n, timeout_ms);
                return 1;
            }
        }
    }
}

void tph_progress_for(tph_rank_t *r, int ms)
{
    uint64_t end = tutti__now_ns() + (uint64_t)ms * 1000000ull;

    while (tutti__now_ns() < end) {
        if (r->ops->progress(r->tp) == 0) {
            sched_yield();
        }
    }
}

int tph_progress_until(tph_rank_t *r, _Atomic int *flag, int timeout_ms)
{
    uint64_t deadline = tutti__now_ns() + (uint64_t)timeout_ms * 1000000ull;

    while (!atomic_load(flag)) {
        if (r->ops->progress(r->tp) == 0) {
            sched_yield();
        }
        if (atomic_load(&r->world->failed) || tutti__now_ns() > deadline) {
            fprintf(stderr, "rank %d: gave up waiting for a peer\n",
                    r->rank);
            return 1;
        }
    }
    return 0;
}

void tph_fill(void *buf, size_t len, int src, uint64_t seq)
{
    uint8_t *p = buf;
    size_t   i;

    for (i = 0; i < len; i++) {
        p[i] = tph_pattern(src, seq, i);
    }
}

size_t tph_verify(const void *buf, size_t len, int src, uint64_t seq)
{
    const uint8_t *p = buf;
    size_t         i;

    for (i = 0; i < len; i++) {
        if (p[i] != tph_pattern(src, seq, i)) {
            return i;
        }
    }
    return (size_t)-1;
}
