/*
 * Point to point and groups: send/recv rings inside tutti_group_start/end
 * with messages large enough that the same calls one by one would wait on
 * each other forever; groups of mixed collectives and point-to-point calls,
 * nested groups, a group over two communicators; isend/irecv without a
 * group, waited send first and receive first; the non-overtaking rule
 * (several messages of different sizes to the same peer arrive in issue
 * order, whether received by waiting in reverse or one by one); and
 * point-to-point calls interleaved with collectives.
 *
 * A message from rank r is elements of r's reference stream (raw bits,
 * tests/helpers/ref.h) under a seed every rank derives alike, so the
 * receiver knows exactly what must arrive; send buffers must come back
 * unchanged, and guard bytes around every buffer intact.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>

#include <tutti.h>

#include "ops.h"

#define TT_P2P_NELEMS(_a) (sizeof(_a) / sizeof((_a)[0]))
#define TT_P2P_POISON     0x5a

/* A ring message: about 1 MiB, far more than a transport's buffering. */
#define TT_P2P_BIG 131075

/* One message, as seen by one side. */
typedef struct tt_p2p_msg {
    tt_ref_stream_t data;  /* the sender's stream */
    size_t          count;
    int             peer;
    int             sender; /* the rank whose stream it is */
    int             is_send;
    tt_test_buf_t   buf;
    tutti_request_t req;
    char            what[96];
} tt_p2p_msg_t;

/* Sets up a send to / receive from peer of count elements of dt; seed is
 * the same on both sides. Returns 0, or 1 without memory (reported). */
static int tt_p2p_msg_init(tt_p2p_msg_t *m, int is_send, int rank, int peer,
                           tutti_datatype_t dt, size_t count, uint64_t seed)
{
    size_t esize = tutti_datatype_size(dt);

    memset(m, 0, sizeof(*m));
    m->data    = (tt_ref_stream_t){.dt = dt, .raw = 1, .seed = seed};
    m->count   = count;
    m->peer    = peer;
    m->sender  = is_send ? rank : peer;
    m->is_send = is_send;
    snprintf(m->what, sizeof(m->what), "%s %zu %s %s rank %d",
             is_send ? "send of" : "recv of", count, tutti_datatype_name(dt),
             is_send ? "to" : "from", peer);
    if (tt_test_buf_alloc(&m->buf, count * esize, esize) != 0) {
        return 1;
    }
    if (is_send) {
        tt_ref_fill(&m->data, rank, 0, count, m->buf.p);
    } else {
        memset(m->buf.p, TT_P2P_POISON, count * esize);
    }
    return 0;
}

/*
 * One rank's view of a ring link: m[0] sends count elements of dt to the
 * neighbour `dir` away (1: right, -1: left), m[1] receives as many from the
 * other side. A message's stream is its sender's, so one seed serves both
 * ends of every link. Returns 0, or 1 without memory (reported).
 */
static int tt_p2p_ring_init(tt_p2p_msg_t *m, int rank, int nranks, int dir,
                            tutti_datatype_t dt, size_t count, uint64_t seed)
{
    int to   = (rank + nranks + dir) % nranks;
    int from = (rank + nranks - dir) % nranks;

    return tt_p2p_msg_init(&m[0], 1, rank, to, dt, count, seed) != 0 ||
           tt_p2p_msg_init(&m[1], 0, rank, from, dt, count, seed) != 0;
}

/* Issues the message: blocking when nonblocking is 0, else into m->req. */
static tutti_result_t tt_p2p_msg_post(tt_p2p_msg_t *m, int nonblocking,
                                      tutti_comm_t comm)
{
    tutti_datatype_t dt = m->data.dt;

    if (m->is_send) {
        return nonblocking ? tutti_isend(m->buf.p, m->count, dt, m->peer,
                                         comm, &m->req)
                           : tutti_send(m->buf.p, m->count, dt, m->peer,
                                        comm);
    }
    return nonblocking ? tutti_irecv(m->buf.p, m->count, dt, m->peer, comm,
                                     &m->req)
                       : tutti_recv(m->buf.p, m->count, dt, m->peer, comm);
}

/* Checks a completed message and frees its buffer; returns failures. */
static int tt_p2p_msg_check(tt_p2p_msg_t *m)
{
    int bad = tt_ref_check_own(&m->data, m->sender, 0, m->count, m->buf.p,
                               m->what) != 0;

    bad += !tt_test_buf_guards_ok(&m->buf, m->what);
    tt_test_buf_free(&m->buf);
    return bad;
}

/* Waits for m->req; returns 0, or 1 (reported). */
static int tt_p2p_msg_wait(tt_p2p_msg_t *m)
{
    tutti_result_t res = tutti_wait(m->req);

    m->req = NULL;
    if (res != TUTTI_SUCCESS) {
        return tt_test_fail(__FILE__, __LINE__, "%s: wait: %s (%s)", m->what,
                            tutti_result_name(res), tutti_last_error());
    }
    return 0;
}

static int tt_p2p_post_or_fail(tt_p2p_msg_t *m, int nonblocking,
                               tutti_comm_t comm)
{
    tutti_result_t res = tt_p2p_msg_post(m, nonblocking, comm);

    if (res != TUTTI_SUCCESS) {
        return tt_test_fail(__FILE__, __LINE__, "%s: %s (%s)", m->what,
                            tutti_result_name(res), tutti_last_error());
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* groups                                                                 */
/* ---------------------------------------------------------------------- */

/*
 * Rings in a group: each rank sends TT_P2P_BIG elements to its right and
 * receives as many from its left; blocking one by one, every rank would
 * sit in its send. Three shapes: send then receive, receive then send, and
 * both directions at once (to and from both neighbours; with 2 ranks both
 * neighbours are the same rank, and the messages match in issue order).
 */
static int tt_p2p_group_rings(int rank, int nranks, tutti_comm_t comm,
                              uint64_t *seed)
{
    int shape, i, bad = 0;

    for (shape = 0; shape < 3; shape++) {
        uint64_t     s1 = tt_ops_seed_next(seed), s2 = tt_ops_seed_next(seed);
        tt_p2p_msg_t m[4];
        int          n = shape == 2 ? 4 : 2;

        if (tt_p2p_ring_init(&m[0], rank, nranks, 1, TUTTI_FLOAT64,
                             TT_P2P_BIG, s1) != 0 ||
            (shape == 2 &&
             tt_p2p_ring_init(&m[2], rank, nranks, -1, TUTTI_INT8,
                              3 * TT_P2P_BIG, s2) != 0)) {
            return -1;
        }
        TT_TEST_CALL(tutti_group_start());
        if (shape == 1) {
            bad += tt_p2p_post_or_fail(&m[1], 0, comm);
            bad += tt_p2p_post_or_fail(&m[0], 0, comm);
        } else {
            /* shape 2: send right, recv left, send left, recv right */
            for (i = 0; i < n; i++) {
                bad += tt_p2p_post_or_fail(&m[i], 0, comm);
            }
        }
        TT_TEST_CALL(tutti_group_end());
        for (i = 0; i < n; i++) {
            bad += tt_p2p_msg_check(&m[i]);
        }
    }
    return bad;
}

/*
 * One group of mixed calls: an allreduce, an iallgather (whose request
 * must be complete when the group ends), a ring send/recv, a broadcast, a
 * reduce with NULL on non-roots, a barrier and an in-place alltoall.
 */
static int tt_p2p_group_mixed(int rank, int nranks, tutti_comm_t comm,
                              uint64_t *seed)
{
    tt_ops_case_t   cases[] = {
        {TT_COLL_ALLREDUCE, TUTTI_FLOAT32, TUTTI_SUM, 1021, 0,
         TT_OPS_INPLACE, 0, NULL},
        {TT_COLL_ALLGATHER, TUTTI_FLOAT64, TUTTI_SUM, 333, 0, TT_OPS_OOP, 0,
         NULL},
        {TT_COLL_BROADCAST, TUTTI_INT8, TUTTI_SUM, 5000, nranks - 1,
         TT_OPS_NULL, 0, NULL},
        {TT_COLL_REDUCE, TUTTI_INT32, TUTTI_MAX, 777, nranks / 2,
         TT_OPS_NULL, 0, NULL},
        {TT_COLL_BARRIER, TUTTI_UINT8, TUTTI_SUM, 1, 0, TT_OPS_OOP, 0, NULL},
        {TT_COLL_ALLTOALL, TUTTI_FLOAT64, TUTTI_SUM, 99, 0, TT_OPS_INPLACE,
         0, NULL},
    };
    enum { n = TT_P2P_NELEMS(cases) };
    tt_ops_run_t    runs[n];
    tutti_request_t req = NULL;
    tt_p2p_msg_t    m[2];
    int             i, done = 0, bad = 0, p2p = nranks > 1;
    uint64_t        s = tt_ops_seed_next(seed);

    for (i = 0; i < n; i++) {
        cases[i].seed = tt_ops_seed_next(seed);
        if (tt_ops_prepare(&runs[i], &cases[i], rank, nranks) != 0) {
            return -1;
        }
    }
    if (p2p &&
        tt_p2p_ring_init(m, rank, nranks, 1, TUTTI_INT32, 100003, s) != 0) {
        return -1;
    }
    TT_TEST_CALL(tutti_group_start());
    TT_TEST_CALL(tt_ops_start(&runs[0], comm, NULL));
    TT_TEST_CALL(tt_ops_start(&runs[1], comm, &req));
    if (p2p) {
        bad += tt_p2p_post_or_fail(&m[0], 0, comm);
        bad += tt_p2p_post_or_fail(&m[1], 0, comm);
    }
    for (i = 2; i < n; i++) {
        TT_TEST_CALL(tt_ops_start(&runs[i], comm, NULL));
    }
    TT_TEST_CALL(tutti_group_end());
    TT_TEST_CALL(tutti_test(req, &done));
    bad += TT_TEST_EXPECT(done == 1, "the iallgather of a group is not done "
                          "after tutti_group_end");
    if (!done) {
        TT_TEST_CALL(tutti_wait(req));
    }
    for (i = 0; i < n; i++) {
        bad += tt_ops_check(&runs[i]);
        tt_ops_release(&runs[i]);
    }
    if (p2p) {
        bad += tt_p2p_msg_check(&m[0]) + tt_p2p_msg_check(&m[1]);
    }
    return bad;
}

/* Groups nest: an inner start/end pair issues nothing; the outer end issues
 * both the isend recorded inside the inner pair and the irecv after it. */
static int tt_p2p_group_nested(int rank, int nranks, tutti_comm_t comm,
                               uint64_t *seed)
{
    uint64_t       s = tt_ops_seed_next(seed);
    tt_p2p_msg_t   m[2];
    tutti_result_t res;
    int            i, done, bad = 0;

    if (tt_p2p_ring_init(m, rank, nranks, 1, TUTTI_UINT8, 2 * TT_P2P_BIG,
                         s) != 0) {
        return -1;
    }
    TT_TEST_CALL(tutti_group_start());
    TT_TEST_CALL(tutti_group_start());
    bad += tt_p2p_post_or_fail(&m[0], 1, comm);
    TT_TEST_CALL(tutti_group_end());
    /* still recorded, not issued: its request cannot be tested yet */
    done = 0;
    res  = tutti_test(m[0].req, &done);
    bad += TT_TEST_EXPECT(res == TUTTI_ERR_INVALID_USAGE && done == 0,
                          "%s: after the inner tutti_group_end, tutti_test "
                          "gave %s, done %d", m[0].what,
                          tutti_result_name(res), done);
    bad += tt_p2p_post_or_fail(&m[1], 1, comm);
    TT_TEST_CALL(tutti_group_end());
    for (i = 0; i < 2; i++) {
        done = 0;
        TT_TEST_CALL(tutti_test(m[i].req, &done));
        bad += TT_TEST_EXPECT(done == 1, "%s: not done after the outer "
                              "tutti_group_end", m[i].what);
        if (!done) {
            bad += tt_p2p_msg_wait(&m[i]);
        }
        bad += tt_p2p_msg_check(&m[i]);
    }
    return bad;
}

/* A group over two communicators: an allreduce on each and a ring on the
 * second, all issued by one tutti_group_end. */
static int tt_p2p_group_two_comms(int rank, int nranks, tutti_comm_t comm,
                                  uint64_t *seed)
{
    tt_ops_case_t cases[2] = {
        {TT_COLL_ALLREDUCE, TUTTI_FLOAT32, TUTTI_AVG, 4097, 0, TT_OPS_OOP, 0,
         NULL},
        {TT_COLL_ALLREDUCE, TUTTI_INT32, TUTTI_MAX, 4097, 0, TT_OPS_INPLACE,
         0, NULL},
    };
    tt_ops_run_t  runs[2];
    tt_p2p_msg_t  m[2];
    tutti_comm_t  other;
    uint64_t      s = tt_ops_seed_next(seed);
    int           i, bad = 0;

    TT_TEST_CALL(tt_ops_comm_derive(comm, "allreduce:ring", &other));
    for (i = 0; i < 2; i++) {
        cases[i].seed = tt_ops_seed_next(seed);
        if (tt_ops_prepare(&runs[i], &cases[i], rank, nranks) != 0) {
            return -1;
        }
    }
    if (tt_p2p_ring_init(m, rank, nranks, 1, TUTTI_FLOAT64, TT_P2P_BIG,
                         s) != 0) {
        return -1;
    }
    TT_TEST_CALL(tutti_group_start());
    TT_TEST_CALL(tt_ops_start(&runs[0], comm, NULL));
    bad += tt_p2p_post_or_fail(&m[0], 0, other);
    bad += tt_p2p_post_or_fail(&m[1], 0, other);
    TT_TEST_CALL(tt_ops_start(&runs[1], other, NULL));
    TT_TEST_CALL(tutti_group_end());
    for (i = 0; i < 2; i++) {
        bad += tt_ops_check(&runs[i]);
        tt_ops_release(&runs[i]);
        bad += tt_p2p_msg_check(&m[i]);
    }
    TT_TEST_CALL(tutti_barrier(other));
    TT_TEST_CALL(tutti_comm_destroy(other));
    return bad;
}

/* ---------------------------------------------------------------------- */
/* isend / irecv                                                          */
/* ---------------------------------------------------------------------- */

/*
 * A ring of isend/irecv without a group, large messages: round 0 posts the
 * send first and waits for it first (its wait must progress the receive
 * the peer's send needs), round 1 posts and waits the receive first. Each
 * rank alternates by parity, so both orders meet on every link.
 */
static int tt_p2p_isend_irecv(int rank, int nranks, tutti_comm_t comm,
                              uint64_t *seed)
{
    int round, bad = 0;

    for (round = 0; round < 2; round++) {
        uint64_t     s          = tt_ops_seed_next(seed);
        int          send_first = (round + rank) % 2 == 0;
        tt_p2p_msg_t m[2];
        tt_p2p_msg_t *first, *second;

        if (tt_p2p_ring_init(m, rank, nranks, 1, TUTTI_FLOAT32,
                             2 * TT_P2P_BIG + (size_t)round, s) != 0) {
            return -1;
        }
        first  = send_first ? &m[0] : &m[1];
        second = send_first ? &m[1] : &m[0];
        if (tt_p2p_post_or_fail(first, 1, comm) != 0 ||
            tt_p2p_post_or_fail(second, 1, comm) != 0) {
            return -1;
        }
        bad += tt_p2p_msg_wait(first);
        bad += tt_p2p_msg_wait(second);
        bad += tt_p2p_msg_check(&m[0]) + tt_p2p_msg_check(&m[1]);
    }
    return bad;
}

/* ---------------------------------------------------------------------- */
/* ordering                                                               */
/* ---------------------------------------------------------------------- */

/* Messages to one peer, of sizes that make them overtake if they could:
 * small ones after a large, sliced one. */
static const size_t tt_p2p_sizes[] = {1, 4096, 200001, 3, 65537, 17, 1,
                                      99999};
#define TT_P2P_NSIZES TT_P2P_NELEMS(tt_p2p_sizes)

/*
 * Each rank sends the TT_P2P_NSIZES messages to its right and receives the
 * same from its left. Round 0: everything nonblocking, receives waited last
 * to first. Round 1: isend everything, receive one by one with blocking
 * tutti_recv. Round 2 (pairs of ranks 2i, 2i + 1): blocking send after
 * blocking send against blocking receives.
 */
static int tt_p2p_ordering(int rank, int nranks, tutti_comm_t comm,
                           uint64_t *seed)
{
    int          right = (rank + 1) % nranks;
    int          left  = (rank + nranks - 1) % nranks;
    tt_p2p_msg_t sm[TT_P2P_NSIZES], rm[TT_P2P_NSIZES];
    int          round, bad = 0;
    size_t       i, k;

    for (round = 0; round < 3; round++) {
        int pair = rank ^ 1, sends = 1, recvs = 1;

        if (round == 2) {
            /* an unpaired last rank sits the round out */
            sends = pair < nranks && rank % 2 == 0;
            recvs = pair < nranks && rank % 2 == 1;
        }
        for (i = 0; i < TT_P2P_NSIZES; i++) {
            uint64_t s = tt_ops_seed_next(seed);

            if ((sends && tt_p2p_msg_init(&sm[i], 1, rank,
                                          round == 2 ? pair : right,
                                          TUTTI_INT32, tt_p2p_sizes[i],
                                          s) != 0) ||
                (recvs && tt_p2p_msg_init(&rm[i], 0, rank,
                                          round == 2 ? pair : left,
                                          TUTTI_INT32, tt_p2p_sizes[i],
                                          s) != 0)) {
                return -1;
            }
        }
        for (i = 0; sends && i < TT_P2P_NSIZES; i++) {
            if (tt_p2p_post_or_fail(&sm[i], round < 2, comm) != 0) {
                return -1;
            }
        }
        for (i = 0; recvs && i < TT_P2P_NSIZES; i++) {
            if (tt_p2p_post_or_fail(&rm[i], round == 0, comm) != 0) {
                return -1;
            }
        }
        for (i = 0; recvs && round == 0 && i < TT_P2P_NSIZES; i++) {
            k = TT_P2P_NSIZES - 1 - i;
            bad += tt_p2p_msg_wait(&rm[k]);
        }
        for (i = 0; sends && round < 2 && i < TT_P2P_NSIZES; i++) {
            bad += tt_p2p_msg_wait(&sm[i]);
        }
        for (i = 0; i < TT_P2P_NSIZES; i++) {
            if (recvs) {
                bad += tt_p2p_msg_check(&rm[i]);
            }
            if (sends) {
                bad += tt_p2p_msg_check(&sm[i]);
            }
        }
    }
    return bad;
}

/* Point to point between collectives, in the same order on every rank:
 * isend/irecv are issued, a blocking allreduce and a barrier run while
 * they are in flight, then the two are waited. */
static int tt_p2p_with_collectives(int rank, int nranks, tutti_comm_t comm,
                                   uint64_t *seed)
{
    uint64_t      s = tt_ops_seed_next(seed);
    tt_ops_case_t c = {TT_COLL_ALLREDUCE, TUTTI_BFLOAT16, TUTTI_SUM, 30011,
                       0, TT_OPS_OOP, 0, NULL};
    tt_p2p_msg_t  m[2];
    int           rc, bad = 0;

    c.seed = tt_ops_seed_next(seed);
    if (tt_p2p_ring_init(m, rank, nranks, 1, TUTTI_FLOAT64, TT_P2P_BIG,
                         s) != 0 ||
        tt_p2p_post_or_fail(&m[1], 1, comm) != 0 ||
        tt_p2p_post_or_fail(&m[0], 1, comm) != 0) {
        return -1;
    }
    rc = tt_ops_run_case(&c, rank, nranks, comm);
    if (rc < 0) {
        return -1;
    }
    bad += rc;
    TT_TEST_CALL(tutti_barrier(comm));
    bad += tt_p2p_msg_wait(&m[0]) + tt_p2p_msg_wait(&m[1]);
    bad += tt_p2p_msg_check(&m[0]) + tt_p2p_msg_check(&m[1]);
    return bad;
}

/*
 * The program every rank runs alike: send to the right, a collective, then
 * receive from the left; in a group, and with isend/iallreduce/irecv. For
 * the link from rank r to r + 1, r issues its send before the collective
 * and r + 1 its receive after it. tutti.h asks only that collectives come
 * in the same order everywhere and that messages between two ranks match
 * in issue order; both hold, so this must work (NCCL and MPI run it).
 */
static int tt_p2p_symmetric_interleave(int rank, int nranks,
                                       tutti_comm_t comm, uint64_t *seed)
{
    tt_ops_case_t c = {TT_COLL_ALLREDUCE, TUTTI_FLOAT32, TUTTI_SUM, 4099, 0,
                       TT_OPS_OOP, 0, NULL};
    int           form, bad = 0;

    for (form = 0; form < 2; form++) {
        uint64_t        s = tt_ops_seed_next(seed);
        tt_p2p_msg_t    m[2];
        tt_ops_run_t    run;
        tutti_request_t req = NULL;

        c.seed = tt_ops_seed_next(seed);
        if (tt_p2p_ring_init(m, rank, nranks, 1, TUTTI_FLOAT64, 1000, s) != 0 ||
            tt_ops_prepare(&run, &c, rank, nranks) != 0) {
            return -1;
        }
        if (form == 0) {
            TT_TEST_CALL(tutti_group_start());
            bad += tt_p2p_post_or_fail(&m[0], 0, comm);
            TT_TEST_CALL(tt_ops_start(&run, comm, NULL));
            bad += tt_p2p_post_or_fail(&m[1], 0, comm);
            TT_TEST_CALL(tutti_group_end());
        } else {
            if (tt_p2p_post_or_fail(&m[0], 1, comm) != 0) {
                return -1;
            }
            TT_TEST_CALL(tt_ops_start(&run, comm, &req));
            if (tt_p2p_post_or_fail(&m[1], 1, comm) != 0) {
                return -1;
            }
            TT_TEST_CALL(tutti_wait(req));
            bad += tt_p2p_msg_wait(&m[1]) + tt_p2p_msg_wait(&m[0]);
        }
        bad += tt_ops_check(&run);
        tt_ops_release(&run);
        bad += tt_p2p_msg_check(&m[0]) + tt_p2p_msg_check(&m[1]);
    }
    return bad;
}

/* An empty group, and a group of collectives on a single rank. */
static int tt_p2p_group_one_rank(int rank, int nranks, tutti_comm_t comm,
                                 uint64_t *seed)
{
    TT_TEST_CALL(tutti_group_start());
    TT_TEST_CALL(tutti_group_end());
    return nranks == 1 ? tt_p2p_group_mixed(rank, nranks, comm, seed) : 0;
}

/* ---------------------------------------------------------------------- */
/* the jobs                                                               */
/* ---------------------------------------------------------------------- */

typedef int (*tt_p2p_scenario_fn)(int rank, int nranks, tutti_comm_t comm,
                                  uint64_t *seed);

typedef struct tt_p2p_scenario {
    const char        *name;
    tt_p2p_scenario_fn fn;
    int                min_ranks;
} tt_p2p_scenario_t;

static const tt_p2p_scenario_t tt_p2p_scenarios[] = {
    {"empty group and one-rank group", tt_p2p_group_one_rank, 1},
    {"group rings", tt_p2p_group_rings, 2},
    {"group of mixed calls", tt_p2p_group_mixed, 2},
    {"nested groups", tt_p2p_group_nested, 2},
    {"group over two communicators", tt_p2p_group_two_comms, 2},
    {"isend/irecv wait orders", tt_p2p_isend_irecv, 2},
    {"message ordering", tt_p2p_ordering, 2},
    {"point to point among collectives", tt_p2p_with_collectives, 2},
};

static const tt_p2p_scenario_t tt_p2p_interleave[] = {
    {"send, collective, receive", tt_p2p_symmetric_interleave, 2},
};

/* What a job runs. */
typedef struct tt_p2p_plan {
    const tt_p2p_scenario_t *scenarios;
    size_t                   n;
} tt_p2p_plan_t;

static int tt_p2p_rank(int rank, int nranks, const tutti_unique_id_t *id,
                       void *arg)
{
    const tt_p2p_plan_t *plan = arg;
    tutti_comm_t         comm;
    uint64_t             seed = 0x703270u;
    size_t               i;
    int                  rc, bad = 0;

    TT_TEST_CALL(tt_ops_comm_init(rank, nranks, id, NULL, &comm));
    for (i = 0; i < plan->n; i++) {
        const tt_p2p_scenario_t *sc = &plan->scenarios[i];

        if (nranks < sc->min_ranks) {
            continue;
        }
        rc = sc->fn(rank, nranks, comm, &seed);
        if (rc < 0) {
            return tt_test_fail(__FILE__, __LINE__, "%s: a call failed, "
                                "stopping", sc->name);
        }
        if (rc > 0) {
            tt_test_fail(__FILE__, __LINE__, "%s: %d failures", sc->name,
                         rc);
        }
        bad += rc;
    }
    TT_TEST_CALL(tutti_comm_destroy(comm));
    return bad != 0;
}

static int tt_p2p_ranks[] = {1, 2, 3, 4, 5, 8, 9};

ParameterizedTestParameters(p2p, groups_and_ordering)
{
    return cr_make_param_array(int, tt_p2p_ranks,
                               TT_P2P_NELEMS(tt_p2p_ranks));
}

ParameterizedTest(int *nranks, p2p, groups_and_ordering, .timeout = 200)
{
    tt_p2p_plan_t plan = {tt_p2p_scenarios, TT_P2P_NELEMS(tt_p2p_scenarios)};

    cr_assert_eq(tt_test_spawn(*nranks, tt_p2p_rank, &plan,
                               TT_OPS_JOB_TIMEOUT_MS), 0,
                 "point to point over %d ranks failed (see stderr)",
                 *nranks);
}

/*
 * Point-to-point and collective messages travel on separate channels
 * (transports/transport.h), each with its own order and message numbers:
 * with one order shared by both, rank r's first message to r + 1 was the
 * send while r + 1's first receive from r was the collective's, and the
 * receive failed with TUTTI_ERR_INVALID_USAGE ("shm: peer r sent tag
 * 0x700000000 ... where tag 0 ... was expected").
 */
Test(p2p, send_collective_receive, .timeout = 120)
{
    tt_p2p_plan_t plan = {tt_p2p_interleave, TT_P2P_NELEMS(tt_p2p_interleave)};

    cr_assert_eq(tt_test_spawn(3, tt_p2p_rank, &plan, TT_OPS_JOB_TIMEOUT_MS),
                 0, "send, collective, receive over 3 ranks failed (see "
                 "stderr)");
}
