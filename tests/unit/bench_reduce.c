/*
 * Throughput of the reduction kernels; not a test (meson builds it but does
 * not register it). For each (datatype, op) in the list and each buffer
 * size, it times dst = a OP b out of place and in place (dst == a, the
 * executor's usual case) and prints GB/s two ways: the first counts one
 * buffer's bytes per second, "traffic" the bytes the pass moves (read a,
 * read b, write dst: 3x the first). Where the runtime dispatch picks an
 * ISA-specific kernel ("x86"), the portable one is timed too.
 *
 * Usage: bench_reduce [bytes ...]   (default: 65536 and 67108864 per buffer)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reduce.h"
#include "reduce_impl.h"

typedef struct bench_case {
    tutti_datatype_t datatype;
    tutti_redop_t    op;
} bench_case_t;

static const bench_case_t bench_cases[] = {
    {TUTTI_FLOAT32, TUTTI_SUM},  {TUTTI_BFLOAT16, TUTTI_SUM},
    {TUTTI_FLOAT16, TUTTI_SUM},  {TUTTI_INT32, TUTTI_SUM},
    {TUTTI_FLOAT32, TUTTI_MAX},  {TUTTI_FLOAT64, TUTTI_SUM},
    {TUTTI_BFLOAT16, TUTTI_MAX}, {TUTTI_INT8, TUTTI_SUM},
};

static double bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/*
 * Seconds per call: calls are batched so that a batch takes at least 20 ms
 * (the CPU-time clock is a system call, too slow to read per call on
 * small buffers), and the best of 5 batches counts, so page faults and
 * frequency ramps stay out of the figure. The clock is this thread's CPU
 * time, so that other load on the (2-core) machine does not count, though
 * it still disturbs the caches.
 */
static double bench_time(tt_reduce_fn fn, void *dst, const void *a,
                         const void *b, size_t count)
{
    size_t iters = 1;
    double best  = 1e30;
    double elapsed;

    for (;;) {
        double start = bench_now();

        for (size_t i = 0; i < iters; i++) {
            fn(dst, a, b, count);
        }
        elapsed = bench_now() - start;
        if (elapsed >= 0.02) {
            break;
        }
        iters *= 2;
    }
    for (int round = 0; round < 5; round++) {
        double start = bench_now();

        for (size_t i = 0; i < iters; i++) {
            fn(dst, a, b, count);
        }
        elapsed = bench_now() - start;
        if (elapsed / (double)iters < best) {
            best = elapsed / (double)iters;
        }
    }
    return best;
}

static void bench_size(size_t bytes)
{
    unsigned char *a = malloc(bytes);
    unsigned char *b = malloc(bytes);
    unsigned char *d = malloc(bytes);

    if (a == NULL || b == NULL || d == NULL) {
        fprintf(stderr, "bench_reduce: cannot allocate 3 x %zu bytes\n",
                bytes);
        exit(1);
    }
    /*
     * Small positive values for every type: a 0x3c byte is 1.0 in
     * float16, about 1.0 in bfloat16, a normal float32 and an integer; no
     * NaN, infinity or subnormal slows down or shortcuts the arithmetic.
     */
    for (size_t i = 0; i < bytes; i++) {
        a[i] = (unsigned char)(0x3c ^ (i & 3));
        b[i] = (unsigned char)(0x3b ^ (i & 1));
    }
    memcpy(d, a, bytes);

    for (size_t c = 0; c < sizeof(bench_cases) / sizeof(bench_cases[0]);
         c++) {
        tutti_datatype_t dt    = bench_cases[c].datatype;
        tutti_redop_t    op    = bench_cases[c].op;
        size_t           count = bytes / tutti_datatype_size(dt);
        tt_reduce_fn     fns[2];

        fns[0] = tutti__reduce_fn_portable(dt, op);
        fns[1] = tutti__reduce_fn(dt, op);
        for (int f = fns[0] == fns[1] ? 1 : 0; f < 2; f++) {
            double out = bench_time(fns[f], d, a, b, count);
            double in  = bench_time(fns[f], d, d, b, count);

            printf("%9zu %-8s %-4s %-8s out-of-place %6.2f GB/s (traffic "
                   "%6.2f) in-place %6.2f GB/s (traffic %6.2f)\n",
                   bytes, tutti_datatype_name(dt), tutti_redop_name(op),
                   f == 0 ? "portable" : fns[0] == fns[1] ? "portable" :
                                                            "x86",
                   (double)bytes / out / 1e9,
                   3.0 * (double)bytes / out / 1e9,
                   (double)bytes / in / 1e9, 3.0 * (double)bytes / in / 1e9);
            /* keep the in-place runs from compounding towards infinity */
            memcpy(d, a, bytes);
        }
    }
    free(a);
    free(b);
    free(d);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        bench_size(64 * 1024);
        bench_size(64 * 1024 * 1024);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        bench_size((size_t)strtoull(argv[i], NULL, 0));
    }
    return 0;
}
