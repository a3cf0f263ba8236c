/*
 * The peer libraries that this build lacks: their lookups return NULL, so
 * `--peer mpi|gloo` is a usage error that says the build has no such peer,
 * and the MPI out-of-band channel reports that it does not exist.
 */
#include "bench.h"

/* keeps the file a valid C translation unit when it compiles to nothing */
typedef int bench_peers_unit;

#ifndef TUTTI_BENCH_HAVE_MPI
const bench_peer_ops_t *bench_peer_mpi(void)
{
    return NULL;
}

int bench_mpi_init(int *rank_p, int *size_p)
{
    (void)rank_p;
    (void)size_p;
    return bench_err("this tutti-bench was built without MPI");
}

int bench_mpi_bcast_id(tutti_unique_id_t *id)
{
    (void)id;
    return bench_err("this tutti-bench was built without MPI");
}

void bench_mpi_finalize(void)
{
}
#endif

#ifndef TUTTI_BENCH_HAVE_GLOO
const bench_peer_ops_t *bench_peer_gloo(void)
{
    return NULL;
}
#endif
