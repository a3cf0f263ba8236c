/*
 * The communicator object (src/comm.c) as the rest of the core sees it:
 * identity, configuration, the transport chosen for each peer, the failure
 * state written by the watchdog and abort, and executor caches.
 */
#ifndef TUTTI_COMM_H
#define TUTTI_COMM_H

#include <stdatomic.h>
#include <stdint.h>

#include "algo/algo.h"
#include "bootstrap.h"
#include "config.h"
#include "internal.h"
#include "transport.h"

#define TT_MAX_TRANSPORTS 4

struct tt_xstep; /* sched.c */
struct tt_exec;

/*
 * The executor's posting order with one peer on one channel (sched.c,
 * transport.h's TT_CHANNEL_*): steps that still have to post sends to /
 * receives from this peer, oldest first, across every execution; and the
 * messages exchanged so far, which number the tags of both sides alike.
 * Collectives and point-to-point calls each have their own, so neither
 * waits for the other to be posted.
 */
typedef struct tt_peer_chan {
    struct tt_xstep *send_head, *send_tail;
    struct tt_xstep *recv_head, *recv_tail;
    uint32_t         send_msgs, recv_msgs;
} tt_peer_chan_t;

typedef struct tt_peer {
    tt_peer_info_t            info;
    const tt_transport_ops_t *ops; /* NULL for self */
    tt_ep_t                  *ep;
    int                       tp;  /* index into comm->tps */
    tt_peer_chan_t            chan[TT_NUM_CHANNELS];
} tt_peer_t;

struct tutti_comm {
    int          rank;
    int          nranks;
    uint64_t     job_id;
    tt_config_t  cfg;
    tt_algo_sel_t algo_sel; /* parsed cfg.algo */
    tt_boot_t   *boot;
    tt_peer_t   *peers;     /* nranks entries */
    int          nlocal;    /* ranks on this host, self included */
    int          local_index;
    int          oversubscribed; /* more local ranks than online CPUs */
    size_t       slice_size; /* pipelining unit every rank agreed on */

    int                       ntps;
    const tt_transport_ops_t *tp_ops[TT_MAX_TRANSPORTS];
    tt_tp_t                  *tps[TT_MAX_TRANSPORTS];
    int                       tp_used[TT_MAX_TRANSPORTS];

    /* failure state: written by tutti_comm_abort (any thread) and by the
     * watchdog thread, read by the executor's loop */
    atomic_int   aborted;
    atomic_int   async_error;  /* tutti_result_t, 0 when none */
    atomic_int   failed_peer;  /* -1 when none */
    char         fail_why[256]; /* written once, before async_error */
    /* a collective failed midway: the transports' state is unknown */
    tutti_result_t broken;

    /* executions issued and not yet freed, oldest first (sched.c) */
    struct tt_exec *execs_head, *execs_tail;

    /* The last blocking call's completed execution and what it was built
     * for (coll.c): a call of the same shape re-issues it with its own
     * buffers instead of building and allocating anew, which is most of a
     * small call's cost. Freed with the communicator (sched.c). */
    struct tt_exec *xcache;
    tt_coll_args_t  xcache_args;
    int             xcache_peer;
    int             xcache_is_send;
};

/*
 * Checks that the communicator is usable before a collective: not NULL,
 * not aborted, no peer failure, not broken. Returns the error otherwise.
 */
tutti_result_t tutti__comm_check(struct tutti_comm *comm);

/*
 * Records the error that broke the communicator asynchronously (what
 * tutti_comm_get_async_error reports), once: the first caller wins. peer
 * is the failed rank, or -2 when a transport could not tell. Callable from
 * the watchdog thread.
 */
void tutti__comm_set_async_error(struct tutti_comm *comm, int peer,
                                 tutti_result_t code, const char *why);

#endif /* TUTTI_COMM_H */
