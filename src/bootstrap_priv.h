/*
 * The bootstrap's per-rank state, shared by src/bootstrap.c (rendezvous,
 * init, free) and src/bootstrap_watch.c (watchdog, mailbox, collectives,
 * abort, fini). Private to those files.
 *
 * Locking: `lock` guards the mailboxes, the connection states and the
 * failure records, and `cond` signals any change to them; each peer's
 * send_lock serialises the writers of its socket. Never hold `lock` while
 * sending. Only the watchdog reads the sockets once init has returned.
 */
#ifndef TUTTI_BOOTSTRAP_PRIV_H
#define TUTTI_BOOTSTRAP_PRIV_H

#include <poll.h>
#include <pthread.h>

#include "bootstrap.h"
#include "bootstrap_net.h"

/* A frame received by the watchdog, waiting in a peer's mailbox. */
typedef struct tt_boot_frame {
    struct tt_boot_frame *next;
    tt_boot_hdr_t         hdr;
    uint8_t               data[];
} tt_boot_frame_t;

/* One bootstrap connection: to rank 0, or on rank 0 to another rank. */
typedef struct tt_boot_peer {
    int              used;      /* connected at init */
    tt_boot_link_t   link;      /* fd is set to -1 by the watchdog, under
                                   send_lock, when the connection ends */
    pthread_mutex_t  send_lock; /* one writer at a time */
    /* guarded by the tt_boot lock */
    tt_boot_frame_t *head, *tail; /* mailbox */
    int              down;        /* the connection has ended */
    int              goodbye;     /* the peer said goodbye first */
    /* the watchdog's own receive state */
    uint8_t          hdr[TT_BOOT_HDR_LEN];
    size_t           got;       /* bytes of hdr, or of rx's payload */
    tt_boot_frame_t *rx;        /* frame whose payload is arriving */
} tt_boot_peer_t;

/* What is known of a rank's failure (guarded by the tt_boot lock). */
typedef struct tt_boot_fail {
    int  failed;   /* died or aborted */
    int  reported; /* the callback has been called for it */
    char why[TT_BOOT_TEXT_MAX + 1];
} tt_boot_fail_t;

struct tt_boot {
    int             rank, nranks;
    int             timeout_ms;  /* bound on each call; <= 0: none */
    uint8_t         secret[TT_BOOT_SECRET_LEN];
    uint32_t        seq;         /* collectives so far (calling thread) */
    tt_boot_addr_t *table;       /* [nranks], from the root */
    tt_boot_peer_t *peers;       /* [nranks]; rank 0 uses 1.., others 0 */
    tt_boot_fail_t *fails;       /* [nranks] */
    struct pollfd  *pfd;         /* [nranks + 1], the watchdog's */
    int            *pfd_rank;    /* [nranks + 1] */
    pthread_mutex_t lock;
    pthread_cond_t  cond;        /* mailbox or connection state changed */
    int             wake_fd;     /* eventfd that wakes the watchdog */
    pthread_t       thread;
    int             thread_started;
    int             stop;        /* the watchdog must exit */
    int             leaving;     /* fini has begun: no more callbacks */
    int             aborted;
    tt_boot_fail_fn fn;
    void           *fn_arg;
};

/* Starts a thread with every signal blocked (returns pthread_create's). */
int tutti__boot_thread_start(pthread_t *t, void *(*fn)(void *), void *arg,
                             int detached);
/* Starts the watchdog of an initialised bootstrap. */
tutti_result_t tutti__boot_watch_start(tt_boot_t *b);
/* Closes and frees everything (the watchdog must not be running). */
void tutti__boot_free(tt_boot_t *b);

#endif /* TUTTI_BOOTSTRAP_PRIV_H */
