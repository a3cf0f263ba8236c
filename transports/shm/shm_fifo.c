/*
 * The shared-memory transport's data path: isend, irecv and progress over
 * the FIFOs laid out in shm.h. Nothing here allocates or blocks; the only
 * system call is the single-copy pull (shm_cma.c).
 *
 * Every endpoint has two channels (transport.h, shm.h), each with its own
 * queues and FIFOs; bit 63 of a request's tag picks its channel, and
 * everything below works on one channel at a time, so the channels'
 * messages never meet.
 *
 * Sending copies a message into the free slots of the channel's outbound
 * FIFO, fragment by fragment; what does not fit waits on the channel's send
 * queue, in posting order, and progress() continues it as the receiver frees
 * slots. A send completes once its last byte is in the FIFO. A send of at
 * least tx.cma_min bytes puts one descriptor in the FIFO instead (shm.h,
 * single copy) and moves to the channel's pull queue, where it completes
 * when the tail passes its descriptor: the receiver has read the buffer.
 * Sends after it do not wait for that.
 *
 * Receiving takes the fragments at the receiver's position in the inbound
 * FIFO, in order, for the oldest posted receive: its tag and length must be
 * the message's, else that receive fails with TUTTI_ERR_INVALID_USAGE and
 * the message stays where it is. Each fragment is copied into the buffer or
 * handed to req->deliver straight from the slot, then the slot is released
 * by advancing the tail. A descriptor's message is pulled from the
 * sender's memory instead (at most TT_SHM_CMA_STEP bytes per call, so one
 * long message does not starve the other endpoints; a slice of the
 * default size takes one call), and its slot is released once all of it
 * is in. A message sent before its receive is posted simply waits in the
 * FIFO; a full FIFO holds the sender back. deliver runs inside progress()
 * or irecv() and must not call back into the transport.
 *
 * progress() visits only the endpoints with queued requests (tp->active,
 * packed), so an idle transport costs a loop over nothing and a busy one a
 * load or two per endpoint.
 */
#include <inttypes.h>
#include <string.h>

#include "shm.h"

static inline void tt_shm_queue_push(tt_shm_queue_t *q, tt_req_t *req)
{
    req->next = NULL;
    if (q->tail != NULL) {
        q->tail->next = req;
    } else {
        q->head = req;
    }
    q->tail = req;
}

static inline tt_req_t *tt_shm_queue_pop(tt_shm_queue_t *q)
{
    tt_req_t *req = q->head;

    q->head = req->next;
    if (q->head == NULL) {
        q->tail = NULL;
    }
    return req;
}

/* Pops the oldest request of q and completes it: status is written last,
 * after which the request belongs to the caller again. */
static inline void tt_shm_queue_complete(tt_shm_queue_t *q, int status)
{
    tt_req_t *req = tt_shm_queue_pop(q);

    req->status = status;
}

static inline void tt_shm_ep_activate(tt_ep_t *ep)
{
    tt_tp_t *tp = ep->tp;

    if (ep->active < 0) {
        ep->active                 = tp->nactive;
        tp->active[tp->nactive++] = ep;
    }
}

static inline void tt_shm_ep_deactivate(tt_ep_t *ep)
{
    tt_tp_t *tp   = ep->tp;
    tt_ep_t *last = tp->active[--tp->nactive];

    tp->active[ep->active] = last;
    last->active           = ep->active;
    ep->active             = -1;
}

static inline void tt_shm_fifo_advance(tt_shm_fifo_t *fifo)
{
    fifo->pos++;
    if (++fifo->idx == fifo->nslots) {
        fifo->idx = 0;
    }
}

/* What tt_shm_send_push did with a send. */
enum {
    TT_SHM_PUSH_FULL = 0, /* the FIFO filled up first */
    TT_SHM_PUSH_DONE,     /* all of it is in the FIFO: the send is complete */
    TT_SHM_PUSH_PULL      /* its descriptor is in: wait for the pull */
};

/* Writes a single-copy descriptor of req's message into the free slot at
 * fifo's position, and notes the position in req. */
static void tt_shm_send_desc(tt_shm_fifo_t *fifo, tt_req_t *req)
{
    tt_shm_slot_hdr_t *hdr  = &fifo->hdrs[fifo->idx];
    tt_shm_cma_desc_t  desc = {.addr = req->priv[TT_SHM_PRIV_BUF]};

    hdr->tag      = req->priv[TT_SHM_PRIV_TAG];
    hdr->msg_len  = req->priv[TT_SHM_PRIV_LEN];
    hdr->offset   = 0;
    hdr->frag_len = 0;
    hdr->flags    = TT_SHM_SLOT_CMA;
    memcpy(hdr->inl, &desc, sizeof(desc));
    req->priv[TT_SHM_PRIV_CMA] = fifo->pos;
    atomic_store_explicit(&hdr->seq, fifo->pos + 1, memory_order_release);
    tt_shm_fifo_advance(fifo);
}

/*
 * Writes the rest of req's message into free slots of fifo, or its
 * single-copy descriptor when it is long enough. Returns TT_SHM_PUSH_*;
 * after FULL, req->priv says how far it got. The shared tail is read only
 * when the last value seen says the ring is full.
 */
static int tt_shm_send_push(tt_shm_fifo_t *fifo, tt_req_t *req)
{
    const char *buf  = (const char *)(uintptr_t)req->priv[TT_SHM_PRIV_BUF];
    uint64_t    len  = req->priv[TT_SHM_PRIV_LEN];
    uint64_t    tag  = req->priv[TT_SHM_PRIV_TAG];
    uint64_t    done = req->priv[TT_SHM_PRIV_DONE];

    do {
        tt_shm_slot_hdr_t *hdr;
        size_t             frag;

        if (fifo->pos - fifo->tail_seen == fifo->nslots) {
            fifo->tail_seen =
                atomic_load_explicit(fifo->tail, memory_order_acquire);
            if (fifo->pos - fifo->tail_seen == fifo->nslots) {
                req->priv[TT_SHM_PRIV_DONE] = done;
                return TT_SHM_PUSH_FULL;
            }
        }
        /* cma_min is SIZE_MAX unless the receiver pulls, and never 0 */
        if (done == 0 && len >= fifo->cma_min) {
            tt_shm_send_desc(fifo, req);
            return TT_SHM_PUSH_PULL;
        }
        hdr           = &fifo->hdrs[fifo->idx];
        frag          = TT_MIN(len - done, fifo->slot_size);
        hdr->tag      = tag;
        hdr->msg_len  = len;
        hdr->offset   = done;
        hdr->frag_len = (uint32_t)frag;
        hdr->flags    = 0;
        if (frag <= TT_SHM_INLINE_MAX) {
            if (frag > 0) {
                memcpy(hdr->inl, buf + done, frag);
            }
        } else {
            memcpy(fifo->data + (size_t)fifo->idx * fifo->slot_size,
                   buf + done, frag);
        }
        atomic_store_explicit(&hdr->seq, fifo->pos + 1, memory_order_release);
        tt_shm_fifo_advance(fifo);
        done += frag;
    } while (done < len);
    return TT_SHM_PUSH_DONE;
}

/* Continues a channel's queued sends in order; returns how many ended. */
static unsigned tt_shm_send_progress(tt_shm_chan_t *ch)
{
    unsigned count = 0;

    while (ch->sendq.head != NULL) {
        int pushed = tt_shm_send_push(&ch->tx, ch->sendq.head);

        if (pushed == TT_SHM_PUSH_FULL) {
            break;
        }
        if (pushed == TT_SHM_PUSH_DONE) {
            tt_shm_queue_complete(&ch->sendq, TUTTI_SUCCESS);
            count++;
        } else {
            tt_shm_queue_push(&ch->pullq, tt_shm_queue_pop(&ch->sendq));
        }
    }
    return count;
}

/* Completes the sends whose descriptors the receiver has pulled and
 * released (the tail passed them); returns how many. */
static unsigned tt_shm_pull_progress(tt_shm_chan_t *ch)
{
    tt_shm_fifo_t *fifo  = &ch->tx;
    unsigned       count = 0;

    fifo->tail_seen = atomic_load_explicit(fifo->tail, memory_order_acquire);
    while (ch->pullq.head != NULL &&
           ch->pullq.head->priv[TT_SHM_PRIV_CMA] < fifo->tail_seen) {
        tt_shm_queue_complete(&ch->pullq, TUTTI_SUCCESS);
        count++;
    }
    return count;
}

/* The message at the head of the FIFO is not the one this receive wants. */
static void tt_shm_recv_mismatch(const tt_ep_t *ep, tt_shm_chan_t *ch,
                                 tt_req_t *req, const tt_shm_slot_hdr_t *hdr)
{
    uint64_t done = req->priv[TT_SHM_PRIV_DONE];
    int      status;

    if (done == 0 && (hdr->tag != req->priv[TT_SHM_PRIV_TAG] ||
                      hdr->msg_len != req->priv[TT_SHM_PRIV_LEN])) {
        status = tutti__error(
            TUTTI_ERR_INVALID_USAGE,
            "shm: peer %d sent tag %#" PRIx64 " of %" PRIu64 " bytes where "
            "tag %#" PRIx64 " of %" PRIu64 " bytes was expected: %s",
            ep->peer_rank, hdr->tag, hdr->msg_len,
            req->priv[TT_SHM_PRIV_TAG], req->priv[TT_SHM_PRIV_LEN],
            TT_TAG_CHANNEL(hdr->tag) == TT_CHANNEL_P2P
                ? "a point-to-point receive does not match its send"
                : "ranks ran different collectives");
    } else {
        status = tutti__error(
            TUTTI_ERR_REMOTE,
            "shm: peer %d sent a fragment of %u bytes at offset %" PRIu64
            " of a %" PRIu64 "-byte message where offset %" PRIu64
            " was expected: the FIFO is corrupt",
            ep->peer_rank, hdr->frag_len, hdr->offset, hdr->msg_len, done);
    }
    tt_shm_queue_complete(&ch->recvq, status);
}

/*
 * A single-copy slot at the head of the channel's inbound FIFO, for the
 * oldest receive req: checks it as a whole message (tag and length as for
 * any first fragment), pulls (more of) it, and once all of it is in
 * releases the slot, which tells the sender its buffer is free. Returns
 * TUTTI_INPROGRESS while part is left (req stays at the head), else the
 * status req was completed with.
 */
static int tt_shm_recv_pull(const tt_ep_t *ep, tt_shm_chan_t *ch,
                            tt_req_t *req, const tt_shm_slot_hdr_t *hdr)
{
    tt_shm_fifo_t *fifo = &ch->rx;
    int            status;

    if (!req->priv[TT_SHM_PRIV_CMA]) {
        if (req->priv[TT_SHM_PRIV_DONE] != 0 || hdr->offset != 0 ||
            hdr->tag != req->priv[TT_SHM_PRIV_TAG] ||
            hdr->msg_len != req->priv[TT_SHM_PRIV_LEN]) {
            tt_shm_recv_mismatch(ep, ch, req, hdr);
            return TUTTI_ERR_INVALID_USAGE;
        }
        if (ep->peer_pid == 0) {
            status = tutti__error(TUTTI_ERR_REMOTE,
                                  "shm: peer %d sent a single-copy "
                                  "descriptor though this rank never "
                                  "agreed to pull from it",
                                  ep->peer_rank);
            tt_shm_queue_complete(&ch->recvq, status);
            return status;
        }
        req->priv[TT_SHM_PRIV_CMA] = 1;
    }
    status = tt_shm_cma_pull(ep, req, hdr);
    if (status == TUTTI_INPROGRESS) {
        return status;
    }
    if (status == TUTTI_SUCCESS) {
        tt_shm_fifo_advance(fifo);
        atomic_store_explicit(fifo->tail, fifo->pos, memory_order_release);
    }
    tt_shm_queue_complete(&ch->recvq, status);
    return status;
}

/*
 * Moves filled slots of a channel's inbound FIFO into its posted receives,
 * oldest first, while both exist. Returns how many receives ended (with
 * success or an error).
 */
static unsigned tt_shm_recv_progress(const tt_ep_t *ep, tt_shm_chan_t *ch)
{
    tt_shm_fifo_t *fifo  = &ch->rx;
    unsigned       count = 0;
    tt_req_t      *req;

    while ((req = ch->recvq.head) != NULL) {
        tt_shm_slot_hdr_t *hdr = &fifo->hdrs[fifo->idx];
        uint64_t           len, done;
        const char        *src;
        size_t             frag;

        if (atomic_load_explicit(&hdr->seq, memory_order_acquire) !=
            fifo->pos + 1) {
            break;
        }
        if (hdr->flags & TT_SHM_SLOT_CMA) {
            /* a message left for the next call: serve the others first */
            if (tt_shm_recv_pull(ep, ch, req, hdr) == TUTTI_INPROGRESS) {
                break;
            }
            count++;
            continue;
        }
        len  = req->priv[TT_SHM_PRIV_LEN];
        done = req->priv[TT_SHM_PRIV_DONE];
        frag = hdr->frag_len;
        if (hdr->offset != done || frag > len - done ||
            frag > fifo->slot_size ||
            (done == 0 && (hdr->tag != req->priv[TT_SHM_PRIV_TAG] ||
                           hdr->msg_len != len))) {
            tt_shm_recv_mismatch(ep, ch, req, hdr);
            count++;
            continue;
        }

        src = frag <= TT_SHM_INLINE_MAX
                  ? (const char *)hdr->inl
                  : fifo->data + (size_t)fifo->idx * fifo->slot_size;
        if (frag == 0) {
            /* a 0-byte message: nothing to copy or deliver */
        } else if (req->deliver != NULL) {
            req->deliver(req, done, src, frag);
        } else {
            memcpy((char *)(uintptr_t)req->priv[TT_SHM_PRIV_BUF] + done, src,
                   frag);
        }
        done += frag;

        /* Release the slot as soon as it is read: the sender may refill it
         * while we copy the next one. */
        tt_shm_fifo_advance(fifo);
        atomic_store_explicit(fifo->tail, fifo->pos, memory_order_release);

        if (done == len) {
            tt_shm_queue_complete(&ch->recvq, TUTTI_SUCCESS);
            count++;
        } else {
            req->priv[TT_SHM_PRIV_DONE] = done;
        }
    }
    return count;
}

static void tt_shm_req_init(tt_req_t *req, const void *buf, size_t len,
                            uint64_t tag)
{
    req->status                 = TUTTI_INPROGRESS;
    req->priv[TT_SHM_PRIV_BUF]  = (uintptr_t)buf;
    req->priv[TT_SHM_PRIV_LEN]  = len;
    req->priv[TT_SHM_PRIV_TAG]  = tag;
    req->priv[TT_SHM_PRIV_DONE] = 0;
    req->priv[TT_SHM_PRIV_CMA]  = 0;
}

tutti_result_t tt_shm_isend(tt_ep_t *ep, const void *buf, size_t len,
                            uint64_t tag, tt_req_t *req)
{
    tt_shm_chan_t *ch = &ep->chan[TT_TAG_CHANNEL(tag)];
    int            pushed;

    if (buf == NULL && len > 0) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "shm: send of %zu bytes to peer %d from a NULL "
                            "buffer", len, ep->peer_rank);
    }
    tt_shm_req_init(req, buf, len, tag);

    /* Nothing queued ahead of it: copy now, and most sends end here. */
    pushed = ch->sendq.head == NULL ? tt_shm_send_push(&ch->tx, req)
                                    : TT_SHM_PUSH_FULL;
    if (pushed == TT_SHM_PUSH_DONE) {
        req->status = TUTTI_SUCCESS;
        return TUTTI_SUCCESS;
    }
    tt_shm_queue_push(pushed == TT_SHM_PUSH_PULL ? &ch->pullq : &ch->sendq,
                      req);
    tt_shm_ep_activate(ep);
    return TUTTI_SUCCESS;
}

tutti_result_t tt_shm_irecv(tt_ep_t *ep, void *buf, size_t len, uint64_t tag,
                            tt_req_t *req)
{
    tt_shm_chan_t *ch = &ep->chan[TT_TAG_CHANNEL(tag)];

    if (buf == NULL && len > 0 && req->deliver == NULL) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "shm: receive of %zu bytes from peer %d into a "
                            "NULL buffer without a deliver callback",
                            len, ep->peer_rank);
    }
    tt_shm_req_init(req, buf, len, tag);
    tt_shm_queue_push(&ch->recvq, req);

    /* The message may be waiting already: take it now. */
    if (ch->recvq.head == req) {
        tt_shm_recv_progress(ep, ch);
    }
    if (ch->recvq.head != NULL) {
        tt_shm_ep_activate(ep);
    }
    return TUTTI_SUCCESS;
}

/* Progresses both channels of an active endpoint; returns how many
 * requests ended, and *idle_p = 1 when none is left queued. */
static unsigned tt_shm_ep_progress(tt_ep_t *ep, int *idle_p)
{
    unsigned count = 0;
    int      c, idle = 1;

    for (c = 0; c < TT_NUM_CHANNELS; c++) {
        tt_shm_chan_t *ch = &ep->chan[c];

        if (ch->sendq.head != NULL) {
            count += tt_shm_send_progress(ch);
        }
        if (ch->recvq.head != NULL) {
            count += tt_shm_recv_progress(ep, ch);
        }
        if (ch->pullq.head != NULL) {
            count += tt_shm_pull_progress(ch);
        }
        idle &= ch->sendq.head == NULL && ch->recvq.head == NULL &&
                ch->pullq.head == NULL;
    }
    *idle_p = idle;
    return count;
}

unsigned tt_shm_progress(tt_tp_t *tp)
{
    unsigned count = 0;
    int      i, idle;

    /* Backwards, so that deactivating (swap with the last) skips nothing. */
    for (i = tp->nactive - 1; i >= 0; i--) {
        tt_ep_t *ep = tp->active[i];

        count += tt_shm_ep_progress(ep, &idle);
        if (idle) {
            tt_shm_ep_deactivate(ep);
        }
    }
    return count;
}

void tt_shm_ep_abort(tt_ep_t *ep)
{
    int c;

    for (c = 0; c < TT_NUM_CHANNELS; c++) {
        tt_shm_chan_t *ch = &ep->chan[c];

        while (ch->pullq.head != NULL) {
            tt_shm_queue_complete(&ch->pullq, TUTTI_ERR_ABORTED);
        }
        while (ch->sendq.head != NULL) {
            tt_shm_queue_complete(&ch->sendq, TUTTI_ERR_ABORTED);
        }
        while (ch->recvq.head != NULL) {
            tt_shm_queue_complete(&ch->recvq, TUTTI_ERR_ABORTED);
        }
    }
    if (ep->active >= 0) {
        tt_shm_ep_deactivate(ep);
    }
}
