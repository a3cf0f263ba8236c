/*
 * The libfabric transport's life cycle and its ops table: the choice of a
 * provider (fi_getinfo), the fabric objects of one instance (fabric,
 * domain, address vector, completion queue, endpoint: opened in that order
 * and closed in reverse by fini, unless a failure left transfers behind:
 * see "Closing after a failure"), the address it publishes and the wait
 * support (wait_fd, arm). Endpoints
 * are in ofi_ep.c, the data path in ofi_progress.c, the tag scheme and the
 * request layout in ofi.h.
 *
 * Provider choice. TUTTI_OFI_PROVIDER names one ("tcp;ofi_rxm", "tcp",
 * "udp;ofi_rxd", ...; libfabric matches a layered name by its core too);
 * empty means the first entry fi_getinfo ranks best among those that fit.
 * Required: FI_EP_RDM, FI_TAGGED, remote CQ data of 8 bytes (cq_data_size;
 * the core's tag travels there), no FI_MR_LOCAL (the data path registers
 * nothing), and no mode bit but FI_CONTEXT (req->priv holds a struct
 * fi_context; a provider wanting the 64-byte FI_CONTEXT2 would leave no
 * room for the request's own state, and is refused). Preferred, tried first:
 * FI_DIRECTED_RECV, then FI_PROGRESS_MANUAL for data. Asked for:
 * FI_THREAD_DOMAIN (one thread uses an instance at a time: the provider
 * may skip its locks) and FI_AV_TABLE. An automatic choice passes over
 * the providers of tt_ofi_skipped (shm, sockets, udp;ofi_rxd), with the
 * reason beside each. Providers that need hardware are never named here:
 * fi_getinfo lists them only where their hardware is.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config.h"
#include "ofi.h"
#include "ofi_ops.h"

/* One set of preferences handed to fi_getinfo, best first. */
typedef struct tt_ofi_try {
    int              directed;
    enum fi_progress progress;
} tt_ofi_try_t;

static const tt_ofi_try_t tt_ofi_tries[] = {
    {.directed = 1, .progress = FI_PROGRESS_MANUAL},
    {.directed = 1, .progress = FI_PROGRESS_UNSPEC},
    {.directed = 0, .progress = FI_PROGRESS_MANUAL},
    {.directed = 0, .progress = FI_PROGRESS_UNSPEC},
};

static struct fi_info *tt_ofi_hints(const char *prov, const tt_ofi_try_t *t)
{
    struct fi_info *hints = fi_allocinfo();

    if (hints == NULL) {
        return NULL;
    }
    /* remote CQ data is no capability bit: cq_data_size says it */
    hints->caps = FI_TAGGED | FI_SEND | FI_RECV |
                  (t->directed ? FI_DIRECTED_RECV : 0);
    hints->mode                        = FI_CONTEXT;
    hints->ep_attr->type               = FI_EP_RDM;
    hints->domain_attr->threading      = FI_THREAD_DOMAIN;
    hints->domain_attr->av_type        = FI_AV_TABLE;
    hints->domain_attr->data_progress  = t->progress;
    /* Host memory only, unregistered. FI_HMEM (device memory) will add
     * FI_HMEM to caps and FI_MR_HMEM | FI_MR_LOCAL here, and register the
     * buffers the device plugin hands over (see tt_ofi_post). */
    hints->domain_attr->mr_mode        = 0;
    if (prov[0] != '\0') {
        hints->fabric_attr->prov_name = strdup(prov);
        if (hints->fabric_attr->prov_name == NULL) {
            fi_freeinfo(hints);
            return NULL;
        }
    }
    return hints;
}

/*
 * Providers an automatic choice passes over, and why (libfabric 1.17, as
 * measured by tests/transport/test_ofi.c). Named in TUTTI_OFI_PROVIDER,
 * they are used all the same.
 */
static const char *const tt_ofi_skipped[] = {
    "shm",         /* reaches only this host; reachable() promises all */
    "sockets",     /* deprecated; drops the CQ data of some 64 KiB+ messages */
    "udp;ofi_rxd", /* stalls under sustained two-way traffic, and reports a
                    * truncated receive as a success */
};

/* Whether an entry fi_getinfo returned is one this transport can use. */
static int tt_ofi_info_fits(const struct fi_info *fi, int automatic)
{
    const char *name = fi->fabric_attr->prov_name;
    size_t      i;

    for (i = 0; automatic && name != NULL &&
                i < TT_ARRAY_SIZE(tt_ofi_skipped);
         i++) {
        if (strcmp(name, tt_ofi_skipped[i]) == 0) {
            return 0;
        }
    }
    return fi->domain_attr->cq_data_size >= sizeof(uint64_t) &&
           !(fi->domain_attr->mr_mode & FI_MR_LOCAL) &&
           (fi->mode & ~(uint64_t)FI_CONTEXT) == 0 &&
           (fi->caps & FI_TAGGED);
}

/*
 * Whether the entry's source address serves this host only: loopback, or
 * IPv6 link-local (whose scope id is an interface index of this host).
 */
static int tt_ofi_addr_host_bound(const struct fi_info *fi)
{
    const struct sockaddr *sa = fi->src_addr;

    if (sa == NULL || fi->src_addrlen < sizeof(*sa)) {
        return 0;
    }
    if (sa->sa_family == AF_INET &&
        fi->src_addrlen >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *sin = fi->src_addr;

        return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6 &&
        fi->src_addrlen >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *sin6 = fi->src_addr;

        return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr) ||
               IN6_IS_ADDR_LINKLOCAL(&sin6->sin6_addr);
    }
    return 0;
}

/*
 * The first entry of list this transport can use; when the ranks span
 * hosts, one whose address the other hosts can reach if there is any
 * (fi_getinfo lists an entry per interface, "lo" among them).
 */
static struct fi_info *tt_ofi_pick(struct fi_info *list, int automatic,
                                   int spread)
{
    struct fi_info *fi, *first = NULL;

    for (fi = list; fi != NULL; fi = fi->next) {
        if (!tt_ofi_info_fits(fi, automatic)) {
            continue;
        }
        if (!spread || !tt_ofi_addr_host_bound(fi)) {
            return fi;
        }
        if (first == NULL) {
            first = fi;
        }
    }
    return first;
}

/* Picks the provider: a copy of the chosen fi_info into *info_p. */
static tutti_result_t tt_ofi_choose(const char *prov, int spread,
                                    struct fi_info **info_p)
{
    int    automatic = prov[0] == '\0';
    int    rc        = -FI_ENODATA;
    size_t t;

    for (t = 0; t < TT_ARRAY_SIZE(tt_ofi_tries); t++) {
        struct fi_info *hints = tt_ofi_hints(prov, &tt_ofi_tries[t]);
        struct fi_info *list  = NULL, *fi;

        if (hints == NULL) {
            return tutti__error(TUTTI_ERR_NO_MEMORY,
                                "ofi: cannot allocate fi_getinfo hints");
        }
        rc = fi_getinfo(TT_OFI_API_VERSION, NULL, NULL, 0, hints, &list);
        fi_freeinfo(hints);
        if (rc == -FI_ENODATA) {
            continue;
        }
        if (rc != 0) {
            break;
        }
        fi = tt_ofi_pick(list, automatic, spread);
        if (fi != NULL) {
            *info_p = fi_dupinfo(fi);
            fi_freeinfo(list);
            if (*info_p == NULL) {
                return tutti__error(TUTTI_ERR_NO_MEMORY,
                                    "ofi: cannot copy the provider's info");
            }
            return TUTTI_SUCCESS;
        }
        fi_freeinfo(list);
        rc = -FI_ENODATA;
    }
    return tutti__error(TUTTI_ERR_UNSUPPORTED,
                        "ofi: no libfabric provider%s%s%s offers reliable "
                        "tagged messages with 8 bytes of remote CQ data and "
                        "no local memory registration (fi_getinfo: %s); "
                        "see fi_info -t FI_EP_RDM -c FI_TAGGED",
                        automatic ? "" : " named '",
                        automatic ? "" : prov, automatic ? "" : "'",
                        fi_strerror(-rc));
}

/*
 * Opens the completion queue, with a wait fd when the provider has one
 * (wait_fd/arm), else without. Measured here with tcp;ofi_rxm, the wait fd
 * costs no bandwidth (allreduce busbw within 5% either way, 1 to 16 MiB),
 * though the provider then signals it on completions and polls its sockets
 * through epoll.
 */
static tutti_result_t tt_ofi_cq_open(tt_tp_t *tp)
{
    struct fi_cq_attr attr = {
        .size     = tp->info->tx_attr->size + tp->info->rx_attr->size,
        .format   = FI_CQ_FORMAT_TAGGED,
        .wait_obj = FI_WAIT_FD,
    };
    int rc;

    rc = fi_cq_open(tp->domain, &attr, &tp->cq, NULL);
    if (rc != 0) {
        attr.wait_obj = FI_WAIT_NONE;
        rc            = fi_cq_open(tp->domain, &attr, &tp->cq, NULL);
    }
    if (rc != 0) {
        return tutti__error(TUTTI_ERR_SYSTEM,
                            "ofi: fi_cq_open (%zu entries) failed: %s",
                            attr.size, fi_strerror(-rc));
    }
    if (attr.wait_obj == FI_WAIT_FD &&
        fi_control(&tp->cq->fid, FI_GETWAIT, &tp->wait_fd) != 0) {
        tp->wait_fd = -1;
    }
    return TUTTI_SUCCESS;
}

/* fabric, domain, AV, CQ, endpoint (bound to both, enabled), its name. */
static tutti_result_t tt_ofi_open(tt_tp_t *tp)
{
    struct fi_av_attr av_attr = {
        .type  = FI_AV_TABLE,
        .count = (size_t)tp->nranks,
    };
    size_t      len = sizeof(tp->addr.name);
    const char *what;
    int         rc;

    what = "fi_fabric";
    rc   = fi_fabric(tp->info->fabric_attr, &tp->fabric, NULL);
    if (rc == 0) {
        what = "fi_domain";
        rc   = fi_domain(tp->fabric, tp->info, &tp->domain, NULL);
    }
    if (rc == 0) {
        what = "fi_av_open";
        rc   = fi_av_open(tp->domain, &av_attr, &tp->av, NULL);
    }
    if (rc != 0) {
        return tutti__error(TUTTI_ERR_SYSTEM, "ofi: %s (provider %s) "
                            "failed: %s", what,
                            tp->info->fabric_attr->prov_name,
                            fi_strerror(-rc));
    }
    TT_CHECK(tt_ofi_cq_open(tp));

    what = "fi_endpoint";
    rc   = fi_endpoint(tp->domain, tp->info, &tp->ep, NULL);
    if (rc == 0) {
        what = "fi_ep_bind (AV)";
        rc   = fi_ep_bind(tp->ep, &tp->av->fid, 0);
    }
    if (rc == 0) {
        what = "fi_ep_bind (CQ)";
        rc   = fi_ep_bind(tp->ep, &tp->cq->fid, FI_TRANSMIT | FI_RECV);
    }
    if (rc == 0) {
        what = "fi_enable";
        rc   = fi_enable(tp->ep);
    }
    if (rc == 0) {
        what = "fi_getname";
        rc   = fi_getname(&tp->ep->fid, tp->addr.name, &len);
    }
    if (rc != 0) {
        return tutti__error(TUTTI_ERR_SYSTEM, "ofi: %s (provider %s) "
                            "failed: %s%s", what,
                            tp->info->fabric_attr->prov_name,
                            fi_strerror(-rc),
                            rc == -FI_ETOOSMALL
                                ? ": the address exceeds TT_ADDR_MAX"
                                : "");
    }
    tp->addr.name_len = (uint16_t)len;
    return TUTTI_SUCCESS;
}

static void tt_ofi_fini(tt_tp_t *tp);

static tutti_result_t tt_ofi_init(const tt_tp_params_t *params,
                                  tt_tp_t **tp_p)
{
    const struct fi_info *fi;
    tutti_result_t        status;
    tt_tp_t              *tp;

    tp = calloc(1, sizeof(*tp));
    if (tp == NULL) {
        return tutti__error(TUTTI_ERR_NO_MEMORY,
                            "ofi: cannot allocate the instance");
    }
    tp->rank    = params->rank;
    tp->nranks  = params->nranks;
    tp->wait_fd = -1;
    tp->eps     = calloc((size_t)tp->nranks, sizeof(tt_ep_t *));
    if (tp->eps == NULL) {
        status = tutti__error(TUTTI_ERR_NO_MEMORY,
                              "ofi: cannot allocate %d endpoint slots",
                              tp->nranks);
        goto err_fini;
    }
    TT_CHECK_GOTO(tt_ofi_choose(params->config->ofi_provider,
                                params->nlocal < params->nranks, &tp->info),
                  status, err_fini);
    fi               = tp->info;
    tp->directed     = (fi->caps & FI_DIRECTED_RECV) != 0;
    tp->inject_size  = fi->tx_attr->inject_size;
    tp->tx_credits   = TT_MAX(fi->tx_attr->size, 1);
    tp->rx_credits   = TT_MAX(fi->rx_attr->size, 1);
    tp->max_msg_size = fi->ep_attr->max_msg_size;
    TT_CHECK_GOTO(tt_ofi_open(tp), status, err_fini);

    tp->addr.magic       = TT_OFI_ADDR_MAGIC;
    tp->addr.rank        = tp->rank;
    tp->addr.addr_format = fi->addr_format;
    tp->addr.directed    = (uint8_t)tp->directed;
    snprintf(tp->addr.prov, sizeof(tp->addr.prov), "%s",
             fi->fabric_attr->prov_name);
    tp->addr_len = offsetof(tt_ofi_addr_t, name) + tp->addr.name_len;

    TT_INFO(TT_SUB_OFI,
            "ofi: provider %s, fabric %s, domain %s (%s): %s receive, %s "
            "data progress, inject up to %zu bytes, CQ wait fd %s",
            fi->fabric_attr->prov_name, fi->fabric_attr->name,
            fi->domain_attr->name,
            params->config->ofi_provider[0] != '\0' ? "TUTTI_OFI_PROVIDER"
                                                    : "best available",
            tp->directed ? "directed" : "tag-encoded source",
            fi->domain_attr->data_progress == FI_PROGRESS_MANUAL ? "manual"
                                                                 : "auto",
            tp->inject_size, tp->wait_fd >= 0 ? "yes" : "no");
    *tp_p = tp;
    return TUTTI_SUCCESS;

err_fini:
    tt_ofi_fini(tp);
    return status;
}

/* Closes one fabric object, saying so if the provider objects. */
static void tt_ofi_close(struct fid *fid, const char *what)
{
    int rc;

    if (fid == NULL) {
        return;
    }
    rc = fi_close(fid);
    if (rc != 0) {
        TT_INFO(TT_SUB_OFI, "ofi: closing the %s failed: %s", what,
                fi_strerror(-rc));
    }
}

/*
 * Closing after a failure. When ep_close gave up on requests (a peer died
 * or was cut off mid-transfer), the provider still holds transfers for
 * that peer which can no longer leave, and closing the endpoint makes it
 * cancel them. libfabric 1.17's tcp;ofi_rxm crashes there: above rxm's
 * eager limit a message goes by rendezvous, the receiver RMA-reading the
 * sender's buffer, and the read response that the sender's tcp queues
 * carries neither a context nor tcp's "internal" mark. Cancelled by
 * fi_close (rxm closes each tcp connection, tcp flushes its queues), it
 * becomes an error completion with a NULL context, which
 * rxm_handle_comp_error dereferences: SIGSEGV in fi_close of the
 * endpoint, seen in about 1 run of 5 of the multihost link_cut test, on
 * the isolated rank and at times on one of its peers. Nothing the
 * transport can call empties that queue first (tcp's fi_cancel covers
 * receives only, and the socket behind it no longer drains).
 *
 * So such an instance keeps its fabric objects open until the process
 * exits. With manual progress (tcp;ofi_rxm has it, and it is asked for
 * first) nothing progresses them again, so the provider neither touches
 * the caller's buffers nor reports anything any more. They stay on a
 * list, so that leak checkers see them as reachable. An instance whose
 * requests all came back closes as usual.
 */
static _Atomic(tt_tp_t *) tt_ofi_kept;

static void tt_ofi_keep(tt_tp_t *tp)
{
    tt_tp_t *head = atomic_load(&tt_ofi_kept);

    do {
        tp->kept_next = head;
    } while (!atomic_compare_exchange_weak(&tt_ofi_kept, &head, tp));
}

static void tt_ofi_fini(tt_tp_t *tp)
{
    int i;

    for (i = 0; tp->eps != NULL && i < tp->nranks; i++) {
        if (tp->eps[i] != NULL) {
            tt_ofi_ep_close(tp->eps[i]);
        }
    }
    free(tp->orphans);
    free(tp->eps);
    tp->orphans  = NULL;
    tp->norphans = 0;
    tp->eps      = NULL;
    if (tp->abandoned > 0) {
        TT_INFO(TT_SUB_OFI, "ofi: %zu requests were given up on: the %s "
                "endpoint and its fabric objects stay open until exit",
                tp->abandoned, tp->addr.prov);
        tt_ofi_keep(tp);
        return;
    }
    tt_ofi_close(tp->ep != NULL ? &tp->ep->fid : NULL, "endpoint");
    tt_ofi_close(tp->cq != NULL ? &tp->cq->fid : NULL, "completion queue");
    tt_ofi_close(tp->av != NULL ? &tp->av->fid : NULL, "address vector");
    tt_ofi_close(tp->domain != NULL ? &tp->domain->fid : NULL, "domain");
    tt_ofi_close(tp->fabric != NULL ? &tp->fabric->fid : NULL, "fabric");
    if (tp->info != NULL) {
        fi_freeinfo(tp->info);
    }
    free(tp);
}

static tutti_result_t tt_ofi_address(tt_tp_t *tp, void *buf, size_t *len_p)
{
    if (*len_p < tp->addr_len) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "ofi: address buffer of %zu bytes, %zu needed",
                            *len_p, tp->addr_len);
    }
    memcpy(buf, &tp->addr, tp->addr_len);
    *len_p = tp->addr_len;
    return TUTTI_SUCCESS;
}

/* A network transport: every other rank, on this host or another. */
static int tt_ofi_reachable(tt_tp_t *tp, const tt_peer_info_t *peer)
{
    return peer->rank != tp->rank;
}

/*
 * The CQ's wait fd: readable when a completion may be pending. Providers
 * without one (fi_cq_open refused FI_WAIT_FD) answer
 * TUTTI_ERR_UNSUPPORTED, and the caller polls instead.
 */
static tutti_result_t tt_ofi_wait_fd(tt_tp_t *tp, int *fd_p)
{
    if (tp->wait_fd < 0) {
        return tutti__error(TUTTI_ERR_UNSUPPORTED,
                            "ofi: provider %s gives its completion queue "
                            "no wait fd", tp->addr.prov);
    }
    *fd_p = tp->wait_fd;
    return TUTTI_SUCCESS;
}

/*
 * Before blocking on the wait fd: fi_trywait says whether that is safe,
 * that is, whether no completion is pending (and lets the provider arm
 * its own descriptors). TUTTI_INPROGRESS: progress() first.
 */
static tutti_result_t tt_ofi_arm(tt_tp_t *tp)
{
    struct fid *fids[1] = {&tp->cq->fid};
    int         rc;

    if (tp->wait_fd < 0) {
        return tutti__error(TUTTI_ERR_UNSUPPORTED,
                            "ofi: provider %s has no wait fd to arm",
                            tp->addr.prov);
    }
    rc = fi_trywait(tp->fabric, fids, 1);
    if (rc == 0) {
        return TUTTI_SUCCESS;
    }
    if (rc == -FI_EAGAIN) {
        return TUTTI_INPROGRESS;
    }
    return tutti__error(TUTTI_ERR_SYSTEM, "ofi: fi_trywait failed: %s",
                        fi_strerror(-rc));
}

const tt_transport_ops_t tt_ofi_ops = {
    .size         = sizeof(tt_transport_ops_t),
    .name         = "ofi",
    .caps         = TT_CAP_WAIT_FD, /* no TT_CAP_RECV_DELIVER */
    .init         = tt_ofi_init,
    .fini         = tt_ofi_fini,
    .address      = tt_ofi_address,
    .reachable    = tt_ofi_reachable,
    .connect      = tt_ofi_connect,
    .connect_done = NULL,
    .isend        = tt_ofi_isend,
    .irecv        = tt_ofi_irecv,
    .progress     = tt_ofi_progress,
    .ep_close     = tt_ofi_ep_close,
    .wait_fd      = tt_ofi_wait_fd,
    .arm          = tt_ofi_arm,
    /* Over 1 Gbit/s links of the namespace bed (tbf, 20 ms queue), 2-rank
     * allreduce at 16-64 MiB over tcp;ofi_rxm reached 94% of the link with
     * 64 KiB slices, 84-87% with 128 KiB, 62% with 256 KiB and 51-54% with
     * 1 MiB; over loopback TCP, 1 MiB slices reached 80-115% of
     * fi_pingpong, 64 KiB ones less (noisy). The link is the closer model
     * of a real network; TUTTI_SLICE_SIZE overrides. */
    .slice_hint   = 64 * 1024,
};
