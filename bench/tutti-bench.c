/*
 * tutti-bench: the nccl-tests-style benchmark of tutti's collectives.
 * This file is only the entry point: opts.c parses the command line,
 * launch.c starts the ranks, runner.c is what each rank does, report.c
 * and json.c say what came out. See README-bench.md for the flags, the
 * table's columns, the JSON fields and the bound model.
 */
#include <stdlib.h>

#include "bench.h"

int main(int argc, char **argv)
{
    bench_opts_t o;
    int          rc = bench_opts_parse(argc, argv, &o);

    if (rc != 0) {
        free(o.argv);
        return rc < 0 ? BENCH_EXIT_OK : rc;
    }
    rc = bench_launch(&o);
    free(o.argv);
    return rc;
}
