/*
 * Bootstrap: the authenticated TCP rendezvous that forms a communicator and
 * the out-of-band channel that watches it afterwards (src/bootstrap.c).
 *
 * tutti_get_unique_id() calls tutti__boot_root_start(): it draws a random
 * 256-bit secret and a 64-bit job id, listens on a TCP port of the chosen
 * interface (TUTTI_SOCKET_IFNAME) and starts a detached root thread. The id
 * carries the root's address, the secret and the job id. Every rank's
 * tutti__boot_init() connects to the root, both sides prove knowledge of the
 * secret (HMAC-SHA256 challenge-response over fresh nonces, constant-time
 * compare) and the protocol version before anything else is read, and the
 * rank sends its listening address. Once all nranks have arrived the root
 * sends everyone the table of addresses and exits; ranks 1..n-1 then connect
 * (authenticated the same way) to rank 0, which is the hub of the bootstrap
 * collectives below. Every message carries a bounded length.
 *
 * All calls bound their waiting by the timeout given at init
 * (TUTTI_ERR_TIMEOUT; 0 = forever) and fail with TUTTI_ERR_REMOTE when a peer's
 * connection breaks.
 */
#ifndef TUTTI_BOOTSTRAP_H
#define TUTTI_BOOTSTRAP_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "tutti.h"

typedef struct tt_boot tt_boot_t;

/* Largest message of a bootstrap collective, per rank. */
#define TT_BOOT_MSG_MAX (64 * 1024)

/*
 * Starts a root (listener + thread) and writes its id. Returns once the
 * root thread runs; that thread allocates nothing until the rendezvous is
 * over, so the caller may fork() its ranks right away. The root exits and
 * closes its socket once it has sent the table, or cfg->timeout_ms after
 * this call (<= 0: never), telling the ranks that came which did not.
 */
tutti_result_t tutti__boot_root_start(const tt_config_t *cfg,
                                      tutti_unique_id_t *id_p);

/* The job id carried in an id (names shared-memory segments). */
uint64_t tutti__boot_job_id(const tutti_unique_id_t *id);

/* Text form (lower-case hex) of an id, and back; the parser validates. */
tutti_result_t tutti__boot_id_to_text(const tutti_unique_id_t *id,
                                      char *text, size_t len);
tutti_result_t tutti__boot_id_from_text(const char *text,
                                        tutti_unique_id_t *id_p);

/*
 * Joins the rendezvous as `rank` of `nranks`; returns once every rank has
 * arrived and the hub connections are up. Waits at most timeout_ms
 * (<= 0: forever) in total.
 */
tutti_result_t tutti__boot_init(const tutti_unique_id_t *id, int rank,
                                int nranks, const tt_config_t *cfg,
                                int timeout_ms, tt_boot_t **boot_p);

/*
 * all[r * len .. (r + 1) * len) = rank r's `mine`, on every rank.
 * len <= TT_BOOT_MSG_MAX, equal on every rank (checked: a mismatch is
 * TUTTI_ERR_INVALID_USAGE).
 */
tutti_result_t tutti__boot_allgather(tt_boot_t *b, const void *mine,
                                     void *all, size_t len);
tutti_result_t tutti__boot_barrier(tt_boot_t *b);

/*
 * Starts the watchdog thread: from now on, when any other rank's process dies
 * (its bootstrap connection closes without a goodbye) or calls
 * tutti__boot_abort_notify(), fn(arg, peer, code, why) is called once, from
 * the watchdog thread, with code TUTTI_ERR_REMOTE. Ranks learn of every
 * peer's failure through rank 0, which relays it; if rank 0 dies, every rank
 * learns it directly. The bootstrap collectives keep working after this.
 * (The watchdog thread itself runs from the end of init, and failures it
 * saw before this call are reported right after it.)
 */
typedef void (*tt_boot_fail_fn)(void *arg, int peer, tutti_result_t code,
                                const char *why);
tutti_result_t tutti__boot_watch(tt_boot_t *b, tt_boot_fail_fn fn, void *arg);

/* Tells every other rank (through the hub) that this one aborted.
 * Best effort, never blocks for long; callable from any thread. */
void tutti__boot_abort_notify(tt_boot_t *b);

/* Says goodbye (so that leaving is not taken for a crash) and frees. */
void tutti__boot_fini(tt_boot_t *b);

#endif /* TUTTI_BOOTSTRAP_H */
