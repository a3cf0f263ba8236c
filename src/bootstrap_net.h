/*
 * Bootstrap plumbing, private to src/bootstrap*.c: the wire formats (id,
 * addresses, frames, handshake), the choice of interface and the listening
 * socket, blocking-with-deadline socket I/O and the client side of the
 * authenticated handshake (src/bootstrap_net.c), and the server loop that
 * accepts authenticated ranks for both the root and the rank-0 hub
 * (src/bootstrap_serve.c).
 *
 * Wire rules. Integers are big-endian. A connection starts with the
 * handshake below and nothing else; after it, every message is a frame: a
 * 16-byte header {type, seq, arg, len} and len <= TT_BOOT_MSG_MAX payload
 * bytes. A larger len is a protocol error (TUTTI_ERR_REMOTE).
 *
 * Handshake (server = root or hub, client = rank), all sizes fixed:
 *   server -> client  magic, version, 0, server nonce            (40 bytes)
 *   client -> server  magic, version, 0, client nonce, client MAC (72 bytes)
 *   server -> client  server MAC                                 (32 bytes)
 * MAC = HMAC-SHA256(secret, label || client nonce || server nonce ||
 * version), label "tutti-boot client" or "tutti-boot server". The client
 * proves itself first, so the server never shows a MAC to a stranger, and
 * then checks the server's proof, so a stray listener on a stale port is
 * caught too. Tags are compared in constant time.
 */
#ifndef TUTTI_BOOTSTRAP_NET_H
#define TUTTI_BOOTSTRAP_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "bootstrap.h"
#include "config.h"
#include "tutti.h"

#define TT_BOOT_MAGIC         0x54555449u /* "TUTI" */
#define TT_BOOT_PROTO_VERSION 1u
#define TT_BOOT_MAX_RANKS     1024
#define TT_BOOT_SECRET_LEN    32
#define TT_BOOT_NONCE_LEN     32
#define TT_BOOT_MAC_LEN       32
#define TT_BOOT_SRV_HELLO_LEN (8 + TT_BOOT_NONCE_LEN)
#define TT_BOOT_CLI_HELLO_LEN (8 + TT_BOOT_NONCE_LEN + TT_BOOT_MAC_LEN)
#define TT_BOOT_HDR_LEN       16
#define TT_BOOT_ADDR_LEN      24
#define TT_BOOT_HELLO_LEN     (8 + TT_BOOT_ADDR_LEN)
#define TT_BOOT_TEXT_MAX      255 /* text payload of ERROR and FAILED frames */
#define TT_BOOT_NOTIFY_MS     1000 /* bound on best-effort notifications */
#define TT_BOOT_NAME_LEN      96 /* "rank 0 (the hub) at <address>" */
#define TT_BOOT_ADDR_STRLEN   64 /* "[<IPv6>%<scope>]:<port>" */

/* Byte order helpers for the wire formats. */
static inline void tt_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void tt_put32(uint8_t *p, uint32_t v)
{
    tt_put16(p, (uint16_t)(v >> 16));
    tt_put16(p + 2, (uint16_t)v);
}

static inline void tt_put64(uint8_t *p, uint64_t v)
{
    tt_put32(p, (uint32_t)(v >> 32));
    tt_put32(p + 4, (uint32_t)v);
}

static inline uint16_t tt_get16(const uint8_t *p)
{
    return (uint16_t)(((unsigned)p[0] << 8) | p[1]);
}

static inline uint32_t tt_get32(const uint8_t *p)
{
    return ((uint32_t)tt_get16(p) << 16) | tt_get16(p + 2);
}

static inline uint64_t tt_get64(const uint8_t *p)
{
    return ((uint64_t)tt_get32(p) << 32) | tt_get32(p + 4);
}

/*
 * An address on the wire: family, port, IPv6 scope and 16 address bytes
 * (IPv4 uses the first 4). The family is the protocol's own number, not the
 * host's AF_ constant, so ids travel between different systems.
 */
#define TT_BOOT_AF_NONE  0
#define TT_BOOT_AF_INET  4
#define TT_BOOT_AF_INET6 6

typedef struct tt_boot_addr {
    uint16_t family; /* TT_BOOT_AF_* */
    uint16_t port;   /* host order; 0 for a rank that does not listen */
    uint32_t scope;  /* IPv6 scope id */
    uint8_t  addr[16];
} tt_boot_addr_t;

void tutti__boot_addr_encode(const tt_boot_addr_t *a,
                             uint8_t p[TT_BOOT_ADDR_LEN]);
/* Returns 0, or -1 when the family is unknown. */
int  tutti__boot_addr_decode(const uint8_t p[TT_BOOT_ADDR_LEN],
                             tt_boot_addr_t *a);
void tutti__boot_addr_from_sockaddr(const struct sockaddr *sa,
                                    tt_boot_addr_t *a);
/* Returns the sockaddr length, 0 when the family cannot be connected to. */
socklen_t tutti__boot_addr_to_sockaddr(const tt_boot_addr_t *a,
                                       struct sockaddr_storage *ss);
/* "1.2.3.4:5678" or "[fe80::1%2]:5678". */
void tutti__boot_addr_str(const tt_boot_addr_t *a, char *buf, size_t len);

/*
 * The unique id, 128 bytes:
 *   0 magic (4), 4 version (2), 6 zero (2), 8 root address (24),
 *   32 secret (32), 64 job id (8), 72..127 zero.
 */
typedef struct tt_boot_id {
    tt_boot_addr_t root;
    uint8_t        secret[TT_BOOT_SECRET_LEN];
    uint64_t       job_id;
} tt_boot_id_t;

void tutti__boot_id_encode(const tt_boot_id_t *in, tutti_unique_id_t *id);
/* Validates magic, version, family and padding (INVALID_ARGUMENT). */
tutti_result_t tutti__boot_id_decode(const tutti_unique_id_t *id,
                                     tt_boot_id_t *out);

/* Frame types. */
typedef enum tt_boot_msg {
    TT_BOOT_MSG_HELLO = 1,  /* rank -> root, hub: rank, nranks, address */
    TT_BOOT_MSG_ERROR,      /* root, hub -> rank: arg = -code, text */
    TT_BOOT_MSG_TABLE,      /* root -> rank: nranks addresses */
    TT_BOOT_MSG_READY,      /* hub -> rank: every rank is connected */
    TT_BOOT_MSG_GATHER,     /* rank -> hub: seq, this rank's block */
    TT_BOOT_MSG_BLOCKS,     /* hub -> rank: seq, arg = first rank, blocks */
    TT_BOOT_MSG_COLL_ERROR, /* hub -> rank: seq, arg = -code, text */
    TT_BOOT_MSG_GOODBYE,    /* either way: the sender leaves cleanly */
    TT_BOOT_MSG_ABORT,      /* rank -> hub: the sender aborted */
    TT_BOOT_MSG_FAILED,     /* hub -> rank: arg = failed rank, text */
    TT_BOOT_MSG_LAST
} tt_boot_msg_t;

typedef struct tt_boot_hdr {
    uint32_t type;
    uint32_t seq;
    uint32_t arg;
    uint32_t len;
} tt_boot_hdr_t;

void tutti__boot_hdr_encode(const tt_boot_hdr_t *h,
                            uint8_t p[TT_BOOT_HDR_LEN]);
void tutti__boot_hdr_decode(const uint8_t p[TT_BOOT_HDR_LEN],
                            tt_boot_hdr_t *h);

/* A rank's hello: who it is and where it listens. */
typedef struct tt_boot_hello {
    int32_t        rank;
    int32_t        nranks;
    tt_boot_addr_t addr;
} tt_boot_hello_t;

void tutti__boot_hello_encode(const tt_boot_hello_t *h,
                              uint8_t p[TT_BOOT_HELLO_LEN]);

/* Returns 0, or -1 when the address family is unknown. */
int tutti__boot_hello_decode(const uint8_t p[TT_BOOT_HELLO_LEN],
                             tt_boot_hello_t *h);

/* The error code an ERROR or COLL_ERROR frame carries in arg. */
tutti_result_t tutti__boot_wire_code(uint32_t arg);

/* Deadlines are tutti__now_ns() values; 0 means none. */
uint64_t tutti__boot_deadline(int timeout_ms);
/* poll() timeout until the deadline: -1 without one, 0 once it passed. */
int      tutti__boot_poll_ms(uint64_t deadline);
/* TCP_NODELAY: the bootstrap's messages are small request/response. */
void     tutti__boot_set_nodelay(int fd);

/*
 * One connected socket and what to call its other end in messages. The
 * link functions below block (poll) until done or the deadline, and log
 * and return the error themselves, naming `self` and `peer`.
 */
typedef struct tt_boot_link {
    int  fd;                     /* nonblocking, close-on-exec; -1: none */
    int  self;                   /* our rank, for messages */
    int  timeout_ms;             /* the bound, for messages */
    char peer[TT_BOOT_NAME_LEN]; /* "the root at 1.2.3.4:5678" */
} tt_boot_link_t;

/*
 * Picks the interface (cfg->socket_ifname: a name, "^prefix,..." to
 * exclude, "" for the first non-loopback IPv4 interface that is up, else
 * loopback), logs the choice at INFO and listens on an ephemeral port of it.
 * *fd_p is nonblocking and close-on-exec.
 */
tutti_result_t tutti__boot_listen(const tt_config_t *cfg, int *fd_p,
                                  tt_boot_addr_t *addr_p);

/*
 * Connects to addr, retrying while it refuses (not yet listening), and runs
 * the client side of the handshake. On success link->fd is connected and
 * authenticated.
 */
tutti_result_t tutti__boot_connect(tt_boot_link_t *link,
                                   const tt_boot_addr_t *addr,
                                   const uint8_t *secret, uint64_t deadline);

/* Sends one frame (header and len payload bytes). */
tutti_result_t tutti__boot_send_frame(tt_boot_link_t *link, uint32_t type,
                                      uint32_t seq, uint32_t arg,
                                      const void *data, size_t len,
                                      uint64_t deadline);

/*
 * Receives one frame; its payload goes to buf (cap bytes). A length above
 * TT_BOOT_MSG_MAX or cap is a protocol error. `during` says what was
 * awaited ("the address table") for the messages.
 */
tutti_result_t tutti__boot_recv_frame(tt_boot_link_t *link,
                                      tt_boot_hdr_t *hdr, void *buf,
                                      size_t cap, uint64_t deadline,
                                      const char *during);

/* Handshake tags (exported for the tests). */
void tutti__boot_mac(const uint8_t *secret, int server,
                     const uint8_t *client_nonce,
                     const uint8_t *server_nonce, uint8_t *mac);

struct tt_boot_pconn;
struct pollfd;

/*
 * The server loop shared by the root and the hub: accepts connections on
 * listen_fd, authenticates each, reads one hello frame per connection and
 * validates it (nranks equal to the expected one or, when nranks is 0, to
 * the first hello's; rank in [first_rank, nranks); no duplicate). A bad
 * connection is rejected (an ERROR frame when it authenticated, WARN log)
 * and the loop goes on. Returns once every rank of [first_rank, nranks) is
 * connected: fds[r] and hello[r] then belong to the caller. On a timeout,
 * or when an accepted rank's connection breaks, every accepted rank gets an
 * ERROR frame, everything is closed and the error is returned.
 *
 * tutti__boot_serve() itself neither allocates nor frees: its buffers come
 * from tutti__boot_server_alloc(), called beforehand by the thread that
 * sets the server up. So a process may fork() while its root serves (the
 * tutti_get_unique_id-then-fork pattern) even with an allocator whose locks
 * a fork can catch held, as ASan's can.
 */
typedef struct tt_boot_server {
    /* in */
    int             listen_fd;
    const uint8_t  *secret;
    int             nranks;     /* expected; 0: learnt from the first */
    int             first_rank; /* 0 at the root, 1 at the hub */
    uint64_t        deadline;
    int             timeout_ms; /* for messages */
    const char     *name;       /* "the root at 1.2.3.4:5", for messages */
    /* out, on success */
    int             fds[TT_BOOT_MAX_RANKS];
    tt_boot_hello_t hello[TT_BOOT_MAX_RANKS];
    /* private: from tutti__boot_server_alloc() */
    struct tt_boot_pconn *pc;
    struct pollfd        *pfd;
    int                   cap;
} tt_boot_server_t;

/* Sizes the buffers from srv->nranks (0: room for TT_BOOT_MAX_RANKS). */
tutti_result_t tutti__boot_server_alloc(tt_boot_server_t *srv);
void           tutti__boot_server_free(tt_boot_server_t *srv);
tutti_result_t tutti__boot_serve(tt_boot_server_t *srv);

/*
 * Sends one frame without logging anything: for best-effort notices
 * (goodbye, abort, relays) whose failure only means the peer is gone.
 * Returns 0 when sent, -1 otherwise.
 */
int tutti__boot_post_frame(int fd, uint32_t type, uint32_t seq, uint32_t arg,
                           const void *data, size_t len, uint64_t deadline);

/* Best effort: sends an ERROR frame, bounded by TT_BOOT_NOTIFY_MS. */
void tutti__boot_send_error(int fd, tutti_result_t code, const char *text);

#endif /* TUTTI_BOOTSTRAP_NET_H */
