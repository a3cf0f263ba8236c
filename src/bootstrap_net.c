/*
 * Bootstrap plumbing: wire formats, interface choice and listening socket,
 * socket I/O bounded by deadlines, and the client half of the authenticated
 * handshake. See bootstrap_net.h for the formats and the handshake; the
 * server half is in bootstrap_serve.c, and bootstrap.c builds the
 * rendezvous and the hub on top.
 *
 * Every socket here is nonblocking and close-on-exec (a process that forks
 * ranks after creating a root keeps working: the children's copies of the
 * root's descriptors are never used), every wait is a poll() bounded by a
 * deadline, EINTR restarts the wait, and sends use MSG_NOSIGNAL so a dead
 * peer is an error, never a SIGPIPE.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bootstrap_net.h"
#include "internal.h"
#include "sha256.h"

/* Outcome of one blocking I/O helper, before it becomes a message. */
typedef enum tt_io {
    TT_IO_OK = 0,
    TT_IO_TIMEOUT,
    TT_IO_CLOSED, /* orderly EOF, or a reset/broken pipe (errno kept) */
    TT_IO_ERROR
} tt_io_t;

#define TT_BOOT_CONNECT_BACKOFF_MAX_MS 100

/* ------------------------------------------------------------------ */
/* Addresses, ids, headers                                            */
/* ------------------------------------------------------------------ */

void tutti__boot_addr_encode(const tt_boot_addr_t *a,
                             uint8_t p[TT_BOOT_ADDR_LEN])
{
    tt_put16(p, a->family);
    tt_put16(p + 2, a->port);
    tt_put32(p + 4, a->scope);
    memcpy(p + 8, a->addr, sizeof(a->addr));
}

int tutti__boot_addr_decode(const uint8_t p[TT_BOOT_ADDR_LEN],
                            tt_boot_addr_t *a)
{
    a->family = tt_get16(p);
    a->port   = tt_get16(p + 2);
    a->scope  = tt_get32(p + 4);
    memcpy(a->addr, p + 8, sizeof(a->addr));
    if (a->family != TT_BOOT_AF_NONE && a->family != TT_BOOT_AF_INET &&
        a->family != TT_BOOT_AF_INET6) {
        return -1;
    }
    return 0;
}

void tutti__boot_addr_from_sockaddr(const struct sockaddr *sa,
                                    tt_boot_addr_t *a)
{
    memset(a, 0, sizeof(*a));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

        a->family = TT_BOOT_AF_INET;
        a->port   = ntohs(in->sin_port);
        memcpy(a->addr, &in->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

        a->family = TT_BOOT_AF_INET6;
        a->port   = ntohs(in6->sin6_port);
        a->scope  = in6->sin6_scope_id;
        memcpy(a->addr, &in6->sin6_addr, 16);
    }
}

socklen_t tutti__boot_addr_to_sockaddr(const tt_boot_addr_t *a,
                                       struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (a->family == TT_BOOT_AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;

        in->sin_family = AF_INET;
        in->sin_port   = htons(a->port);
        memcpy(&in->sin_addr, a->addr, 4);
        return sizeof(*in);
    }
    if (a->family == TT_BOOT_AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

        in6->sin6_family   = AF_INET6;
        in6->sin6_port     = htons(a->port);
        in6->sin6_scope_id = a->scope;
        memcpy(&in6->sin6_addr, a->addr, 16);
        return sizeof(*in6);
    }
    return 0;
}

void tutti__boot_addr_str(const tt_boot_addr_t *a, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";

    /* Port 0 (a rank that does not listen) prints as the host alone. */
    if (a->family == TT_BOOT_AF_INET) {
        inet_ntop(AF_INET, a->addr, host, sizeof(host));
        if (a->port != 0) {
            snprintf(buf, len, "%s:%u", host, (unsigned)a->port);
        } else {
            snprintf(buf, len, "%s", host);
        }
    } else if (a->family == TT_BOOT_AF_INET6) {
        inet_ntop(AF_INET6, a->addr, host, sizeof(host));
        snprintf(buf, len, "[%s%%%u]:%u", host, (unsigned)a->scope,
                 (unsigned)a->port);
    } else {
        snprintf(buf, len, "(no address)");
    }
}

void tutti__boot_id_encode(const tt_boot_id_t *in, tutti_unique_id_t *id)
{
    uint8_t *p = (uint8_t *)id->internal;

    memset(id, 0, sizeof(*id));
    tt_put32(p, TT_BOOT_MAGIC);
    tt_put16(p + 4, TT_BOOT_PROTO_VERSION);
    tutti__boot_addr_encode(&in->root, p + 8);
    memcpy(p + 32, in->secret, TT_BOOT_SECRET_LEN);
    tt_put64(p + 64, in->job_id);
}

tutti_result_t tutti__boot_id_decode(const tutti_unique_id_t *id,
                                     tt_boot_id_t *out)
{
    const uint8_t *p = (const uint8_t *)id->internal;
    size_t         i;

    if (tt_get32(p) != TT_BOOT_MAGIC) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "bootstrap: the unique id is not a tutti id "
                            "(magic 0x%08x, expected 0x%08x)",
                            tt_get32(p), TT_BOOT_MAGIC);
    }
    if (tt_get16(p + 4) != TT_BOOT_PROTO_VERSION) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "bootstrap: the unique id has protocol version "
                            "%u, this library speaks version %u",
                            tt_get16(p + 4), TT_BOOT_PROTO_VERSION);
    }
    if (tutti__boot_addr_decode(p + 8, &out->root) != 0 ||
        out->root.family == TT_BOOT_AF_NONE) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "bootstrap: the unique id holds an unknown "
                            "address family %u", tt_get16(p + 8));
    }
    for (i = 72; i < sizeof(id->internal); i++) {
        if (p[i] != 0) {
            return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                                "bootstrap: the unique id has nonzero "
                                "reserved byte %zu", i);
        }
    }
    if (tt_get16(p + 6) != 0) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "bootstrap: the unique id has nonzero reserved "
                            "bytes 6-7");
    }
    memcpy(out->secret, p + 32, TT_BOOT_SECRET_LEN);
    out->job_id = tt_get64(p + 64);
    return TUTTI_SUCCESS;
}

void tutti__boot_hdr_encode(const tt_boot_hdr_t *h, uint8_t p[TT_BOOT_HDR_LEN])
{
    tt_put32(p, h->type);
    tt_put32(p + 4, h->seq);
    tt_put32(p + 8, h->arg);
    tt_put32(p + 12, h->len);
}

void tutti__boot_hdr_decode(const uint8_t p[TT_BOOT_HDR_LEN], tt_boot_hdr_t *h)
{
    h->type = tt_get32(p);
    h->seq  = tt_get32(p + 4);
    h->arg  = tt_get32(p + 8);
    h->len  = tt_get32(p + 12);
}

void tutti__boot_hello_encode(const tt_boot_hello_t *h,
                              uint8_t p[TT_BOOT_HELLO_LEN])
{
    tt_put32(p, (uint32_t)h->rank);
    tt_put32(p + 4, (uint32_t)h->nranks);
    tutti__boot_addr_encode(&h->addr, p + 8);
}

int tutti__boot_hello_decode(const uint8_t p[TT_BOOT_HELLO_LEN],
                             tt_boot_hello_t *h)
{
    h->rank   = (int32_t)tt_get32(p);
    h->nranks = (int32_t)tt_get32(p + 4);
    return tutti__boot_addr_decode(p + 8, &h->addr);
}

/* ------------------------------------------------------------------ */
/* Deadlines and raw I/O                                              */
/* ------------------------------------------------------------------ */

uint64_t tutti__boot_deadline(int timeout_ms)
{
    if (timeout_ms <= 0) {
        return 0;
    }
    return tutti__now_ns() + (uint64_t)timeout_ms * 1000000ull;
}

/* poll() timeout until the deadline: -1 without one, 0 once it passed. */
int tutti__boot_poll_ms(uint64_t deadline)
{
    uint64_t now, left;

    if (deadline == 0) {
        return -1;
    }
    now = tutti__now_ns();
    if (now >= deadline) {
        return 0;
    }
    left = (deadline - now + 999999) / 1000000;
    return left > INT_MAX ? INT_MAX : (int)left;
}

/* Waits until fd is ready for events (or in error). */
static tt_io_t tt_wait_fd(int fd, short events, uint64_t deadline, int *err_p)
{
    struct pollfd pfd = {.fd = fd, .events = events};

    for (;;) {
        int rc = poll(&pfd, 1, tutti__boot_poll_ms(deadline));

        if (rc > 0) {
            return TT_IO_OK;
        }
        if (rc == 0) {
            if (tutti__boot_poll_ms(deadline) == 0) {
                return TT_IO_TIMEOUT;
            }
            continue;
        }
        if (errno != EINTR) {
            *err_p = errno;
            return TT_IO_ERROR;
        }
    }
}

static tt_io_t tt_sendv_all(int fd, struct iovec *iov, int iovcnt,
                            uint64_t deadline, int *err_p)
{
    while (iovcnt > 0) {
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
        ssize_t       n   = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0) {
            tt_io_t io;

            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                *err_p = errno;
                return (errno == EPIPE || errno == ECONNRESET) ? TT_IO_CLOSED
                                                                : TT_IO_ERROR;
            }
            io = tt_wait_fd(fd, POLLOUT, deadline, err_p);
            if (io != TT_IO_OK) {
                return io;
            }
            continue;
        }
        /* Skip what went out, possibly ending inside an iovec. */
        while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return TT_IO_OK;
}

static tt_io_t tt_send_all(int fd, const void *buf, size_t len,
                           uint64_t deadline, int *err_p)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};

    return tt_sendv_all(fd, &iov, 1, deadline, err_p);
}

static tt_io_t tt_recv_all(int fd, void *buf, size_t len, uint64_t deadline,
                           int *err_p)
{
    char *p = buf;

    while (len > 0) {
        ssize_t n = recv(fd, p, len, MSG_DONTWAIT);

        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n == 0) {
            *err_p = 0;
            return TT_IO_CLOSED;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            tt_io_t io = tt_wait_fd(fd, POLLIN, deadline, err_p);

            if (io != TT_IO_OK) {
                return io;
            }
            continue;
        }
        *err_p = errno;
        return errno == ECONNRESET ? TT_IO_CLOSED : TT_IO_ERROR;
    }
    return TT_IO_OK;
}

/* "rank 3" or "the root", for messages. */
static const char *tt_self_str(int self, char *buf, size_t len)
{
    if (self < 0) {
        return "the root";
    }
    snprintf(buf, len, "rank %d", self);
    return buf;
}

/* Turns an I/O outcome on a link into the logged error. */
static tutti_result_t tt_link_error(const tt_boot_link_t *l, tt_io_t io,
                                    int err, const char *during)
{
    char self[32];

    tt_self_str(l->self, self, sizeof(self));
    switch (io) {
    case TT_IO_TIMEOUT:
        return tutti__error(TUTTI_ERR_TIMEOUT,
                            "bootstrap: %s waited %d ms for %s (%s)", self,
                            l->timeout_ms, l->peer, during);
    case TT_IO_CLOSED:
        return tutti__error(TUTTI_ERR_REMOTE,
                            "bootstrap: %s: %s closed the connection (%s)%s%s",
                            self, l->peer, during, err ? ": " : "",
                            err ? strerror(err) : "");
    default:
        return tutti__error(TUTTI_ERR_REMOTE,
                            "bootstrap: %s: connection to %s failed (%s): %s",
                            self, l->peer, during, strerror(err));
    }
}

void tutti__boot_set_nodelay(int fd)
{
    int one = 1;

    /* Small request/response messages: do not wait for Nagle. Failure only
     * costs latency. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* ------------------------------------------------------------------ */
/* Interface choice and listening                                     */
/* ------------------------------------------------------------------ */

/* Does name match one of the comma-separated entries of list (exactly, or
 * as a prefix when prefix is set)? */
static int tt_if_match(const char *list, const char *name, int prefix)
{
    const char *p = list;

    while (*p != '\0') {
        size_t n = strcspn(p, ",");

        if (n > 0) {
            if (prefix ? strncmp(name, p, n) == 0
                       : (strlen(name) == n && strncmp(name, p, n) == 0)) {
                return 1;
            }
        }
        p += n;
        if (*p == ',') {
            p++;
        }
    }
    return 0;
}

/* Usable for the bootstrap: up, with an IPv4 address. */
static int tt_if_usable(const struct ifaddrs *ifa)
{
    return ifa->ifa_addr != NULL && ifa->ifa_addr->sa_family == AF_INET &&
           (ifa->ifa_flags & IFF_UP);
}

static const struct ifaddrs *tt_if_pick(const struct ifaddrs *all,
                                        const char *spec)
{
    const struct ifaddrs *ifa;
    int                   exclude = spec[0] == '^';
    int                   loopback;

    if (spec[0] != '\0' && !exclude) {
        for (ifa = all; ifa != NULL; ifa = ifa->ifa_next) {
            if (tt_if_usable(ifa) && tt_if_match(spec, ifa->ifa_name, 0)) {
                return ifa;
            }
        }
        return NULL;
    }
    /* Non-loopback interfaces first, loopback as the fallback. */
    for (loopback = 0; loopback <= 1; loopback++) {
        for (ifa = all; ifa != NULL; ifa = ifa->ifa_next) {
            if (!tt_if_usable(ifa) ||
                !!(ifa->ifa_flags & IFF_LOOPBACK) != loopback) {
                continue;
            }
            if (exclude && tt_if_match(spec + 1, ifa->ifa_name, 1)) {
                continue;
            }
            return ifa;
        }
    }
    return NULL;
}

/* Fills addr_p with the chosen interface's address (port 0). */
static tutti_result_t tt_if_choose(const char *spec, tt_boot_addr_t *addr_p,
                                   char *ifname, size_t ifname_len)
{
    struct ifaddrs       *all = NULL;
    const struct ifaddrs *ifa;
    char                  have[256] = "";

    if (getifaddrs(&all) != 0) {
        return tutti__error(TUTTI_ERR_SYSTEM, "bootstrap: getifaddrs: %s",
                            strerror(errno));
    }
    ifa = tt_if_pick(all, spec);
    if (ifa == NULL && spec[0] == '\0') {
        /* No interface is up with IPv4 at all: loopback by address. */
        memset(addr_p, 0, sizeof(*addr_p));
        addr_p->family  = TT_BOOT_AF_INET;
        addr_p->addr[0] = 127;
        addr_p->addr[3] = 1;
        snprintf(ifname, ifname_len, "lo");
        freeifaddrs(all);
        return TUTTI_SUCCESS;
    }
    if (ifa == NULL) {
        const struct ifaddrs *i;

        for (i = all; i != NULL; i = i->ifa_next) {
            if (tt_if_usable(i) && strlen(have) + strlen(i->ifa_name) + 3 <
                                       sizeof(have)) {
                strcat(have, have[0] ? ", " : "");
                strcat(have, i->ifa_name);
            }
        }
        freeifaddrs(all);
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "bootstrap: TUTTI_SOCKET_IFNAME=%s %s; interfaces "
                            "up with IPv4: %s", spec,
                            spec[0] == '^' ? "excludes every interface"
                                           : "names no interface that is up "
                                             "with an IPv4 address",
                            have[0] ? have : "none");
    }
    tutti__boot_addr_from_sockaddr(ifa->ifa_addr, addr_p);
    addr_p->port = 0;
    snprintf(ifname, ifname_len, "%s", ifa->ifa_name);
    freeifaddrs(all);
    return TUTTI_SUCCESS;
}

tutti_result_t tutti__boot_listen(const tt_config_t *cfg, int *fd_p,
                                  tt_boot_addr_t *addr_p)
{
    struct sockaddr_storage ss;
    socklen_t               sslen;
    tt_boot_addr_t          addr;
    char                    ifname[IF_NAMESIZE + 1], str[TT_BOOT_ADDR_STRLEN];
    tutti_result_t          res;
    int                     fd;

    res = tt_if_choose(cfg != NULL ? cfg->socket_ifname : "", &addr, ifname,
                       sizeof(ifname));
    if (res != TUTTI_SUCCESS) {
        return res;
    }
    sslen = tutti__boot_addr_to_sockaddr(&addr, &ss);
    fd    = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                   0);
    if (fd < 0) {
        return tutti__error(TUTTI_ERR_SYSTEM, "bootstrap: socket: %s",
                            strerror(errno));
    }
    tutti__boot_addr_str(&addr, str, sizeof(str));
    if (bind(fd, (struct sockaddr *)&ss, sslen) != 0) {
        res = tutti__error(TUTTI_ERR_SYSTEM, "bootstrap: bind to %s (%s): %s",
                           str, ifname, strerror(errno));
        goto err_close;
    }
    if (listen(fd, SOMAXCONN) != 0) {
        res = tutti__error(TUTTI_ERR_SYSTEM, "bootstrap: listen on %s: %s",
                           str, strerror(errno));
        goto err_close;
    }
    sslen = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) != 0) {
        res = tutti__error(TUTTI_ERR_SYSTEM, "bootstrap: getsockname: %s",
                           strerror(errno));
        goto err_close;
    }
    tutti__boot_addr_from_sockaddr((struct sockaddr *)&ss, &addr);
    tutti__boot_addr_str(&addr, str, sizeof(str));
    TT_INFO(TT_SUB_BOOT, "bootstrap: listening on %s (interface %s)", str,
            ifname);
    *fd_p   = fd;
    *addr_p = addr;
    return TUTTI_SUCCESS;

err_close:
    close(fd);
    return res;
}

/* ------------------------------------------------------------------ */
/* Client: connect and authenticate                                   */
/* ------------------------------------------------------------------ */

void tutti__boot_mac(const uint8_t *secret, int server,
                     const uint8_t *client_nonce,
                     const uint8_t *server_nonce, uint8_t *mac)
{
    static const char label_c[] = "tutti-boot client";
    static const char label_s[] = "tutti-boot server";
    tt_hmac_sha256_t  h;
    uint8_t           ver[2];

    tt_put16(ver, TT_BOOT_PROTO_VERSION);
    tutti__hmac_sha256_init(&h, secret, TT_BOOT_SECRET_LEN);
    tutti__hmac_sha256_update(&h, server ? label_s : label_c,
                              sizeof(label_c) - 1);
    tutti__hmac_sha256_update(&h, client_nonce, TT_BOOT_NONCE_LEN);
    tutti__hmac_sha256_update(&h, server_nonce, TT_BOOT_NONCE_LEN);
    tutti__hmac_sha256_update(&h, ver, sizeof(ver));
    tutti__hmac_sha256_final(&h, mac);
}

static int tt_connect_retryable(int err)
{
    /* Not listening yet, or the network still coming up: try again until
     * the deadline. */
    return err == ECONNREFUSED || err == ECONNRESET || err == ETIMEDOUT ||
           err == EHOSTUNREACH || err == ENETUNREACH || err == EAGAIN;
}

/* One nonblocking connect attempt: 0 connected, else the errno. */
static int tt_connect_once(int fd, const struct sockaddr_storage *ss,
                           socklen_t sslen, uint64_t deadline, tt_io_t *io_p)
{
    int       err = 0;
    socklen_t len = sizeof(err);

    *io_p = TT_IO_OK;
    if (connect(fd, (const struct sockaddr *)ss, sslen) == 0) {
        return 0;
    }
    if (errno != EINPROGRESS && errno != EINTR) {
        return errno;
    }
    /* Completion (or failure) shows as writability. */
    *io_p = tt_wait_fd(fd, POLLOUT, deadline, &err);
    if (*io_p != TT_IO_OK) {
        return err != 0 ? err : ETIMEDOUT;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
        return errno;
    }
    return err;
}

static tutti_result_t tt_connect_retry(tt_boot_link_t *link,
                                       const tt_boot_addr_t *addr,
                                       uint64_t deadline)
{
    struct sockaddr_storage ss;
    socklen_t               sslen = tutti__boot_addr_to_sockaddr(addr, &ss);
    int                     backoff_ms = 1, tries = 0;

    if (sslen == 0) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "bootstrap: cannot connect to %s: address family "
                            "%u", link->peer, addr->family);
    }
    for (;;) {
        tt_io_t io;
        int     err, fd;

        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);
        if (fd < 0) {
            return tutti__error(TUTTI_ERR_SYSTEM, "bootstrap: socket: %s",
                                strerror(errno));
        }
        err = tt_connect_once(fd, &ss, sslen, deadline, &io);
        if (err == 0) {
            tutti__boot_set_nodelay(fd);
            link->fd = fd;
            return TUTTI_SUCCESS;
        }
        close(fd);
        if (io == TT_IO_TIMEOUT) {
            return tt_link_error(link, io, 0, "connecting");
        }
        if (!tt_connect_retryable(err)) {
            return tutti__error(TUTTI_ERR_REMOTE,
                                "bootstrap: rank %d: connect to %s: %s",
                                link->self, link->peer, strerror(err));
        }
        if (tries++ == 0) {
            TT_INFO(TT_SUB_BOOT, "bootstrap: %s: %s; retrying until the "
                    "timeout", link->peer, strerror(err));
        }
        if (deadline != 0 && tutti__boot_poll_ms(deadline) == 0) {
            return tt_link_error(link, TT_IO_TIMEOUT, 0, "connecting");
        }
        /* Sleep (bounded by the deadline), backing off to 100 ms. */
        {
            int left = tutti__boot_poll_ms(deadline);
            int ms   = (left >= 0 && left < backoff_ms) ? left : backoff_ms;

            poll(NULL, 0, ms);
        }
        backoff_ms = TT_MIN(backoff_ms * 2, TT_BOOT_CONNECT_BACKOFF_MAX_MS);
    }
}

tutti_result_t tutti__boot_connect(tt_boot_link_t *link,
                                   const tt_boot_addr_t *addr,
                                   const uint8_t *secret, uint64_t deadline)
{
    uint8_t        srv[TT_BOOT_SRV_HELLO_LEN], cli[TT_BOOT_CLI_HELLO_LEN];
    uint8_t        mac[TT_BOOT_MAC_LEN], expect[TT_BOOT_MAC_LEN];
    const uint8_t *snonce = srv + 8;
    uint8_t       *cnonce = cli + 8;
    tutti_result_t res;
    tt_io_t        io;
    int            err = 0;

    TT_CHECK(tt_connect_retry(link, addr, deadline));

    /* The server speaks first: its magic, version and nonce. */
    io = tt_recv_all(link->fd, srv, sizeof(srv), deadline, &err);
    if (io != TT_IO_OK) {
        res = tt_link_error(link, io, err, "authentication");
        goto err_close;
    }
    if (tt_get32(srv) != TT_BOOT_MAGIC) {
        res = tutti__error(TUTTI_ERR_REMOTE, "bootstrap: rank %d: %s is not "
                           "a tutti bootstrap (bad magic)", link->self,
                           link->peer);
        goto err_close;
    }
    if (tt_get16(srv + 4) != TT_BOOT_PROTO_VERSION) {
        res = tutti__error(TUTTI_ERR_REMOTE, "bootstrap: rank %d: %s speaks "
                           "bootstrap protocol version %u, this library %u",
                           link->self, link->peer, tt_get16(srv + 4),
                           TT_BOOT_PROTO_VERSION);
        goto err_close;
    }

    /* Our nonce and our proof. */
    memset(cli, 0, sizeof(cli));
    tt_put32(cli, TT_BOOT_MAGIC);
    tt_put16(cli + 4, TT_BOOT_PROTO_VERSION);
    TT_CHECK_GOTO(tutti__random_bytes(cnonce, TT_BOOT_NONCE_LEN), res,
                  err_close);
    tutti__boot_mac(secret, 0, cnonce, snonce, cli + 8 + TT_BOOT_NONCE_LEN);
    io = tt_send_all(link->fd, cli, sizeof(cli), deadline, &err);
    if (io != TT_IO_OK) {
        res = tt_link_error(link, io, err, "authentication");
        goto err_close;
    }

    /* Its proof. A close here means it did not accept ours. */
    io = tt_recv_all(link->fd, mac, sizeof(mac), deadline, &err);
    if (io == TT_IO_CLOSED) {
        res = tutti__error(TUTTI_ERR_REMOTE, "bootstrap: rank %d: %s "
                           "rejected our authentication (an id from another "
                           "job, or a stale one?)", link->self, link->peer);
        goto err_close;
    }
    if (io != TT_IO_OK) {
        res = tt_link_error(link, io, err, "authentication");
        goto err_close;
    }
    tutti__boot_mac(secret, 1, cnonce, snonce, expect);
    if (!tutti__ct_equal(mac, expect, sizeof(mac))) {
        res = tutti__error(TUTTI_ERR_REMOTE, "bootstrap: rank %d: %s failed "
                           "authentication (not the root of this id)",
                           link->self, link->peer);
        goto err_close;
    }
    return TUTTI_SUCCESS;

err_close:
    close(link->fd);
    link->fd = -1;
    return res;
}

tutti_result_t tutti__boot_send_frame(tt_boot_link_t *link, uint32_t type,
                                      uint32_t seq, uint32_t arg,
                                      const void *data, size_t len,
                                      uint64_t deadline)
{
    tt_boot_hdr_t hdr = {.type = type, .seq = seq, .arg = arg,
                         .len = (uint32_t)len};
    uint8_t       h[TT_BOOT_HDR_LEN];
    struct iovec  iov[2];
    tt_io_t       io;
    int           err = 0;

    tt_assert(len <= TT_BOOT_MSG_MAX);
    if (link->fd < 0) {
        return tt_link_error(link, TT_IO_CLOSED, 0, "sending");
    }
    tutti__boot_hdr_encode(&hdr, h);
    iov[0].iov_base = h;
    iov[0].iov_len  = sizeof(h);
    iov[1].iov_base = (void *)data;
    iov[1].iov_len  = len;
    io = tt_sendv_all(link->fd, iov, len > 0 ? 2 : 1, deadline, &err);
    if (io != TT_IO_OK) {
        return tt_link_error(link, io, err, "sending");
    }
    return TUTTI_SUCCESS;
}

tutti_result_t tutti__boot_recv_frame(tt_boot_link_t *link,
                                      tt_boot_hdr_t *hdr, void *buf,
                                      size_t cap, uint64_t deadline,
                                      const char *during)
{
    uint8_t h[TT_BOOT_HDR_LEN];
    tt_io_t io;
    int     err = 0;

    io = tt_recv_all(link->fd, h, sizeof(h), deadline, &err);
    if (io != TT_IO_OK) {
        return tt_link_error(link, io, err, during);
    }
    tutti__boot_hdr_decode(h, hdr);
    if (hdr->len > TT_BOOT_MSG_MAX || hdr->len > cap) {
        return tutti__error(TUTTI_ERR_REMOTE, "bootstrap: rank %d: protocol "
                            "error: %s sent a message of type %u and %u "
                            "bytes (at most %zu expected)", link->self,
                            link->peer, hdr->type, hdr->len,
                            TT_MIN(cap, (size_t)TT_BOOT_MSG_MAX));
    }
    io = tt_recv_all(link->fd, buf, hdr->len, deadline, &err);
    if (io != TT_IO_OK) {
        return tt_link_error(link, io, err, during);
    }
    return TUTTI_SUCCESS;
}

int tutti__boot_post_frame(int fd, uint32_t type, uint32_t seq, uint32_t arg,
                           const void *data, size_t len, uint64_t deadline)
{
    tt_boot_hdr_t hdr = {.type = type, .seq = seq, .arg = arg,
                         .len = (uint32_t)len};
    uint8_t       h[TT_BOOT_HDR_LEN];
    struct iovec  iov[2] = {{h, sizeof(h)}, {(void *)data, len}};
    int           err;

    tt_assert(len <= TT_BOOT_MSG_MAX);
    if (fd < 0) {
        return -1;
    }
    tutti__boot_hdr_encode(&hdr, h);
    return tt_sendv_all(fd, iov, len > 0 ? 2 : 1, deadline, &err) == TT_IO_OK
               ? 0
               : -1;
}

void tutti__boot_send_error(int fd, tutti_result_t code, const char *text)
{
    /* Best effort: the peer may be gone, which is not worth a message. */
    (void)tutti__boot_post_frame(fd, TT_BOOT_MSG_ERROR, 0,
                                 (uint32_t)-(int32_t)code, text,
                                 TT_MIN(strlen(text), TT_BOOT_TEXT_MAX),
                                 tutti__boot_deadline(TT_BOOT_NOTIFY_MS));
}

tutti_result_t tutti__boot_wire_code(uint32_t arg)
{
    int32_t code = -(int32_t)arg;

    if (code > TUTTI_ERR_INVALID_ARGUMENT || code < TUTTI_ERR_NO_MEMORY) {
        return TUTTI_ERR_REMOTE;
    }
    return (tutti_result_t)code;
}
