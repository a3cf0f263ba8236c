/*
 * The libfabric transport's endpoints: connect (check the peer's published
 * address and insert it into the address vector) and ep_close (take every
 * pending request of the peer back from the provider), plus the list of
 * "orphan" operation contexts that ep_close had to give up on.
 *
 * connect does not talk to the peer: FI_EP_RDM connects on first use (for
 * tcp;ofi_rxm, rxm sets up the TCP connection behind the first send), so
 * it never waits for the peer to call anything.
 *
 * ep_close and the provider. Requests never posted are aborted at once.
 * Posted ones are cancelled with fi_cancel (receives; most providers cannot
 * cancel a send already under way) and the CQ is read for at most
 * TT_OFI_CLOSE_MS while their completions come back; each is reported as
 * TUTTI_ERR_ABORTED. A request still posted after that (a large send the
 * peer never receives) is reported aborted as well, and its context is
 * remembered as an orphan: should its completion ever arrive, it is
 * recognised by address and dropped without touching the request, which
 * the caller may have freed. When every request came back, the peer is
 * then removed from the address vector. When some did not (the peer is
 * gone, cut off, or never took them), the provider may still hold
 * transfers of its own for it that can no longer leave (with
 * tcp;ofi_rxm, the peer's RMA reads of our send buffers): tearing that
 * connection down is what crashes libfabric 1.17 (see "Closing after a
 * failure" in ofi_init.c), and fi_av_remove does it when
 * FI_AV_REMOVE_CLEANUP=1 is set. The peer then stays in the address
 * vector, and fini keeps the instance's fabric objects open.
 */
#include <inttypes.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "ofi.h"

/* Checks a published address against what we are and who sent it. */
static tutti_result_t tt_ofi_addr_check(const tt_tp_t *tp, int peer_rank,
                                        const void *buf, size_t len,
                                        tt_ofi_addr_t *addr)
{
    size_t head = offsetof(tt_ofi_addr_t, name);

    if (len <= head || len > sizeof(*addr)) {
        return tutti__error(TUTTI_ERR_REMOTE,
                            "ofi: address of peer %d has %zu bytes, "
                            "%zu to %zu expected", peer_rank, len, head + 1,
                            sizeof(*addr));
    }
    memset(addr, 0, sizeof(*addr));
    memcpy(addr, buf, len);
    if (addr->magic != TT_OFI_ADDR_MAGIC || addr->rank != peer_rank ||
        addr->name_len != len - head ||
        memchr(addr->prov, '\0', sizeof(addr->prov)) == NULL) {
        return tutti__error(TUTTI_ERR_REMOTE,
                            "ofi: address of peer %d is not an ofi address "
                            "of that rank", peer_rank);
    }
    if (strcmp(addr->prov, tp->addr.prov) != 0 ||
        addr->addr_format != tp->addr.addr_format ||
        addr->directed != tp->addr.directed) {
        return tutti__error(TUTTI_ERR_INVALID_USAGE,
                            "ofi: peer %d uses provider %s (address format "
                            "%u, %s receive) where rank %d uses %s (format "
                            "%u, %s): set TUTTI_OFI_PROVIDER alike on every "
                            "rank", peer_rank, addr->prov, addr->addr_format,
                            addr->directed ? "directed" : "undirected",
                            tp->rank, tp->addr.prov, tp->addr.addr_format,
                            tp->addr.directed ? "directed" : "undirected");
    }
    return TUTTI_SUCCESS;
}

tutti_result_t tt_ofi_connect(tt_tp_t *tp, const tt_peer_info_t *peer,
                              const void *buf, size_t len, tt_ep_t **ep_p)
{
    tt_ofi_addr_t addr;
    tt_ep_t      *ep;
    int           rc;

    if (peer->rank < 0 || peer->rank >= tp->nranks ||
        peer->rank == tp->rank) {
        return tutti__error(TUTTI_ERR_INVALID_USAGE,
                            "ofi: rank %d cannot connect to rank %d of %d",
                            tp->rank, peer->rank, tp->nranks);
    }
    if (tp->eps[peer->rank] != NULL) {
        return tutti__error(TUTTI_ERR_INVALID_USAGE,
                            "ofi: rank %d is already connected to peer %d",
                            tp->rank, peer->rank);
    }
    TT_CHECK(tt_ofi_addr_check(tp, peer->rank, buf, len, &addr));

    ep = calloc(1, sizeof(*ep));
    if (ep == NULL) {
        return tutti__error(TUTTI_ERR_NO_MEMORY,
                            "ofi: cannot allocate the endpoint to peer %d",
                            peer->rank);
    }
    rc = fi_av_insert(tp->av, addr.name, 1, &ep->fi_addr, 0, NULL);
    if (rc != 1) {
        free(ep);
        return tutti__error(TUTTI_ERR_SYSTEM,
                            "ofi: fi_av_insert of the %u-byte address of "
                            "peer %d failed: %s", addr.name_len, peer->rank,
                            fi_strerror(rc < 0 ? -rc : FI_EINVAL));
    }
    ep->tp        = tp;
    ep->src_addr  = tp->directed ? ep->fi_addr : FI_ADDR_UNSPEC;
    ep->peer_rank = peer->rank;
    tp->eps[peer->rank] = ep;
    TT_INFO(TT_SUB_OFI, "ofi: peer %d at fi_addr %" PRIu64 " (%u-byte "
            "address)", peer->rank, (uint64_t)ep->fi_addr, addr.name_len);
    *ep_p = ep;
    return TUTTI_SUCCESS;
}

/* Remembers the context of a request whose completion may still come. */
static void tt_ofi_orphan_add(tt_tp_t *tp, void *ctx)
{
    if (tp->norphans == tp->orphans_cap) {
        size_t cap = tp->orphans_cap == 0 ? 16 : 2 * tp->orphans_cap;
        void **p   = realloc(tp->orphans, cap * sizeof(*p));

        if (p == NULL) {
            /* Not fatal now; a late completion for it would be. */
            TT_WARN("ofi: cannot remember %zu abandoned requests",
                    tp->norphans + 1);
            return;
        }
        tp->orphans     = p;
        tp->orphans_cap = cap;
    }
    tp->orphans[tp->norphans++] = ctx;
}

int tt_ofi_orphan_take(tt_tp_t *tp, void *ctx)
{
    size_t i;

    for (i = 0; i < tp->norphans; i++) {
        if (tp->orphans[i] == ctx) {
            tp->orphans[i] = tp->orphans[--tp->norphans];
            return 1;
        }
    }
    return 0;
}

/* Takes the endpoint off the instance's list of endpoints with queued
 * requests. */
static void tt_ofi_pend_unlink(tt_ep_t *ep)
{
    tt_ep_t **link = &ep->tp->pend_eps;

    while (*link != NULL && *link != ep) {
        link = &(*link)->pend_next;
    }
    if (*link == ep) {
        *link = ep->pend_next;
    }
    ep->pend_linked = 0;
}

void tt_ofi_ep_close(tt_ep_t *ep)
{
    tt_tp_t  *tp = ep->tp;
    uint64_t  deadline;
    tt_req_t *req;
    size_t    orphans = 0;

    ep->closing = 1;
    if (ep->pend_linked) {
        tt_ofi_pend_unlink(ep);
    }
    while (ep->pendq.head != NULL) {
        req = ep->pendq.head;
        ep->pendq.head = req->next;
        req->status = TUTTI_ERR_ABORTED;
    }
    ep->pendq.tail = NULL;

    for (req = ep->posted; req != NULL; req = req->next) {
        /* -FI_ENOENT (already matched, or a send): its completion comes
         * on its own, or never */
        (void)fi_cancel(&tp->ep->fid, tt_ofi_req_ctx(req));
    }
    deadline = tutti__now_ns() + TT_OFI_CLOSE_MS * 1000000ull;
    while (ep->posted != NULL && tutti__now_ns() < deadline) {
        /* completions of other endpoints complete normally meanwhile */
        if (tt_ofi_cq_poll(tp, 4) == 0) {
            sched_yield();
        }
    }
    while ((req = ep->posted) != NULL) {
        tt_ofi_orphan_add(tp, tt_ofi_req_ctx(req));
        tt_ofi_req_done(req, TUTTI_ERR_ABORTED);
        orphans++;
    }
    if (orphans > 0) {
        tp->abandoned += orphans;
        TT_INFO(TT_SUB_OFI, "ofi: closed the endpoint to peer %d with %zu "
                "requests the provider did not give back within %d ms; "
                "the peer stays in the address vector", ep->peer_rank,
                orphans, TT_OFI_CLOSE_MS);
    } else {
        (void)fi_av_remove(tp->av, &ep->fi_addr, 1, 0);
    }
    tp->eps[ep->peer_rank] = NULL;
    free(ep);
}
