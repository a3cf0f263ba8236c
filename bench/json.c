/*
 * -J FILE: one JSON document per run, written by rank 0 after the sweep
 * (to FILE.tmp, then renamed, so a reader never sees half a file). The
 * fields are an interface, documented in README-bench.md ("JSON output");
 * "schema" names their version. Numbers that were not measured are null,
 * never NaN, so every JSON parser accepts the file.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* 2: parameters.algo and .algorithms; rows[].algorithm names the forced
 * algorithm under --algo; more collectives; type "none" for barrier. */
#define BENCH_JSON_SCHEMA "tutti-bench/2"

extern char **environ;

static void jstr(FILE *f, const char *s)
{
    const unsigned char *p;

    if (s == NULL) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            fprintf(f, "\\%c", *p);
        } else if (*p < 0x20) {
            fprintf(f, "\\u%04x", *p);
        } else {
            fputc(*p, f);
        }
    }
    fputc('"', f);
}

static void jnum(FILE *f, double v)
{
    if (isfinite(v)) {
        fprintf(f, "%.9g", v);
    } else {
        fputs("null", f);
    }
}

static const char *combine_name(bench_combine_t c)
{
    static const char *const names[] = {"rank0", "avg", "min", "max"};

    return names[c];
}

static void write_parameters(FILE *f, const bench_json_t *j)
{
    const bench_opts_t *o = j->o;
    char                algo[128];
    int                 k;

    fprintf(f, "  \"parameters\": {\n    \"collective\": ");
    jstr(f, o->coll->name);
    fprintf(f, ",\n    \"nranks\": %d,\n    \"min_bytes\": %zu,\n"
               "    \"max_bytes\": %zu,\n    \"step_factor\": %u,\n"
               "    \"step_bytes\": %zu,\n    \"iters\": %d,\n"
               "    \"warmup_iters\": %d,\n    \"check\": %d,\n"
               "    \"ops\": [",
            j->w->nranks, o->min_bytes, o->max_bytes,
            o->step_bytes ? 0 : o->step_factor, o->step_bytes, o->iters,
            o->warmup, o->check ? 1 : 0);
    for (k = 0; o->coll->reduces && k < o->nops; k++) {
        fprintf(f, "%s", k ? ", " : "");
        jstr(f, tutti_redop_name(o->ops[k]));
    }
    fprintf(f, "],\n    \"datatypes\": [");
    for (k = 0; o->coll->sized && k < o->ndtypes; k++) {
        fprintf(f, "%s", k ? ", " : "");
        jstr(f, tutti_datatype_name(o->dtypes[k]));
    }
    fprintf(f, "],\n    \"root\": %d,\n    \"algo\": ", o->root);
    jstr(f, bench_algo_setting(o, algo, sizeof(algo)));
    fprintf(f, ",\n    \"algorithms\": [");
    for (k = 0; k < o->nalgos; k++) {
        fprintf(f, "%s", k ? ", " : "");
        jstr(f, bench_algo_label(o->algos[k]));
    }
    fprintf(f, "],\n    \"time_combine\": ");
    jstr(f, combine_name(o->combine));
    /* every tutti call blocks today, whatever -z asked */
    fprintf(f, ",\n    \"blocking\": 1,\n    \"blocking_requested\": %d,\n"
               "    \"latency\": %s,\n    \"peer\": ",
            o->blocking, o->latency ? "true" : "false");
    jstr(f, j->peer_name);
    fprintf(f, ",\n    \"bound\": %s,\n    \"bind\": \"%s\",\n"
               "    \"timeout_ms\": %d,\n    \"launch\": ",
            o->bound ? "true" : "false", j->w->cpu >= 0 ? "core" : "none",
            o->timeout_ms);
    jstr(f, j->w->launch == BENCH_LAUNCH_FORK  ? "fork"
            : j->w->launch == BENCH_LAUNCH_PMI ? "pmi"
                                               : "explicit");
    fprintf(f, ",\n    \"reexec_mpiexec\": %s\n  },\n",
            getenv("TUTTI_BENCH_REEXEC") ? "true" : "false");
}

/* What TUTTI_TRANSPORT asked for, and what the library chose from rank 0
 * to each peer (tutti_comm_peer_transport). */
static void write_transport(FILE *f, const bench_json_t *j)
{
    const char *t = getenv("TUTTI_TRANSPORT");
    int         r;

    fprintf(f, "    \"transport\": {\n      \"requested\": ");
    jstr(f, t && *t ? t : "auto");
    fprintf(f, ",\n      \"per_peer\": [");
    for (r = 0; r < j->w->nranks; r++) {
        const char *name = "unknown";

        fprintf(f, "%s{\"rank\": 0, \"peer\": %d, \"transport\": ",
                r ? ", " : "", r);
        (void)tutti_comm_peer_transport(j->w->comm, r, &name);
        jstr(f, name);
        fputc('}', f);
    }
    fprintf(f, "]\n    },\n");
}

static void write_environment(FILE *f, const bench_json_t *j)
{
    const bench_world_t *w = j->w;
    char               **e;
    int                  r, v = tutti_version(), first = 1;

    fprintf(f, "  \"environment\": {\n    \"host\": ");
    jstr(f, w->info[0].host);
    fprintf(f, ",\n    \"cores\": %ld,\n    \"tutti_version\": "
               "\"%d.%d.%d\",\n    \"tutti_version_code\": %d,\n"
               "    \"ranks\": [",
            sysconf(_SC_NPROCESSORS_ONLN), v / 10000, v / 100 % 100,
            v % 100, v);
    for (r = 0; r < w->nranks; r++) {
        fprintf(f, "%s\n      {\"rank\": %d, \"pid\": %d, \"host\": ",
                r ? "," : "", r, w->info[r].pid);
        jstr(f, w->info[r].host);
        fputc('}', f);
    }
    fprintf(f, "\n    ],\n");
    write_transport(f, j);
    fprintf(f, "    \"tutti_env\": {");
    for (e = environ; *e != NULL; e++) {
        const char *eq = strchr(*e, '=');
        char        name[256];

        if (strncmp(*e, "TUTTI_", 6) != 0 || eq == NULL ||
            (size_t)(eq - *e) >= sizeof(name)) {
            continue;
        }
        memcpy(name, *e, (size_t)(eq - *e));
        name[eq - *e] = '\0';
        fprintf(f, "%s\n      ", first ? "" : ",");
        jstr(f, name);
        fputs(": ", f);
        jstr(f, eq + 1);
        first = 0;
    }
    fprintf(f, "%s},\n    \"peer\": ", first ? "" : "\n    ");
    if (j->peer_name == NULL) {
        fputs("null", f);
    } else {
        fputs("{\"name\": ", f);
        jstr(f, j->peer_name);
        fputs(", \"version\": ", f);
        jstr(f, j->peer_version);
        fputc('}', f);
    }
    fprintf(f, "\n  },\n");
}

static void write_result(FILE *f, const char *key, const bench_result_t *r,
                         int last)
{
    fprintf(f, "        \"%s\": {\"time_us\": ", key);
    jnum(f, r->done ? r->time_us : NAN);
    fputs(", \"algbw_gbs\": ", f);
    jnum(f, r->done ? r->algbw : NAN);
    fputs(", \"busbw_gbs\": ", f);
    jnum(f, r->done ? r->busbw : NAN);
    fputs(", \"wrong\": ", f);
    if (r->done && r->wrong >= 0) {
        fprintf(f, "%lld", r->wrong);
    } else {
        fputs("null", f);
    }
    fputs(", \"latency_us\": ", f);
    if (r->done && isfinite(r->p50_us)) {
        fputs("{\"p50\": ", f);
        jnum(f, r->p50_us);
        fputs(", \"p99\": ", f);
        jnum(f, r->p99_us);
        fputs(", \"max\": ", f);
        jnum(f, r->max_us);
        fputc('}', f);
    } else {
        fputs("null", f);
    }
    fputs(", \"skipped\": ", f);
    jstr(f, r->done ? NULL : r->skip ? r->skip : "not run");
    fprintf(f, "}%s\n", last ? "" : ",");
}

static void write_ratio(FILE *f, double num, double den)
{
    jnum(f, num > 0 && den > 0 ? num / den : NAN);
}

static void write_row(FILE *f, const bench_json_t *j, const bench_row_t *row,
                      int last)
{
    const bench_result_t *t = row->tutti, *p = row->peer;

    fprintf(f, "    {\n      \"collective\": ");
    jstr(f, j->o->coll->name);
    fprintf(f, ",\n      \"size\": %zu,\n      \"count\": %zu,\n"
               "      \"type\": ",
            row->size, row->count);
    jstr(f, j->o->coll->sized ? tutti_datatype_name(row->dtype) : "none");
    fputs(",\n      \"redop\": ", f);
    jstr(f, row->op < 0 ? "none" : tutti_redop_name((tutti_redop_t)row->op));
    fprintf(f, ",\n      \"root\": %d,\n      \"algorithm\": ", row->root);
    jstr(f, row->algo);
    fputs(",\n      \"tutti\": {\n", f);
    write_result(f, "out_of_place", &t[0], 0);
    write_result(f, "in_place", &t[1], 1);
    fputs("      },\n      \"peer\": ", f);
    if (j->peer_name == NULL) {
        fputs("null,\n      \"ratio\": null,\n", f);
    } else {
        fputs("{\n        \"name\": ", f);
        jstr(f, j->peer_name);
        fputs(",\n", f);
        write_result(f, "out_of_place", &p[0], 0);
        write_result(f, "in_place", &p[1], 1);
        fputs("      },\n      \"ratio\": {\"busbw\": ", f);
        write_ratio(f, t[0].busbw, p[0].done ? p[0].busbw : 0);
        fputs(", \"time\": ", f);
        write_ratio(f, t[0].time_us, p[0].done ? p[0].time_us : 0);
        fputs("},\n", f);
    }
    fputs("      \"bound\": ", f);
    if (!j->o->bound) {
        fputs("null\n", f);
    } else {
        fputs("{\"memcpy_single_gbs\": ", f);
        jnum(f, row->memcpy_single);
        fputs(", \"memcpy_concurrent_gbs\": ", f);
        jnum(f, row->memcpy_concurrent);
        fputs(", \"busbw_bound_gbs\": ", f);
        jnum(f, row->bound_busbw);
        fputs(", \"out_of_place_pct\": ", f);
        write_ratio(f, 100.0 * t[0].busbw, row->bound_busbw);
        fputs(", \"in_place_pct\": ", f);
        write_ratio(f, 100.0 * t[1].busbw, row->bound_busbw);
        fputs("}\n", f);
    }
    fprintf(f, "    }%s\n", last ? "" : ",");
}

static void write_summary(FILE *f, const bench_json_t *j)
{
    long long wrong, peer_wrong;
    double    avg  = bench_avg_busbw(j->rows, j->nrows, 0, &wrong);
    double    pavg = bench_avg_busbw(j->rows, j->nrows, 1, &peer_wrong);

    fprintf(f, "  \"summary\": {\"rows\": %zu, \"avg_busbw_gbs\": ",
            j->nrows);
    jnum(f, avg);
    fprintf(f, ", \"wrong\": %lld, \"peer_avg_busbw_gbs\": ", wrong);
    jnum(f, j->peer_name ? pavg : NAN);
    fputs(", \"peer_wrong\": ", f);
    if (j->peer_name) {
        fprintf(f, "%lld", peer_wrong);
    } else {
        fputs("null", f);
    }
    fputs("}\n", f);
}

int bench_json_write(const bench_json_t *j)
{
    size_t len = strlen(j->o->json_path) + 8;
    char  *tmp = malloc(len);
    FILE  *f;
    size_t k;
    int    a, bad;

    if (tmp == NULL) {
        fprintf(stderr, "tutti-bench: out of memory for -J\n");
        return -1;
    }
    snprintf(tmp, len, "%s.tmp", j->o->json_path);
    f = fopen(tmp, "w");
    if (f == NULL) {
        perror(tmp);
        free(tmp);
        return -1;
    }
    fprintf(f, "{\n  \"schema\": \"%s\",\n  \"tool\": {\"name\": "
               "\"tutti-bench\", \"version\": \"%s\"},\n  \"command\": [",
            BENCH_JSON_SCHEMA, BENCH_VERSION);
    for (a = 0; a < j->o->argc; a++) {
        fputs(a ? ", " : "", f);
        jstr(f, j->o->argv[a]);
    }
    fputs("],\n  \"start_time\": ", f);
    jstr(f, j->start);
    fputs(",\n", f);
    write_parameters(f, j);
    write_environment(f, j);
    fputs("  \"rows\": [\n", f);
    for (k = 0; k < j->nrows; k++) {
        write_row(f, j, &j->rows[k], k + 1 == j->nrows);
    }
    fputs("  ],\n", f);
    write_summary(f, j);
    fputs("}\n", f);
    bad = ferror(f);
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, j->o->json_path) != 0) {
        perror(j->o->json_path);
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}
