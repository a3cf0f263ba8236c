/*
 * MPI as a peer (--peer mpi) and as the out-of-band channel for the unique
 * id under mpiexec. Built only when meson finds MPICH. The peer runs
 * MPI_Allreduce / MPI_Allgather on MPI_COMM_WORLD, in the same processes
 * and on the same buffers as tutti; in place uses MPI_IN_PLACE. MPI has no
 * average (avg is reported n/a); float16 is MPICH's MPIX_C_FLOAT16 where
 * the compiler has _Float16, for allgather only (reductions abort in
 * MPICH 4.0.2); bfloat16 has no MPI type. Errors return
 * (MPI_ERRORS_RETURN) so the bench can report them like tutti's.
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

static const char *mpi_supports(bench_coll_id_t coll, tutti_datatype_t dt,
                                tutti_redop_t op)
{
    int size = 0;

    if (mpi_type(dt) == MPI_DATATYPE_NULL) {
        return "no MPI type";
    }
    MPI_Type_size(mpi_type(dt), &size);
    if ((size_t)size != tutti_datatype_size(dt)) {
        return "no MPI type";
    }
    if (coll == BENCH_ALLREDUCE && mpi_op(op) == MPI_OP_NULL) {
        return "no MPI op";
    }
    if (coll == BENCH_ALLREDUCE && dt == TUTTI_FLOAT16) {
        /* MPICH 4.0.2 aborts in its yaksa pack code when it reduces
         * MPIX_C_FLOAT16, even for 4 elements: not worth the crash */
        return "MPICH cannot reduce float16";
    }
    return NULL;
}

typedef struct mpi_prep {
    MPI_Datatype dt;
    MPI_Op       op;
    int          count;
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
    c->prep  = p;
    c->fn = coll == BENCH_ALLREDUCE ? mpi_allreduce_call : mpi_allgather_call;
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
