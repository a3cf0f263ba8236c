/*
 * Bootstrap, up to a working rank: the unique id and its text form, the
 * root that brings nranks processes together, and tutti__boot_init(), which
 * meets the root, gets the table of addresses and forms the rank-0 hub (the
 * contract is in bootstrap.h). What happens after init (watchdog, mailbox,
 * collectives, abort, fini) is in bootstrap_watch.c; wire formats, sockets
 * and the handshake in bootstrap_net.c; the accept loop that the root and
 * the hub share in bootstrap_serve.c.
 *
 * The root is a detached thread of the process that called
 * tutti_get_unique_id(): it serves one rendezvous, bounded by the timeout
 * given to it, then sends every rank the table, closes its socket and
 * exits. It does not linger: if the ranks never all arrive, it tells those
 * that did which ranks are missing and exits at its deadline.
 *
 * Only rank 0 listens. The other ranks publish the address they reach the
 * root from, without a port: they are only ever clients.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bootstrap_priv.h"
#include "internal.h"
#include "sha256.h"

/* Tells tutti__boot_root_start() that the root thread runs (on its
 * stack; the thread does not touch it after signalling). */
typedef struct tt_boot_started {
    pthread_mutex_t lock;
    pthread_cond_t  cond;
    int             done;
} tt_boot_started_t;

/*
 * The root's state, owned by its thread once started. Everything it needs
 * is allocated before the thread starts, and freed when the rendezvous is
 * over: in between, the thread calls no allocator, so the process may fork
 * its ranks meanwhile (see tutti__boot_serve()).
 */
typedef struct tt_boot_root {
    tt_boot_server_t   srv;
    uint8_t            secret[TT_BOOT_SECRET_LEN];
    char               name[TT_BOOT_NAME_LEN];
    uint8_t           *table;   /* room for TT_BOOT_MAX_RANKS addresses */
    tt_boot_started_t *started; /* until the thread has signalled */
} tt_boot_root_t;

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

/* Starts a thread with every signal blocked, so that the application's
 * handlers run on its own threads. */
int tutti__boot_thread_start(pthread_t *t, void *(*fn)(void *), void *arg,
                             int detached)
{
    pthread_attr_t attr;
    sigset_t       all, old;
    int            rc;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_init(&attr);
    if (detached) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    }
    rc = pthread_create(t, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The id                                                             */
/* ------------------------------------------------------------------ */

uint64_t tutti__boot_job_id(const tutti_unique_id_t *id)
{
    return tt_get64((const uint8_t *)id->internal + 64);
}

tutti_result_t tutti__boot_id_to_text(const tutti_unique_id_t *id,
                                      char *text, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t    *p;
    size_t            i;

    if (id == NULL || text == NULL) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "bootstrap: id_to_text: NULL %s",
                            id == NULL ? "id" : "text");
    }
    if (len < 2 * sizeof(id->internal) + 1) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "bootstrap: id_to_text: buffer of %zu bytes, "
                            "need %zu", len, 2 * sizeof(id->internal) + 1);
    }
    p = (const uint8_t *)id->internal;
    for (i = 0; i < sizeof(id->internal); i++) {
        text[2 * i]     = hex[p[i] >> 4];
        text[2 * i + 1] = hex[p[i] & 0xf];
    }
    text[2 * sizeof(id->internal)] = '\0';
    return TUTTI_SUCCESS;
}

static int tt_hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

tutti_result_t tutti__boot_id_from_text(const char *text,
                                        tutti_unique_id_t *id_p)
{
    tutti_unique_id_t id;
    tt_boot_id_t      bid;
    tutti_result_t    res;
    size_t            i, n, want = 2 * sizeof(id.internal);

    if (text == NULL || id_p == NULL) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "bootstrap: id_from_text: NULL %s",
                            text == NULL ? "text" : "id");
    }
    n = strnlen(text, want + 1);
    if (n != want) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "bootstrap: unique id text has %s%zu characters, "
                            "expected %zu hex digits",
                            n > want ? "more than " : "", TT_MIN(n, want),
                            want);
    }
    for (i = 0; i < sizeof(id.internal); i++) {
        int hi = tt_hex_value(text[2 * i]);
        int lo = tt_hex_value(text[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            size_t at = hi < 0 ? 2 * i : 2 * i + 1;

            return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                                "bootstrap: unique id text has a non-hex "
                                "character (0x%02x) at position %zu",
                                (unsigned char)text[at], at);
        }
        id.internal[i] = (char)((hi << 4) | lo);
    }
    res = tutti__boot_id_decode(&id, &bid);
    tutti__wipe(&bid, sizeof(bid));
    if (res == TUTTI_SUCCESS) {
        *id_p = id;
    }
    tutti__wipe(&id, sizeof(id));
    return res;
}

/* ------------------------------------------------------------------ */
/* The root                                                           */
/* ------------------------------------------------------------------ */

static void tt_root_send_table(tt_boot_root_t *root)
{
    tt_boot_server_t *srv = &root->srv;
    size_t            len = (size_t)srv->nranks * TT_BOOT_ADDR_LEN;
    uint64_t          deadline;
    int               r;

    for (r = 0; r < srv->nranks; r++) {
        tutti__boot_addr_encode(&srv->hello[r].addr,
                                root->table + (size_t)r * TT_BOOT_ADDR_LEN);
    }
    /* A fresh bound: the table is small and the ranks are reading. */
    deadline = tutti__boot_deadline(srv->timeout_ms);
    for (r = 0; r < srv->nranks; r++) {
        tt_boot_link_t link = {.fd = srv->fds[r], .self = -1,
                               .timeout_ms = srv->timeout_ms};

        snprintf(link.peer, sizeof(link.peer), "rank %d", r);
        (void)tutti__boot_send_frame(&link, TT_BOOT_MSG_TABLE, 0, 0,
                                     root->table, len, deadline);
    }
    TT_INFO(TT_SUB_BOOT, "bootstrap: %s: all %d ranks arrived, table sent",
            root->name, srv->nranks);
}

static void tt_root_free(tt_boot_root_t *root)
{
    tutti__boot_server_free(&root->srv);
    tutti__wipe(root->secret, sizeof(root->secret));
    free(root->table);
    free(root);
}

static void *tt_root_main(void *arg)
{
    tt_boot_root_t    *root    = arg;
    tt_boot_started_t *started = root->started;
    int                r;

    pthread_setname_np(pthread_self(), "tutti-root");
    root->started = NULL;
    pthread_mutex_lock(&started->lock);
    started->done = 1;
    pthread_cond_signal(&started->cond);
    pthread_mutex_unlock(&started->lock);

    if (tutti__boot_serve(&root->srv) == TUTTI_SUCCESS) {
        tt_root_send_table(root);
        for (r = 0; r < root->srv.nranks; r++) {
            close(root->srv.fds[r]);
        }
    }
    close(root->srv.listen_fd);
    tt_root_free(root);
    return NULL;
}

tutti_result_t tutti__boot_root_start(const tt_config_t *cfg,
                                      tutti_unique_id_t *id_p)
{
    tt_boot_started_t started = {.done = 0};
    tt_config_t       dflt;
    tt_boot_root_t   *root;
    tt_boot_id_t      bid;
    tutti_result_t    res;
    pthread_t         thread;
    char              addr[TT_BOOT_ADDR_STRLEN];
    int               fd, rc;

    if (id_p == NULL) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "bootstrap: root_start: NULL id");
    }
    if (cfg == NULL) {
        tutti__config_defaults(&dflt);
        cfg = &dflt;
    }
    tutti__log_init();
    memset(&bid, 0, sizeof(bid));
    root = calloc(1, sizeof(*root));
    if (root == NULL) {
        return tutti__error(TUTTI_ERR_NO_MEMORY,
                            "bootstrap: out of memory for the root");
    }
    root->srv.nranks     = 0; /* learnt from the first hello */
    root->srv.first_rank = 0;
    root->srv.name       = root->name;
    root->table = malloc((size_t)TT_BOOT_MAX_RANKS * TT_BOOT_ADDR_LEN);
    if (root->table == NULL) {
        res = tutti__error(TUTTI_ERR_NO_MEMORY,
                           "bootstrap: out of memory for the root");
        goto err_free;
    }
    TT_CHECK_GOTO(tutti__boot_server_alloc(&root->srv), res, err_free);
    TT_CHECK_GOTO(tutti__random_bytes(root->secret, sizeof(root->secret)),
                  res, err_free);
    TT_CHECK_GOTO(tutti__random_bytes(&bid.job_id, sizeof(bid.job_id)), res,
                  err_free);
    TT_CHECK_GOTO(tutti__boot_listen(cfg, &fd, &bid.root), res, err_free);
    memcpy(bid.secret, root->secret, sizeof(bid.secret));
    tutti__boot_addr_str(&bid.root, addr, sizeof(addr));
    snprintf(root->name, sizeof(root->name), "the root at %s", addr);
    root->srv.listen_fd  = fd;
    root->srv.secret     = root->secret;
    root->srv.deadline   = tutti__boot_deadline(cfg->timeout_ms);
    root->srv.timeout_ms = cfg->timeout_ms;
    root->started        = &started;

    pthread_mutex_init(&started.lock, NULL);
    pthread_cond_init(&started.cond, NULL);
    rc = tutti__boot_thread_start(&thread, tt_root_main, root, 1);
    if (rc != 0) {
        res = tutti__error(TUTTI_ERR_SYSTEM, "bootstrap: cannot start the "
                           "root thread: %s", strerror(rc));
        goto err_destroy;
    }
    /* The thread owns root from here on. Wait until it runs, so that a
     * fork() right after this call cannot catch its start-up half done. */
    pthread_mutex_lock(&started.lock);
    while (!started.done) {
        pthread_cond_wait(&started.cond, &started.lock);
    }
    pthread_mutex_unlock(&started.lock);
    pthread_cond_destroy(&started.cond);
    pthread_mutex_destroy(&started.lock);

    tutti__boot_id_encode(&bid, id_p);
    TT_INFO(TT_SUB_BOOT, "bootstrap: root at %s started (job %016" PRIx64
            ", timeout %d ms)", addr, bid.job_id, cfg->timeout_ms);
    tutti__wipe(&bid, sizeof(bid));
    return TUTTI_SUCCESS;

err_destroy:
    pthread_cond_destroy(&started.cond);
    pthread_mutex_destroy(&started.lock);
    close(fd);
err_free:
    tutti__wipe(&bid, sizeof(bid));
    tt_root_free(root);
    return res;
}

/* ------------------------------------------------------------------ */
/* Allocation                                                         */
/* ------------------------------------------------------------------ */

void tutti__boot_free(tt_boot_t *b)
{
    int r;

    for (r = 0; r < b->nranks; r++) {
        tt_boot_peer_t  *p = &b->peers[r];
        tt_boot_frame_t *f;

        if (p->link.fd >= 0) {
            char    scratch[256];
            int     i;

            /* Read what is pending so that close() sends a FIN, not a
             * reset that could destroy our goodbye before it is read. */
            for (i = 0; i < 64; i++) {
                if (recv(p->link.fd, scratch, sizeof(scratch),
                         MSG_DONTWAIT) <= 0) {
                    break;
                }
            }
            close(p->link.fd);
        }
        while ((f = p->head) != NULL) {
            p->head = f->next;
            free(f);
        }
        free(p->rx);
        pthread_mutex_destroy(&p->send_lock);
    }
    if (b->wake_fd >= 0) {
        close(b->wake_fd);
    }
    pthread_cond_destroy(&b->cond);
    pthread_mutex_destroy(&b->lock);
    tutti__wipe(b->secret, sizeof(b->secret));
    free(b->pfd_rank);
    free(b->pfd);
    free(b->fails);
    free(b->peers);
    free(b->table);
    free(b);
}

static tutti_result_t tt_boot_alloc(int rank, int nranks, int timeout_ms,
                                    const uint8_t *secret, tt_boot_t **b_p)
{
    pthread_condattr_t attr;
    tt_boot_t         *b;
    size_t             n = (size_t)nranks;
    int                r;

    b = calloc(1, sizeof(*b));
    if (b == NULL) {
        goto err_nomem;
    }
    b->table    = calloc(n, sizeof(*b->table));
    b->peers    = calloc(n, sizeof(*b->peers));
    b->fails    = calloc(n, sizeof(*b->fails));
    b->pfd      = calloc(n + 1, sizeof(*b->pfd));
    b->pfd_rank = calloc(n + 1, sizeof(*b->pfd_rank));
    if (b->table == NULL || b->peers == NULL || b->fails == NULL ||
        b->pfd == NULL || b->pfd_rank == NULL) {
        free(b->pfd_rank);
        free(b->pfd);
        free(b->fails);
        free(b->peers);
        free(b->table);
        free(b);
        goto err_nomem;
    }
    b->rank       = rank;
    b->nranks     = nranks;
    b->timeout_ms = timeout_ms;
    memcpy(b->secret, secret, sizeof(b->secret));
    pthread_mutex_init(&b->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cond, &attr);
    pthread_condattr_destroy(&attr);
    for (r = 0; r < nranks; r++) {
        b->peers[r].link.fd         = -1;
        b->peers[r].link.self       = rank;
        b->peers[r].link.timeout_ms = timeout_ms;
        pthread_mutex_init(&b->peers[r].send_lock, NULL);
    }
    b->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (b->wake_fd < 0) {
        int err = errno;

        tutti__boot_free(b);
        return tutti__error(TUTTI_ERR_SYSTEM, "bootstrap: eventfd: %s",
                            strerror(err));
    }
    *b_p = b;
    return TUTTI_SUCCESS;

err_nomem:
    return tutti__error(TUTTI_ERR_NO_MEMORY, "bootstrap: out of memory for "
                        "%d ranks", nranks);
}

/* ------------------------------------------------------------------ */
/* Init: root, then hub                                               */
/* ------------------------------------------------------------------ */

/* Logs and returns the error an ERROR frame carries. */
static tutti_result_t tt_boot_refused(const tt_boot_link_t *link,
                                      const tt_boot_hdr_t *hdr,
                                      const char *text)
{
    return tutti__error(tutti__boot_wire_code(hdr->arg),
                        "bootstrap: rank %d: %s: %.*s", link->self,
                        link->peer, (int)hdr->len, text);
}

static tutti_result_t tt_boot_bad_frame(const tt_boot_link_t *link,
                                        const tt_boot_hdr_t *hdr,
                                        const char *expected)
{
    return tutti__error(TUTTI_ERR_REMOTE, "bootstrap: rank %d: protocol "
                        "error: %s sent a message of type %u and %u bytes, "
                        "expected %s", link->self, link->peer, hdr->type,
                        hdr->len, expected);
}

static tutti_result_t tt_boot_send_hello(tt_boot_t *b, tt_boot_link_t *link,
                                         const tt_boot_addr_t *addr,
                                         uint64_t deadline)
{
    tt_boot_hello_t hello = {.rank = b->rank, .nranks = b->nranks,
                             .addr = *addr};
    uint8_t         p[TT_BOOT_HELLO_LEN];

    tutti__boot_hello_encode(&hello, p);
    return tutti__boot_send_frame(link, TT_BOOT_MSG_HELLO, 0, 0, p, sizeof(p),
                                  deadline);
}

static tutti_result_t tt_boot_recv_table(tt_boot_t *b, tt_boot_link_t *link,
                                         uint64_t deadline)
{
    size_t         len = (size_t)b->nranks * TT_BOOT_ADDR_LEN;
    size_t         cap = TT_MAX(len, (size_t)TT_BOOT_TEXT_MAX);
    tt_boot_hdr_t  hdr;
    tutti_result_t res;
    uint8_t       *buf;
    int            r;

    buf = malloc(cap);
    if (buf == NULL) {
        return tutti__error(TUTTI_ERR_NO_MEMORY, "bootstrap: out of memory "
                            "for the table of %d ranks", b->nranks);
    }
    res = tutti__boot_recv_frame(link, &hdr, buf, cap, deadline,
                                 "the address table");
    if (res != TUTTI_SUCCESS) {
        goto out;
    }
    if (hdr.type == TT_BOOT_MSG_ERROR) {
        res = tt_boot_refused(link, &hdr, (const char *)buf);
        goto out;
    }
    if (hdr.type != TT_BOOT_MSG_TABLE || hdr.len != len) {
        res = tt_boot_bad_frame(link, &hdr, "the address table");
        goto out;
    }
    for (r = 0; r < b->nranks; r++) {
        if (tutti__boot_addr_decode(buf + (size_t)r * TT_BOOT_ADDR_LEN,
                                    &b->table[r]) != 0) {
            res = tt_boot_bad_frame(link, &hdr, "known address families");
            goto out;
        }
    }
out:
    free(buf);
    return res;
}

/* Rank 0: accepts every other rank and tells them all is ready. The READY
 * makes init a barrier: no rank returns before the hub is complete, so a
 * rank's first collective never races a rank still connecting. */
static tutti_result_t tt_boot_hub_accept(tt_boot_t *b, int listen_fd,
                                         uint64_t deadline)
{
    tt_boot_server_t *srv;
    tutti_result_t    res;
    int               r;

    srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        return tutti__error(TUTTI_ERR_NO_MEMORY, "bootstrap: out of memory "
                            "for the hub");
    }
    srv->listen_fd  = listen_fd;
    srv->secret     = b->secret;
    srv->nranks     = b->nranks;
    srv->first_rank = 1;
    srv->deadline   = deadline;
    srv->timeout_ms = b->timeout_ms;
    srv->name       = "rank 0 (the hub)";
    TT_CHECK_GOTO(tutti__boot_server_alloc(srv), res, out);
    res = tutti__boot_serve(srv);
    tutti__boot_server_free(srv);
    if (res != TUTTI_SUCCESS) {
        goto out;
    }
    for (r = 1; r < b->nranks; r++) {
        tt_boot_peer_t *p = &b->peers[r];
        char            addr[TT_BOOT_ADDR_STRLEN];

        tutti__boot_addr_str(&b->table[r], addr, sizeof(addr));
        snprintf(p->link.peer, sizeof(p->link.peer), "rank %d at %s", r,
                 addr);
        p->link.fd = srv->fds[r];
        p->used    = 1;
    }
    for (r = 1; r < b->nranks && res == TUTTI_SUCCESS; r++) {
        res = tutti__boot_send_frame(&b->peers[r].link, TT_BOOT_MSG_READY, 0,
                                     0, NULL, 0, deadline);
    }
out:
    free(srv);
    return res;
}

/* Ranks 1..n-1: connect to rank 0 and wait until everyone has. */
static tutti_result_t tt_boot_hub_connect(tt_boot_t *b, uint64_t deadline)
{
    tt_boot_peer_t *p = &b->peers[0];
    char            addr[TT_BOOT_ADDR_STRLEN], text[TT_BOOT_TEXT_MAX + 1];
    tt_boot_hdr_t   hdr;

    tutti__boot_addr_str(&b->table[0], addr, sizeof(addr));
    snprintf(p->link.peer, sizeof(p->link.peer), "rank 0 (the hub) at %s",
             addr);
    p->used = 1;
    TT_CHECK(tutti__boot_connect(&p->link, &b->table[0], b->secret,
                                 deadline));
    TT_CHECK(tt_boot_send_hello(b, &p->link, &b->table[b->rank], deadline));
    TT_CHECK(tutti__boot_recv_frame(&p->link, &hdr, text, TT_BOOT_TEXT_MAX,
                                    deadline, "every rank to connect"));
    if (hdr.type == TT_BOOT_MSG_ERROR) {
        return tt_boot_refused(&p->link, &hdr, text);
    }
    if (hdr.type != TT_BOOT_MSG_READY || hdr.len != 0) {
        return tt_boot_bad_frame(&p->link, &hdr, "ready");
    }
    return TUTTI_SUCCESS;
}

static tutti_result_t tt_boot_rendezvous(tt_boot_t *b, const tt_config_t *cfg,
                                         const tt_boot_id_t *bid,
                                         uint64_t deadline)
{
    tt_boot_link_t          root = {.fd = -1, .self = b->rank,
                                    .timeout_ms = b->timeout_ms};
    tt_boot_addr_t          mine = {0};
    struct sockaddr_storage ss;
    socklen_t               sslen = sizeof(ss);
    tutti_result_t          res;
    char                    addr[TT_BOOT_ADDR_STRLEN];
    int                     listen_fd = -1;

    /* Only rank 0 listens; the others publish the address they reach the
     * root from, without a port. */
    if (b->rank == 0 && b->nranks > 1) {
        TT_CHECK(tutti__boot_listen(cfg, &listen_fd, &mine));
    }
    tutti__boot_addr_str(&bid->root, addr, sizeof(addr));
    snprintf(root.peer, sizeof(root.peer), "the root at %s", addr);
    TT_CHECK_GOTO(tutti__boot_connect(&root, &bid->root, b->secret,
                                      deadline), res, err_close_listen);
    if (listen_fd < 0) {
        if (getsockname(root.fd, (struct sockaddr *)&ss, &sslen) != 0) {
            res = tutti__error(TUTTI_ERR_SYSTEM, "bootstrap: getsockname: %s",
                               strerror(errno));
            goto err_close_root;
        }
        tutti__boot_addr_from_sockaddr((struct sockaddr *)&ss, &mine);
        mine.port = 0;
    }
    TT_CHECK_GOTO(tt_boot_send_hello(b, &root, &mine, deadline), res,
                  err_close_root);
    TT_CHECK_GOTO(tt_boot_recv_table(b, &root, deadline), res,
                  err_close_root);
    close(root.fd);
    TT_INFO(TT_SUB_BOOT, "bootstrap: rank %d: got the table of %d ranks",
            b->rank, b->nranks);

    if (b->nranks == 1) {
        return TUTTI_SUCCESS;
    }
    if (b->rank == 0) {
        res = tt_boot_hub_accept(b, listen_fd, deadline);
        close(listen_fd);
        return res;
    }
    return tt_boot_hub_connect(b, deadline);

err_close_root:
    close(root.fd);
err_close_listen:
    if (listen_fd >= 0) {
        close(listen_fd);
    }
    return res;
}

tutti_result_t tutti__boot_init(const tutti_unique_id_t *id, int rank,
                                int nranks, const tt_config_t *cfg,
                                int timeout_ms, tt_boot_t **boot_p)
{
    tt_boot_id_t   bid;
    tt_boot_t     *b = NULL;
    tutti_result_t res;
    uint64_t       deadline = tutti__boot_deadline(timeout_ms);

    if (id == NULL || boot_p == NULL) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "bootstrap: init: NULL %s",
                            id == NULL ? "id" : "boot_p");
    }
    if (nranks < 1 || nranks > TT_BOOT_MAX_RANKS) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "bootstrap: nranks %d is outside [1, %d]", nranks,
                            TT_BOOT_MAX_RANKS);
    }
    if (rank < 0 || rank >= nranks) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "bootstrap: rank %d is outside [0, %d)", rank,
                            nranks);
    }
    tutti__log_init();
    TT_CHECK(tutti__boot_id_decode(id, &bid));
    TT_CHECK_GOTO(tt_boot_alloc(rank, nranks, timeout_ms, bid.secret, &b),
                  res, out);
    TT_CHECK_GOTO(tt_boot_rendezvous(b, cfg, &bid, deadline), res, err_free);
    TT_CHECK_GOTO(tutti__boot_watch_start(b), res, err_free);
    TT_INFO(TT_SUB_BOOT, "bootstrap: rank %d of %d joined job %016" PRIx64,
            rank, nranks, bid.job_id);
    *boot_p = b;
    res     = TUTTI_SUCCESS;
    goto out;

err_free:
    tutti__boot_free(b);
out:
    tutti__wipe(&bid, sizeof(bid));
    return res;
}

