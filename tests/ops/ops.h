/*
 * What the 'ops' suite's rank functions share: communicators made from a
 * job's "world" communicator (each with its own TUTTI_ALGO), and one case
 * of a collective with its buffers, its issue (blocking or nonblocking)
 * and its check against the reference of tests/helpers/ref.h.
 *
 * A case's buffers follow tutti.h to the letter: in place is each
 * collective's own rule (allgather: sendbuf is this rank's block of
 * recvbuf; reduce_scatter: recvbuf is this rank's block of sendbuf); the
 * NULL mode hands NULL for the buffer a non-root does not use (broadcast's
 * sendbuf, reduce's recvbuf). The check covers the result, the guard
 * bytes around every buffer, a send buffer that must be left as it was,
 * and a non-root's reduce recvbuf that must not be written.
 */
#ifndef TT_TEST_OPS_H
#define TT_TEST_OPS_H

#include <stddef.h>
#include <stdint.h>

#include <tutti.h>

#include "algo/algo.h"
#include "ref.h"
#include "spawn.h"

/* Bound on the time any call waits without progress, inside the jobs: a
 * hang becomes TUTTI_ERR_TIMEOUT instead of a killed job. */
#define TT_OPS_CALL_TIMEOUT_MS 60000
/* Bound on a whole job (tt_test_spawn), below the Criterion timeouts. */
#define TT_OPS_JOB_TIMEOUT_MS  150000

/* Ranks the multi-rank tests run at: 8 and 9 oversubscribe 2 cores. */
#define TT_OPS_MAX_RANKS 9

/* How a case hands its buffers. */
typedef enum tt_ops_mode {
    TT_OPS_OOP = 0, /* separate send and receive buffers */
    TT_OPS_INPLACE, /* the collective's in-place form */
    TT_OPS_NULL,    /* out of place; non-roots pass NULL for the buffer
                       they do not use (rooted collectives only) */
    TT_OPS_NUM_MODES
} tt_ops_mode_t;

typedef struct tt_ops_case {
    tt_coll_t        coll;
    tutti_datatype_t dt;
    tutti_redop_t    op;    /* reductions only */
    size_t           count; /* the call's count argument */
    int              root;  /* broadcast and reduce only */
    tt_ops_mode_t    mode;
    uint64_t         seed;
    const char      *algo;  /* for messages: the forced algorithm, or NULL */
} tt_ops_case_t;

/* One case in flight on one rank. */
typedef struct tt_ops_run {
    tt_ops_case_t   c;
    int             rank, nranks;
    tt_ref_stream_t data;
    tt_test_buf_t   send, recv; /* p NULL when not allocated */
    const void     *sendp;      /* the arguments of the call */
    void           *recvp;
    char            what[160];
} tt_ops_run_t;

/* 1 for allreduce, reduce_scatter and reduce. */
int tt_ops_is_reduction(tt_coll_t coll);
int tt_ops_is_rooted(tt_coll_t coll);
const char *tt_ops_mode_name(tt_ops_mode_t mode);

/* tutti_comm_init with TT_OPS_CALL_TIMEOUT_MS and config.algo = algo
 * (NULL: automatic). */
tutti_result_t tt_ops_comm_init(int rank, int nranks,
                                const tutti_unique_id_t *id, const char *algo,
                                tutti_comm_t *comm_p);

/* A new communicator over the same ranks as `world` with config.algo =
 * algo: rank 0 creates the id and broadcasts it over world. Collective. */
tutti_result_t tt_ops_comm_derive(tutti_comm_t world, const char *algo,
                                  tutti_comm_t *comm_p);

/* 0 if `comm` picks the algorithm named `want` for case c (checked through
 * the selection the library runs for the call), else 1 (reported). */
int tt_ops_expect_algo(tutti_comm_t comm, const tt_ops_case_t *c,
                       int nranks, const char *want);

/* Allocates and fills the buffers; 0, or 1 (reported) without memory. */
int tt_ops_prepare(tt_ops_run_t *run, const tt_ops_case_t *c, int rank,
                   int nranks);
/* Issues the call: blocking when req_p is NULL, else the tutti_i* form. */
tutti_result_t tt_ops_start(tt_ops_run_t *run, tutti_comm_t comm,
                            tutti_request_t *req_p);
/* Checks a completed case; returns the number of failures (reported). */
int tt_ops_check(const tt_ops_run_t *run);
void tt_ops_release(tt_ops_run_t *run);

/*
 * prepare, blocking start, check and release: 0 passed, > 0 wrong results
 * (the communicator is still usable), -1 the call failed (reported).
 */
int tt_ops_run_case(const tt_ops_case_t *c, int rank, int nranks,
                    tutti_comm_t comm);

/*
 * A case of about `bytes` per buffer for coll (none for the barrier:
 * returns 0), with a count no rank count divides, a type per collective
 * (float32 SUM, int32 MAX, bfloat16 SUM, int8, float64), out of place for
 * even k and in place for odd k (reduce: NULL on non-roots for even k).
 * Fills *c_p but for seed and algo, and returns 1.
 */
int tt_ops_large_case(tt_coll_t coll, int k, int nranks, size_t bytes,
                      tt_ops_case_t *c_p);

/* The next seed of a sequence every rank steps alike. */
uint64_t tt_ops_seed_next(uint64_t *state);

/* Waits until every request is done, polling them with tutti_test() in
 * turn and yielding in between; reqs[i] becomes NULL as each completes.
 * Returns the number of requests that failed (reported). */
int tt_ops_test_all(tutti_request_t *reqs, int n, const char *what);

#endif /* TT_TEST_OPS_H */
