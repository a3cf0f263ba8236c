/*
 * The libfabric transport's data path: isend, irecv and progress. Nothing
 * here allocates or blocks: a request lives in the caller's tt_req_t (its
 * priv words hold the fi_context, see ofi.h), and the provider is driven
 * only from these calls (FI_PROGRESS_MANUAL where the provider offers it).
 *
 * A send of at most the provider's inject size goes out with
 * fi_tinjectdata and is complete at once; a larger one with fi_tsenddata
 * completes when its completion is read. A receive is fi_trecv for its
 * exact length. The core's tag rides as remote CQ data, and the receive's
 * completion is checked against it and against the posted length.
 *
 * Requests posted at once are kept within the provider's queue sizes
 * (tx_attr->size sends, rx_attr->size receives): some providers accept
 * more and then stall instead of answering -FI_EAGAIN. When the provider
 * answers -FI_EAGAIN (its queues are full, or a connection is still being
 * set up), or those sizes are reached, the request waits on its endpoint's
 * queue, and so does every later request of that endpoint; progress()
 * posts them again after reading the completion queue, which is what frees
 * the provider's resources. The sequence number (the libfabric tag, see
 * ofi.h) is taken when the request is first submitted, so the matching
 * stays the core's posting order per channel whatever happens afterwards.
 */
#include <inttypes.h>
#include <string.h>

#include "ofi.h"

/* Maps a libfabric error (negative) of a post to a tutti result. */
static tutti_result_t tt_ofi_post_result(ssize_t rc)
{
    switch (-rc) {
    case FI_ENOMEM:
        return TUTTI_ERR_NO_MEMORY;
    case FI_ECONNREFUSED:
    case FI_ECONNRESET:
    case FI_ECONNABORTED:
    case FI_EHOSTUNREACH:
    case FI_ENOTCONN:
    case FI_ESHUTDOWN:
        return TUTTI_ERR_REMOTE;
    default:
        return TUTTI_ERR_SYSTEM;
    }
}

static inline void tt_ofi_queue_push(tt_ofi_queue_t *q, tt_req_t *req)
{
    req->next = NULL;
    if (q->tail != NULL) {
        q->tail->next = req;
    } else {
        q->head = req;
    }
    q->tail = req;
}

static inline tt_req_t *tt_ofi_queue_pop(tt_ofi_queue_t *q)
{
    tt_req_t *req = q->head;

    q->head = req->next;
    if (q->head == NULL) {
        q->tail = NULL;
    }
    return req;
}

static inline void tt_ofi_queue_unpop(tt_ofi_queue_t *q, tt_req_t *req)
{
    req->next = q->head;
    q->head   = req;
    if (q->tail == NULL) {
        q->tail = req;
    }
}

static inline void tt_ofi_posted_link(tt_ep_t *ep, tt_req_t *req)
{
    req->next                  = ep->posted;
    req->priv[TT_OFI_PRIV_PREV] = 0;
    if (ep->posted != NULL) {
        ep->posted->priv[TT_OFI_PRIV_PREV] = (uintptr_t)req;
    }
    ep->posted = req;
    ep->nposted++;
}

void tt_ofi_req_done(tt_req_t *req, int status)
{
    tt_ep_t  *ep   = tt_ofi_req_ep(req);
    tt_req_t *prev = (tt_req_t *)(uintptr_t)req->priv[TT_OFI_PRIV_PREV];
    tt_req_t *next = req->next;

    if (prev != NULL) {
        prev->next = next;
    } else {
        ep->posted = next;
    }
    if (next != NULL) {
        next->priv[TT_OFI_PRIV_PREV] = (uintptr_t)prev;
    }
    ep->nposted--;
    if (tt_ofi_req_is_recv(req)) {
        ep->tp->rx_credits++;
    } else {
        ep->tp->tx_credits++;
    }
    /* Last: from here on the request is the caller's again. */
    req->status = status;
}

/*
 * Hands one request to the provider. Returns 1 when it completed at once
 * (an inject: the buffer is reusable on return, no completion follows),
 * 0 when it is posted (on ep->posted until its completion), or the
 * provider's negative error, -FI_EAGAIN included.
 *
 * desc is NULL: host memory needs no registration with the providers we
 * accept (no FI_MR_LOCAL). Device memory will plug in here: a buffer
 * registered with fi_mr_regattr and FI_MR_HMEM (iface and device from the
 * device plugin), its fi_mr_desc passed as desc.
 */
static ssize_t tt_ofi_post(tt_ep_t *ep, tt_req_t *req, void *buf,
                           uint64_t ftag)
{
    tt_tp_t *tp  = ep->tp;
    size_t   len = req->priv[TT_OFI_PRIV_LEN];
    uint64_t tag = req->priv[TT_OFI_PRIV_TAG];
    ssize_t  rc;

    if (tt_ofi_req_is_recv(req)) {
        if (tp->rx_credits == 0) {
            return -FI_EAGAIN;
        }
        rc = fi_trecv(tp->ep, buf, len, NULL, ep->src_addr, ftag, 0,
                      tt_ofi_req_ctx(req));
        tp->rx_credits -= rc == 0;
    } else if (len <= tp->inject_size) {
        rc = fi_tinjectdata(tp->ep, buf, len, tag, ep->fi_addr, ftag);
        if (rc == 0) {
            req->status = TUTTI_SUCCESS;
            return 1;
        }
        return rc;
    } else {
        if (tp->tx_credits == 0) {
            return -FI_EAGAIN;
        }
        rc = fi_tsenddata(tp->ep, buf, len, NULL, tag, ep->fi_addr, ftag,
                          tt_ofi_req_ctx(req));
        tp->tx_credits -= rc == 0;
    }
    if (rc == 0) {
        tt_ofi_posted_link(ep, req);
    }
    return rc;
}

static tutti_result_t tt_ofi_post_error(const tt_ep_t *ep,
                                        const tt_req_t *req, ssize_t rc)
{
    int recv = tt_ofi_req_is_recv(req);

    return tutti__error(tt_ofi_post_result(rc),
                        "ofi: %s of %" PRIu64 " bytes (tag %#" PRIx64
                        ") %s peer %d failed: %s",
                        recv ? "fi_trecv" : "fi_tsenddata",
                        req->priv[TT_OFI_PRIV_LEN],
                        req->priv[TT_OFI_PRIV_TAG], recv ? "from" : "to",
                        ep->peer_rank, fi_strerror((int)-rc));
}

static void tt_ofi_pend_link(tt_ep_t *ep)
{
    tt_tp_t *tp = ep->tp;

    if (!ep->pend_linked) {
        ep->pend_next   = tp->pend_eps;
        tp->pend_eps    = ep;
        ep->pend_linked = 1;
    }
}

/*
 * Posts a request now, or queues it behind the endpoint's waiting ones.
 * *seq is the direction's sequence number, used as ftag's source and
 * advanced once the request is accepted (posted or queued): a request
 * refused with an error leaves the numbering as it was.
 */
static tutti_result_t tt_ofi_submit(tt_ep_t *ep, tt_req_t *req, void *buf,
                                    uint64_t ftag, uint32_t *seq)
{
    if (ep->pendq.head == NULL) {
        ssize_t rc = tt_ofi_post(ep, req, buf, ftag);

        if (rc >= 0) {
            (*seq)++;
            return TUTTI_SUCCESS;
        }
        if (rc != -FI_EAGAIN) {
            return tt_ofi_post_error(ep, req, rc);
        }
    }
    (*seq)++;
    req->priv[TT_OFI_PRIV_BUF]  = (uintptr_t)buf;
    req->priv[TT_OFI_PRIV_FTAG] = ftag;
    tt_ofi_queue_push(&ep->pendq, req);
    tt_ofi_pend_link(ep);
    return TUTTI_SUCCESS;
}

tutti_result_t tt_ofi_isend(tt_ep_t *ep, const void *buf, size_t len,
                            uint64_t tag, tt_req_t *req)
{
    tt_tp_t  *tp = ep->tp;
    uint32_t *seq;

    if ((buf == NULL && len > 0) || len > tp->max_msg_size) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "ofi: send of %zu bytes to peer %d from %p: "
                            "NULL buffer or above the provider's limit of "
                            "%zu bytes", len, ep->peer_rank, buf,
                            tp->max_msg_size);
    }
    req->status                = TUTTI_INPROGRESS;
    req->priv[TT_OFI_PRIV_EP]  = (uintptr_t)ep;
    req->priv[TT_OFI_PRIV_TAG] = tag;
    req->priv[TT_OFI_PRIV_LEN] = len;
    seq = &ep->tx_seq[TT_TAG_CHANNEL(tag)];
    return tt_ofi_submit(ep, req, (void *)(uintptr_t)buf,
                         tt_ofi_ftag(tp, tag, tp->rank, *seq), seq);
}

tutti_result_t tt_ofi_irecv(tt_ep_t *ep, void *buf, size_t len, uint64_t tag,
                            tt_req_t *req)
{
    tt_tp_t  *tp = ep->tp;
    uint32_t *seq;

    /* No TT_CAP_RECV_DELIVER: req->deliver is ignored, buf is needed. */
    if ((buf == NULL && len > 0) || len > tp->max_msg_size) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "ofi: receive of %zu bytes from peer %d into "
                            "%p: NULL buffer or above the provider's limit "
                            "of %zu bytes", len, ep->peer_rank, buf,
                            tp->max_msg_size);
    }
    req->status                = TUTTI_INPROGRESS;
    req->priv[TT_OFI_PRIV_EP]  = (uintptr_t)ep | TT_OFI_REQ_RECV;
    req->priv[TT_OFI_PRIV_TAG] = tag;
    req->priv[TT_OFI_PRIV_LEN] = len;
    seq = &ep->rx_seq[TT_TAG_CHANNEL(tag)];
    return tt_ofi_submit(ep, req, buf,
                         tt_ofi_ftag(tp, tag, ep->peer_rank, *seq), seq);
}

/* Posts the queued requests again, per endpoint in order, until the
 * provider pushes back. Returns how many ended (injects, errors). */
static unsigned tt_ofi_pend_progress(tt_tp_t *tp)
{
    tt_ep_t **link  = &tp->pend_eps;
    unsigned  count = 0;
    tt_ep_t  *ep;

    while ((ep = *link) != NULL) {
        while (ep->pendq.head != NULL) {
            tt_req_t *req = tt_ofi_queue_pop(&ep->pendq);
            void     *buf = (void *)(uintptr_t)req->priv[TT_OFI_PRIV_BUF];
            ssize_t   rc  = tt_ofi_post(ep, req, buf,
                                        req->priv[TT_OFI_PRIV_FTAG]);

            if (rc == -FI_EAGAIN) {
                tt_ofi_queue_unpop(&ep->pendq, req);
                break;
            }
            if (rc < 0) {
                /* Accepted earlier, so it must end: with the error. */
                req->status = tt_ofi_post_error(ep, req, rc);
            }
            count += rc != 0;
        }
        if (ep->pendq.head == NULL) {
            *link           = ep->pend_next;
            ep->pend_linked = 0;
        } else {
            link = &ep->pend_next;
        }
    }
    return count;
}

/* A receive completed: its length and the core's tag must be the ones
 * posted. */
static int tt_ofi_recv_check(const tt_ep_t *ep, const tt_req_t *req,
                             const struct fi_cq_tagged_entry *e)
{
    uint64_t len = req->priv[TT_OFI_PRIV_LEN];
    uint64_t tag = req->priv[TT_OFI_PRIV_TAG];

    if (!(e->flags & FI_REMOTE_CQ_DATA) || e->data != tag || e->len != len) {
        return tutti__error(TUTTI_ERR_INVALID_USAGE,
                            "ofi: peer %d sent tag %#" PRIx64 " of %zu "
                            "bytes where tag %#" PRIx64 " of %" PRIu64
                            " bytes was expected: ranks ran different "
                            "collectives",
                            ep->peer_rank,
                            (e->flags & FI_REMOTE_CQ_DATA) ? e->data : 0,
                            e->len, tag, len);
    }
    return TUTTI_SUCCESS;
}

/* Completes the request of one completion; returns 1, or 0 when the
 * completion belongs to no live request. */
static unsigned tt_ofi_complete(tt_tp_t *tp,
                                const struct fi_cq_tagged_entry *e)
{
    tt_req_t *req;
    tt_ep_t  *ep;
    int       status = TUTTI_SUCCESS;

    if (e->op_context == NULL ||
        (tp->norphans > 0 && tt_ofi_orphan_take(tp, e->op_context))) {
        return 0;
    }
    req = tt_ofi_ctx_req(e->op_context);
    ep  = tt_ofi_req_ep(req);
    if (ep->closing) {
        status = TUTTI_ERR_ABORTED;
    } else if (tt_ofi_req_is_recv(req)) {
        status = tt_ofi_recv_check(ep, req, e);
    }
    tt_ofi_req_done(req, status);
    return 1;
}

/* Reads one error completion and fails its request with the reason. */
static unsigned tt_ofi_complete_error(tt_tp_t *tp)
{
    struct fi_cq_err_entry err = {0};
    const char            *why;
    char                   text[160];
    tt_req_t              *req;
    tt_ep_t               *ep;
    int                    status, recv, code;

    if (fi_cq_readerr(tp->cq, &err, 0) != 1) {
        return 0;
    }
    why = fi_cq_strerror(tp->cq, err.prov_errno, err.err_data, text,
                         sizeof(text));
    if (err.op_context == NULL) {
        /* an inject, or the provider's own traffic: nobody to tell */
        TT_WARN("ofi: error completion without a request: %s (%s)",
                fi_strerror(err.err), why != NULL ? why : "");
        return 0;
    }
    if (tp->norphans > 0 && tt_ofi_orphan_take(tp, err.op_context)) {
        return 0;
    }
    req  = tt_ofi_ctx_req(err.op_context);
    ep   = tt_ofi_req_ep(req);
    recv = tt_ofi_req_is_recv(req);
    code = err.err < 0 ? -err.err : err.err; /* shm reports it negative */
    if (ep->closing || code == FI_ECANCELED) {
        status = TUTTI_ERR_ABORTED;
    } else if (recv && code == FI_ETRUNC) {
        /* olen, the bytes that did not fit, is 0 where the provider
         * does not know */
        status = tutti__error(TUTTI_ERR_INVALID_USAGE,
                              "ofi: peer %d sent more than the %" PRIu64
                              " bytes of the receive posted with tag %#"
                              PRIx64 " (%zu more): ranks ran different "
                              "collectives", ep->peer_rank,
                              req->priv[TT_OFI_PRIV_LEN],
                              req->priv[TT_OFI_PRIV_TAG], err.olen);
    } else {
        status = tutti__error(TUTTI_ERR_REMOTE,
                              "ofi: %s of %" PRIu64 " bytes (tag %#" PRIx64
                              ") %s peer %d failed: %s (%s)",
                              recv ? "receive" : "send",
                              req->priv[TT_OFI_PRIV_LEN],
                              req->priv[TT_OFI_PRIV_TAG],
                              recv ? "from" : "to", ep->peer_rank,
                              fi_strerror(code),
                              why != NULL ? why : "no provider detail");
    }
    tt_ofi_req_done(req, status);
    return 1;
}

unsigned tt_ofi_cq_poll(tt_tp_t *tp, int max)
{
    struct fi_cq_tagged_entry ent[TT_OFI_CQ_BATCH];
    unsigned                  count = 0;
    int                       b;

    for (b = 0; b < max; b++) {
        ssize_t n = fi_cq_read(tp->cq, ent, TT_OFI_CQ_BATCH);
        ssize_t i;

        if (n == -FI_EAVAIL) {
            count += tt_ofi_complete_error(tp);
            continue;
        }
        if (n == -FI_EAGAIN) {
            break;
        }
        if (n < 0) {
            /* The CQ itself failed: nothing completes any more, and the
             * executor's timeout reports the requests; say why once. */
            if (!tp->cq_failed) {
                tp->cq_failed = 1;
                TT_WARN("ofi: fi_cq_read failed: %s", fi_strerror((int)-n));
            }
            break;
        }
        for (i = 0; i < n; i++) {
            count += tt_ofi_complete(tp, &ent[i]);
        }
        if (n < TT_OFI_CQ_BATCH) {
            break;
        }
    }
    return count;
}

unsigned tt_ofi_progress(tt_tp_t *tp)
{
    /* Completions first: they free what the queued requests wait for. */
    unsigned count = tt_ofi_cq_poll(tp, 4);

    if (tp->pend_eps != NULL) {
        count += tt_ofi_pend_progress(tp);
    }
    return count;
}
