/*
 * tutti: cross-vendor collective communication.
 *
 * This is the only header a user includes. It declares the result codes,
 * datatypes and reduction operators, the communicator life cycle and the
 * collectives. Every call returns a tutti_result_t; on an error,
 * tutti_last_error() holds a sentence that says exactly what was wrong.
 *
 * Model (NCCL's, in C idiom): one process calls tutti_get_unique_id(), the id
 * travels to every rank out of band (fork, MPI_Bcast, a file, the
 * environment variable TUTTI_UNIQUE_ID as text), then every rank calls
 * tutti_comm_init() with the same id, the same nranks and its own rank.
 *
 * Thread safety: a communicator is used by one thread at a time, except for
 * tutti_comm_abort(), which any thread may call at any time.
 */
#ifndef TUTTI_H
#define TUTTI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TUTTI_BUILDING) && defined(__GNUC__)
#define TUTTI_API __attribute__((visibility("default")))
#else
#define TUTTI_API
#endif

#define TUTTI_VERSION_MAJOR 0
#define TUTTI_VERSION_MINOR 1
#define TUTTI_VERSION_PATCH 0
/* 100 * 100 * major + 100 * minor + patch, as NCCL_VERSION_CODE */
#define TUTTI_VERSION_CODE                                                    \
    (TUTTI_VERSION_MAJOR * 10000 + TUTTI_VERSION_MINOR * 100 +                \
     TUTTI_VERSION_PATCH)

/*
 * Result codes. Success is 0, "in progress" is positive, errors are
 * negative. The list is generated from one X-macro in src/error.c.
 */
typedef enum tutti_result {
    TUTTI_SUCCESS              = 0,
    TUTTI_INPROGRESS           = 1,
    TUTTI_ERR_INVALID_ARGUMENT = -1, /* a bad value passed by the caller */
    TUTTI_ERR_INVALID_USAGE    = -2, /* a call out of order or mismatched */
    TUTTI_ERR_SYSTEM           = -3, /* a system call failed (errno text) */
    TUTTI_ERR_INTERNAL         = -4, /* a bug in tutti */
    TUTTI_ERR_REMOTE           = -5, /* a peer failed or sent garbage */
    TUTTI_ERR_TIMEOUT          = -6, /* config.timeout_ms elapsed */
    TUTTI_ERR_ABORTED          = -7, /* tutti_comm_abort() was called */
    TUTTI_ERR_UNSUPPORTED      = -8, /* valid, but not implemented here */
    TUTTI_ERR_NO_MEMORY        = -9  /* an allocation failed */
} tutti_result_t;

/* Datatypes, numbered as NCCL numbers them. */
typedef enum tutti_datatype {
    TUTTI_INT8     = 0,
    TUTTI_UINT8    = 1,
    TUTTI_INT32    = 2,
    TUTTI_UINT32   = 3,
    TUTTI_INT64    = 4,
    TUTTI_UINT64   = 5,
    TUTTI_FLOAT16  = 6, /* IEEE 754 binary16 */
    TUTTI_FLOAT32  = 7,
    TUTTI_FLOAT64  = 8,
    TUTTI_BFLOAT16 = 9,
    TUTTI_NUM_DATATYPES
} tutti_datatype_t;

/*
 * Reduction operators. float16 and bfloat16 are accumulated in float32 and
 * rounded to nearest even at each step; NaN propagates through every op.
 * TUTTI_AVG is the sum divided by the number of ranks; for integer types the
 * division truncates toward zero (C's integer division).
 */
typedef enum tutti_redop {
    TUTTI_SUM  = 0,
    TUTTI_PROD = 1,
    TUTTI_MAX  = 2,
    TUTTI_MIN  = 3,
    TUTTI_AVG  = 4,
    TUTTI_NUM_REDOPS
} tutti_redop_t;

/* Opaque rendezvous token; copy it by value to every rank. */
typedef struct tutti_unique_id {
    char internal[128];
} tutti_unique_id_t;

/* Text form of an id (hex), NUL included. */
#define TUTTI_UNIQUE_ID_TEXT_LEN 257

typedef struct tutti_comm *tutti_comm_t;

/*
 * Communicator configuration. Always start from TUTTI_CONFIG_INIT and set
 * the fields you need; `size` lets the structure grow without breaking
 * callers built against an older header. Environment variables (TUTTI_*)
 * are applied on top of these values: an operator can always override.
 */
typedef struct tutti_config {
    size_t      size;       /* sizeof(tutti_config_t) */
    int         timeout_ms; /* bound on init, and on the time a call may
                               wait without progress; <= 0: forever */
    const char *algo;       /* TUTTI_ALGO grammar, NULL = automatic */
    const char *transport;  /* "shm", ... ; NULL = automatic */
} tutti_config_t;

#define TUTTI_DEFAULT_TIMEOUT_MS 120000
#define TUTTI_CONFIG_INIT                                                     \
    { sizeof(tutti_config_t), TUTTI_DEFAULT_TIMEOUT_MS, NULL, NULL }

/* Version of the library actually loaded, as TUTTI_VERSION_CODE. */
TUTTI_API int tutti_version(void);

/* Static description of a result code; never NULL. */
TUTTI_API const char *tutti_strerror(tutti_result_t result);
/* Name of a result code ("TUTTI_ERR_TIMEOUT"); never NULL. */
TUTTI_API const char *tutti_result_name(tutti_result_t result);
/*
 * The calling thread's last error message: what exactly was wrong (the
 * argument and its value, the peer rank, the errno text). Empty when no
 * call of this thread has failed. Valid until this thread's next call.
 */
TUTTI_API const char *tutti_last_error(void);

/*
 * Creates a rendezvous point and returns its id. The calling process hosts
 * the rendezvous (a thread that lives until every rank has arrived or the
 * init timeout passes), so it must stay alive until the ranks' init calls
 * return; it need not be a rank itself.
 */
TUTTI_API tutti_result_t tutti_get_unique_id(tutti_unique_id_t *id_p);

/* Id <-> text (for TUTTI_UNIQUE_ID, files and command lines). */
TUTTI_API tutti_result_t
tutti_unique_id_to_text(const tutti_unique_id_t *id,
                        char text[TUTTI_UNIQUE_ID_TEXT_LEN]);
TUTTI_API tutti_result_t tutti_unique_id_from_text(const char *text,
                                                   tutti_unique_id_t *id_p);

/*
 * Collective over all nranks processes: joins the communicator as `rank`.
 * `id` NULL reads the id from the TUTTI_UNIQUE_ID environment variable.
 * `config` NULL means TUTTI_CONFIG_INIT. Blocks until every rank has joined,
 * or fails with TUTTI_ERR_TIMEOUT after config.timeout_ms.
 * *comm_p is set only on success.
 */
TUTTI_API tutti_result_t tutti_comm_init(int nranks,
                                         const tutti_unique_id_t *id, int rank,
                                         const tutti_config_t *config,
                                         tutti_comm_t *comm_p);

/*
 * Frees the communicator. Local: it does not wait for the other ranks.
 * Call it after tutti_comm_abort() too.
 *
 * After a call on the communicator failed (or it was aborted), requests
 * that call or any outstanding one had posted may still reference their
 * buffers: free or reuse them only once tutti_comm_destroy() has
 * returned. The transports are closed by then, and nothing in this
 * process touches them any more.
 */
TUTTI_API tutti_result_t tutti_comm_destroy(tutti_comm_t comm);

/*
 * Marks the communicator as aborted and tells the other ranks. Safe from any
 * thread, at any time: a collective blocked in another thread returns
 * TUTTI_ERR_ABORTED, and so does every later call but tutti_comm_destroy(),
 * which still has to be called to free the communicator.
 */
TUTTI_API tutti_result_t tutti_comm_abort(tutti_comm_t comm);

/*
 * The error that broke the communicator asynchronously (a peer's failure or
 * abort noticed by the watchdog), TUTTI_SUCCESS when none.
 */
TUTTI_API tutti_result_t tutti_comm_get_async_error(tutti_comm_t comm,
                                                    tutti_result_t *error_p);

TUTTI_API tutti_result_t tutti_comm_rank(tutti_comm_t comm, int *rank_p);
TUTTI_API tutti_result_t tutti_comm_size(tutti_comm_t comm, int *size_p);

/*
 * The transport init chose to join this rank to `peer` ("shm", "ucx",
 * "ofi"; "self" when peer is this rank), as logged at INFO. The string is
 * static.
 */
TUTTI_API tutti_result_t tutti_comm_peer_transport(tutti_comm_t comm,
                                                   int peer,
                                                   const char **name_p);

/*
 * recvbuf[i] = op over all ranks of sendbuf[i], for i < count, on every
 * rank. In place when sendbuf == recvbuf. count 0 is a no-op.
 */
TUTTI_API tutti_result_t tutti_allreduce(const void *sendbuf, void *recvbuf,
                                         size_t count,
                                         tutti_datatype_t datatype,
                                         tutti_redop_t op, tutti_comm_t comm);

/*
 * recvbuf[r * sendcount + i] = sendbuf of rank r [i], on every rank.
 * In place when sendbuf == recvbuf + rank * sendcount * typesize.
 */
TUTTI_API tutti_result_t tutti_allgather(const void *sendbuf, void *recvbuf,
                                         size_t sendcount,
                                         tutti_datatype_t datatype,
                                         tutti_comm_t comm);

/*
 * recvbuf[i] = op over all ranks of sendbuf[rank * recvcount + i], for
 * i < recvcount. sendbuf holds nranks * recvcount elements. In place when
 * recvbuf == sendbuf + rank * recvcount * typesize.
 */
TUTTI_API tutti_result_t tutti_reduce_scatter(const void *sendbuf,
                                              void *recvbuf, size_t recvcount,
                                              tutti_datatype_t datatype,
                                              tutti_redop_t op,
                                              tutti_comm_t comm);

/*
 * Every rank's recvbuf[i] = root's sendbuf[i]. sendbuf is read on the root
 * only (ignored, may be NULL, elsewhere); in place when sendbuf == recvbuf.
 */
TUTTI_API tutti_result_t tutti_broadcast(const void *sendbuf, void *recvbuf,
                                         size_t count,
                                         tutti_datatype_t datatype, int root,
                                         tutti_comm_t comm);

/*
 * Root's recvbuf[i] = op over all ranks of sendbuf[i]. recvbuf is written
 * on the root only (ignored, may be NULL, elsewhere).
 */
TUTTI_API tutti_result_t tutti_reduce(const void *sendbuf, void *recvbuf,
                                      size_t count, tutti_datatype_t datatype,
                                      tutti_redop_t op, int root,
                                      tutti_comm_t comm);

/*
 * recvbuf[p * count + i] = rank p's sendbuf[rank * count + i]: block p of
 * sendbuf goes to rank p. Both buffers hold nranks * count elements. In
 * place when sendbuf == recvbuf.
 */
TUTTI_API tutti_result_t tutti_alltoall(const void *sendbuf, void *recvbuf,
                                        size_t count,
                                        tutti_datatype_t datatype,
                                        tutti_comm_t comm);

/*
 * Point to point. Messages between two ranks are matched in the order they
 * are issued (MPI's non-overtaking rule); a receive must name the count of
 * its send. A blocking send may wait until the receiver has posted its
 * receive: put send/recv pairs that could wait on each other inside
 * tutti_group_start()/tutti_group_end(), or use the nonblocking forms.
 */
TUTTI_API tutti_result_t tutti_send(const void *buf, size_t count,
                                    tutti_datatype_t datatype, int peer,
                                    tutti_comm_t comm);
TUTTI_API tutti_result_t tutti_recv(void *buf, size_t count,
                                    tutti_datatype_t datatype, int peer,
                                    tutti_comm_t comm);

/* Returns once every rank has entered it. */
TUTTI_API tutti_result_t tutti_barrier(tutti_comm_t comm);

/*
 * Nonblocking forms. Each returns at once with a request that completes in
 * tutti_test() or tutti_wait(); any tutti call on the communicator also makes
 * progress. Several may be outstanding on one communicator; every rank must
 * issue its collectives in the same order. The buffers must stay untouched
 * until completion. If a call returns an error, no request exists and
 * nothing happens later. Once a call has failed on the communicator, the
 * buffers of every request still outstanding on it stay in use until
 * tutti_comm_destroy() (see there).
 */
typedef struct tutti_request *tutti_request_t;

TUTTI_API tutti_result_t tutti_iallreduce(const void *sendbuf, void *recvbuf,
                                          size_t count,
                                          tutti_datatype_t datatype,
                                          tutti_redop_t op, tutti_comm_t comm,
                                          tutti_request_t *req_p);
TUTTI_API tutti_result_t tutti_iallgather(const void *sendbuf, void *recvbuf,
                                          size_t sendcount,
                                          tutti_datatype_t datatype,
                                          tutti_comm_t comm,
                                          tutti_request_t *req_p);
TUTTI_API tutti_result_t
tutti_ireduce_scatter(const void *sendbuf, void *recvbuf, size_t recvcount,
                      tutti_datatype_t datatype, tutti_redop_t op,
                      tutti_comm_t comm, tutti_request_t *req_p);
TUTTI_API tutti_result_t tutti_ibroadcast(const void *sendbuf, void *recvbuf,
                                          size_t count,
                                          tutti_datatype_t datatype, int root,
                                          tutti_comm_t comm,
                                          tutti_request_t *req_p);
TUTTI_API tutti_result_t tutti_ireduce(const void *sendbuf, void *recvbuf,
                                       size_t count,
                                       tutti_datatype_t datatype,
                                       tutti_redop_t op, int root,
                                       tutti_comm_t comm,
                                       tutti_request_t *req_p);
TUTTI_API tutti_result_t tutti_ialltoall(const void *sendbuf, void *recvbuf,
                                         size_t count,
                                         tutti_datatype_t datatype,
                                         tutti_comm_t comm,
                                         tutti_request_t *req_p);
TUTTI_API tutti_result_t tutti_isend(const void *buf, size_t count,
                                     tutti_datatype_t datatype, int peer,
                                     tutti_comm_t comm,
                                     tutti_request_t *req_p);
TUTTI_API tutti_result_t tutti_irecv(void *buf, size_t count,
                                     tutti_datatype_t datatype, int peer,
                                     tutti_comm_t comm,
                                     tutti_request_t *req_p);
TUTTI_API tutti_result_t tutti_ibarrier(tutti_comm_t comm,
                                        tutti_request_t *req_p);

/*
 * Makes progress and sets *done_p to 1 when the request has completed, 0
 * otherwise. On completion the request is freed (the handle is no longer
 * valid) and its result returned: TUTTI_SUCCESS or the operation's error.
 */
TUTTI_API tutti_result_t tutti_test(tutti_request_t req, int *done_p);
/* Waits for the request, frees it and returns the operation's result. */
TUTTI_API tutti_result_t tutti_wait(tutti_request_t req);

/*
 * Calls between tutti_group_start() and tutti_group_end() (made by this
 * thread, on any communicators) are only recorded; tutti_group_end() issues
 * them together and returns when all have completed. send/recv pairs that
 * would wait on each other one by one complete in a group. Blocking calls
 * inside a group return at once; nonblocking ones return requests that
 * are complete when tutti_group_end() returns. Groups nest; only the
 * outermost end issues.
 */
TUTTI_API tutti_result_t tutti_group_start(void);
TUTTI_API tutti_result_t tutti_group_end(void);

/* Size in bytes of one element of `datatype`, 0 for an invalid one. */
TUTTI_API size_t tutti_datatype_size(tutti_datatype_t datatype);
/* "float32", "sum", ...; NULL for invalid values. */
TUTTI_API const char *tutti_datatype_name(tutti_datatype_t datatype);
TUTTI_API const char *tutti_redop_name(tutti_redop_t op);

#ifdef __cplusplus
}
#endif

#endif /* TUTTI_H */
