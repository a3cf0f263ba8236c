/*
 * A multi-process harness that drives any transport's ops table directly,
 * without the bootstrap or the executor: the conformance suite
 * (test_conformance.c) runs every compiled-in transport through it.
 *
 * The ranks are forked children sharing one anonymous MAP_SHARED region
 * (tph_world_t) created before the fork, through which they publish their
 * addresses and meet at barriers. Every rank claims the same host, so that
 * same-host transports (shm) reach all peers too.
 *
 * Children never return into Criterion's runner: tph_run() forks them, each
 * runs the rank function and _exits with its result (0 for success). Rank
 * code reports failures with TPH_CHECK, which prints the condition and
 * returns 1 from the rank function. A failed rank raises world->failed, and
 * the others leave their barriers and waits at once instead of hanging
 * until the test's timeout; every rank also dies with its parent, so a test
 * killed by Criterion leaves no orphan behind.
 *
 * tph_probe() initialises the transport once in a throw-away child first:
 * a transport that cannot start here (no UCX device, no libfabric
 * provider) is reported with its reason, which the test turns into
 * cr_skip_test(), instead of failing every rank.
 */
#ifndef TUTTI_TP_HARNESS_H
#define TUTTI_TP_HARNESS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "internal.h"
#include "transport.h"

#define TPH_MAX_RANKS  8
#define TPH_HOSTID     "tutti-conformance-host"
#define TPH_REASON_MAX 512

typedef struct tph_world {
    const tt_transport_ops_t *ops;
    int                       nranks;
    uint64_t                  job_id;
    _Atomic int               failed;     /* a rank failed: all stop */
    _Atomic int               arrived;    /* barrier */
    _Atomic int               generation;
    _Atomic int               flag[TPH_MAX_RANKS]; /* test-specific */
    uint32_t                  addr_len[TPH_MAX_RANKS];
    uint8_t                   addr[TPH_MAX_RANKS][TT_ADDR_MAX];
    char                      reason[TPH_REASON_MAX]; /* from the probe */
} tph_world_t;

/* One rank's view: its instance and its endpoints, by peer rank. */
typedef struct tph_rank {
    tph_world_t              *world;
    const tt_transport_ops_t *ops;
    int                       rank;
    tt_config_t               cfg;
    tt_peer_info_t            info[TPH_MAX_RANKS];
    int                       local[TPH_MAX_RANKS];
    tt_tp_t                  *tp;
    tt_ep_t                  *ep[TPH_MAX_RANKS];
} tph_rank_t;

typedef int (*tph_rank_fn)(tph_rank_t *r, void *arg);

#define TPH_CHECK(_cond, ...)                                                \
    do {                                                                     \
        if (!(_cond)) {                                                      \
            fprintf(stderr, "%s:%d: rank check '%s' failed: ", __FILE__,     \
                    __LINE__, #_cond);                                       \
            fprintf(stderr, __VA_ARGS__);                                    \
            fprintf(stderr, "\n");                                           \
            return 1;                                                        \
        }                                                                    \
    } while (0)

/* A world of nranks for ops in shared memory, with a fresh job id; NULL
 * when mmap fails. */
tph_world_t *tph_world_create(const tt_transport_ops_t *ops, int nranks);
void tph_world_destroy(tph_world_t *w);

/*
 * Initialises ops as rank 0 of nranks in a child process, publishes its
 * address and finalises it. Returns 0 when that worked, 1 when init or
 * address failed (the transport cannot run here: reason filled with
 * tutti_last_error()), -1 when the child itself could not run.
 */
int tph_probe(const tt_transport_ops_t *ops, int nranks, char *reason,
              size_t len);

/* Forks one child per rank running fn(r, arg), waits for all; returns how
 * many failed, after printing why each one did. */
int tph_run(tph_world_t *w, tph_rank_fn fn, void *arg);

/* Every rank of the world meets here (spins briefly, then yields). A rank
 * that waits longer than a minute, or sees world->failed, exits with 1. */
void tph_barrier(tph_world_t *w);

/* init, address published, connect to every other rank, connect_done,
 * with a barrier after each step. */
int tph_rank_setup(tph_rank_t *r);
/* ep_close of every endpoint still open, then fini. */
void tph_rank_fini(tph_rank_t *r);

/*
 * Progresses until no request of reqs is in progress, at most timeout_ms;
 * returns 0 when all ended (with whatever status), 1 on timeout or when
 * another rank failed. Yields the CPU when progress found nothing: four
 * ranks share two cores.
 */
int tph_wait(tph_rank_t *r, tt_req_t *const *reqs, int n, int timeout_ms);
/* Progresses for ms milliseconds, yielding when idle. */
void tph_progress_for(tph_rank_t *r, int ms);
/* Progresses until *flag is set (0), or timeout_ms passed or another rank
 * failed (1). A rank waiting for a peer's verdict keeps progressing: a
 * transport may need both sides to (a connection handshake, a rendezvous). */
int tph_progress_until(tph_rank_t *r, _Atomic int *flag, int timeout_ms);

/* Deterministic test bytes: byte i of message `seq` from `src`. */
static inline uint8_t tph_pattern(int src, uint64_t seq, size_t i)
{
    return (uint8_t)(src * 37 + seq * 131 + i * 7 + (i >> 12));
}
void tph_fill(void *buf, size_t len, int src, uint64_t seq);
/* Index of the first wrong byte, or (size_t)-1 when all are right. */
size_t tph_verify(const void *buf, size_t len, int src, uint64_t seq);

#endif /* TUTTI_TP_HARNESS_H */
