/*
 * The point-to-point seam every transport implements (shm today; UCX and
 * libfabric next). The executor (src/sched.c) is the only caller of the data
 * path; src/comm.c drives the life cycle:
 *
 *   init -> address (published to every rank through the bootstrap)
 *        -> connect (once per peer this transport was chosen for)
 *        -> connect_done (after every rank connected: a barrier later)
 *        -> isend / irecv / progress ...
 *        -> ep_close (each endpoint) -> fini
 *
 * Matching: messages between two endpoints are matched in posting order
 * per direction and channel (each (direction, channel) is a FIFO, like
 * MPI's non-overtaking rule). The channel is bit 63 of the tag (see
 * TT_TAG_CHANNEL_P2P below): messages of different channels never match
 * each other, and one channel's messages never wait behind the other's.
 * The tag is carried and checked by the receiver: a mismatch means the
 * ranks ran different schedules, and the receive fails with
 * TUTTI_ERR_INVALID_USAGE. A receive posted for `len` bytes must meet a
 * message of exactly `len`.
 *
 * Requests are owned by the caller (libfabric's fi_context): the transport
 * may use req->priv and must not allocate per message on the data path.
 * Completion is reported by the transport writing req->status: it is
 * TUTTI_INPROGRESS from the post until the transport sets TUTTI_SUCCESS or an
 * error, which it does either inside isend/irecv (immediate completion) or
 * inside progress(). A send is complete when its buffer may be reused.
 *
 * Threads: a transport instance is used by one thread at a time.
 */
#ifndef TUTTI_TRANSPORT_H
#define TUTTI_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tutti.h"
#include "log.h"

struct tt_config;

#define TT_ADDR_MAX 256    /* bytes a transport may publish per rank */
#define TT_HOSTID_MAX 128  /* host identity string, NUL included */

/*
 * Channels: bit 63 of every tag. Channel 0 carries the collectives'
 * messages, channel 1 the point-to-point ones (MPI keeps the two in
 * separate contexts for the same reason): a program may post a send, then
 * a collective, then the matching receive, so one rank's first message to a
 * peer may be a point-to-point one while that peer's first receive from it
 * belongs to the collective. A transport keeps a separate order per
 * (direction, channel), with a queue per channel or with bit 63 among the
 * bits it matches on, and carries bit 63 through to the receiver's check.
 * The other 63 bits are the core's (src/sched.c): a kind byte at bits
 * 32-39 and a message number in the low 32.
 */
#define TT_CHANNEL_COLL    0
#define TT_CHANNEL_P2P     1
#define TT_NUM_CHANNELS    2
#define TT_TAG_CHANNEL_BIT 63
#define TT_TAG_CHANNEL_P2P ((uint64_t)TT_CHANNEL_P2P << TT_TAG_CHANNEL_BIT)
/* The channel of a tag: TT_CHANNEL_COLL or TT_CHANNEL_P2P. */
#define TT_TAG_CHANNEL(_tag)                                                 \
    ((unsigned)((uint64_t)(_tag) >> TT_TAG_CHANNEL_BIT))

/* Capability bits (tt_transport_ops_t.caps). */
#define TT_CAP_SAME_HOST_ONLY (1u << 0) /* reaches only ranks on its host */
#define TT_CAP_RECV_DELIVER   (1u << 1) /* honours tt_req_t.deliver */
#define TT_CAP_WAIT_FD        (1u << 2) /* wait_fd/arm slots are set */

typedef struct tt_tp tt_tp_t; /* one transport instance per communicator */
typedef struct tt_ep tt_ep_t; /* one endpoint per connected peer */
typedef struct tt_req tt_req_t;

/*
 * Receive-side delivery hook. When a transport has TT_CAP_RECV_DELIVER and a
 * receive's req->deliver is set, the transport does not write into the
 * receive buffer: it calls deliver(req, offset, data, len) for each piece of
 * the message in order of offset, with `data` pointing into its own memory
 * (the FIFO slot), valid only during the call. The core then copies or
 * reduces straight out of the FIFO (NCCL's recvReduceCopy). The buffer given
 * to irecv is then unused and may be NULL.
 */
typedef void (*tt_deliver_fn)(tt_req_t *req, size_t offset, const void *data,
                              size_t len);

struct tt_req {
    /* public: set by the caller before posting */
    tt_deliver_fn deliver; /* receives only; NULL = copy into the buffer */
    void         *arg;     /* the caller's, untouched by the transport */
    /* read-only for the caller: written by the transport */
    volatile int  status;  /* TUTTI_INPROGRESS, TUTTI_SUCCESS or an error */
    /* private to the transport */
    tt_req_t     *next;
    uint64_t      priv[8];
};

/* What a transport knows about a peer before connecting (from the card). */
typedef struct tt_peer_info {
    int      rank;
    pid_t    pid;
    char     hostid[TT_HOSTID_MAX]; /* equal strings = same host */
} tt_peer_info_t;

/* What a transport is given at init. */
typedef struct tt_tp_params {
    int                      rank;
    int                      nranks;
    uint64_t                 job_id; /* unique per communicator */
    const tt_peer_info_t    *self;
    const struct tt_config  *config;
    /* ranks on this host (including self), ascending, and their count:
     * lets a same-host transport size its memory before connecting. */
    const int               *local_ranks;
    int                      nlocal;
    tt_log_fn                log;
} tt_tp_params_t;

typedef struct tt_transport_ops {
    size_t      size; /* sizeof(tt_transport_ops_t): tables only grow */
    const char *name; /* "shm", "ucx", "ofi" */
    uint32_t    caps; /* TT_CAP_* */

    /*
     * Creates the instance for one communicator. Must not block on other
     * ranks. A failure here is not fatal to the communicator: the transport
     * is skipped, with the reason in tutti_last_error() logged at INFO.
     */
    tutti_result_t (*init)(const tt_tp_params_t *params, tt_tp_t **tp_p);
    /* Frees the instance; every endpoint was closed before. */
    void (*fini)(tt_tp_t *tp);

    /*
     * Writes the bytes other ranks need to connect to this one
     * (at most TT_ADDR_MAX; *len_p is the buffer's size on entry).
     */
    tutti_result_t (*address)(tt_tp_t *tp, void *buf, size_t *len_p);

    /* Nonzero when this transport can reach `peer` (NCCL's canConnect). */
    int (*reachable)(tt_tp_t *tp, const tt_peer_info_t *peer);

    /*
     * Connects to a peer from its published address. May block for a
     * bounded time (mapping memory, a handshake that the peer answers from
     * its own connect without further calls); must fail rather than wait for
     * the peer to call anything else.
     */
    tutti_result_t (*connect)(tt_tp_t *tp, const tt_peer_info_t *peer,
                              const void *addr, size_t len, tt_ep_t **ep_p);

    /*
     * Called once every rank has connected all its endpoints (after a
     * bootstrap barrier): the shm transport unlinks its segments here.
     * May be NULL.
     */
    tutti_result_t (*connect_done)(tt_tp_t *tp);

    /*
     * Posts a send of len bytes (0 allowed) with `tag`, on the channel its
     * bit 63 names. Never blocks; sets req->status (see the header
     * comment). Returns an error only when the request could not be
     * posted; it then never completes.
     */
    tutti_result_t (*isend)(tt_ep_t *ep, const void *buf, size_t len,
                            uint64_t tag, tt_req_t *req);
    /* Posts a receive of exactly len bytes with `tag`. As isend. */
    tutti_result_t (*irecv)(tt_ep_t *ep, void *buf, size_t len, uint64_t tag,
                            tt_req_t *req);

    /*
     * Moves data for every posted request of this instance; never blocks.
     * Returns the number of requests it completed (UCT's convention).
     */
    unsigned (*progress)(tt_tp_t *tp);

    /*
     * Closes an endpoint. Pending requests are completed with
     * TUTTI_ERR_ABORTED; their buffers are not touched after this returns.
     */
    void (*ep_close)(tt_ep_t *ep);

    /* Wait support (caps & TT_CAP_WAIT_FD), else NULL. */
    tutti_result_t (*wait_fd)(tt_tp_t *tp, int *fd_p);
    tutti_result_t (*arm)(tt_tp_t *tp); /* TUTTI_INPROGRESS: events pending */

    /*
     * The pipelining unit (bytes) this transport moves best: a FIFO of
     * cache-resident slots wants slices that fit its ring, a network stack
     * wants slices long enough to hide its per-message cost. With
     * SLICE_SIZE 0 (auto) a communicator uses the largest hint of the
     * transports any of its ranks uses (src/comm.c). 0: no preference.
     */
    size_t slice_hint;
} tt_transport_ops_t;

/* The compiled-in transports, in order of preference, NULL-terminated
 * (transports/registry.c). */
extern const tt_transport_ops_t *const tutti__transports[];

#endif /* TUTTI_TRANSPORT_H */
