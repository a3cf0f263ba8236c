/*
 * The forked-ranks harness for the shm transport tests and benchmark
 * (see shm_harness.h): shared world region, spawn/join, barrier, the
 * set-up and tear-down of one rank's instance and endpoints, and a
 * progress-and-yield wait loop.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shm_harness.h"

th_world_t *th_world_create(int nranks)
{
    th_world_t *w;

    w = mmap(NULL, sizeof(*w), PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (w == MAP_FAILED) {
        return NULL;
    }
    memset(w, 0, sizeof(*w));
    w->nranks  = nranks;
    w->cma_min = -1;
    if (tutti__random_bytes(&w->job_id, sizeof(w->job_id)) != 0) {
        w->job_id = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull;
    }
    return w;
}

void th_world_destroy(th_world_t *w)
{
    munmap(w, sizeof(*w));
}

#define TH_BARRIER_NS (60ull * 1000000000ull)

/* A rank gives up: tell the others, and leave without unwinding. */
static void th_rank_abandon(th_world_t *w, int rank, const char *why)
{
    fprintf(stderr, "rank %d: %s\n", rank, why);
    atomic_store(&w->failed, 1);
    fflush(stderr);
    _exit(1);
}

void th_spawn(th_world_t *w, th_rank_fn fn, void *arg, pid_t *pids)
{
    pid_t parent = getpid();
    int   i;

    fflush(stdout);
    fflush(stderr);
    for (i = 0; i < w->nranks; i++) {
        pid_t pid = fork();

        if (pid == 0) {
            th_rank_t r;
            int       rc;

            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent) {
                _exit(1);
            }
            memset(&r, 0, sizeof(r));
            r.world = w;
            r.rank  = i;
            rc      = fn(&r, arg);
            if (rc != 0) {
                atomic_store(&w->failed, 1);
            }
            fflush(stdout);
            fflush(stderr);
            _exit(rc == 0 ? 0 : 1);
        }
        if (pids != NULL) {
            pids[i] = pid;
        }
    }
}

/* Reaps the children in whatever order they end; the first failure
 * raises world->failed, so that the others stop waiting for it. */
int th_join(th_world_t *w, const pid_t *pids)
{
    int left = 0, failed = 0;
    int i;

    for (i = 0; i < w->nranks; i++) {
        left += pids[i] > 0;
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
            continue; /* not one of ours */
        }
        left--;
        if (WIFSIGNALED(st)) {
            fprintf(stderr, "rank %d died of signal %d\n", rank,
                    WTERMSIG(st));
        } else if (WEXITSTATUS(st) != 0) {
            fprintf(stderr, "rank %d exited with %d\n", rank,
                    WEXITSTATUS(st));
        } else {
            continue;
        }
        failed++;
        atomic_store(&w->failed, 1);
    }
    return failed;
}

int th_run(th_world_t *w, th_rank_fn fn, void *arg)
{
    pid_t pids[TH_MAX_RANKS];

    th_spawn(w, fn, arg, pids);
    return th_join(w, pids);
}

/* Sense by generation: the last arrival resets the count and moves on. */
void th_barrier(th_world_t *w)
{
    int      gen   = atomic_load(&w->generation);
    int      spins = 0;
    uint64_t deadline;

    if (atomic_fetch_add(&w->arrived, 1) == w->nranks - 1) {
        atomic_store(&w->arrived, 0);
        atomic_fetch_add(&w->generation, 1);
        return;
    }
    deadline = tutti__now_ns() + TH_BARRIER_NS;
    while (atomic_load(&w->generation) == gen) {
        if (++spins > 100) {
            sched_yield();
            if (atomic_load(&w->failed)) {
                th_rank_abandon(w, -1, "left a barrier: another rank "
                                "failed");
            }
            if ((spins & 1023) == 0 && tutti__now_ns() > deadline) {
                th_rank_abandon(w, -1, "barrier timed out");
            }
        }
    }
}

int th_rank_init(th_rank_t *r, th_world_t *w, int rank)
{
    tt_tp_params_t params;
    size_t         len = TT_ADDR_MAX;
    int            i;

    r->world = w;
    r->rank  = rank;
    tutti__config_defaults(&r->cfg);
    if (w->slot_size[rank] != 0) {
        r->cfg.shm_slot_size = w->slot_size[rank];
    }
    if (w->nslots[rank] != 0) {
        r->cfg.shm_nslots = w->nslots[rank];
    }
    if (w->cma_min >= 0) {
        r->cfg.shm_cma_min = (size_t)w->cma_min;
    }
    for (i = 0; i < w->nranks; i++) {
        r->info[i].rank = i;
        r->info[i].pid  = 0;
        snprintf(r->info[i].hostid, TT_HOSTID_MAX, "%s", TH_HOSTID);
        r->local[i] = i;
    }
    params = (tt_tp_params_t){
        .rank        = rank,
        .nranks      = w->nranks,
        .job_id      = w->job_id,
        .self        = &r->info[rank],
        .config      = &r->cfg,
        .local_ranks = r->local,
        .nlocal      = w->nranks,
        .log         = tutti__log,
    };
    TH_CHECK(tt_shm_ops.init(&params, &r->tp) == TUTTI_SUCCESS,
             "init: %s", tutti_last_error());
    TH_CHECK(tt_shm_ops.address(r->tp, w->addr[rank], &len) == TUTTI_SUCCESS,
             "address: %s", tutti_last_error());
    w->addr_len[rank] = (uint32_t)len;
    th_barrier(w);
    return 0;
}

int th_rank_connect(th_rank_t *r)
{
    th_world_t *w = r->world;
    int         i;

    for (i = 0; i < w->nranks; i++) {
        if (i == r->rank) {
            continue;
        }
        TH_CHECK(tt_shm_ops.reachable(r->tp, &r->info[i]),
                 "rank %d does not reach %d", r->rank, i);
        TH_CHECK(tt_shm_ops.connect(r->tp, &r->info[i], w->addr[i],
                                    w->addr_len[i], &r->ep[i]) ==
                     TUTTI_SUCCESS,
                 "connect %d -> %d: %s", r->rank, i, tutti_last_error());
    }
    th_barrier(w);
    return 0;
}

int th_rank_connect_done(th_rank_t *r)
{
    TH_CHECK(tt_shm_ops.connect_done(r->tp) == TUTTI_SUCCESS,
             "connect_done: %s", tutti_last_error());
    th_barrier(r->world);
    return 0;
}

int th_rank_setup(th_rank_t *r, th_world_t *w, int rank)
{
    if (th_rank_init(r, w, rank) != 0 || th_rank_connect(r) != 0 ||
        th_rank_connect_done(r) != 0) {
        return 1;
    }
    return 0;
}

void th_rank_fini(th_rank_t *r)
{
    int i;

    for (i = 0; i < TH_MAX_RANKS; i++) {
        if (r->ep[i] != NULL) {
            tt_shm_ops.ep_close(r->ep[i]);
            r->ep[i] = NULL;
        }
    }
    if (r->tp != NULL) {
        tt_shm_ops.fini(r->tp);
        r->tp = NULL;
    }
}

int th_wait(th_rank_t *r, tt_req_t *const *reqs, int n, int timeout_ms)
{
    uint64_t deadline = tutti__now_ns() + (uint64_t)timeout_ms * 1000000ull;
    int      first    = 0;
    unsigned idle     = 0;

    for (;;) {
        while (first < n && reqs[first]->status != TUTTI_INPROGRESS) {
            first++;
        }
        if (first == n) {
            return 0;
        }
        if (tt_shm_ops.progress(r->tp) == 0) {
            /* 4 ranks on 2 cores: give the CPU to a peer that has work */
            if (++idle > 16) {
                sched_yield();
            }
            if (atomic_load(&r->world->failed)) {
                fprintf(stderr, "rank %d: stops waiting: another rank "
                        "failed\n", r->rank);
                return 1;
            }
            if ((idle & 1023) == 0 && tutti__now_ns() > deadline) {
                fprintf(stderr, "rank %d: %d of %d requests still pending "
                        "after %d ms\n", r->rank, n - first, n, timeout_ms);
                return 1;
            }
        } else {
            idle = 0;
        }
    }
}

int th_wait1(th_rank_t *r, tt_req_t *req, int timeout_ms)
{
    return th_wait(r, &req, 1, timeout_ms);
}

int th_shm_leftovers(uint64_t job_id)
{
    char           prefix[64];
    struct dirent *de;
    DIR           *dir;
    int            n = 0;

    snprintf(prefix, sizeof(prefix), "tutti-%016" PRIx64, job_id);
    dir = opendir("/dev/shm");
    if (dir == NULL) {
        return -1;
    }
    while ((de = readdir(dir)) != NULL) {
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0) {
            fprintf(stderr, "left over: /dev/shm/%s\n", de->d_name);
            n++;
        }
    }
    closedir(dir);
    return n;
}

void th_fill(void *buf, size_t len, int src, uint64_t seq)
{
    uint8_t *p = buf;
    size_t   i;

    for (i = 0; i < len; i++) {
        p[i] = th_pattern(src, seq, i);
    }
}

size_t th_verify(const void *buf, size_t len, int src, uint64_t seq)
{
    const uint8_t *p = buf;
    size_t         i;

    for (i = 0; i < len; i++) {
        if (p[i] != th_pattern(src, seq, i)) {
            return i;
        }
    }
    return (size_t)-1;
}
