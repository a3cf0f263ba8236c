/*
 * Private to the libfabric transport: the instance and endpoint structures,
 * the address it publishes, how a request uses req->priv, and the functions
 * shared between ofi_init.c (provider choice, fabric objects, life cycle),
 * ofi_ep.c (connect, ep_close) and ofi_progress.c (data path).
 *
 * One instance (one communicator) opens one fabric, domain, address vector
 * (FI_AV_TABLE), completion queue (FI_CQ_FORMAT_TAGGED) and one reliable
 * datagram endpoint (FI_EP_RDM) with tagged messages. A tutti endpoint is
 * only a peer's fi_addr_t in that AV plus the bookkeeping of its requests.
 *
 * Matching. The transport seam wants FIFO matching per (direction,
 * channel), the channel being bit 63 of the core's tag, with the core's tag
 * checked by the receiver. libfabric matches on tags instead, so the
 * libfabric tag of a message is the channel bit over this transport's own
 * sequence number in its (direction, channel) (and, without
 * FI_DIRECTED_RECV, the sender's rank between them); the core's tag travels
 * as remote CQ data (64 bits) and is compared on the receive's completion.
 * The n-th send of a (direction, channel) thus always meets its n-th
 * receive, whatever order the provider delivers in, never a message of the
 * other channel, and a receive that meets a message of another tag or
 * length fails with TUTTI_ERR_INVALID_USAGE instead of waiting forever for
 * a tag that never comes.
 *
 *   directed receive:  tag = channel << 63 | seq
 *   otherwise:         tag = channel << 63 | sender rank << 32 | seq
 *                      (received from FI_ADDR_UNSPEC)
 */
#ifndef TUTTI_OFI_H
#define TUTTI_OFI_H

#include <stddef.h>
#include <stdint.h>

#include <rdma/fabric.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_eq.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_tagged.h>

#include "internal.h"
#include "transport.h"

#define TT_OFI_API_VERSION FI_VERSION(1, 10)
#define TT_OFI_ADDR_MAGIC  0x7474666fu /* "ttfo" */
#define TT_OFI_PROV_MAX    48          /* provider name, NUL included */
#define TT_OFI_CQ_BATCH    32          /* completions taken per fi_cq_read */
#define TT_OFI_CLOSE_MS    200         /* ep_close waits this long at most */

/* What address() publishes: who we are, how we talk, then fi_getname. */
typedef struct tt_ofi_addr {
    uint32_t magic;                 /* TT_OFI_ADDR_MAGIC */
    int32_t  rank;
    uint32_t addr_format;           /* FI_SOCKADDR_IN, ... */
    uint16_t name_len;              /* bytes of name[] in use */
    uint8_t  directed;              /* tags carry no sender rank */
    uint8_t  reserved;
    char     prov[TT_OFI_PROV_MAX]; /* provider name, e.g. "tcp;ofi_rxm" */
    uint8_t  name[TT_ADDR_MAX - 16 - TT_OFI_PROV_MAX];
} tt_ofi_addr_t;

_Static_assert(sizeof(tt_ofi_addr_t) == TT_ADDR_MAX,
               "the ofi address fills TT_ADDR_MAX exactly");

/*
 * A request in req->priv (64 bytes, the caller's). While the request is
 * posted to libfabric, its first words are the struct fi_context that the
 * provider may use (FI_CONTEXT mode) and whose address is the operation
 * context, so a completion leads back to the request without a lookup.
 * While it waits on the endpoint's queue (the provider said -FI_EAGAIN) the
 * same words hold what posting it needs.
 */
enum {
    TT_OFI_PRIV_CTX  = 0, /* struct fi_context, 4 words, while posted */
    TT_OFI_PRIV_BUF  = 0, /* the buffer, while queued */
    TT_OFI_PRIV_FTAG = 1, /* the libfabric tag, while queued */
    TT_OFI_PRIV_PREV = 4, /* previous request in ep->posted */
    TT_OFI_PRIV_EP   = 5, /* tt_ep_t *, ORed with TT_OFI_REQ_RECV */
    TT_OFI_PRIV_TAG  = 6, /* the core's tag */
    TT_OFI_PRIV_LEN  = 7  /* bytes posted */
};

#define TT_OFI_REQ_RECV 1ull /* low bit of priv[TT_OFI_PRIV_EP] */

_Static_assert(sizeof(struct fi_context) <=
                   TT_OFI_PRIV_PREV * sizeof(uint64_t),
               "struct fi_context fits the first words of tt_req_t.priv");
_Static_assert(TT_OFI_PRIV_LEN < sizeof(((tt_req_t *)0)->priv) /
                                     sizeof(uint64_t),
               "the request state fits tt_req_t.priv");

/* A FIFO of requests linked through req->next. */
typedef struct tt_ofi_queue {
    tt_req_t *head;
    tt_req_t *tail;
} tt_ofi_queue_t;

struct tt_ep {
    tt_tp_t       *tp;
    fi_addr_t      fi_addr;
    fi_addr_t      src_addr;  /* fi_addr, or FI_ADDR_UNSPEC (undirected) */
    uint32_t       tx_seq[TT_NUM_CHANNELS]; /* seq of the next send */
    uint32_t       rx_seq[TT_NUM_CHANNELS]; /* seq of the next receive */
    int            peer_rank;
    int            closing;   /* ep_close runs: completions abort */
    /* requests handed to libfabric, newest first (for ep_close's cancel),
     * doubly linked: req->next and priv[TT_OFI_PRIV_PREV] */
    tt_req_t      *posted;
    size_t         nposted;
    /* requests the provider refused with -FI_EAGAIN, and every later one
     * of this endpoint, posted again by progress() in order */
    tt_ofi_queue_t pendq;
    tt_ep_t       *pend_next; /* in tp->pend_eps while pendq is not empty */
    int            pend_linked;
};

struct tt_tp {
    /* data path */
    struct fid_ep     *ep;
    struct fid_cq     *cq;
    tt_ep_t           *pend_eps;    /* endpoints with queued requests */
    size_t             inject_size; /* 0: no fi_tinject */
    size_t             tx_credits;  /* sends we may still post */
    size_t             rx_credits;  /* receives we may still post */
    size_t             max_msg_size;
    int                directed;    /* FI_DIRECTED_RECV */
    int                rank;
    int                cq_failed;   /* fi_cq_read failed (warned once) */
    /* completions that arrive for requests ep_close gave up on: their
     * contexts, compared before a completion is trusted */
    void             **orphans;
    size_t             norphans;
    size_t             orphans_cap;
    /* requests ep_close gave up on, ever: the provider may still hold
     * transfers for them, and fini keeps the fabric objects open
     * (ofi_init.c, "Closing after a failure") */
    size_t             abandoned;
    tt_tp_t           *kept_next;   /* on the list of kept instances */
    /* fabric objects, opened in this order, closed in reverse */
    struct fi_info    *info;
    struct fid_fabric *fabric;
    struct fid_domain *domain;
    struct fid_av     *av;
    int                wait_fd;     /* -1: the CQ has no wait fd */
    int                nranks;
    tt_ep_t          **eps;         /* by peer rank */
    tt_ofi_addr_t      addr;        /* ours, filled at init */
    size_t             addr_len;
};

/* The operation context of a request, and back. */
static inline void *tt_ofi_req_ctx(tt_req_t *req)
{
    return &req->priv[TT_OFI_PRIV_CTX];
}

static inline tt_req_t *tt_ofi_ctx_req(void *ctx)
{
    return tt_container_of(ctx, tt_req_t, priv);
}

static inline tt_ep_t *tt_ofi_req_ep(const tt_req_t *req)
{
    return (tt_ep_t *)(uintptr_t)(req->priv[TT_OFI_PRIV_EP] &
                                  ~TT_OFI_REQ_RECV);
}

static inline int tt_ofi_req_is_recv(const tt_req_t *req)
{
    return (req->priv[TT_OFI_PRIV_EP] & TT_OFI_REQ_RECV) != 0;
}

/* The libfabric tag of message `seq` of the channel of the core's `tag`
 * from rank `sender` (ranks are below 2^31). */
static inline uint64_t tt_ofi_ftag(const tt_tp_t *tp, uint64_t tag,
                                   int sender, uint32_t seq)
{
    uint64_t ftag = (tag & TT_TAG_CHANNEL_P2P) | seq;

    return tp->directed ? ftag : ftag | (uint64_t)(uint32_t)sender << 32;
}

/* Data path (ofi_progress.c). */
tutti_result_t tt_ofi_isend(tt_ep_t *ep, const void *buf, size_t len,
                            uint64_t tag, tt_req_t *req);
tutti_result_t tt_ofi_irecv(tt_ep_t *ep, void *buf, size_t len, uint64_t tag,
                            tt_req_t *req);
unsigned tt_ofi_progress(tt_tp_t *tp);
/* Reads the CQ until it is empty or `max` batches were read; returns the
 * number of requests completed. */
unsigned tt_ofi_cq_poll(tt_tp_t *tp, int max);
/* Completes a request: off ep->posted, then status, written last. */
void tt_ofi_req_done(tt_req_t *req, int status);

/* Endpoints (ofi_ep.c). */
tutti_result_t tt_ofi_connect(tt_tp_t *tp, const tt_peer_info_t *peer,
                              const void *addr, size_t len, tt_ep_t **ep_p);
void tt_ofi_ep_close(tt_ep_t *ep);
/* Nonzero, and forgets it, when ctx was given up by ep_close. */
int tt_ofi_orphan_take(tt_tp_t *tp, void *ctx);

#endif /* TUTTI_OFI_H */
