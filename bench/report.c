/*
 * What rank 0 prints and writes: the nccl-tests-style table on stdout
 * (header, one row per size, "Avg bus bandwidth" footer) and, with -J, one
 * JSON document holding the run's parameters, its environment and every
 * row. The JSON field names are an interface (plot.py and users' scripts
 * read them): they are documented in README-bench.md, and a change to one
 * must bump "schema".
 *
 * Table columns, left to right: size count type redop root, and with --algo
 * the algorithm; tutti out of place and in place (time algbw busbw #wrong
 * each); with -I the out-of-place p50 p99 max; with --peer the peer's time
 * busbw #wrong for both placements and two out-of-place ratios, busbw
 * tutti/peer and time tutti/peer; with --bound the bound busbw and each
 * placement's busbw as a percentage of it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

static struct {
    bench_row_t *rows;
    size_t       nrows, cap;
    char         start[32];
    const char  *peer_name;
    const char  *peer_version;
} rep;

static const char *op_name(int op)
{
    return op < 0 ? "none" : tutti_redop_name((tutti_redop_t)op);
}

static const char *combine_name(bench_combine_t c)
{
    static const char *const names[] = {"rank0", "avg", "min", "max"};

    return names[c];
}

static const char *launch_name(bench_launch_t l)
{
    return l == BENCH_LAUNCH_FORK ? "fork"
         : l == BENCH_LAUNCH_PMI  ? "pmi"
                                  : "explicit";
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);

    return v != NULL && *v != '\0' ? v : dflt;
}

/* `label` centred in `width` columns, dashes around it, into out. */
void bench_transport_summary(const bench_world_t *w, char *buf, size_t len)
{
    const char *names[8];
    int         counts[8], nnames = 0, r, k;

    buf[0] = '\0';
    for (r = 0; r < w->nranks; r++) {
        const char *name = "unknown";

        if (r == w->rank) {
            continue;
        }
        (void)tutti_comm_peer_transport(w->comm, r, &name);
        for (k = 0; k < nnames && strcmp(names[k], name) != 0; k++) {
        }
        if (k == nnames && nnames < 8) {
            names[nnames]    = name;
            counts[nnames++] = 0;
        }
        if (k < 8) {
            counts[k]++;
        }
    }
    if (nnames == 0) {
        snprintf(buf, len, "self");
        return;
    }
    for (k = 0; k < nnames; k++) {
        size_t used = strlen(buf);

        if (nnames == 1) {
            snprintf(buf, len, "%s", names[0]);
        } else {
            snprintf(buf + used, len - used, "%s%s (%d peer%s)",
                     k ? ", " : "", names[k], counts[k],
                     counts[k] == 1 ? "" : "s");
        }
    }
}

static void group(char *out, size_t cap, int width, const char *label)
{
    int len  = (int)strlen(label);
    int left = (width - len) / 2;

    snprintf(out + strlen(out), cap - strlen(out), "%*s%s%*s", left, "",
             label, width - len - left, "");
}

/* Width of the algo column (--algo only): the longest name swept. */
static int algo_width(const bench_opts_t *o)
{
    int w = 4, a; /* "algo" */

    for (a = 0; o->algo != NULL && a < o->nalgos; a++) {
        int len = (int)strlen(o->algos[a]);

        w = len > w ? len : w;
    }
    return w;
}

static void print_header_columns(const bench_opts_t *o)
{
    char g[512] = "", n[512], u[512];
    int  p, aw = algo_width(o);

    group(g, sizeof(g), 52 + (o->algo ? aw + 2 : 0), "");
    snprintf(n, sizeof(n), "%12s  %12s  %8s  %6s  %6s", "size", "count",
             "type", "redop", "root");
    snprintf(u, sizeof(u), "%12s  %12s  %8s  %6s  %6s", "(B)", "(elements)",
             "", "", "");
    if (o->algo != NULL) {
        snprintf(n + strlen(n), sizeof(n) - strlen(n), "  %*s", aw, "algo");
        snprintf(u + strlen(u), sizeof(u) - strlen(u), "  %*s", aw, "");
    }
    for (p = 0; p < 2; p++) {
        group(g, sizeof(g), 36, p ? "in-place" : "out-of-place");
        snprintf(n + strlen(n), sizeof(n) - strlen(n),
                 "  %8s  %7s  %7s  %6s", "time", "algbw", "busbw", "#wrong");
        snprintf(u + strlen(u), sizeof(u) - strlen(u),
                 "  %8s  %7s  %7s  %6s", "(us)", "(GB/s)", "(GB/s)", "");
    }
    if (o->latency) {
        group(g, sizeof(g), 30, "latency, out-of-place");
        snprintf(n + strlen(n), sizeof(n) - strlen(n), "  %8s  %8s  %8s",
                 "p50", "p99", "max");
        snprintf(u + strlen(u), sizeof(u) - strlen(u), "  %8s  %8s  %8s",
                 "(us)", "(us)", "(us)");
    }
    for (p = 0; rep.peer_name != NULL && p < 2; p++) {
        char label[64];

        snprintf(label, sizeof(label), "%s %s", rep.peer_name,
                 p ? "in-place" : "out-of-place");
        group(g, sizeof(g), 27, label);
        snprintf(n + strlen(n), sizeof(n) - strlen(n), "  %8s  %7s  %6s",
                 "time", "busbw", "#wrong");
        snprintf(u + strlen(u), sizeof(u) - strlen(u), "  %8s  %7s  %6s",
                 "(us)", "(GB/s)", "");
    }
    if (rep.peer_name != NULL) {
        group(g, sizeof(g), 16, "tutti/peer");
        snprintf(n + strlen(n), sizeof(n) - strlen(n), "  %6s  %6s",
                 "busbw", "time");
        snprintf(u + strlen(u), sizeof(u) - strlen(u), "  %6s  %6s", "(x)",
                 "(x)");
    }
    if (o->bound) {
        group(g, sizeof(g), 27, "bound");
        snprintf(n + strlen(n), sizeof(n) - strlen(n), "  %7s  %6s  %6s",
                 "busbw", "oop", "ip");
        snprintf(u + strlen(u), sizeof(u) - strlen(u), "  %7s  %6s  %6s",
                 "(GB/s)", "(%)", "(%)");
    }
    g[0] = n[0] = u[0] = '#';
    printf("%s\n%s\n%s\n", g, n, u);
}

void bench_report_begin(const bench_opts_t *o, const bench_world_t *w,
                        const char *peer_name, const char *peer_version)
{
    time_t      t = time(NULL);
    struct tm   tm;
    char        algo[128], list[256] = "", tps[160];
    const char *setting;
    int         r, a, v = tutti_version();

    gmtime_r(&t, &tm);
    strftime(rep.start, sizeof(rep.start), "%Y-%m-%dT%H:%M:%SZ", &tm);
    rep.peer_name    = peer_name;
    rep.peer_version = peer_version;
    printf("# tutti-bench %s: %s, tutti %d.%d.%d\n", BENCH_VERSION,
           o->coll->name, v / 10000, v / 100 % 100, v % 100);
    printf("# nranks %d  minBytes %zu  maxBytes %zu  step: %zu(%s)  "
           "warmup iters: %d  iters: %d  validation: %d  time: %s  "
           "blocking: 1%s\n",
           w->nranks, o->min_bytes, o->max_bytes,
           o->step_bytes ? o->step_bytes : (size_t)o->step_factor,
           o->step_bytes ? "bytes" : "factor", o->warmup, o->iters,
           o->check ? 1 : 0, combine_name(o->combine),
           o->blocking ? "" : " (-z 0: no nonblocking calls yet)");
    setting = bench_algo_setting(o, algo, sizeof(algo));
    if (o->algo != NULL && strcmp(setting, "all") == 0) {
        for (a = 0; a < o->nalgos; a++) { /* " (ring, tree, ...)" */
            snprintf(list + strlen(list), sizeof(list) - strlen(list),
                     "%s%s%s", a ? ", " : " (", o->algos[a],
                     a + 1 < o->nalgos ? "" : ")");
        }
    }
    bench_transport_summary(w, tps, sizeof(tps));
    printf("# launch: %s  bind: %s  peer: %s%s%s%s  bound: %s  algorithm: "
           "%s%s  transport: %s (TUTTI_TRANSPORT=%s)\n#\n# Using ranks\n",
           launch_name(w->launch), w->cpu >= 0 ? "core" : "none",
           peer_name ? peer_name : "none", peer_version ? " (" : "",
           peer_version ? peer_version : "", peer_version ? ")" : "",
           o->bound ? "memcpy" : "no", setting, list, tps,
           env_or("TUTTI_TRANSPORT", "auto"));
    for (r = 0; r < w->nranks; r++) {
        printf("#  Rank %2d Pid %6d on %s\n", r, w->info[r].pid,
               w->info[r].host);
    }
    printf("#\n");
    print_header_columns(o);
    fflush(stdout);
}

/* A time in us in 8 columns, however long it is. */
static void put_time(double us)
{
    if (us < 99999.995) {
        printf("  %8.2f", us);
    } else if (us < 99999999.5) {
        printf("  %8.0f", us);
    } else {
        printf("  %8.2g", us);
    }
}

static void put_result(const bench_result_t *r)
{
    char wrong[24];

    if (!r->done) {
        printf("  %8s  %7s  %7s  %6s", "n/a", "n/a", "n/a", "n/a");
        return;
    }
    if (r->wrong < 0) {
        snprintf(wrong, sizeof(wrong), "N/A");
    } else {
        snprintf(wrong, sizeof(wrong), "%lld", r->wrong);
    }
    put_time(r->time_us);
    printf("  %7.2f  %7.2f  %6s", r->algbw, r->busbw, wrong);
}

static void put_peer(const bench_result_t *r)
{
    char wrong[24];

    if (!r->done) {
        printf("  %8s  %7s  %6s", "n/a", "n/a", "n/a");
        return;
    }
    if (r->wrong < 0) {
        snprintf(wrong, sizeof(wrong), "N/A");
    } else {
        snprintf(wrong, sizeof(wrong), "%lld", r->wrong);
    }
    put_time(r->time_us);
    printf("  %7.2f  %6s", r->busbw, wrong);
}

static void put_ratio(double num, double den)
{
    if (den > 0 && num > 0) {
        printf("  %6.2f", num / den);
    } else {
        printf("  %6s", "n/a");
    }
}

static void put_pct(double busbw, double bound)
{
    if (bound > 0) {
        printf("  %6.1f", 100.0 * busbw / bound);
    } else {
        printf("  %6s", "n/a");
    }
}

void bench_report_row(const bench_opts_t *o, const bench_world_t *w,
                      const bench_row_t *row)
{
    const bench_result_t *t = row->tutti, *p = row->peer;

    (void)w;
    if (rep.nrows == rep.cap) {
        size_t       cap  = rep.cap ? 2 * rep.cap : 64;
        bench_row_t *rows = realloc(rep.rows, cap * sizeof(*rows));

        if (rows != NULL) {
            rep.rows = rows;
            rep.cap  = cap;
        }
    }
    if (rep.nrows < rep.cap) {
        rep.rows[rep.nrows++] = *row;
    }
    if (o->progress) {
        fputs("\r\033[K", stderr);
    }
    printf("%12zu  %12zu  %8s  %6s  %6d", row->size, row->count,
           o->coll->sized ? tutti_datatype_name(row->dtype) : "none",
           op_name(row->op), row->root);
    if (o->algo != NULL) {
        printf("  %*s", algo_width(o), row->algo);
    }
    put_result(&t[0]);
    put_result(&t[1]);
    if (o->latency) {
        put_time(t[0].p50_us);
        put_time(t[0].p99_us);
        put_time(t[0].max_us);
    }
    if (rep.peer_name != NULL) {
        put_peer(&p[0]);
        put_peer(&p[1]);
        put_ratio(t[0].busbw, p[0].done ? p[0].busbw : 0);
        put_ratio(t[0].time_us, p[0].done ? p[0].time_us : 0);
    }
    if (o->bound) {
        printf("  %7.2f", row->bound_busbw);
        put_pct(t[0].busbw, row->bound_busbw);
        put_pct(t[1].busbw, row->bound_busbw);
    }
    putchar('\n');
    fflush(stdout);
}

double bench_avg_busbw(const bench_row_t *rows, size_t nrows, int peer,
                       long long *wrong_p)
{
    double    sum = 0;
    long long wrong = 0;
    int       n     = 0, p;
    size_t    k;

    for (k = 0; k < nrows; k++) {
        const bench_result_t *r = peer ? rows[k].peer : rows[k].tutti;

        for (p = 0; p < 2; p++) {
            if (r[p].done) {
                sum += r[p].busbw;
                n++;
                wrong += r[p].wrong > 0 ? r[p].wrong : 0;
            }
        }
    }
    *wrong_p = wrong;
    return n ? sum / n : 0;
}

int bench_report_end(const bench_opts_t *o, const bench_world_t *w)
{
    long long wrong, peer_wrong;
    double    avg = bench_avg_busbw(rep.rows, rep.nrows, 0, &wrong);
    double    peer_avg = bench_avg_busbw(rep.rows, rep.nrows, 1, &peer_wrong);

    if (o->progress) {
        fputs("\r\033[K", stderr);
    }
    printf("# Errors (#wrong)      : %lld %s\n", wrong,
           !o->check ? "(not checked)" : wrong ? "FAILED" : "OK");
    if (rep.peer_name != NULL) {
        printf("# Errors (%s #wrong) : %lld %s\n", rep.peer_name,
               peer_wrong,
               !o->check ? "(not checked)" : peer_wrong ? "FAILED" : "OK");
    }
    printf("# Avg bus bandwidth    : %g\n", avg);
    if (rep.peer_name != NULL) {
        printf("# Avg bus bandwidth (%s) : %g\n", rep.peer_name, peer_avg);
    }
    printf("#\n");
    fflush(stdout);
    if (o->json_path != NULL) {
        bench_json_t j = {
            .o            = o,
            .w            = w,
            .start        = rep.start,
            .peer_name    = rep.peer_name,
            .peer_version = rep.peer_version,
            .rows         = rep.rows,
            .nrows        = rep.nrows,
        };

        return bench_json_write(&j);
    }
    return 0;
}
