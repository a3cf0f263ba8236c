/*
 * Private to the shared-memory transport: the layout of a segment and of its
 * FIFOs in memory, the instance and endpoint structures, and the functions
 * shared between shm_init.c (life cycle) and shm_fifo.c (data path).
 *
 * Segments. Each rank creates one POSIX shm segment at init,
 * "/tutti-<job id in hex>-<rank>", holding its INBOUND FIFOs: two per other
 * rank on the host, in the order of params->local_ranks with self left out.
 * The two are the channels of transport.h: the collectives' FIFO
 * (TT_CHANNEL_COLL, nslots slots) and right after it the point-to-point
 * FIFO (TT_CHANNEL_P2P, at most TT_SHM_P2P_NSLOTS slots of the same size):
 *
 *   sender 0: [ coll FIFO | p2p FIFO ]  sender 1: [ coll FIFO | p2p FIFO ] ...
 *
 * Each channel is its own ring with its own positions, so a message of one
 * channel never waits behind the other's: bit 63 of a tag picks the FIFO
 * on both sides. The receiver owns the segment and decides its geometry
 * (slots per channel, slot size); a sender maps only its own pair of FIFOs
 * of the receiver's segment at connect() and learns the geometry from the
 * published address. Every rank unlinks its segment in connect_done(), so
 * none survives a crash after that (and fini before connect_done removes
 * the whole host's, see shm_init.c).
 *
 * One FIFO (fifo_size[channel] bytes, a multiple of the page size, so that
 * a sender can map exactly its pair):
 *
 *   0     identity line: magic, job id, owner and sender ranks, geometry;
 *         written by the owner at init, read by the sender at connect
 *   64    tail line: slots consumed so far (written by the receiver only)
 *   128   nslots slot headers, one cache line each (tt_shm_slot_hdr_t)
 *   ...   padding to the page size
 *   P     nslots payloads of slot_size bytes each, page aligned
 *
 * There is no shared head counter: the sender publishes slot number `pos`
 * (counted from 0 since init) by storing seq = pos + 1 into the slot's
 * header with release order, after the header fields and the payload. The
 * receiver polls the header of the next slot it expects, so a small message
 * costs one cache-line transfer (the header, with the data inline) from
 * sender to receiver and, when the sender finds the ring full, one back
 * (the tail). A head counter would add a second line per message.
 *
 * A message of len bytes takes max(1, ceil(len / slot_size)) consecutive
 * slots; every fragment but the last fills its slot. A fragment of at most
 * TT_SHM_INLINE_MAX bytes travels inside the header line.
 *
 * Single copy (shm_cma.c). A message of at least TUTTI_SHM_CMA_MIN bytes
 * to a receiver that can read the sender's memory with process_vm_readv
 * (Linux cross-memory attach) takes one slot whatever its length: the
 * header carries TT_SHM_SLOT_CMA and, inline, the message's address in
 * the sender (tt_shm_cma_desc_t). The receiver pulls the bytes straight
 * into its buffer, or through a small bounce buffer into req->deliver,
 * and only then releases the slot: the tail passing the slot is the
 * sender's sign that its buffer is free again, so such a send completes
 * only after the receiver has read it. Whether a receiver pulls from a
 * sender is settled at connect: the receiver reads a cookie from the
 * sender's memory (its address and value are in the sender's published
 * address) and, when that works, sets `cma` in the identity lines of the
 * sender's FIFOs; the sender reads it at connect_done.
 */
#ifndef TUTTI_SHM_H
#define TUTTI_SHM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "transport.h"

#define TT_SHM_MAGIC      0x7474736d66696632ull /* "ttsmfif2" */
#define TT_SHM_ADDR_MAGIC 0x74747368u           /* "ttsh" */
#define TT_SHM_NAME_MAX   48  /* "/tutti-" + 16 hex + "-" + rank, NUL */
#define TT_SHM_INLINE_MAX 24  /* fragment bytes carried in the header line */
/* Slots of a point-to-point FIFO (fewer if TUTTI_SHM_NSLOTS is smaller):
 * point-to-point messages stream through it all the same, and the
 * collectives keep the larger ring their pipelines fill. */
#define TT_SHM_P2P_NSLOTS 4u
/* The slice this transport prefers (transport.h, slice_hint). */
#define TT_SHM_SLICE_HINT (256u * 1024u)
/* Bytes of the bounce buffer a delivering receive pulls through: small
 * enough to stay in the cache (L2) between the pull and the reduction,
 * and one pull per default slice, since each process_vm_readv call costs
 * (measured: 64 KiB pieces made 4-256 MiB allreduces 10-70% slower). */
#define TT_SHM_CMA_BOUNCE (256u * 1024u)
/* Bytes one progress() call pulls for a message before it moves on to
 * the other endpoints and channels (the rest on the next call). */
#define TT_SHM_CMA_STEP   (1u * 1024u * 1024u)

/* The FIFO's first line: who owns it, who may write it, its geometry. */
typedef struct tt_shm_fifo_id {
    uint64_t magic;       /* TT_SHM_MAGIC once the owner has set it up */
    uint64_t job_id;
    int32_t  owner_rank;  /* the receiver */
    int32_t  sender_rank; /* the only rank allowed to write here */
    uint32_t nslots;
    uint32_t channel;     /* TT_CHANNEL_COLL or TT_CHANNEL_P2P */
    uint64_t slot_size;   /* payload bytes of one slot */
    /* Set by the owner at its connect(), read by the sender at
     * connect_done (the barrier between orders them): nonzero when the
     * owner can pull this sender's messages with process_vm_readv. */
    uint32_t cma;
    uint32_t reserved;
} tt_shm_fifo_id_t;

/*
 * One slot header, one cache line. The sender writes every field, then seq
 * with release order; the receiver reads seq with acquire order and the
 * rest only after seq says the slot is filled.
 */
typedef struct tt_shm_slot_hdr {
    uint64_t         tag;      /* the message's tag */
    uint64_t         msg_len;  /* the message's total length */
    uint64_t         offset;   /* of this fragment in the message */
    uint32_t         frag_len; /* bytes in this fragment */
    uint32_t         flags;    /* TT_SHM_SLOT_* */
    uint8_t          inl[TT_SHM_INLINE_MAX]; /* data when frag_len small */
    _Atomic uint64_t seq;      /* pos + 1 once slot `pos` is filled */
} tt_shm_slot_hdr_t;

_Static_assert(sizeof(tt_shm_slot_hdr_t) == TT_CACHE_LINE,
               "a slot header is one cache line");
_Static_assert(sizeof(tt_shm_fifo_id_t) <= TT_CACHE_LINE,
               "the FIFO identity fits one cache line");

/* Slot flags. */
#define TT_SHM_SLOT_CMA 1u /* inl holds a tt_shm_cma_desc_t, not data */

/* What a single-copy slot carries inline: where the receiver pulls from.
 * The length is the header's msg_len, the offset 0, frag_len 0. */
typedef struct tt_shm_cma_desc {
    uint64_t addr; /* the message in the sender's address space */
} tt_shm_cma_desc_t;

_Static_assert(sizeof(tt_shm_cma_desc_t) <= TT_SHM_INLINE_MAX,
               "a single-copy descriptor fits inline");

#define TT_SHM_TAIL_OFFSET 64
#define TT_SHM_HDRS_OFFSET 128
#define TT_SHM_HDRS_END(_nslots)                                             \
    (TT_SHM_HDRS_OFFSET + (size_t)(_nslots) * sizeof(tt_shm_slot_hdr_t))

/* What address() publishes; connect() reads it back. */
typedef struct tt_shm_addr {
    uint32_t magic;     /* TT_SHM_ADDR_MAGIC */
    int32_t  rank;      /* the segment's owner */
    int32_t  nlocal;    /* ranks on its host, as its owner counted them */
    int32_t  pid;       /* the owner's process, for process_vm_readv */
    uint32_t nslots[TT_NUM_CHANNELS];    /* per channel */
    uint64_t slot_size;
    uint64_t fifo_size[TT_NUM_CHANNELS]; /* a multiple of the page */
    uint64_t seg_size;  /* 0: no segment (the owner is alone on its host) */
    /* Single copy: where the owner keeps a cookie a receiver reads to
     * check that it can pull from the owner; 0 when the owner sends
     * everything through the FIFOs (TUTTI_SHM_CMA_MIN=0). */
    uint64_t cma_cookie_addr;
    uint64_t cma_cookie;
    char     name[TT_SHM_NAME_MAX];
} tt_shm_addr_t;

_Static_assert(sizeof(tt_shm_addr_t) <= TT_ADDR_MAX,
               "the shm address fits TT_ADDR_MAX");

/* One direction of an endpoint: where its FIFO lies in this process. */
typedef struct tt_shm_fifo {
    tt_shm_slot_hdr_t *hdrs;
    uint64_t           pos;       /* next position to fill / to read */
    uint32_t           idx;       /* slot of the next position */
    uint32_t           nslots;
    char              *data;      /* payload of slot i at data + i*slot_size */
    size_t             slot_size;
    _Atomic uint64_t  *tail;
    uint64_t           tail_seen; /* sender: last tail read */
    /* sender: messages of at least this many bytes go by descriptor
     * (single copy); SIZE_MAX when the receiver does not pull */
    size_t             cma_min;
} tt_shm_fifo_t;

/* A queue of requests linked through req->next, oldest first. */
typedef struct tt_shm_queue {
    tt_req_t *head;
    tt_req_t *tail;
} tt_shm_queue_t;

/* One channel of an endpoint: its requests and its FIFO each way. */
typedef struct tt_shm_chan {
    tt_shm_queue_t sendq;  /* the head may be partly sent */
    tt_shm_queue_t recvq;  /* the head may be partly received */
    tt_shm_fifo_t  rx;     /* the peer's FIFO in our segment */
    tt_shm_fifo_t  tx;     /* our FIFO in the peer's segment */
    tt_shm_queue_t pullq;  /* sends whose descriptor is in tx, waiting for
                              the receiver's pull; oldest first */
} tt_shm_chan_t;

struct tt_ep {
    /* data path first: progress() on an endpoint with nothing new reads
     * the collective channel's queue heads and rx position in the first
     * cache line, and the point-to-point channel's in the next ones */
    tt_shm_chan_t  chan[TT_NUM_CHANNELS];
    tt_tp_t       *tp;
    int            active; /* index in tp->active, -1 when idle */
    int            peer_rank;
    int            peer_local;
    pid_t          peer_pid; /* 0 unless we pull the peer's messages */
    void          *tx_map; /* our mapping of the peer's pair of FIFOs */
    size_t         tx_map_len;
};

struct tt_tp {
    /* data path: endpoints with posted requests, packed */
    tt_ep_t    **active;
    int          nactive;
    /* identity */
    int          rank;
    int          nranks;
    uint64_t     job_id;
    int          nlocal;
    int          local_idx;   /* ours in local_ranks */
    int         *local_ranks; /* copy of params->local_ranks */
    char         hostid[TT_HOSTID_MAX];
    /* our segment: the inbound FIFOs */
    char         seg_name[TT_SHM_NAME_MAX];
    char        *seg;         /* NULL when alone on the host */
    size_t       seg_size;
    int          seg_linked;  /* the name still exists in /dev/shm */
    size_t       slot_size;
    uint32_t     nslots[TT_NUM_CHANNELS];
    size_t       fifo_size[TT_NUM_CHANNELS];
    size_t       pair_size;   /* both FIFOs of one sender */
    size_t       page_size;
    /* per local index: its endpoint */
    tt_ep_t    **eps;
    int          ready;        /* init succeeded */
    int          connect_done;
    /* single copy (shm_cma.c); cma_min 0 = off */
    size_t       cma_min;      /* TUTTI_SHM_CMA_MIN */
    uint64_t     cma_cookie;   /* receivers read it to test the path */
    char        *cma_bounce;   /* TT_SHM_CMA_BOUNCE bytes, for deliver */
    int          cma_failed;   /* a probe failed: logged, not retried */
};

/* Request state kept in req->priv, by index (priv is the caller's array). */
enum {
    TT_SHM_PRIV_BUF  = 0, /* the user buffer, as uintptr_t */
    TT_SHM_PRIV_LEN  = 1, /* message length */
    TT_SHM_PRIV_TAG  = 2,
    TT_SHM_PRIV_DONE = 3, /* bytes sent or received so far */
    /* single copy: a send's descriptor position in tx; a receive's
     * "pulling" mark (1 once its descriptor's tag and length matched) */
    TT_SHM_PRIV_CMA  = 4
};

/* Index of a peer's inbound pair of FIFOs in the segment of local rank
 * `owner`. */
static inline int tt_shm_fifo_index(int owner_local, int sender_local)
{
    return sender_local < owner_local ? sender_local : sender_local - 1;
}

/* Offset of channel c's FIFO in a sender's pair: the point-to-point FIFO
 * follows the collectives' one (of coll_fifo_size bytes). */
static inline size_t tt_shm_chan_offset(size_t coll_fifo_size, int c)
{
    return c == TT_CHANNEL_P2P ? coll_fifo_size : 0;
}

/* Slots of channel c's FIFOs when the collectives' have nslots. */
static inline uint32_t tt_shm_chan_nslots(uint32_t nslots, int c)
{
    return c == TT_CHANNEL_P2P ? TT_MIN(nslots, TT_SHM_P2P_NSLOTS) : nslots;
}

/* Segment name of `rank` in job `job_id` into name (TT_SHM_NAME_MAX). */
void tt_shm_seg_name(char *name, uint64_t job_id, int rank);

/* Points *fifo at a FIFO starting at base, with the given geometry. */
void tt_shm_fifo_attach(tt_shm_fifo_t *fifo, char *base, uint32_t nslots,
                        size_t slot_size, size_t page_size);

/* Bytes of one FIFO, page aligned. */
size_t tt_shm_fifo_size(uint32_t nslots, size_t slot_size, size_t page_size);

/* Data path (shm_fifo.c). */
tutti_result_t tt_shm_isend(tt_ep_t *ep, const void *buf, size_t len,
                            uint64_t tag, tt_req_t *req);
tutti_result_t tt_shm_irecv(tt_ep_t *ep, void *buf, size_t len, uint64_t tag,
                            tt_req_t *req);
unsigned tt_shm_progress(tt_tp_t *tp);
/* Completes every queued request of ep with TUTTI_ERR_ABORTED and takes
 * it off the active list. */
void tt_shm_ep_abort(tt_ep_t *ep);

/* Single copy (shm_cma.c). */
/* Sets up the cookie and the bounce buffer when tp->cma_min is nonzero. */
tutti_result_t tt_shm_cma_init(tt_tp_t *tp);
void tt_shm_cma_fini(tt_tp_t *tp);
/* At connect to the owner of addr: tests that we can pull its messages
 * and, if so, sets ep->peer_pid and tells the peer through the identity
 * lines of its inbound FIFOs in our segment (rx_ids, one per channel).
 * A failure is not an error: it is logged once and the FIFOs carry all. */
void tt_shm_cma_probe(tt_tp_t *tp, tt_ep_t *ep, const tt_shm_addr_t *addr,
                      tt_shm_fifo_id_t *const rx_ids[TT_NUM_CHANNELS]);
/* At connect_done: whether each peer pulls from us, per channel. */
void tt_shm_cma_enable(tt_tp_t *tp);
/*
 * Pulls (more of) the message a single-copy slot describes into req: into
 * its buffer, or through the bounce buffer into req->deliver. Moves at
 * most TT_SHM_CMA_STEP bytes; updates req->priv[TT_SHM_PRIV_DONE].
 * Returns TUTTI_SUCCESS once the whole message is in, TUTTI_INPROGRESS
 * when there is more, or an error (the peer died, its buffer is gone),
 * with the reason in tutti_last_error().
 */
tutti_result_t tt_shm_cma_pull(const tt_ep_t *ep, tt_req_t *req,
                               const tt_shm_slot_hdr_t *hdr);

#endif /* TUTTI_SHM_H */
