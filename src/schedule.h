/*
 * The schedule IR and its executor (src/sched.c). The header is not called
 * sched.h so that it does not shadow the system <sched.h>.
 *
 * An algorithm does not move bytes: it builds, for one rank, a schedule (a
 * list of steps over buffer ranges). The executor runs it: it splits each
 * step into slices (config SLICE_SIZE), keeps PIPELINE_DEPTH slices of a step
 * in flight, posts sends and receives on the transports, reduces or copies
 * what arrives and forwards it.
 *
 * A step has an optional receive part and an optional send part:
 *   recv:  from recv_peer, `count` elements into dst; with TT_RECV_REDUCE,
 *          dst = local OP incoming (local may be dst itself).
 *   send:  `count` elements from src to send_peer; with TT_STEP_FORWARD the
 *          send reads dst, slice by slice, as soon as each slice of the
 *          receive has landed (recv-reduce-send / recv-copy-send).
 *   copy:  TT_STEP_COPY: dst = src locally (no peer).
 * TT_STEP_FINALIZE divides the step's result by the number of ranks (AVG),
 * on the receive's (or copy's) destination before anything forwards it.
 *
 * Ordering rules, which every algorithm must respect and the simulator
 * checks: for each ordered pair (a, b), the sequence of a's sends to b (in
 * step order) has the same element counts as the sequence of b's receives
 * from a. A step starts only when every step it depends on is complete; the
 * executor posts to each peer strictly in step order, so a step waiting on
 * its dependencies holds back later steps to the same peer. That order is
 * kept per channel (transport.h): collective schedules use
 * TT_CHANNEL_COLL, point-to-point calls TT_CHANNEL_P2P, and the steps of
 * one channel never wait for those of the other.
 *
 * Buffers are named, not pointed to, so that a schedule is a pure function of
 * (collective, count, datatype, rank, nranks) and can be simulated, costed and
 * cached. Offsets and counts are in elements of the schedule's datatype.
 */
#ifndef TUTTI_SCHED_H
#define TUTTI_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "tutti.h"

struct tutti_comm;

typedef enum tt_buf {
    TT_BUF_NONE = 0,
    TT_BUF_SEND,    /* the user's send buffer */
    TT_BUF_RECV,    /* the user's receive buffer */
    TT_BUF_SCRATCH, /* executor-owned, sched->scratch_count elements */
    TT_BUF_COUNT
} tt_buf_t;

/* Memory type of a buffer; every range the executor touches carries one so
 * that device memory can be staged later (DESIGN.md, "Mixed devices"). */
typedef enum tt_memtype {
    TT_MEM_HOST = 0
} tt_memtype_t;

typedef struct tt_range {
    uint8_t buf; /* tt_buf_t */
    size_t  off; /* elements */
} tt_range_t;

/* tt_step_t.flags */
#define TT_STEP_RECV     (1u << 0)
#define TT_STEP_SEND     (1u << 1)
#define TT_STEP_COPY     (1u << 2)
#define TT_STEP_FORWARD  (1u << 3) /* send what the receive wrote into dst */
#define TT_STEP_FINALIZE (1u << 4) /* divide the result by nranks (AVG) */

typedef enum tt_recv_mode {
    TT_RECV_COPY = 0, /* dst = incoming */
    TT_RECV_REDUCE    /* dst = local OP incoming */
} tt_recv_mode_t;

#define TT_STEP_MAX_DEPS 4

typedef struct tt_step {
    uint32_t   flags;
    uint8_t    recv_mode; /* tt_recv_mode_t */
    int        recv_peer; /* with TT_STEP_RECV */
    int        send_peer; /* with TT_STEP_SEND */
    size_t     count;     /* elements moved by every part of this step */
    tt_range_t dst;       /* receive / copy destination */
    tt_range_t src;       /* send / copy source (ignored with FORWARD) */
    tt_range_t local;     /* the other reduce operand (TT_RECV_REDUCE) */
    int        ndeps;
    int        deps[TT_STEP_MAX_DEPS]; /* indices of earlier steps */
} tt_step_t;

typedef struct tt_sched {
    tutti_datatype_t datatype;
    tutti_redop_t    op;
    int              rank, nranks;
    size_t           scratch_count; /* elements of TT_BUF_SCRATCH needed */
    int              nsteps;
    int              cap;
    tt_step_t       *steps;
    const char      *algo;     /* name of the algorithm that built it */
    uint8_t          tag_kind; /* the collective, carried in message tags
                                  so that mismatched calls are caught */
    uint8_t          channel;  /* TT_CHANNEL_COLL (0, the default) or
                                  TT_CHANNEL_P2P: its per-peer order and
                                  bit 63 of its tags */
} tt_sched_t;

/* Empty schedule for (datatype, op, rank, nranks). */
tutti_result_t tutti__sched_init(tt_sched_t *s, tutti_datatype_t datatype,
                                 tutti_redop_t op, int rank, int nranks);
void           tutti__sched_fini(tt_sched_t *s);

/*
 * Appends a step and returns its index (>= 0), or a negative result on
 * allocation failure. Steps with count 0 are kept (peers must agree on
 * them) but complete at once without touching a transport.
 */
int tutti__sched_add(tt_sched_t *s, const tt_step_t *step);

/* Shorthands for the common shapes; each returns the step index. deps may
 * be NULL when ndeps is 0. */
int tutti__sched_send(tt_sched_t *s, int peer, tt_range_t src, size_t count,
                      int ndeps, const int *deps);
int tutti__sched_recv(tt_sched_t *s, int peer, tt_range_t dst, size_t count,
                      int ndeps, const int *deps);
int tutti__sched_copy(tt_sched_t *s, tt_range_t src, tt_range_t dst,
                      size_t count, int ndeps, const int *deps);
static inline tt_range_t tt_range(tt_buf_t buf, size_t off)
{
    tt_range_t r = {(uint8_t)buf, off};
    return r;
}

/* Buffers bound to a schedule for one execution. */
typedef struct tt_bufs {
    const void  *send;
    void        *recv;
    tt_memtype_t send_mem, recv_mem;
} tt_bufs_t;

/*
 * An execution: one or more schedules (one per operation of a group) issued
 * together on a communicator. Executions of a communicator progress
 * concurrently; what orders them is the per-peer posting order, which
 * spans executions in the order they were issued (the order every rank
 * issues its calls in), so nonblocking calls and groups need no other
 * matching.
 */
typedef struct tt_exec tt_exec_t;

/* One operation of an execution; the schedule is moved into the
 * execution (the caller's copy is emptied). */
typedef struct tt_op {
    tt_sched_t sched;
    tt_bufs_t  bufs;
} tt_op_t;

/*
 * Issues nops operations as one execution: allocates its state, links its
 * steps into the communicator's per-peer order and starts it. *x_p is set
 * on success; on failure nothing was issued and the schedules are freed.
 */
tutti_result_t tutti__exec_issue(struct tutti_comm *comm, tt_op_t *ops,
                                 int nops, tt_exec_t **x_p);

/*
 * Issues again an execution of one operation that completed successfully
 * (and was not freed), with new buffers: its schedule, state and scratch
 * are reused, so nothing is built or allocated. The communicator must be
 * the one it ran on, unbroken.
 */
tutti_result_t tutti__exec_reissue(tt_exec_t *x, const tt_bufs_t *bufs);

/* The bytes of scratch and staging memory an execution holds. */
size_t tutti__exec_mem_bytes(const tt_exec_t *x);

/* TUTTI_INPROGRESS, TUTTI_SUCCESS or the error that ended it. Makes one
 * non-blocking progress pass over the communicator first. */
tutti_result_t tutti__exec_test(tt_exec_t *x);

/*
 * Progresses the communicator until x completes, honouring its timeout
 * (TUTTI_ERR_TIMEOUT, counted from the issue), abort (TUTTI_ERR_ABORTED)
 * and peer failures (TUTTI_ERR_REMOTE). Waiting spins SPIN_COUNT polls,
 * then yields YIELD_COUNT times, then sleeps between polls: on the wait
 * fds of the transports in use when all have one (woken by the next
 * message, at most 10 ms), else for SLEEP_US.
 */
tutti_result_t tutti__exec_wait(tt_exec_t *x);

/*
 * Releases an execution. One that has not completed (its communicator
 * broke) stays linked to the communicator, because transports may still
 * hold its requests, and is freed by tutti__exec_cleanup.
 */
void tutti__exec_free(tt_exec_t *x);

/* Frees every execution of a communicator; its endpoints are closed. */
void tutti__exec_cleanup(struct tutti_comm *comm);

/* Issue + wait + free: a blocking call. */
tutti_result_t tutti__sched_run(struct tutti_comm *comm, tt_sched_t *s,
                                const tt_bufs_t *bufs);

#endif /* TUTTI_SCHED_H */
