/*
 * The schedule simulator: a test-only executor that runs every rank's
 * schedule of one collective in a single process, on symbolic data.
 *
 * Each element carries the set of ranks whose contribution it holds (a
 * 64-bit mask), the index it belongs to and how often AVG's division was
 * applied. Reducing two elements requires the same index and disjoint rank
 * sets (a contribution counted twice is an error). Messages go through one
 * unbounded FIFO per ordered pair; a send completes only when its receiver
 * consumes it (the strictest completion a transport may have). Steps run as
 * eagerly as their dependencies and per-peer order allow, and the simulator
 * reports:
 *   - a receive whose size differs from the matching send,
 *   - a read of data that was never written (use before arrival),
 *   - a write to data an unfinished earlier step still has to read,
 *   - steps that can never run (deadlock),
 *   - a final result other than the collective's definition.
 * It also counts messages and elements sent per rank, for the cost checks.
 */
#ifndef TUTTI_TEST_SIM_H
#define TUTTI_TEST_SIM_H

#include <stddef.h>

#include "algo/algo.h"

typedef struct sim_stats {
    size_t msgs_max;  /* most messages sent by one rank */
    size_t elems_max; /* most elements sent by one rank */
    int    steps_max; /* most steps in one rank's schedule */
} sim_stats_t;

/*
 * Builds every rank's schedule with `algo` for args (rank is filled in per
 * rank) and simulates it. Returns 0 when the collective is delivered
 * correctly; else writes a reason into err and returns -1.
 */
int sim_run(const tt_algo_t *algo, const tt_coll_args_t *args,
            sim_stats_t *stats, char *err, size_t errlen);

#endif /* TUTTI_TEST_SIM_H */
