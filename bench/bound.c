/*
 * --bound: what this machine's memory can do at each size, measured with
 * memcpy on the benchmark's own buffers (so the working set matches the
 * collective's), once per size per run.
 *
 * single: rank 0 copies while the others wait in a barrier.
 * concurrent: every rank copies at once, as every rank of a collective
 * does; the slowest rank's bandwidth is the one reported, and it is the
 * one the model uses (README-bench.md, "The bound"): a shared-memory
 * collective cannot beat busbw = concurrent / bound_cost, where bound_cost
 * is the memcpy-equivalent traffic per bus byte of the collective.
 *
 * Each measurement repeats the copy until about 1 GiB has moved (at least
 * 3 and at most 2^20 copies), after one untimed copy. memcpy is called
 * through a volatile pointer so the compiler cannot merge the repeats.
 */
#include <string.h>
#include <time.h>

#include "bench.h"

#define BOUND_CACHE 256

static void *(*volatile bound_memcpy)(void *, const void *, size_t) = memcpy;

static struct {
    size_t bytes;
    double single, concurrent;
} cache[BOUND_CACHE];
static int ncached;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* GB/s of `reps` copies of `bytes`. */
static double copy_rate(void *dst, const void *src, size_t bytes, long reps)
{
    double t0, t;
    long   k;

    bound_memcpy(dst, src, bytes);
    t0 = now_s();
    for (k = 0; k < reps; k++) {
        bound_memcpy(dst, src, bytes);
    }
    t = now_s() - t0;
    return t > 0 ? (double)bytes * (double)reps / t / 1e9 : 0;
}

int bench_bound_measure(bench_world_t *w, void *dst, const void *src,
                        size_t bytes, double *single_p, double *concurrent_p)
{
    long           reps;
    double         single = 0, conc;
    tutti_result_t rc;
    int            k;

    for (k = 0; k < ncached; k++) {
        if (cache[k].bytes == bytes) {
            *single_p     = cache[k].single;
            *concurrent_p = cache[k].concurrent;
            return 0;
        }
    }
    if (bytes == 0) {
        *single_p = *concurrent_p = 0;
        return 0;
    }
    reps = (long)((1ul << 30) / bytes);
    reps = reps < 3 ? 3 : reps > (1l << 20) ? (1l << 20) : reps;
    if (bench_barrier(w) != 0) {
        return -1;
    }
    if (w->rank == 0) {
        single = copy_rate(dst, src, bytes, reps);
    }
    if (bench_barrier(w) != 0) {
        return -1;
    }
    conc = copy_rate(dst, src, bytes, reps);
    rc   = tutti_allreduce(&conc, &conc, 1, TUTTI_FLOAT64, TUTTI_MIN,
                           w->comm);
    if (rc != TUTTI_SUCCESS) {
        return bench_tutti_err(rc, "bound combine");
    }
    if (ncached < BOUND_CACHE) {
        cache[ncached].bytes      = bytes;
        cache[ncached].single     = single;
        cache[ncached].concurrent = conc;
        ncached++;
    }
    *single_p     = single;
    *concurrent_p = conc;
    return 0;
}
