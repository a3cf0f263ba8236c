/*
 * tutti-rawbw: what the raw transport moves between two processes, with
 * no tutti in the way. It is the reference bench/net-loopback holds
 * tutti's allreduce against.
 *
 * Why not only ucx_perftest and fi_pingpong: both measure one direction
 * at a time, while each rank of an allreduce sends and receives at once.
 * Over loopback TCP the "wire" is the CPUs' copies, which both
 * directions share, so a one-way figure is not what the transport can
 * give a two-way exchange. This tool measures both, from the same code:
 *
 *   --oneway   rank 0 sends, rank 1 receives (what ucx_perftest -t tag_bw
 *              measures; running both tools in one session validates this
 *              one);
 *   default    both ranks send and receive at once (an allreduce rank's
 *              traffic), reported per direction.
 *
 * Each iteration posts a window of W receives and W sends of one size,
 * each in its own buffer, then progresses until all have completed.
 * Progress busy-polls, as the raw tools do. A zero-byte exchange before
 * and after the timed loop lines the two ranks up; a rank's time runs
 * from its first to its second exchange, and the slower rank's figure is
 * printed. Ranks are forked (no launcher), exchange worker addresses
 * through pipes, and are bound to the first and second CPU they may run
 * on unless --bind none. When a rank fails, the other is killed at once
 * (it may be polling for a peer that is gone); a rank also ends itself
 * after RAWBW_TIMEOUT_S or when the parent dies.
 *
 *   tutti-rawbw ucx|ofi [--oneway] [-b MIN] [-e MAX] [-f FACTOR]
 *                       [-N ITERS] [-w WARMUP] [-W WINDOW] [--bind core|none]
 *                       [--peer-errors]
 *
 * ucx: UCP tag API, every UCX_* variable honoured (UCX_TLS=tcp for TCP).
 *      Endpoints skip peer error handling, as ucx_perftest's do, unless
 *      --peer-errors asks for it as tutti does (its cost over TCP, and
 *      what larger TCP segments win back: transports/ucx/ucx_init.c).
 * ofi: FI_EP_RDM tagged messages, provider TUTTI_OFI_PROVIDER or the
 *      first fi_getinfo offers ("tcp;ofi_rxm" for TCP), as tutti asks.
 *
 * Sizes take K, M and G suffixes, up to 1 TiB; -f 1 measures one size
 * (-b equal to -e). Output: one line per size, "size window GB/s" (GB =
 * 1e9 B), after "#" comment lines (UCX may add its own log lines). Exit
 * 0 on success, 1 on a transport error or a rank running past
 * RAWBW_TIMEOUT_S, 2 on usage.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef RAWBW_HAVE_UCX
#include <ucp/api/ucp.h>
#endif
#ifdef RAWBW_HAVE_OFI
#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_tagged.h>
#endif

#define RAWBW_TIMEOUT_S 300   /* one rank, all sizes */
#define RAWBW_MAX_WINDOW 64
#define RAWBW_ADDR_MAX 4096
#define RAWBW_SIZE_MAX (1ull << 40) /* 1 TiB: a bound, not a hint */
#define RAWBW_TAG_SYNC (1ull << 40) /* the zero-byte line-up messages */

typedef struct {
    int    oneway;
    size_t min, max;
    int    factor;
    int    iters, warmup, window;
    int    bind;
} rawbw_opts_t;

/* One raw transport, as the common loop drives it. post_* start one
 * operation whose completion poll() later counts; a post that returns 1
 * could not start for lack of resources and is retried after a poll. */
typedef struct rawbw_ops {
    const char *name;
    int (*init)(void **st, void *addr, size_t *addrlen);
    int (*connect)(void *st, const void *peer, size_t len);
    int (*post_send)(void *st, void *buf, size_t len, uint64_t tag, int slot);
    int (*post_recv)(void *st, void *buf, size_t len, uint64_t tag, int slot);
    int (*poll)(void *st); /* completions since the last call, or -1 */
    void (*fini)(void *st);
} rawbw_ops_t;

static double rawbw_now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int rawbw_full_io(int fd, void *p, size_t n, int out)
{
    char   *c = p;
    ssize_t r;

    while (n > 0) {
        r = out ? write(fd, c, n) : read(fd, c, n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return -1;
        }
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

/* ------------------------------------------------------------------ UCX */
#ifdef RAWBW_HAVE_UCX
/* --peer-errors: UCP_ERR_HANDLING_MODE_PEER, as tutti's endpoints ask */
static int rawbw_peer_errors;

typedef struct {
    ucp_context_h ctx;
    ucp_worker_h  worker;
    ucp_ep_h      ep;
    int           done; /* completions the callbacks counted */
    int           failed;
} rawbw_ucx_t;

static void rawbw_ucx_send_cb(void *req, ucs_status_t st, void *arg)
{
    rawbw_ucx_t *u = arg;

    u->failed |= (st != UCS_OK);
    u->done++;
    ucp_request_free(req);
}

static void rawbw_ucx_recv_cb(void *req, ucs_status_t st,
                              const ucp_tag_recv_info_t *info, void *arg)
{
    (void)info;
    rawbw_ucx_send_cb(req, st, arg);
}

static int rawbw_ucx_init(void **stp, void *addr, size_t *addrlen)
{
    ucp_params_t        up = {.field_mask = UCP_PARAM_FIELD_FEATURES,
                              .features   = UCP_FEATURE_TAG};
    ucp_worker_params_t wp = {.field_mask  = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
                              .thread_mode = UCS_THREAD_MODE_SINGLE};
    rawbw_ucx_t        *u  = calloc(1, sizeof(*u));
    ucp_config_t       *cfg;
    ucp_address_t      *a;
    size_t              len;

    if (u == NULL || ucp_config_read(NULL, NULL, &cfg) != UCS_OK) {
        free(u);
        return -1;
    }
    if (ucp_init(&up, cfg, &u->ctx) != UCS_OK) {
        ucp_config_release(cfg);
        free(u);
        return -1;
    }
    ucp_config_release(cfg);
    if (ucp_worker_create(u->ctx, &wp, &u->worker) != UCS_OK ||
        ucp_worker_get_address(u->worker, &a, &len) != UCS_OK) {
        fprintf(stderr, "rawbw: ucx worker setup failed\n");
        return -1;
    }
    if (len > *addrlen) {
        return -1;
    }
    memcpy(addr, a, len);
    *addrlen = len;
    ucp_worker_release_address(u->worker, a);
    *stp = u;
    return 0;
}

static int rawbw_ucx_connect(void *st, const void *peer, size_t len)
{
    rawbw_ucx_t    *u = st;
    ucp_ep_params_t ep = {.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS,
                          .address    = peer};

    (void)len;
    if (rawbw_peer_errors) {
        ep.field_mask |= UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE;
        ep.err_mode = UCP_ERR_HANDLING_MODE_PEER;
    }
    return ucp_ep_create(u->worker, &ep, &u->ep) == UCS_OK ? 0 : -1;
}

/* A request that finished inside the call counts at once; a pending one
 * counts from its callback, which also frees it. */
static int rawbw_ucx_started(rawbw_ucx_t *u, ucs_status_ptr_t r)
{
    if (UCS_PTR_IS_ERR(r)) {
        return -1;
    }
    if (r == NULL) {
        u->done++;
    }
    return 0;
}

/* The parameters of a send or receive: a callback that counts it on u. */
static ucp_request_param_t rawbw_ucx_param(rawbw_ucx_t *u)
{
    return (ucp_request_param_t){
        .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK |
                        UCP_OP_ATTR_FIELD_USER_DATA,
        .user_data    = u,
    };
}

static int rawbw_ucx_send(void *st, void *buf, size_t len, uint64_t tag,
                          int slot)
{
    rawbw_ucx_t        *u = st;
    ucp_request_param_t p = rawbw_ucx_param(u);

    (void)slot;
    p.cb.send = rawbw_ucx_send_cb;
    return rawbw_ucx_started(u, ucp_tag_send_nbx(u->ep, buf, len, tag, &p));
}

static int rawbw_ucx_recv(void *st, void *buf, size_t len, uint64_t tag,
                          int slot)
{
    rawbw_ucx_t        *u = st;
    ucp_request_param_t p = rawbw_ucx_param(u);

    (void)slot;
    p.cb.recv = rawbw_ucx_recv_cb;
    return rawbw_ucx_started(
        u, ucp_tag_recv_nbx(u->worker, buf, len, tag, ~(uint64_t)0, &p));
}

static int rawbw_ucx_poll(void *st)
{
    rawbw_ucx_t *u = st;
    int          n;

    ucp_worker_progress(u->worker);
    if (u->failed) {
        return -1;
    }
    n       = u->done;
    u->done = 0;
    return n;
}

static void rawbw_ucx_fini(void *st)
{
    rawbw_ucx_t *u = st;

    /* The process exits next; a flushing close would only wait on the
     * peer, which may already be gone. */
    ucp_worker_destroy(u->worker);
    ucp_cleanup(u->ctx);
    free(u);
}

static const rawbw_ops_t rawbw_ucx_ops = {
    "ucx", rawbw_ucx_init, rawbw_ucx_connect, rawbw_ucx_send,
    rawbw_ucx_recv, rawbw_ucx_poll, rawbw_ucx_fini,
};
#endif

/* ------------------------------------------------------------ libfabric */
#ifdef RAWBW_HAVE_OFI
typedef struct {
    struct fi_info    *info;
    struct fid_fabric *fabric;
    struct fid_domain *domain;
    struct fid_av     *av;
    struct fid_cq     *cq;
    struct fid_ep     *ep;
    fi_addr_t          peer;
    /* caller-owned request storage (FI_CONTEXT): sends, then receives */
    struct fi_context  ctx[2 * RAWBW_MAX_WINDOW + 2];
} rawbw_ofi_t;

static int rawbw_ofi_init(void **stp, void *addr, size_t *addrlen)
{
    struct fi_info   *hints = fi_allocinfo();
    struct fi_av_attr av    = {.type = FI_AV_TABLE};
    struct fi_cq_attr cq    = {.format = FI_CQ_FORMAT_TAGGED, .size = 1024};
    rawbw_ofi_t      *o     = calloc(1, sizeof(*o));
    const char       *prov  = getenv("TUTTI_OFI_PROVIDER");
    int               rc;

    if (hints == NULL || o == NULL) {
        return -1;
    }
    hints->caps                   = FI_TAGGED | FI_SEND | FI_RECV;
    hints->mode                   = FI_CONTEXT;
    hints->ep_attr->type          = FI_EP_RDM;
    hints->domain_attr->threading = FI_THREAD_DOMAIN;
    hints->domain_attr->mr_mode   = 0;
    if (prov != NULL && prov[0] != '\0') {
        hints->fabric_attr->prov_name = strdup(prov);
    }
    rc = fi_getinfo(FI_VERSION(1, 9), NULL, NULL, 0, hints, &o->info);
    fi_freeinfo(hints);
    if (rc != 0) {
        fprintf(stderr, "rawbw: fi_getinfo: %s\n", fi_strerror(-rc));
        return -1;
    }
    if ((rc = fi_fabric(o->info->fabric_attr, &o->fabric, NULL)) != 0 ||
        (rc = fi_domain(o->fabric, o->info, &o->domain, NULL)) != 0 ||
        (rc = fi_av_open(o->domain, &av, &o->av, NULL)) != 0 ||
        (rc = fi_cq_open(o->domain, &cq, &o->cq, NULL)) != 0 ||
        (rc = fi_endpoint(o->domain, o->info, &o->ep, NULL)) != 0 ||
        (rc = fi_ep_bind(o->ep, &o->av->fid, 0)) != 0 ||
        (rc = fi_ep_bind(o->ep, &o->cq->fid, FI_TRANSMIT | FI_RECV)) != 0 ||
        (rc = fi_enable(o->ep)) != 0 ||
        (rc = fi_getname(&o->ep->fid, addr, addrlen)) != 0) {
        fprintf(stderr, "rawbw: libfabric (%s) setup: %s\n",
                o->info->fabric_attr->prov_name, fi_strerror(-rc));
        return -1;
    }
    *stp = o;
    return 0;
}

static int rawbw_ofi_connect(void *st, const void *peer, size_t len)
{
    rawbw_ofi_t *o = st;

    (void)len;
    return fi_av_insert(o->av, peer, 1, &o->peer, 0, NULL) == 1 ? 0 : -1;
}

static int rawbw_ofi_posted(ssize_t rc)
{
    return rc == 0 ? 0 : rc == -FI_EAGAIN ? 1 : -1;
}

static int rawbw_ofi_send(void *st, void *buf, size_t len, uint64_t tag,
                          int slot)
{
    rawbw_ofi_t *o = st;

    return rawbw_ofi_posted(
        fi_tsend(o->ep, buf, len, NULL, o->peer, tag, &o->ctx[slot]));
}

static int rawbw_ofi_recv(void *st, void *buf, size_t len, uint64_t tag,
                          int slot)
{
    rawbw_ofi_t *o = st;

    return rawbw_ofi_posted(fi_trecv(o->ep, buf, len, NULL, o->peer, tag, 0,
                                     &o->ctx[RAWBW_MAX_WINDOW + 1 + slot]));
}

static int rawbw_ofi_poll(void *st)
{
    rawbw_ofi_t            *o = st;
    struct fi_cq_tagged_entry e[16];
    struct fi_cq_err_entry  err = {0};
    ssize_t                 n   = fi_cq_read(o->cq, e, 16);

    if (n == -FI_EAGAIN) {
        return 0;
    }
    if (n == -FI_EAVAIL) {
        fi_cq_readerr(o->cq, &err, 0);
        fprintf(stderr, "rawbw: completion error: %s\n",
                fi_strerror(err.err));
        return -1;
    }
    return n < 0 ? -1 : (int)n;
}

static void rawbw_ofi_fini(void *st)
{
    rawbw_ofi_t *o = st;

    fi_close(&o->ep->fid);
    fi_close(&o->cq->fid);
    fi_close(&o->av->fid);
    fi_close(&o->domain->fid);
    fi_close(&o->fabric->fid);
    fi_freeinfo(o->info);
    free(o);
}

static const rawbw_ops_t rawbw_ofi_ops = {
    "ofi", rawbw_ofi_init, rawbw_ofi_connect, rawbw_ofi_send,
    rawbw_ofi_recv, rawbw_ofi_poll, rawbw_ofi_fini,
};
#endif

/* ------------------------------------------------------------ the loop */

/* Posts, retrying a post the transport pushed back, then waits until
 * `want` completions have come in. */
static int rawbw_post(const rawbw_ops_t *ops, void *st, int send, void *buf,
                      size_t len, uint64_t tag, int slot, int *got)
{
    int rc, n;

    while ((rc = (send ? ops->post_send : ops->post_recv)(st, buf, len, tag,
                                                          slot)) == 1) {
        if ((n = ops->poll(st)) < 0) {
            return -1;
        }
        *got += n;
    }
    return rc;
}

static int rawbw_wait(const rawbw_ops_t *ops, void *st, int want, int *got)
{
    int n;

    while (*got < want) {
        if ((n = ops->poll(st)) < 0) {
            return -1;
        }
        *got += n;
    }
    return 0;
}

/* The zero-byte exchange that lines both ranks up. */
static int rawbw_sync(const rawbw_ops_t *ops, void *st)
{
    int  got = 0;
    char z;

    if (rawbw_post(ops, st, 0, &z, 0, RAWBW_TAG_SYNC, RAWBW_MAX_WINDOW, &got) !=
            0 ||
        rawbw_post(ops, st, 1, &z, 0, RAWBW_TAG_SYNC, RAWBW_MAX_WINDOW, &got) !=
            0) {
        return -1;
    }
    return rawbw_wait(ops, st, 2, &got);
}

/* One iteration: the window's receives first, then its sends (a message
 * may still arrive before its receive, when the other rank is ahead). In
 * one-way mode rank 0 only sends and rank 1 only receives. */
static int rawbw_iter(const rawbw_ops_t *ops, void *st, const rawbw_opts_t *o,
                      int me, char *sbuf, char *rbuf, size_t len)
{
    int recv = !o->oneway || me == 1, send = !o->oneway || me == 0;
    int got = 0, want = 0;

    for (int k = 0; recv && k < o->window; k++, want++) {
        if (rawbw_post(ops, st, 0, rbuf + (size_t)k * len, len, (uint64_t)k, k,
                       &got) != 0) {
            return -1;
        }
    }
    for (int k = 0; send && k < o->window; k++, want++) {
        if (rawbw_post(ops, st, 1, sbuf + (size_t)k * len, len, (uint64_t)k, k,
                       &got) != 0) {
            return -1;
        }
    }
    return rawbw_wait(ops, st, want, &got);
}

static int rawbw_measure(const rawbw_ops_t *ops, void *st,
                         const rawbw_opts_t *o, int me, char *sbuf, char *rbuf,
                         size_t len, double *gbps)
{
    double t0;

    for (int i = 0; i < o->warmup; i++) {
        if (rawbw_iter(ops, st, o, me, sbuf, rbuf, len) != 0) {
            return -1;
        }
    }
    if (rawbw_sync(ops, st) != 0) {
        return -1;
    }
    t0 = rawbw_now();
    for (int i = 0; i < o->iters; i++) {
        if (rawbw_iter(ops, st, o, me, sbuf, rbuf, len) != 0) {
            return -1;
        }
    }
    if (rawbw_sync(ops, st) != 0) {
        return -1;
    }
    *gbps = (double)len * o->window * o->iters / (rawbw_now() - t0) / 1e9;
    return 0;
}

/* Whether the peer's bytes (all 'a' + its rank) filled every receive
 * buffer: its first and last byte, a cheap check that the figure is
 * for data that arrived. */
static int rawbw_arrived(const rawbw_opts_t *o, int me, const char *rbuf,
                         size_t len)
{
    const char want = (char)('a' + (1 - me));

    if (o->oneway && me == 0) {
        return 0; /* the sender receives nothing */
    }
    for (int k = 0; k < o->window; k++) {
        const char *b = rbuf + (size_t)k * len;

        if (b[0] != want || b[len - 1] != want) {
            fprintf(stderr, "rawbw: rank %d: wrong data in receive %d of "
                    "%zu B\n", me, k, len);
            return -1;
        }
    }
    return 0;
}

/* The sizes measured: MIN, MIN * FACTOR, ... up to MAX; 0 ends. */
static size_t rawbw_next(const rawbw_opts_t *o, size_t len)
{
    if (o->factor < 2 || len > o->max / (size_t)o->factor) {
        return 0;
    }
    return len * (size_t)o->factor;
}

/* Binds the calling rank to the me-th CPU it may run on (0 and 1 for two
 * ranks), so the two ranks share no core when two are allowed. */
static void rawbw_bind(int me)
{
    cpu_set_t allowed, one;
    int       cpu, seen = 0, pick = -1, n;

    if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
        fprintf(stderr, "rawbw: rank %d: sched_getaffinity: %s; not bound\n",
                me, strerror(errno));
        return;
    }
    n = CPU_COUNT(&allowed);
    for (cpu = 0; cpu < CPU_SETSIZE && pick < 0; cpu++) {
        if (CPU_ISSET(cpu, &allowed) && seen++ == me % (n > 0 ? n : 1)) {
            pick = cpu;
        }
    }
    CPU_ZERO(&one);
    CPU_SET(pick < 0 ? 0 : pick, &one);
    if (pick < 0 || sched_setaffinity(0, sizeof(one), &one) != 0) {
        fprintf(stderr, "rawbw: rank %d: cannot bind to a CPU; not bound\n",
                me);
    }
}

/* A forked rank: connects through the pipes, measures every size and
 * writes one double per size to `res`. */
static int rawbw_rank(const rawbw_ops_t *ops, const rawbw_opts_t *o, int me,
                      int wfd, int rfd, int res)
{
    char   addr[RAWBW_ADDR_MAX], peer[RAWBW_ADDR_MAX];
    size_t alen = sizeof(addr), plen, bytes = o->max * (size_t)o->window;
    char  *sbuf, *rbuf;
    void  *st;
    double gbps;

    /* a lost peer or parent ends the rank, never a hang */
    alarm(RAWBW_TIMEOUT_S);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (o->bind) {
        rawbw_bind(me);
    }
    if (ops->init(&st, addr, &alen) != 0) {
        fprintf(stderr, "rawbw: rank %d: %s setup failed (or its address "
                "is over %d bytes)\n", me, ops->name, RAWBW_ADDR_MAX);
        return 1;
    }
    if (rawbw_full_io(wfd, &alen, sizeof(alen), 1) != 0 ||
        rawbw_full_io(wfd, addr, alen, 1) != 0 ||
        rawbw_full_io(rfd, &plen, sizeof(plen), 0) != 0 ||
        plen > sizeof(peer) || rawbw_full_io(rfd, peer, plen, 0) != 0) {
        fprintf(stderr, "rawbw: rank %d: the address exchange failed (the "
                "other rank is gone)\n", me);
        return 1;
    }
    if (ops->connect(st, peer, plen) != 0) {
        fprintf(stderr, "rawbw: rank %d: %s cannot reach the other rank\n",
                me, ops->name);
        return 1;
    }
    sbuf = malloc(bytes);
    rbuf = malloc(bytes);
    if (sbuf == NULL || rbuf == NULL) {
        fprintf(stderr, "rawbw: rank %d: out of memory for 2 x %zu bytes\n",
                me, bytes);
        return 1;
    }
    memset(sbuf, 'a' + me, bytes);
    for (size_t len = o->min; len != 0; len = rawbw_next(o, len)) {
        memset(rbuf, 0, len * (size_t)o->window);
        if (rawbw_measure(ops, st, o, me, sbuf, rbuf, len, &gbps) != 0) {
            fprintf(stderr, "rawbw: rank %d: %s failed at %zu B\n", me,
                    ops->name, len);
            return 1;
        }
        if (rawbw_arrived(o, me, rbuf, len) != 0 ||
            rawbw_full_io(res, &gbps, sizeof(gbps), 1) != 0) {
            return 1;
        }
    }
    ops->fini(st);
    free(sbuf);
    free(rbuf);
    return 0;
}

/* "4M" -> 4194304: K, M, G suffixes; 0 when malformed, below 1 or above
 * RAWBW_SIZE_MAX. */
static size_t rawbw_size(const char *s)
{
    char              *end;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned long long unit = 1;

    if (end == s || *s == '-') {
        return 0;
    }
    switch (*end) {
    case 'K': case 'k': unit = 1ull << 10; end++; break;
    case 'M': case 'm': unit = 1ull << 20; end++; break;
    case 'G': case 'g': unit = 1ull << 30; end++; break;
    default: break;
    }
    if (*end != '\0' || v < 1 || v > RAWBW_SIZE_MAX / unit) {
        return 0;
    }
    return (size_t)(v * unit);
}

/* A whole decimal int in [lo, hi], else -1 (lo >= 0). */
static int rawbw_int(const char *s, int lo, int hi)
{
    char *end;
    long  v = strtol(s, &end, 10);

    return (end != s && *end == '\0' && v >= lo && v <= hi) ? (int)v : -1;
}

static int rawbw_usage(const char *why)
{
    if (why != NULL) {
        fprintf(stderr, "tutti-rawbw: error: %s\n", why);
    }
    fprintf(stderr,
            "usage: tutti-rawbw ucx|ofi [--oneway] [-b MIN] [-e MAX] "
            "[-f FACTOR] [-N ITERS] [-w WARMUP] [-W WINDOW 1..%d] "
            "[--bind core|none] [--peer-errors]\n",
            RAWBW_MAX_WINDOW);
    return 2;
}

/* Reads the figures of both ranks, size by size, while watching them:
 * as soon as one exits without success the other is killed (it may be
 * polling for a peer that is gone). Returns 0 when all came and both
 * ranks exited 0. */
static int rawbw_collect(const rawbw_opts_t *o, int res, pid_t pid[2])
{
    double g[2];
    size_t got = 0, want = sizeof(g), len = o->min;
    int    alive = 2, failed = 0, all = 0, status;

    while (alive > 0) {
        struct pollfd p = {.fd = res, .events = POLLIN};

        if (len != 0 && poll(&p, 1, 100) > 0) {
            ssize_t r = read(res, (char *)g + got, want - got);

            if (r > 0 && (got += (size_t)r) == want) {
                printf("%12zu %6d %8.3f\n", len, o->window,
                       g[0] < g[1] ? g[0] : g[1]);
                fflush(stdout);
                got = 0;
                len = rawbw_next(o, len);
                all = len == 0;
            } else if (r <= 0) {
                len = 0; /* both ranks closed it: only exits are left */
            }
        } else if (len == 0) {
            poll(NULL, 0, 10);
        }
        for (int me = 0; me < 2; me++) {
            if (pid[me] > 0 && waitpid(pid[me], &status, WNOHANG) == pid[me]) {
                pid[me] = 0;
                alive--;
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                    failed = 1;
                    if (pid[1 - me] > 0) {
                        kill(pid[1 - me], SIGKILL);
                    }
                }
            }
        }
    }
    return failed || !all;
}

int main(int argc, char **argv)
{
    rawbw_opts_t       o   = {.min = 1 << 20, .max = 64 << 20, .factor = 4,
                              .iters = 20, .warmup = 2, .window = 1, .bind = 1};
    const rawbw_ops_t *ops = NULL;
    int                p01[2], p10[2], res[2], failed, peer_errors = 0;
    pid_t              pid[2];

    if (argc < 2) {
        return rawbw_usage("no transport named");
    }
#ifdef RAWBW_HAVE_UCX
    if (strcmp(argv[1], "ucx") == 0) {
        ops = &rawbw_ucx_ops;
    }
#endif
#ifdef RAWBW_HAVE_OFI
    if (strcmp(argv[1], "ofi") == 0) {
        ops = &rawbw_ofi_ops;
    }
#endif
    if (ops == NULL) {
        return rawbw_usage("that transport is not built in");
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--oneway") == 0) {
            o.oneway = 1;
            continue;
        }
        if (strcmp(a, "--peer-errors") == 0) {
            peer_errors = 1;
            continue;
        }
        if (v == NULL) {
            return rawbw_usage("an option lacks its value");
        }
        i++;
        if (strcmp(a, "-b") == 0) {
            o.min = rawbw_size(v);
        } else if (strcmp(a, "-e") == 0) {
            o.max = rawbw_size(v);
        } else if (strcmp(a, "-f") == 0) {
            o.factor = rawbw_int(v, 1, 1 << 20);
        } else if (strcmp(a, "-N") == 0) {
            o.iters = rawbw_int(v, 1, 1 << 30);
        } else if (strcmp(a, "-w") == 0) {
            o.warmup = rawbw_int(v, 0, 1 << 30);
        } else if (strcmp(a, "-W") == 0) {
            o.window = rawbw_int(v, 1, RAWBW_MAX_WINDOW);
        } else if (strcmp(a, "--bind") == 0 &&
                   (strcmp(v, "core") == 0 || strcmp(v, "none") == 0)) {
            o.bind = strcmp(v, "core") == 0;
        } else {
            return rawbw_usage("unknown option or bad value");
        }
    }
    if (o.min == 0 || o.max == 0 || o.max < o.min || o.factor < 1 ||
        o.iters < 1 || o.warmup < 0 || o.window < 1) {
        return rawbw_usage("a size (1 to 1T), count or window is out of "
                           "range, or -b is above -e");
    }
    if (o.factor == 1 && o.max != o.min) {
        return rawbw_usage("-f 1 needs -b and -e alike");
    }
    if (peer_errors) {
#ifdef RAWBW_HAVE_UCX
        if (ops != &rawbw_ucx_ops) {
            return rawbw_usage("--peer-errors is a UCX setting");
        }
        rawbw_peer_errors = 1;
#else
        return rawbw_usage("--peer-errors is a UCX setting");
#endif
    }
    if (pipe(p01) != 0 || pipe(p10) != 0 || pipe(res) != 0) {
        perror("tutti-rawbw: pipe");
        return 1;
    }
    printf("# tutti-rawbw %s, %s, window %d, %d iterations (+%d warm-up), "
           "GB/s per direction\n# size window GB/s\n",
           ops->name, o.oneway ? "one way" : "both ways at once", o.window,
           o.iters, o.warmup);
    fflush(stdout);
    for (int me = 0; me < 2; me++) {
        pid[me] = fork();
        if (pid[me] == 0) {
            /* keep only this rank's ends, so a rank that dies shows up as
             * end of file to the other */
            int wfd = me ? p10[1] : p01[1], rfd = me ? p01[0] : p10[0];

            close(me ? p10[0] : p01[0]);
            close(me ? p01[1] : p10[1]);
            close(res[0]);
            _exit(rawbw_rank(ops, &o, me, wfd, rfd, res[1]));
        }
        if (pid[me] < 0) {
            perror("tutti-rawbw: fork");
            if (me == 1) {
                kill(pid[0], SIGKILL);
                waitpid(pid[0], NULL, 0);
            }
            return 1;
        }
    }
    close(p01[0]);
    close(p01[1]);
    close(p10[0]);
    close(p10[1]);
    close(res[1]);
    failed = rawbw_collect(&o, res[0], pid);
    if (failed) {
        fprintf(stderr, "tutti-rawbw: a rank failed (see above)\n");
    }
    return failed;
}
