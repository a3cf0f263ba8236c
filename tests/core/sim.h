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
 *   - a step that names a range outside its buffer, writes SEND, sends
 *     from what its own receive writes (the parts of a step run
 *     concurrently unless FORWARD), or reduces or copies between partly
 *     overlapping ranges,
 *   - in a broadcast, a rank other than the root naming SEND; in a reduce,
 *     one naming RECV; in a barrier, anything but SCRATCH,
 *   - a final result other than the collective's definition (algo.h's
 *     buffer table), AVG's division applied other than exactly once where
 *     the result lands, and for a barrier a rank that finishes without
 *     having heard, directly or through others, from every rank (each
 *     message carries its sender's causal past).
 * In place, SEND and RECV are views of one buffer as the table says. It
 * also counts messages and elements sent per rank, for the cost checks.
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
 * rank) and simulates it. With seed 0, each pass visits ranks and steps in
 * index order (the most eager run); any other seed shuffles both on every
 * pass, reproducibly, to try another interleaving the executor could
 * produce. Returns 0 when the collective is delivered correctly; else
 * writes a reason into err and returns -1.
 */
int sim_run(const tt_algo_t *algo, const tt_coll_args_t *args, unsigned seed,
            sim_stats_t *stats, char *err, size_t errlen);

#endif /* TUTTI_TEST_SIM_H */
