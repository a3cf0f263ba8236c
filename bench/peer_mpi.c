/*
 * MPI as a peer (--peer mpi) and as the out-of-band channel for the unique
 * id under mpiexec. Built only when meson finds MPICH (tutti-bench), and
 * again against Open MPI when it finds that (tutti-bench-ompi). The peer runs the
 * MPI twin of each collective on MPI_COMM_WORLD, in the same processes
 * and on the same buffers as tutti:
 *
 *   allreduce       MPI_Allreduce            in place: MPI_IN_PLACE
 *   allgather       MPI_Allgather            in place: MPI_IN_PLACE
 *   reduce_scatter  MPI_Reduce_scatter_block in place: MPI_IN_PLACE, and
 *                   the result lands at the buffer's start (MPI's rule),
 *                   not at the rank's block (NCCL's), so prepare() points
 *                   the check there
 *   broadcast       MPI_Bcast; out of place the root also copies its
 *                   send buffer to its receive buffer (MPI_Bcast has one
 *                   buffer; tutti's root writes both), inside the timing
 *   reduce          MPI_Reduce               in place: MPI_IN_PLACE on
 *                   the root, the shared buffer as input elsewhere
 *   alltoall        MPI_Alltoall             in place: MPI_IN_PLACE
 *   sendrecv        MPI_Sendrecv to the right, from the left
 *   barrier         MPI_Barrier
 *
 * MPICH 4.0.2 segfaults in an in-place MPI_Reduce of more than 2048 bytes
 * to a root other than 0, so that case is n/a with MPICH (not Open MPI).
 * MPI has no average (avg is reported n/a); float16 is MPICH's
 * MPIX_C_FLOAT16 where the compiler has _Float16, for the collectives that
 * only move data (reductions abort in MPICH 4.0.2); bfloat16 has no MPI
 * type. Errors return (MPI_ERRORS_RETURN) so the bench can report them
 * like tutti's.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "bench.h"

static int mpi_started_here;

static int mpi_fail(int rc, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING];
    int  len = 0;

    MPI_Error_string(rc, msg, &len);
    msg[len] = '\0';
    return bench_err("%s: %s", what, msg);
}

int bench_mpi_init(int *rank_p, int *size_p)
{
    int inited = 0, rc;

    MPI_Initialized(&inited);
    if (!inited) {
        rc = MPI_Init(NULL, NULL);
        if (rc != MPI_SUCCESS) {
            return bench_err("MPI_Init failed (%d)", rc);
        }
        mpi_started_here = 1;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, rank_p);
    MPI_Comm_size(MPI_COMM_WORLD, size_p);
    return 0;
}

int bench_mpi_bcast_id(tutti_unique_id_t *id)
{
    int rc = MPI_Bcast(id, (int)sizeof(*id), MPI_BYTE, 0, MPI_COMM_WORLD);

    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Bcast of the id");
}

void bench_mpi_finalize(void)
{
    if (mpi_started_here) {
        MPI_Finalize();
        mpi_started_here = 0;
    }
}

static MPI_Datatype mpi_type(tutti_datatype_t dt)
{
    switch (dt) {
    case TUTTI_INT8:
        return MPI_INT8_T;
    case TUTTI_UINT8:
        return MPI_UINT8_T;
    case TUTTI_INT32:
        return MPI_INT32_T;
    case TUTTI_UINT32:
        return MPI_UINT32_T;
    case TUTTI_INT64:
        return MPI_INT64_T;
    case TUTTI_UINT64:
        return MPI_UINT64_T;
    case TUTTI_FLOAT32:
        return MPI_FLOAT;
    case TUTTI_FLOAT64:
        return MPI_DOUBLE;
#ifdef MPIX_C_FLOAT16
    case TUTTI_FLOAT16:
        return MPIX_C_FLOAT16;
#endif
    default:
        return MPI_DATATYPE_NULL;
    }
}

static MPI_Op mpi_op(tutti_redop_t op)
{
    switch (op) {
    case TUTTI_SUM:
        return MPI_SUM;
    case TUTTI_PROD:
        return MPI_PROD;
    case TUTTI_MAX:
        return MPI_MAX;
    case TUTTI_MIN:
        return MPI_MIN;
    default:
        return MPI_OP_NULL;
    }
}

static int mpi_peer_init(bench_world_t *w, void **ctx_p)
{
    int inited = 0, rank, size;

    MPI_Initialized(&inited);
    if (!inited) {
        return bench_err("--peer mpi: MPI is not initialised (not under "
                         "mpiexec?)");
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (rank != w->rank || size != w->nranks) {
        return bench_err("--peer mpi: MPI rank %d of %d, tutti rank %d of "
                         "%d: they must match", rank, size, w->rank,
                         w->nranks);
    }
    *ctx_p = NULL;
    return 0;
}

static void mpi_peer_fini(void *ctx)
{
    (void)ctx;
}

static int coll_reduces(bench_coll_id_t coll)
{
    return coll == BENCH_ALLREDUCE || coll == BENCH_REDUCE_SCATTER ||
           coll == BENCH_REDUCE;
}

static const char *mpi_supports(bench_coll_id_t coll, const bench_call_t *c)
{
    tutti_datatype_t dt   = c->dtype;
    tutti_redop_t    op   = c->op;
    int              size = 0;

    if (coll == BENCH_BARRIER) {
        return NULL;
    }
    if (mpi_type(dt) == MPI_DATATYPE_NULL) {
        return "no MPI type";
    }
    MPI_Type_size(mpi_type(dt), &size);
    if ((size_t)size != tutti_datatype_size(dt)) {
        return "no MPI type";
    }
    if (coll_reduces(coll) && mpi_op(op) == MPI_OP_NULL) {
        return "no MPI op";
    }
    if (coll_reduces(coll) && dt == TUTTI_FLOAT16) {
        /* MPICH 4.0.2 aborts in its yaksa pack code when it reduces
         * MPIX_C_FLOAT16, even for 4 elements: not worth the crash */
        return "MPICH cannot reduce float16";
    }
#ifdef MPICH_VERSION
    if (coll == BENCH_REDUCE && c->inplace && c->root != 0 &&
        c->count * tutti_datatype_size(dt) > 2048) {
        /* MPICH 4.0.2 segfaults in MPI_Reduce(MPI_IN_PLACE) to a root
         * other than 0 above its short-message size (2048 bytes) */
        return "MPICH crashes reducing in place to a root other than 0";
    }
#endif
    return NULL;
}

typedef struct mpi_prep {
    MPI_Datatype dt;
    MPI_Op       op;
    int          count;
    size_t       bytes; /* broadcast: what the root copies out of place */
} mpi_prep_t;

static int mpi_allreduce_call(bench_call_t *c)
{
    mpi_prep_t *p  = c->prep;
    int         rc = MPI_Allreduce(c->inplace ? MPI_IN_PLACE : c->sendbuf,
                                   c->recvbuf, p->count, p->dt, p->op,
                                   MPI_COMM_WORLD);

    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Allreduce");
}

static int mpi_allgather_call(bench_call_t *c)
{
    mpi_prep_t *p = c->prep;
    int         rc;

    if (c->inplace) {
        rc = MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, c->recvbuf,
                           p->count, p->dt, MPI_COMM_WORLD);
    } else {
        rc = MPI_Allgather(c->sendbuf, p->count, p->dt, c->recvbuf,
                           p->count, p->dt, MPI_COMM_WORLD);
    }
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Allgather");
}

static int mpi_reduce_scatter_call(bench_call_t *c)
{
    mpi_prep_t *p = c->prep;
    int         rc;

    if (c->inplace) { /* input: the whole buffer; output: its start */
        rc = MPI_Reduce_scatter_block(MPI_IN_PLACE, c->recvbuf, p->count,
                                      p->dt, p->op, MPI_COMM_WORLD);
    } else {
        rc = MPI_Reduce_scatter_block(c->sendbuf, c->recvbuf, p->count,
                                      p->dt, p->op, MPI_COMM_WORLD);
    }
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Reduce_scatter_block");
}

static int mpi_bcast_call(bench_call_t *c)
{
    mpi_prep_t *p    = c->prep;
    int         root = c->world->rank == c->root;
    void       *buf  = root ? (void *)c->sendbuf : c->recvbuf;
    int         rc   = MPI_Bcast(buf, p->count, p->dt, c->root,
                                 MPI_COMM_WORLD);

    if (rc != MPI_SUCCESS) {
        return mpi_fail(rc, "MPI_Bcast");
    }
    if (root && buf != c->recvbuf) {
        memcpy(c->recvbuf, buf, p->bytes);
    }
    return 0;
}

static int mpi_reduce_call(bench_call_t *c)
{
    mpi_prep_t *p    = c->prep;
    int         root = c->world->rank == c->root;
    const void *in   = c->inplace && root ? MPI_IN_PLACE : c->sendbuf;
    void       *out  = root ? c->recvbuf : NULL; /* only the root's counts */
    int         rc   = MPI_Reduce(in, out, p->count, p->dt, p->op, c->root,
                                  MPI_COMM_WORLD);

    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Reduce");
}

static int mpi_alltoall_call(bench_call_t *c)
{
    mpi_prep_t *p = c->prep;
    int         rc;

    if (c->inplace) {
        rc = MPI_Alltoall(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, c->recvbuf,
                          p->count, p->dt, MPI_COMM_WORLD);
    } else {
        rc = MPI_Alltoall(c->sendbuf, p->count, p->dt, c->recvbuf, p->count,
                          p->dt, MPI_COMM_WORLD);
    }
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Alltoall");
}

static int mpi_sendrecv_call(bench_call_t *c)
{
    mpi_prep_t *p  = c->prep;
    int         n  = c->world->nranks, r = c->world->rank;
    int         rc = MPI_Sendrecv(c->sendbuf, p->count, p->dt, (r + 1) % n,
                                  0, c->recvbuf, p->count, p->dt,
                                  (r + n - 1) % n, 0, MPI_COMM_WORLD,
                                  MPI_STATUS_IGNORE);

    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Sendrecv");
}

static int mpi_barrier_call(bench_call_t *c)
{
    int rc = MPI_Barrier(MPI_COMM_WORLD);

    (void)c;
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Barrier");
}

static bench_call_fn mpi_call_for(bench_coll_id_t coll)
{
    switch (coll) {
    case BENCH_ALLREDUCE:
        return mpi_allreduce_call;
    case BENCH_ALLGATHER:
        return mpi_allgather_call;
    case BENCH_REDUCE_SCATTER:
        return mpi_reduce_scatter_call;
    case BENCH_BROADCAST:
        return mpi_bcast_call;
    case BENCH_REDUCE:
        return mpi_reduce_call;
    case BENCH_ALLTOALL:
        return mpi_alltoall_call;
    case BENCH_SENDRECV:
        return mpi_sendrecv_call;
    default:
        return mpi_barrier_call;
    }
}

static int mpi_prepare(bench_coll_id_t coll, bench_call_t *c)
{
    mpi_prep_t *p;

    if (c->count > INT_MAX) {
        return bench_err("--peer mpi: count %zu does not fit MPI's int",
                         c->count);
    }
    p = malloc(sizeof(*p));
    if (p == NULL) {
        return bench_err("out of memory");
    }
    p->dt    = mpi_type(c->dtype);
    p->op    = mpi_op(c->op);
    p->count = (int)c->count;
    p->bytes = c->count * tutti_datatype_size(c->dtype);
    c->prep  = p;
    c->fn    = mpi_call_for(coll);
    if (coll == BENCH_REDUCE_SCATTER && c->inplace) {
        c->recvbuf = (void *)c->sendbuf; /* MPI's in-place result */
    }
    return 0;
}

static void mpi_release(bench_call_t *c)
{
    free(c->prep);
    c->prep = NULL;
}

/* The first line of MPI_Get_library_version(), e.g. "MPICH Version: 4.0.2". */
static const char *mpi_version(void)
{
    static char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int         len = 0, k;

    MPI_Get_library_version(v, &len);
    v[strcspn(v, "\n")] = '\0';
    for (k = 0; v[k] != '\0'; k++) {
        v[k] = v[k] == '\t' ? ' ' : v[k];
    }
    return v;
}

const bench_peer_ops_t *bench_peer_mpi(void)
{
    static const bench_peer_ops_t ops = {
        .name     = "mpi",
        .init     = mpi_peer_init,
        .fini     = mpi_peer_fini,
        .supports = mpi_supports,
        .prepare  = mpi_prepare,
        .release  = mpi_release,
        .version  = mpi_version,
    };

    return &ops;
}
