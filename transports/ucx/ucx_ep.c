/*
 * The UCX transport's endpoints: connect (a UCP endpoint to the peer's
 * published worker address, with peer error handling), the reaction to a
 * failed connection, and ep_close.
 *
 * Failure. Endpoints are created in UCP_ERR_HANDLING_MODE_PEER: when the
 * connection breaks (the peer died, a link went down), UCP calls the error
 * callback and fails the sends of that endpoint itself. Receives belong to
 * the worker, so progress() cancels the failed peer's receives afterwards,
 * and they too end with TUTTI_ERR_REMOTE; every later post on the endpoint
 * fails at once, but for a receive whose message had arrived before the
 * connection ended: a peer that destroyed its communicator right after its
 * last (eager) sends closes the connection the same way, and what it sent
 * is still received. Peer error handling is also what makes a forced close
 * safe for the other side (UCP's documentation requires it on both ends).
 *
 * The price: UCX 1.13 offers peer error handling on network transports
 * only (`ucx_info -e -u te -P intra` shows it), so two ranks of one host
 * forced onto UCX (TUTTI_TRANSPORT=ucx) talk over TCP loopback, not UCX's
 * shared memory. That is tutti's shm transport's job anyway; UCX is the
 * path between hosts, where a dead peer must surface as an error.
 *
 * Close. An idle, healthy endpoint is closed in flush mode, so that a send
 * which completed locally (its bytes copied into UCP's or the socket's
 * buffers) still reaches a peer that is finishing its last collective. An
 * endpoint with requests pending, or a failed one, is closed by force: its
 * sends end with UCS_ERR_CANCELED, its receives are cancelled, and all of
 * them are completed with TUTTI_ERR_ABORTED. Either way the wait is bounded
 * (TT_UCX_CLOSE_MS); whatever UCP still holds after that is detached from
 * its callbacks and completed as aborted.
 */
#include <inttypes.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "ucx.h"

/* Bound on the progress that ep_close spends on a flush or a cancellation:
 * a healthy idle endpoint flushes in microseconds, a dead one never. */
#define TT_UCX_CLOSE_MS 2000

int tt_ucx_ep_mark_failed(tt_ep_t *ep, ucs_status_t st)
{
    if (ep->failed) {
        return 0;
    }
    ep->failed = st;
    ep->tp->nfailed++;
    return 1;
}

void tt_ucx_ep_failed(tt_ep_t *ep, ucs_status_t st)
{
    if (!tt_ucx_ep_mark_failed(ep, st) || ep->closing) {
        return; /* known already, or our own close: nothing to report */
    }
    if (ep->npending > 0) {
        tutti__error(TUTTI_ERR_REMOTE,
                     "ucx: connection to peer %d failed with %d requests "
                     "pending: %s", ep->peer_rank, ep->npending,
                     ucs_status_string(st));
    } else {
        /* A peer that closed first, at the end of a run, looks the same. */
        tutti__error_quiet(TUTTI_ERR_REMOTE,
                           "ucx: connection to peer %d failed (no traffic "
                           "pending): %s", ep->peer_rank,
                           ucs_status_string(st));
    }
}

static void tt_ucx_ep_err_cb(void *arg, ucp_ep_h uep, ucs_status_t st)
{
    tt_ucx_slot_t *slot = arg;
    tt_ep_t       *ep   = slot->tp->eps[slot->rank];

    if (ep == NULL || ep->uep != uep) {
        return; /* the endpoint was closed already */
    }
    tt_ucx_ep_failed(ep, st);
}

void tt_ucx_handle_failures(tt_tp_t *tp)
{
    int r;

    tp->nfailed = 0;
    for (r = 0; r < tp->nranks; r++) {
        tt_ep_t *ep = tp->eps[r];

        if (ep != NULL && ep->failed && !ep->fail_seen) {
            ep->fail_seen = 1;
            tt_ucx_cancel_recvs(ep);
        }
    }
}

/* Checks a published address; points *waddr_p at its worker address. */
static tutti_result_t tt_ucx_addr_check(const tt_tp_t *tp, int peer_rank,
                                        const void *buf, size_t len,
                                        const void **waddr_p)
{
    tt_ucx_addr_hdr_t hdr;

    if (len < sizeof(hdr)) {
        return tutti__error(TUTTI_ERR_REMOTE,
                            "ucx: address of peer %d has %zu bytes, fewer "
                            "than its header", peer_rank, len);
    }
    memcpy(&hdr, buf, sizeof(hdr));
    if (hdr.magic != TT_UCX_ADDR_MAGIC || hdr.rank != peer_rank ||
        hdr.job_id != tp->job_id || hdr.len != len - sizeof(hdr) ||
        hdr.len == 0) {
        return tutti__error(TUTTI_ERR_REMOTE,
                            "ucx: address of peer %d (%zu bytes) is not a "
                            "UCX address of that rank in communicator "
                            "%016" PRIx64, peer_rank, len, tp->job_id);
    }
    if (hdr.tcp_seg != 0 && tp->tcp_seg != 0 && hdr.tcp_seg != tp->tcp_seg) {
        /* its TCP segments could overrun this rank's receive buffers */
        return tutti__error(TUTTI_ERR_INVALID_USAGE,
                            "ucx: peer %d runs UCX's TCP transport with other "
                            "segment sizes than rank %d: set "
                            "UCX_TCP_TX_SEG_SIZE and UCX_TCP_RX_SEG_SIZE "
                            "alike on every rank, or on none", peer_rank,
                            tp->rank);
    }
    *waddr_p = (const char *)buf + sizeof(hdr);
    return TUTTI_SUCCESS;
}

/*
 * Creates the UCP endpoint. UCP connects lazily (the wireup messages go out
 * with the first send, or when either side progresses), so this does not
 * wait for the peer.
 */
tutti_result_t tt_ucx_connect(tt_tp_t *tp, const tt_peer_info_t *peer,
                              const void *addr, size_t len, tt_ep_t **ep_p)
{
    ucp_ep_params_t params;
    const void     *waddr = NULL;
    tt_ep_t        *ep;
    ucs_status_t    st;

    if (peer->rank < 0 || peer->rank >= tp->nranks ||
        peer->rank == tp->rank) {
        return tutti__error(TUTTI_ERR_INVALID_USAGE,
                            "ucx: rank %d cannot connect to rank %d of %d",
                            tp->rank, peer->rank, tp->nranks);
    }
    if (tp->eps[peer->rank] != NULL) {
        return tutti__error(TUTTI_ERR_INVALID_USAGE,
                            "ucx: rank %d is already connected to peer %d",
                            tp->rank, peer->rank);
    }
    TT_CHECK(tt_ucx_addr_check(tp, peer->rank, addr, len, &waddr));

    ep = calloc(1, sizeof(*ep));
    if (ep == NULL) {
        return tutti__error(TUTTI_ERR_NO_MEMORY,
                            "ucx: cannot allocate the endpoint to peer %d",
                            peer->rank);
    }
    ep->tp        = tp;
    ep->peer_rank = peer->rank;
    params        = (ucp_ep_params_t){
        .field_mask      = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS |
                           UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                           UCP_EP_PARAM_FIELD_ERR_HANDLER,
        .address         = waddr,
        .err_mode        = UCP_ERR_HANDLING_MODE_PEER,
        .err_handler.cb  = tt_ucx_ep_err_cb,
        .err_handler.arg = &tp->slots[peer->rank],
    };
    st = ucp_ep_create(tp->worker, &params, &ep->uep);
    if (st != UCS_OK) {
        free(ep);
        return tutti__error(TUTTI_ERR_REMOTE,
                            "ucx: ucp_ep_create to peer %d (address of %zu "
                            "bytes) failed: %s", peer->rank,
                            len - sizeof(tt_ucx_addr_hdr_t),
                            ucs_status_string(st));
    }
    tp->eps[peer->rank] = ep;
    TT_INFO(TT_SUB_UCX, "ucx: endpoint to peer %d created (worker address "
            "of %zu bytes, peer error handling)", peer->rank,
            len - sizeof(tt_ucx_addr_hdr_t));
    *ep_p = ep;
    return TUTTI_SUCCESS;
}

/* Progresses until the close request ends or the deadline passes; returns
 * its status (UCS_INPROGRESS when it timed out). */
static ucs_status_t tt_ucx_close_wait(tt_tp_t *tp, void *ureq,
                                      uint64_t deadline)
{
    ucs_status_t st;

    while ((st = ucp_request_check_status(ureq)) == UCS_INPROGRESS &&
           tutti__now_ns() < deadline) {
        if (ucp_worker_progress(tp->worker) == 0) {
            sched_yield();
        }
    }
    return st;
}

void tt_ucx_ep_close(tt_ep_t *ep)
{
    tt_tp_t            *tp    = ep->tp;
    int                 force = ep->failed || ep->npending > 0;
    uint64_t            deadline;
    ucp_request_param_t param = {
        .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
        .flags        = force ? UCP_EP_CLOSE_FLAG_FORCE : 0,
    };
    ucs_status_ptr_t    sp;
    ucs_status_t        st;
    int                 pending = ep->npending;

    deadline    = tutti__now_ns() + TT_UCX_CLOSE_MS * 1000000ull;
    ep->closing = 1;
    tt_ucx_cancel_recvs(ep);
    sp = ucp_ep_close_nbx(ep->uep, &param);
    if (UCS_PTR_IS_PTR(sp)) {
        st = tt_ucx_close_wait(tp, sp, deadline);
        ucp_request_free(sp);
    } else {
        st = UCS_PTR_STATUS(sp);
    }
    /* Sends cancelled by the forced close complete through their
     * callbacks, here or inside ucp_ep_close_nbx. A receive that had
     * already met its message (a rendezvous under way) cannot be
     * cancelled; it gets the rest of the time to end. */
    while (ep->npending > 0 && tutti__now_ns() < deadline) {
        if (ucp_worker_progress(tp->worker) == 0) {
            sched_yield();
        }
    }
    if (ep->npending > 0) {
        TT_INFO(TT_SUB_UCX, "ucx: %d requests with peer %d did not end in "
                "%d ms of closing: detached from UCX as aborted",
                ep->npending, ep->peer_rank, TT_UCX_CLOSE_MS);
        tt_ucx_detach_pending(ep, TUTTI_ERR_ABORTED);
    }
    if (force) {
        TT_INFO(TT_SUB_UCX, "ucx: endpoint to peer %d closed by force%s, "
                "%d requests aborted: %s", ep->peer_rank,
                ep->failed ? " (the connection had failed)" : "", pending,
                ucs_status_string(st));
    } else {
        TT_INFO(TT_SUB_UCX, "ucx: endpoint to peer %d flushed and closed: "
                "%s", ep->peer_rank, ucs_status_string(st));
    }
    tp->eps[ep->peer_rank] = NULL;
    free(ep);
}
