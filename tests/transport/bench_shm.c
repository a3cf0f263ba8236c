/*
 * Point-to-point numbers of the shm transport between two forked
 * processes: streaming bandwidth at a few message sizes (a window of sends
 * in flight, like osu_bw, ended by a 0-byte acknowledgement) and the
 * one-way latency of 8-byte messages (half a ping-pong round trip).
 * Not a test; run build/tests/transport/bench_shm. With TUTTI_SHM_SLOT_SIZE
 * or TUTTI_SHM_NSLOTS set, those apply to both ranks.
 *
 * Each number is measured in BENCH_TRIALS short trials; the best and the
 * median are printed, since a shared 2-core machine rarely gives two ranks
 * both CPUs for long.
 *
 * Options: -d receives through the deliver callback, which reads every
 * byte out of the FIFO without storing it (a reduction's access pattern),
 * instead of copying into a buffer.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shm_harness.h"

#define WINDOW       8
#define BENCH_TRIALS 9
#define BENCH_BYTES  (1ull << 30) /* per bandwidth trial */

typedef struct bench_args {
    int    use_deliver;
    double gbps[8][BENCH_TRIALS];
    double lat_us[BENCH_TRIALS];
} bench_args_t;

static const size_t bench_sizes[] = {8192, 65536, 1 << 20, 64 << 20};

/* Reads every byte of a piece, as a reduction straight out of the FIFO
 * would (without the store), and folds it into *req->arg. */
static void sink(tt_req_t *req, size_t offset, const void *data, size_t len)
{
    const uint8_t *p   = data;
    uint64_t       acc = 0, w;
    size_t         i;

    (void)offset;
    for (i = 0; i + 8 <= len; i += 8) {
        memcpy(&w, p + i, 8);
        acc ^= w;
    }
    for (; i < len; i++) {
        acc ^= p[i];
    }
    *(volatile uint64_t *)req->arg ^= acc;
}

static int bench_bw(th_rank_t *r, bench_args_t *a, size_t len, int iters,
                    double *gbps)
{
    int      peer = 1 - r->rank;
    char    *buf  = malloc(len);
    tt_req_t req[WINDOW], *reqs[WINDOW], ack = {0};
    uint64_t acc = 0;
    uint64_t t0;
    int      i, j;

    TH_CHECK(buf, "malloc");
    memset(buf, 1, len);
    for (j = 0; j < WINDOW; j++) {
        reqs[j] = &req[j];
    }
    th_barrier(r->world);
    t0 = tutti__now_ns();
    for (i = 0; i < iters; i += WINDOW) {
        int n = TT_MIN(WINDOW, iters - i);

        for (j = 0; j < n; j++) {
            req[j] = (tt_req_t){0};
            if (r->rank == 0) {
                tt_shm_ops.isend(r->ep[peer], buf, len, 5, &req[j]);
            } else {
                if (a->use_deliver) {
                    req[j].deliver = sink;
                    req[j].arg     = &acc;
                }
                tt_shm_ops.irecv(r->ep[peer], buf, len, 5, &req[j]);
            }
        }
        TH_CHECK(th_wait(r, reqs, n, 60000) == 0, "timed out");
    }
    if (r->rank == 0) {
        tt_shm_ops.irecv(r->ep[peer], NULL, 0, 6, &ack);
    } else {
        tt_shm_ops.isend(r->ep[peer], NULL, 0, 6, &ack);
    }
    TH_CHECK(th_wait1(r, &ack, 60000) == 0, "ack timed out");
    *gbps = (double)len * iters / (double)(tutti__now_ns() - t0);
    free(buf);
    return 0;
}

static int bench_lat(th_rank_t *r, int iters, double *us)
{
    int      peer = 1 - r->rank;
    uint64_t out = 42, in = 0, t0 = 0;
    tt_req_t s, q;
    int      i;

    th_barrier(r->world);
    for (i = -1000; i < iters; i++) {
        if (i == 0) {
            t0 = tutti__now_ns();
        }
        s = (tt_req_t){0};
        q = (tt_req_t){0};
        if (r->rank == 0) {
            tt_shm_ops.isend(r->ep[peer], &out, 8, 9, &s);
            tt_shm_ops.irecv(r->ep[peer], &in, 8, 9, &q);
        } else {
            tt_shm_ops.irecv(r->ep[peer], &in, 8, 9, &q);
            /* spin: two ranks on two cores, nothing to yield to */
            while (q.status == TUTTI_INPROGRESS) {
                tt_shm_ops.progress(r->tp);
            }
            tt_shm_ops.isend(r->ep[peer], &out, 8, 9, &s);
        }
        while (q.status == TUTTI_INPROGRESS ||
               s.status == TUTTI_INPROGRESS) {
            tt_shm_ops.progress(r->tp);
        }
    }
    *us = (double)(tutti__now_ns() - t0) / iters / 2 / 1000.0;
    return 0;
}

static int rank_bench(th_rank_t *r, void *arg)
{
    bench_args_t *a = arg;
    size_t        i;
    int           t;

    if (th_rank_setup(r, r->world, r->rank) != 0) {
        return 1;
    }
    for (i = 0; i < TT_ARRAY_SIZE(bench_sizes); i++) {
        size_t len   = bench_sizes[i];
        int    iters = (int)TT_MAX((size_t)8, BENCH_BYTES / len);

        for (t = 0; t < BENCH_TRIALS; t++) {
            double gbps;

            if (bench_bw(r, a, len, iters, &gbps) != 0) {
                return 1;
            }
            if (r->rank == 1) {
                a->gbps[i][t] = gbps;
            }
        }
    }
    for (t = 0; t < BENCH_TRIALS; t++) {
        double us;

        if (bench_lat(r, 20000, &us) != 0) {
            return 1;
        }
        if (r->rank == 0) {
            a->lat_us[t] = us;
        }
    }
    th_barrier(r->world);
    th_rank_fini(r);
    return 0;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;

    return (a > b) - (a < b);
}

int main(int argc, char **argv)
{
    th_world_t   *w = th_world_create(2);
    bench_args_t *a;
    tt_config_t   cfg;
    size_t        i;

    /* the ranks report back through shared memory */
    a = mmap(NULL, sizeof(*a), PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (w == NULL || a == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    memset(a, 0, sizeof(*a));
    a->use_deliver = argc > 1 && strcmp(argv[1], "-d") == 0;
    if (tutti__config_load(NULL, &cfg) != TUTTI_SUCCESS) {
        fprintf(stderr, "config: %s\n", tutti_last_error());
        return 1;
    }
    w->slot_size[0] = w->slot_size[1] = cfg.shm_slot_size;
    w->nslots[0] = w->nslots[1] = cfg.shm_nslots;
    if (th_run(w, rank_bench, a) != 0) {
        return 1;
    }
    printf("shm point-to-point, %d slots of %zu bytes, receive %s\n",
           cfg.shm_nslots, cfg.shm_slot_size,
           a->use_deliver ? "by deliver callback" : "into a buffer");
    printf("  %10s  %16s  %16s\n", "bytes", "best", "median");
    for (i = 0; i < TT_ARRAY_SIZE(bench_sizes); i++) {
        qsort(a->gbps[i], BENCH_TRIALS, sizeof(double), cmp_double);
        printf("  %10zu  %11.2f GB/s  %11.2f GB/s\n", bench_sizes[i],
               a->gbps[i][BENCH_TRIALS - 1], a->gbps[i][BENCH_TRIALS / 2]);
    }
    qsort(a->lat_us, BENCH_TRIALS, sizeof(double), cmp_double);
    printf("  8-byte one-way latency  %.3f us best, %.3f us median\n",
           a->lat_us[0], a->lat_us[BENCH_TRIALS / 2]);
    th_world_destroy(w);
    return 0;
}
