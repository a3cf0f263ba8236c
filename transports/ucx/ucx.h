/*
 * Private to the UCX transport: the instance and endpoint structures, how a
 * request uses tt_req_t.priv, the layout of UCX tags, and the functions
 * shared between ucx_init.c (context, worker, address, waiting), ucx_ep.c
 * (endpoints: connect, failure, close) and ucx_progress.c (data path).
 *
 * One UCP context and one worker per instance (per communicator), in
 * single-thread mode: the transport contract gives an instance to one
 * thread at a time, and separate workers keep the communicators' tag spaces
 * apart.
 *
 * Tags. UCP matches receives per worker, not per endpoint, so the 64-bit
 * UCX tag carries the sending rank too: bit 63 is the core's channel bit
 * (transport.h), bits 40-62 the source rank, bits 0-39 the rest of the
 * core's tag (a kind byte and a 32-bit message number, src/sched.c). A
 * receive matches on the channel and source bits only: UCP keeps the
 * messages of one endpoint in order, so receives from a peer on a channel
 * meet its messages on that channel in posting order (the FIFO rule of
 * transport.h), while the other channel's messages pass them by. The core's
 * tag is then checked against the message's, a mismatch failing the
 * receive with TUTTI_ERR_INVALID_USAGE as the seam requires. An exact-match
 * receive would turn the same mistake into a silent hang until the timeout.
 */
#ifndef TUTTI_UCX_H
#define TUTTI_UCX_H

#include <stddef.h>
#include <stdint.h>

#include <ucp/api/ucp.h>

#include "internal.h"
#include "transport.h"

#define TT_UCX_ADDR_MAGIC 0x74747563u /* "ttuc" */
#define TT_UCX_LOW_BITS   40 /* the core's tag below the source rank */
#define TT_UCX_LOW_MASK   ((UINT64_C(1) << TT_UCX_LOW_BITS) - 1)
#define TT_UCX_RANK_BITS  (TT_TAG_CHANNEL_BIT - TT_UCX_LOW_BITS)
#define TT_UCX_MAX_RANKS  (1 << TT_UCX_RANK_BITS)
/* The bits of a core tag that travel: its low bits and the channel. */
#define TT_UCX_TAG_MASK   (TT_UCX_LOW_MASK | TT_TAG_CHANNEL_P2P)
/* What a receive matches on: the channel and the source rank. */
#define TT_UCX_MATCH_MASK (~TT_UCX_LOW_MASK)

/* What address() publishes: a small header, then the worker address. */
typedef struct tt_ucx_addr_hdr {
    uint32_t magic;    /* TT_UCX_ADDR_MAGIC */
    int32_t  rank;     /* the worker's owner */
    uint64_t job_id;   /* its communicator */
    uint32_t len;      /* bytes of UCX worker address that follow */
    uint32_t tcp_seg;  /* the TCP segment setting's fingerprint, 0 if
                        * TCP is left out (tt_ucx_tcp_setting) */
} tt_ucx_addr_hdr_t;

#define TT_UCX_WORKER_ADDR_MAX (TT_ADDR_MAX - sizeof(tt_ucx_addr_hdr_t))

/* What UCP's error callback gets as its argument: a slot per peer rank that
 * lives as long as the instance, so that a callback arriving for an
 * endpoint already closed finds out instead of touching freed memory. */
typedef struct tt_ucx_slot {
    tt_tp_t *tp;
    int      rank;
} tt_ucx_slot_t;

struct tt_ep {
    tt_tp_t  *tp;
    ucp_ep_h  uep;
    int       peer_rank;
    int       failed;     /* UCS error of the connection, 0 while healthy */
    int       fail_seen;  /* progress() has completed the failed requests */
    int       closing;    /* in ep_close: cancellations mean ABORTED */
    int       nlate;      /* receives met after the connection ended */
    tt_req_t *pending;    /* posted, not completed: sends and receives */
    int       npending;
};

struct tt_tp {
    ucp_context_h  ctx;
    ucp_worker_h   worker;
    int            rank;
    int            nranks;
    uint64_t       job_id;
    tt_ep_t      **eps;        /* by peer rank; NULL when not connected */
    tt_ucx_slot_t *slots;      /* by peer rank: error callback arguments */
    int            nfailed;    /* endpoints failed since progress() looked */
    int            efd;        /* -1 until wait_fd() asked for it */
    uint64_t       ncompleted; /* completions seen by the callbacks */
    uint64_t       nreported;  /* ... of which progress() returned */
    uint32_t       tcp_seg;    /* published in the address header */
    size_t         addr_len;
    uint8_t        addr[TT_UCX_WORKER_ADDR_MAX];
};

/* Request state kept in req->priv, by index (priv is the caller's array).
 * req->next links the endpoint's pending list, PREV back. */
enum {
    TT_UCX_PRIV_UREQ = 0, /* the UCX request, as uintptr_t; 0 when none */
    TT_UCX_PRIV_EP   = 1, /* the endpoint it was posted on */
    TT_UCX_PRIV_PREV = 2, /* previous request in ep->pending */
    TT_UCX_PRIV_LEN  = 3, /* posted length */
    TT_UCX_PRIV_TAG  = 4, /* the full UCX tag expected (receives) */
    TT_UCX_PRIV_KIND = 5  /* TT_UCX_SEND or TT_UCX_RECV */
};

enum { TT_UCX_SEND = 1, TT_UCX_RECV = 2 };

static inline uint64_t tt_ucx_tag(int src_rank, uint64_t tag)
{
    return ((uint64_t)src_rank << TT_UCX_LOW_BITS) | (tag & TT_UCX_TAG_MASK);
}

/* Data path (ucx_progress.c). */
tutti_result_t tt_ucx_isend(tt_ep_t *ep, const void *buf, size_t len,
                            uint64_t tag, tt_req_t *req);
tutti_result_t tt_ucx_irecv(tt_ep_t *ep, void *buf, size_t len, uint64_t tag,
                            tt_req_t *req);
unsigned tt_ucx_progress(tt_tp_t *tp);
/*
 * Ends every pending request of ep: receives are cancelled in UCX (they
 * belong to the worker, not to the endpoint) and complete through their
 * callbacks, with TUTTI_ERR_REMOTE when ep failed, else TUTTI_ERR_ABORTED.
 * Sends are left to UCX, which fails them with the endpoint.
 */
void tt_ucx_cancel_recvs(tt_ep_t *ep);
/* Detaches whatever is still pending on ep from UCX (no callback will run
 * for it any more) and completes it with `status`. */
void tt_ucx_detach_pending(tt_ep_t *ep, int status);

/* Endpoints (ucx_ep.c). */
tutti_result_t tt_ucx_connect(tt_tp_t *tp, const tt_peer_info_t *peer,
                              const void *addr, size_t len, tt_ep_t **ep_p);
void tt_ucx_ep_close(tt_ep_t *ep);
/*
 * Records that ep's connection failed with `st` (from UCP's error callback,
 * or from a request that ended with a connection error first, whichever
 * comes first): logged once, at WARN when traffic was pending, and queued
 * for tt_ucx_handle_failures(). Later posts on ep fail at once.
 */
void tt_ucx_ep_failed(tt_ep_t *ep, ucs_status_t st);
/* The same without the log line; returns 1 when ep was healthy until now. */
int tt_ucx_ep_mark_failed(tt_ep_t *ep, ucs_status_t st);
/* Completes the receives of endpoints that failed, with TUTTI_ERR_REMOTE;
 * called by progress() outside of UCP's callbacks. */
void tt_ucx_handle_failures(tt_tp_t *tp);

#endif /* TUTTI_UCX_H */
