/*
 * The UCX transport's data path: isend and irecv over UCP tagged messages,
 * their completion callbacks, and progress(). Nothing here allocates: UCP
 * takes its requests from its own memory pool, and tutti's request keeps the
 * UCP request's handle and the bookkeeping in req->priv (ucx.h).
 *
 * A send that UCP completes at once (small, eager) writes req->status
 * before isend returns. Any other request joins its endpoint's pending list
 * and ends in a UCP callback, run from ucp_worker_progress() (or, for a
 * receive whose message was already there, from inside ucp_tag_recv_nbx),
 * which checks the outcome, frees the UCP request, counts the completion
 * for progress() and writes req->status last: after that store the request
 * belongs to the caller again.
 *
 * Receives match on the channel and source rank only and then check the
 * core's tag and the length (ucx.h explains why): a message of another tag,
 * or of another length than posted, fails the receive with
 * TUTTI_ERR_INVALID_USAGE.
 */
#include <inttypes.h>

#include "ucx.h"

/* Bound on ucp_worker_progress() calls per progress(): enough to drain a
 * burst of completions, small enough that the executor gets back to posting
 * the next slices (UCT's interfaces each handle a batch per call). */
#define TT_UCX_PROGRESS_MAX 64

static inline tt_ep_t *tt_ucx_req_ep(const tt_req_t *req)
{
    return (tt_ep_t *)(uintptr_t)req->priv[TT_UCX_PRIV_EP];
}

/* Puts a request about to be posted on its endpoint's pending list (at
 * the head: the order does not matter, only O(1) removal does). Its UCP
 * request is recorded once the post returns it. */
static inline void tt_ucx_req_track(tt_ep_t *ep, tt_req_t *req)
{
    req->priv[TT_UCX_PRIV_UREQ] = 0;
    req->priv[TT_UCX_PRIV_PREV] = 0;
    req->next                   = ep->pending;
    if (ep->pending != NULL) {
        ep->pending->priv[TT_UCX_PRIV_PREV] = (uintptr_t)req;
    }
    ep->pending = req;
    ep->npending++;
}

static inline void tt_ucx_req_untrack(tt_ep_t *ep, tt_req_t *req)
{
    tt_req_t *prev = (tt_req_t *)(uintptr_t)req->priv[TT_UCX_PRIV_PREV];

    if (prev != NULL) {
        prev->next = req->next;
    } else {
        ep->pending = req->next;
    }
    if (req->next != NULL) {
        req->next->priv[TT_UCX_PRIV_PREV] = (uintptr_t)prev;
    }
    req->next                   = NULL;
    req->priv[TT_UCX_PRIV_UREQ] = 0;
    ep->npending--;
}

/* The end of a tracked request, from its callback: UCP may recycle ureq
 * once the callback returns (freeing inside the callback is allowed). */
static inline void tt_ucx_req_done(tt_ep_t *ep, tt_req_t *req, void *ureq,
                                   int status)
{
    tt_ucx_req_untrack(ep, req);
    ucp_request_free(ureq);
    ep->tp->ncompleted++;
    req->status = status;
}

/*
 * The result of a request that UCP ended with an error other than
 * truncation. A closing endpoint's requests end ABORTED (the contract of
 * ep_close); a failed connection's end REMOTE, logged once per endpoint by
 * tt_ucx_ep_failed(); a cancellation is an abort.
 */
static int tt_ucx_error_status(tt_ep_t *ep, ucs_status_t st)
{
    if (ep->closing) {
        return TUTTI_ERR_ABORTED;
    }
    if (st == UCS_ERR_CANCELED && !ep->failed) {
        return TUTTI_ERR_ABORTED;
    }
    tt_ucx_ep_failed(ep, st);
    return TUTTI_ERR_REMOTE;
}

static void tt_ucx_send_cb(void *ureq, ucs_status_t st, void *user_data)
{
    tt_req_t *req = user_data;
    tt_ep_t  *ep  = tt_ucx_req_ep(req);

    tt_ucx_req_done(ep, req, ureq,
                    st == UCS_OK ? TUTTI_SUCCESS : tt_ucx_error_status(ep, st));
}

/* Checks a received message against the receive that met it. */
static int tt_ucx_recv_check(tt_ep_t *ep, const tt_req_t *req,
                             ucs_status_t st, const ucp_tag_recv_info_t *info)
{
    uint64_t want = req->priv[TT_UCX_PRIV_TAG];
    size_t   len  = (size_t)req->priv[TT_UCX_PRIV_LEN];

    if (st == UCS_ERR_MESSAGE_TRUNCATED) {
        return tutti__error(TUTTI_ERR_INVALID_USAGE,
                            "ucx: peer %d sent more than the %zu bytes "
                            "posted for tag %#" PRIx64 ": the ranks ran "
                            "different collectives",
                            ep->peer_rank, len, want & TT_UCX_TAG_MASK);
    }
    if (st != UCS_OK) {
        return tt_ucx_error_status(ep, st);
    }
    if (info->sender_tag != want || info->length != len) {
        return tutti__error(TUTTI_ERR_INVALID_USAGE,
                            "ucx: peer %d sent %zu bytes with tag %#" PRIx64
                            " where %zu bytes with tag %#" PRIx64 " were "
                            "expected: the ranks ran different collectives",
                            ep->peer_rank, info->length,
                            info->sender_tag & TT_UCX_TAG_MASK, len,
                            want & TT_UCX_TAG_MASK);
    }
    return TUTTI_SUCCESS;
}

static void tt_ucx_recv_cb(void *ureq, ucs_status_t st,
                           const ucp_tag_recv_info_t *info, void *user_data)
{
    tt_req_t *req = user_data;
    tt_ep_t  *ep  = tt_ucx_req_ep(req);

    tt_ucx_req_done(ep, req, ureq, tt_ucx_recv_check(ep, req, st, info));
}

/* A post refused by UCP, or on an endpoint known to have failed. UCP
 * refuses a post on an endpoint it found broken before telling us: that
 * endpoint is marked failed here (this message is the one logged). */
static tutti_result_t tt_ucx_post_error(tt_ep_t *ep, const char *what,
                                        size_t len, ucs_status_t st)
{
    if (st == UCS_ERR_NO_MEMORY) {
        return tutti__error(TUTTI_ERR_NO_MEMORY,
                            "ucx: no memory for a %s of %zu bytes with peer "
                            "%d", what, len, ep->peer_rank);
    }
    tt_ucx_ep_mark_failed(ep, st);
    return tutti__error(TUTTI_ERR_REMOTE,
                        "ucx: cannot post a %s of %zu bytes with peer %d: "
                        "%s", what, len, ep->peer_rank,
                        ucs_status_string(ep->failed ? ep->failed : st));
}

tutti_result_t tt_ucx_isend(tt_ep_t *ep, const void *buf, size_t len,
                            uint64_t tag, tt_req_t *req)
{
    ucp_request_param_t param = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK |
                        UCP_OP_ATTR_FIELD_USER_DATA |
                        UCP_OP_ATTR_FIELD_MEMORY_TYPE,
        .cb.send      = tt_ucx_send_cb,
        .user_data    = req,
        .memory_type  = UCS_MEMORY_TYPE_HOST, /* spares UCP a lookup */
    };
    ucs_status_ptr_t sp;

    tt_assert((tag & ~TT_UCX_TAG_MASK) == 0);
    if (ep->failed) {
        return tt_ucx_post_error(ep, "send", len, ep->failed);
    }
    req->priv[TT_UCX_PRIV_EP]   = (uintptr_t)ep;
    req->priv[TT_UCX_PRIV_LEN]  = len;
    req->priv[TT_UCX_PRIV_KIND] = TT_UCX_SEND;
    req->status                 = TUTTI_INPROGRESS;
    /* tracked before the post, like a receive: cheap, and safe whenever
     * UCP calls back early */
    tt_ucx_req_track(ep, req);
    sp = ucp_tag_send_nbx(ep->uep, buf, len, tt_ucx_tag(ep->tp->rank, tag),
                          &param);
    if (UCS_PTR_IS_PTR(sp)) {
        if (req->status == TUTTI_INPROGRESS) {
            req->priv[TT_UCX_PRIV_UREQ] = (uintptr_t)sp;
        }
        return TUTTI_SUCCESS;
    }
    tt_ucx_req_untrack(ep, req);
    if (sp != NULL) {
        return tt_ucx_post_error(ep, "send", len, UCS_PTR_STATUS(sp));
    }
    req->status = TUTTI_SUCCESS;
    return TUTTI_SUCCESS;
}

/*
 * Whether the peer's next message on this receive's channel is already
 * here, in the worker's unexpected queue. A peer closes its connection when
 * it destroys its communicator, and it may do so as soon as its last sends
 * ended locally: an eager message ends once it is in the socket, before
 * this rank has posted the receive for it. UCP then reports the closed
 * connection like a failed one, yet the messages it delivered before the
 * end are whole and still to be received.
 */
static int tt_ucx_delivered(const tt_ep_t *ep, uint64_t utag)
{
    ucp_tag_recv_info_t info;

    return ucp_tag_probe_nb(ep->tp->worker, utag, TT_UCX_MATCH_MASK, 0,
                            &info) != NULL;
}

tutti_result_t tt_ucx_irecv(tt_ep_t *ep, void *buf, size_t len, uint64_t tag,
                            tt_req_t *req)
{
    /* NO_IMM_CMPL: UCP 1.13 does not report the tag and length of a
     * receive it completes at once (recv_info stays unwritten), so every
     * receive ends in the callback, which then runs inside
     * ucp_tag_recv_nbx() when the message was already waiting. */
    ucp_request_param_t param = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK |
                        UCP_OP_ATTR_FIELD_USER_DATA |
                        UCP_OP_ATTR_FIELD_MEMORY_TYPE |
                        UCP_OP_ATTR_FLAG_NO_IMM_CMPL,
        .cb.recv      = tt_ucx_recv_cb,
        .user_data    = req,
        .memory_type  = UCS_MEMORY_TYPE_HOST,
    };
    uint64_t         utag = tt_ucx_tag(ep->peer_rank, tag);
    ucs_status_ptr_t sp;

    tt_assert((tag & ~TT_UCX_TAG_MASK) == 0);
    if (ep->failed) {
        if (!tt_ucx_delivered(ep, utag)) {
            return tt_ucx_post_error(ep, "receive", len, ep->failed);
        }
        if (ep->nlate++ == 0) {
            TT_INFO(TT_SUB_UCX, "ucx: the connection to peer %d has ended "
                    "(%s), but it delivered messages before: receiving "
                    "them", ep->peer_rank, ucs_status_string(ep->failed));
        }
    }
    req->priv[TT_UCX_PRIV_EP]   = (uintptr_t)ep;
    req->priv[TT_UCX_PRIV_LEN]  = len;
    req->priv[TT_UCX_PRIV_TAG]  = utag;
    req->priv[TT_UCX_PRIV_KIND] = TT_UCX_RECV;
    req->status                 = TUTTI_INPROGRESS;
    /* tracked before the post, so that an inline callback finds it */
    tt_ucx_req_track(ep, req);
    sp = ucp_tag_recv_nbx(ep->tp->worker, buf, len, utag, TT_UCX_MATCH_MASK,
                          &param);
    if (UCS_PTR_IS_ERR(sp)) {
        tt_ucx_req_untrack(ep, req);
        return tt_ucx_post_error(ep, "receive", len, UCS_PTR_STATUS(sp));
    }
    if (req->status == TUTTI_INPROGRESS) {
        req->priv[TT_UCX_PRIV_UREQ] = (uintptr_t)sp;
    }
    return TUTTI_SUCCESS;
}

/*
 * Drives the worker: ucp_worker_progress() until it finds nothing to do,
 * at most TT_UCX_PROGRESS_MAX times, then completes the requests of
 * endpoints whose connection failed meanwhile. Never blocks. Returns the
 * number of requests completed since the last call (the callbacks count
 * them, also when they ran inside ep_close).
 */
unsigned tt_ucx_progress(tt_tp_t *tp)
{
    uint64_t n;
    int      i;

    for (i = 0; i < TT_UCX_PROGRESS_MAX; i++) {
        if (ucp_worker_progress(tp->worker) == 0) {
            break;
        }
    }
    if (tp->nfailed > 0) {
        tt_ucx_handle_failures(tp);
    }
    n             = tp->ncompleted - tp->nreported;
    tp->nreported = tp->ncompleted;
    return (unsigned)n;
}

void tt_ucx_cancel_recvs(tt_ep_t *ep)
{
    tt_req_t *req, *next;

    /* ucp_request_cancel() runs the callback of a receive still waiting
     * for its match at once, which unlinks it: walk with a saved next. */
    for (req = ep->pending; req != NULL; req = next) {
        next = req->next;
        if (req->priv[TT_UCX_PRIV_KIND] == TT_UCX_RECV &&
            req->priv[TT_UCX_PRIV_UREQ] != 0) {
            ucp_request_cancel(ep->tp->worker,
                               (void *)(uintptr_t)req->priv[TT_UCX_PRIV_UREQ]);
        }
    }
}

void tt_ucx_detach_pending(tt_ep_t *ep, int status)
{
    while (ep->pending != NULL) {
        tt_req_t *req  = ep->pending;
        void     *ureq = (void *)(uintptr_t)req->priv[TT_UCX_PRIV_UREQ];

        /* No callback runs for a freed request: the transport's last word
         * on this one is the status written here. */
        tt_ucx_req_untrack(ep, req);
        if (ureq != NULL) {
            ucp_request_free(ureq);
        }
        req->status = status;
    }
}
