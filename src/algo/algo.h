/*
 * Algorithms: each one is a pure function from a collective's arguments to
 * one rank's schedule (src/schedule.h), registered in one table (algo.c)
 * with a name, a description and a supports() check. This header also holds
 * the TUTTI_ALGO override grammar's parsed form and the default selection.
 */
#ifndef TUTTI_ALGO_H
#define TUTTI_ALGO_H

#include <stddef.h>

#include "schedule.h"
#include "tutti.h"

/*
 * The collectives, and the buffers their schedules see (elements):
 *
 *   ALLREDUCE       SEND[count]      RECV[count]
 *   ALLGATHER       SEND[count]      RECV[n * count]; in place: SEND is
 *                                    RECV + rank * count
 *   REDUCE_SCATTER  SEND[n * count]  RECV[count]; in place: RECV is
 *                                    SEND + rank * count
 *   BROADCAST       SEND[count] (root only; never read elsewhere)
 *                                    RECV[count]
 *   REDUCE          SEND[count]      RECV[count] (root only; never
 *                                    touched elsewhere: use SCRATCH)
 *   ALLTOALL        SEND[n * count]  RECV[n * count]; block p of SEND goes
 *                                    to rank p, block p of RECV comes from
 *                                    rank p; in place: SEND is RECV
 *   BARRIER         no user buffers; count is 1, datatype uint8, and the
 *                                    schedule moves SCRATCH bytes
 *
 * Elsewhere "in place" means SEND is RECV. A schedule never reads SEND
 * where it is not defined, and writes SEND never.
 */
typedef enum tt_coll {
    TT_COLL_ALLREDUCE = 0,
    TT_COLL_ALLGATHER,
    TT_COLL_REDUCE_SCATTER,
    TT_COLL_BROADCAST,
    TT_COLL_REDUCE,
    TT_COLL_ALLTOALL,
    TT_COLL_BARRIER,
    TT_COLL_NUM
} tt_coll_t;

/* Everything an algorithm may look at. */
typedef struct tt_coll_args {
    tt_coll_t        coll;
    size_t           count;  /* see the table above */
    tutti_datatype_t datatype;
    tutti_redop_t    op;     /* reductions only */
    int              root;   /* rooted collectives only */
    int              rank;
    int              nranks;
    int              inplace;
} tt_coll_args_t;

typedef struct tt_algo {
    const char *name;
    const char *desc;
    tt_coll_t   coll;
    /* TUTTI_SUCCESS, or TUTTI_ERR_UNSUPPORTED with a reason in *why_p. */
    tutti_result_t (*supports)(const tt_coll_args_t *args, const char **why_p);
    /* Appends this rank's steps to s (initialised by the caller). */
    tutti_result_t (*build)(const tt_coll_args_t *args, tt_sched_t *s);
} tt_algo_t;

/* Built-in algorithms (one file each). */
extern const tt_algo_t tutti__algo_ring_allreduce;
extern const tt_algo_t tutti__algo_tree_allreduce;
extern const tt_algo_t tutti__algo_rd_allreduce;
extern const tt_algo_t tutti__algo_rabenseifner_allreduce;
extern const tt_algo_t tutti__algo_ring_allgather;
extern const tt_algo_t tutti__algo_rd_allgather;
extern const tt_algo_t tutti__algo_bruck_allgather;
extern const tt_algo_t tutti__algo_ring_reduce_scatter;
extern const tt_algo_t tutti__algo_rh_reduce_scatter;
extern const tt_algo_t tutti__algo_binomial_broadcast;
extern const tt_algo_t tutti__algo_chain_broadcast;
extern const tt_algo_t tutti__algo_binomial_reduce;
extern const tt_algo_t tutti__algo_chain_reduce;
extern const tt_algo_t tutti__algo_pairwise_alltoall;
extern const tt_algo_t tutti__algo_dissemination_barrier;

/* The table, NULL-terminated. */
extern const tt_algo_t *const tutti__algos[];

const char *tutti__coll_name(tt_coll_t coll);

/* Bytes a collective "moves", as nccl-tests' size column: allgather,
 * reduce-scatter and alltoall nranks * count * typesize, the others
 * count * typesize. */
size_t tutti__coll_bytes(const tt_coll_args_t *args);

#define TT_ALGO_MAX_RULES 32

typedef struct tt_algo_rule {
    tt_coll_t        coll;
    size_t           lo, hi; /* bytes, [lo, hi) */
    const tt_algo_t *algo;
} tt_algo_rule_t;

typedef struct tt_algo_sel {
    int            nrules;
    tt_algo_rule_t rules[TT_ALGO_MAX_RULES];
} tt_algo_sel_t;

/* Parses the TUTTI_ALGO grammar (documented above the parser). */
tutti_result_t tutti__algo_parse(const char *text, tt_algo_sel_t *sel);

/*
 * Picks the algorithm for a call: the first rule matching (collective,
 * bytes), else the default choice. An override that the algorithm does not
 * support for these arguments is an error (TUTTI_ERR_UNSUPPORTED), not a
 * silent fallback. *algo_p is set on success.
 */
tutti_result_t tutti__algo_select(const tt_algo_sel_t *sel,
                                  const tt_coll_args_t *args,
                                  const tt_algo_t **algo_p);

/* Elements of chunk c when count elements are cut into n near-equal
 * chunks (the first count % n chunks get one more), and its offset. */
static inline size_t tt_chunk_count(size_t count, int n, int c)
{
    return count / (size_t)n + ((size_t)c < count % (size_t)n ? 1 : 0);
}
static inline size_t tt_chunk_off(size_t count, int n, int c)
{
    size_t q = count / (size_t)n, r = count % (size_t)n;
    return (size_t)c * q + ((size_t)c < r ? (size_t)c : r);
}

/*
 * The recursive algorithms (rd, rabenseifner, rh) run on a power of two of
 * ranks. With n = p + rem ranks (p the largest power of two <= n) they fold
 * the first 2 * rem ranks in pairs: even rank 2i hands its data to 2i + 1
 * and sits out until it gets the result back; 2i + 1 is participant i, and
 * rank r >= 2 * rem is participant r - rem. Participant v owns the real
 * ranks [tt_fold_first(v), tt_fold_first(v + 1)): contiguous, so a window
 * of participants is a contiguous range of blocks.
 */
typedef struct tt_fold {
    int p, rem, log2p;
    int v; /* this rank's participant number, or -1 for a folded-out rank */
} tt_fold_t;

static inline tt_fold_t tt_fold(int rank, int nranks)
{
    tt_fold_t f = {1, 0, 0, -1};

    while (f.p * 2 <= nranks) {
        f.p *= 2;
        f.log2p++;
    }
    f.rem = nranks - f.p;
    if (rank >= 2 * f.rem) {
        f.v = rank - f.rem;
    } else if (rank % 2 == 1) {
        f.v = rank / 2;
    }
    return f;
}

/* The rank that is participant v. */
static inline int tt_fold_rank(const tt_fold_t *f, int v)
{
    return v < f->rem ? 2 * v + 1 : v + f->rem;
}

/* The first real rank (block) participant v stands for; v == p gives n. */
static inline int tt_fold_first(const tt_fold_t *f, int v)
{
    return v < f->rem ? 2 * v : v + f->rem;
}

/* Step indices are >= 0; a negative one is the result of a failed add. */
static inline tutti_result_t tt_step_res(int st)
{
    return st < 0 ? (tutti_result_t)st : TUTTI_SUCCESS;
}

#endif /* TUTTI_ALGO_H */
