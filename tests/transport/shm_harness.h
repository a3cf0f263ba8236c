/*
 * A small multi-process harness for driving the shm transport's ops table
 * directly, without the bootstrap: the ranks are forked children sharing
 * one anonymous MAP_SHARED region (th_world_t) created before the fork,
 * through which they exchange addresses and meet at barriers. Used by
 * test_shm.c (the conformance suite) and bench_shm.c (throughput).
 *
 * Children never return into the caller (Criterion's runner): th_spawn
 * runs the rank function and _exits with its result, 0 for success. Child
 * code reports failures with TH_CHECK, which prints the failed condition
 * and makes the rank function return 1. A failed rank raises world->failed,
 * and the others leave their barriers and waits at once instead of hanging
 * until the test's timeout; every rank also dies with its parent, so a
 * test killed by Criterion leaves no orphan spinning.
 */
#ifndef TUTTI_SHM_HARNESS_H
#define TUTTI_SHM_HARNESS_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "config.h"
#include "internal.h"
#include "transport.h"
#include "shm/shm_ops.h"

#define TH_MAX_RANKS 8
#define TH_HOSTID    "tutti-test-host"

typedef struct th_world {
    int          nranks;
    uint64_t     job_id;
    size_t       slot_size[TH_MAX_RANKS]; /* 0: the default */
    int          nslots[TH_MAX_RANKS];    /* 0: the default */
    long long    cma_min;                 /* every rank's SHM_CMA_MIN;
                                             -1: the default */
    _Atomic int  failed;                  /* a rank failed: all stop */
    _Atomic int  arrived;                 /* barrier */
    _Atomic int  generation;
    _Atomic int  flag[TH_MAX_RANKS];      /* test-specific signals */
    uint32_t     addr_len[TH_MAX_RANKS];
    uint8_t      addr[TH_MAX_RANKS][TT_ADDR_MAX];
} th_world_t;

/* One rank's view: its instance and its endpoints, by peer rank. */
typedef struct th_rank {
    th_world_t     *world;
    int             rank;
    tt_config_t     cfg;
    tt_peer_info_t  info[TH_MAX_RANKS];
    int             local[TH_MAX_RANKS];
    tt_tp_t        *tp;
    tt_ep_t        *ep[TH_MAX_RANKS];
} th_rank_t;

typedef int (*th_rank_fn)(th_rank_t *r, void *arg);

#define TH_CHECK(_cond, ...)                                                 \
    do {                                                                     \
        if (!(_cond)) {                                                      \
            fprintf(stderr, "%s:%d: rank check '%s' failed: ", __FILE__,     \
                    __LINE__, #_cond);                                       \
            fprintf(stderr, __VA_ARGS__);                                    \
            fprintf(stderr, "\n");                                           \
            return 1;                                                        \
        }                                                                    \
    } while (0)

/* A world of nranks in shared memory, with a fresh random job id. */
th_world_t *th_world_create(int nranks);
void th_world_destroy(th_world_t *w);

/* Forks one child per rank running fn; pids into pids (may be NULL). */
void th_spawn(th_world_t *w, th_rank_fn fn, void *arg, pid_t *pids);
/* Waits for the children; returns how many did not exit with 0, and
 * prints why each failed. pids[i] <= 0 are skipped. */
int th_join(th_world_t *w, const pid_t *pids);
/* th_spawn then th_join. */
int th_run(th_world_t *w, th_rank_fn fn, void *arg);

/* Every rank of the world meets here (spins, then yields). A rank that
 * waits longer than a minute, or sees world->failed, exits with 1. */
void th_barrier(th_world_t *w);

/* init + address published + barrier. */
int th_rank_init(th_rank_t *r, th_world_t *w, int rank);
/* connect to every other rank + barrier. */
int th_rank_connect(th_rank_t *r);
/* connect_done + barrier. */
int th_rank_connect_done(th_rank_t *r);
/* ep_close of every endpoint, fini. */
void th_rank_fini(th_rank_t *r);
/* All three set-up steps. */
int th_rank_setup(th_rank_t *r, th_world_t *w, int rank);

/* Progresses until no request of reqs is in progress, at most timeout_ms;
 * returns 0 when all ended. Yields the CPU when progress found nothing. */
int th_wait(th_rank_t *r, tt_req_t *const *reqs, int n, int timeout_ms);
/* Same for one request. */
int th_wait1(th_rank_t *r, tt_req_t *req, int timeout_ms);

/* Entries of /dev/shm named after this job's segments. */
int th_shm_leftovers(uint64_t job_id);

/* Deterministic test bytes: byte i of message `seq` from `src`. */
static inline uint8_t th_pattern(int src, uint64_t seq, size_t i)
{
    return (uint8_t)(src * 37 + seq * 131 + i * 7 + (i >> 12));
}
void th_fill(void *buf, size_t len, int src, uint64_t seq);
/* Index of the first wrong byte, or (size_t)-1 when all are right. */
size_t th_verify(const void *buf, size_t len, int src, uint64_t seq);

#endif /* TUTTI_SHM_HARNESS_H */
