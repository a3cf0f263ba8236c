/*
 * The command line: nccl-tests' flags and meanings where they exist, and
 * tutti-bench's own (--peer, --bound, -J, launch). One deliberate
 * difference: nccl-tests' -n is the iteration count; here -n is the number
 * of ranks, as the rest of tutti spells it, and iterations are -N/--iters.
 * Every usage error is one line on stderr, then the usage, then exit 2.
 * --algo names are checked against the library's algorithm table
 * (src/algo/algo.c), the one TUTTI_ALGO is parsed against.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "algo/algo.h" /* tutti__algos, for --algo only */
#include "bench.h"
#include "config.h" /* tutti__config_print(), for --env only */

enum {
    OPT_PEER = 256,
    OPT_BOUND,
    OPT_BIND,
    OPT_RANK,
    OPT_ID,
    OPT_ENV,
    OPT_TIMEOUT,
    OPT_ALGO
};

static const struct option long_opts[] = {
    {"nranks", required_argument, NULL, 'n'},
    {"minbytes", required_argument, NULL, 'b'},
    {"maxbytes", required_argument, NULL, 'e'},
    {"stepfactor", required_argument, NULL, 'f'},
    {"stepbytes", required_argument, NULL, 'i'},
    {"iters", required_argument, NULL, 'N'},
    {"warmup_iters", required_argument, NULL, 'w'},
    {"check", required_argument, NULL, 'c'},
    {"op", required_argument, NULL, 'o'},
    {"datatype", required_argument, NULL, 'd'},
    {"root", required_argument, NULL, 'r'},
    {"algo", required_argument, NULL, OPT_ALGO},
    {"average", required_argument, NULL, 'a'},
    {"blocking", required_argument, NULL, 'z'},
    {"latency", no_argument, NULL, 'I'},
    {"json", required_argument, NULL, 'J'},
    {"peer", required_argument, NULL, OPT_PEER},
    {"bound", no_argument, NULL, OPT_BOUND},
    {"bind", required_argument, NULL, OPT_BIND},
    {"rank", required_argument, NULL, OPT_RANK},
    {"id", required_argument, NULL, OPT_ID},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"env", no_argument, NULL, OPT_ENV},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

void bench_usage(FILE *out)
{
    fprintf(out,
"usage: tutti-bench COLLECTIVE [options]\n"
"  COLLECTIVE            allreduce, allgather, reduce_scatter, broadcast,\n"
"                        reduce, alltoall, sendrecv (a ring of send/recv\n"
"                        pairs) or barrier (latency only, one row)\n"
"  -n, --nranks N        ranks (default 2): forked locally; under mpiexec\n"
"                        or --rank it must equal the job's size.\n"
"                        NOTE: nccl-tests' -n is iterations; here it is -N\n"
"  -b, --minbytes SIZE   smallest size, bytes (default 8); K M G suffixes\n"
"  -e, --maxbytes SIZE   largest size (default 32M)\n"
"  -f, --stepfactor F    multiply the size by F, an integer >= 2 (default 2)\n"
"  -i, --stepbytes SIZE  add SIZE instead of multiplying\n"
"  -N, --iters N         timed iterations per size (default 20)\n"
"  -w, --warmup_iters N  untimed iterations before each size (default 5)\n"
"  -c, --check 0|1       check every result once per size, untimed "
"(default 1)\n"
"  -o, --op OP           sum|prod|min|max|avg|all (default sum)\n"
"  -d, --datatype T      int8|uint8|int32|uint32|int64|uint64|float16|\n"
"                        float32|float64|bfloat16|all (default float32)\n"
"  -r, --root R          root of broadcast and reduce (default 0); other\n"
"                        collectives print root -1\n"
"      --algo NAME|all   force one of the collective's algorithms (as\n"
"                        TUTTI_ALGO=<coll>:NAME would), or sweep them all,\n"
"                        one block of rows each, with an algo column\n"
"  -a, --average A       how rank times combine: max|avg|min|rank0, or\n"
"                        nccl-tests' 3|1|2|0 (default max)\n"
"  -z, --blocking 0|1    tutti's collectives are all blocking today: 1 is\n"
"                        what runs; 0 is accepted for nccl-tests scripts\n"
"  -I, --latency         per-size latency distribution: p50 p99 max\n"
"  -J, --json FILE       write parameters, environment and rows as JSON\n"
"      --peer mpi|gloo   run the same collective with MPI or Gloo, same\n"
"                        processes and buffers, and print ratios\n"
"      --bound           memcpy bandwidth per size; busbw as %% of the bound\n"
"      --bind core|none  one CPU per rank when the ranks share a host and\n"
"                        fit its CPUs (default core, as MPI launchers do):\n"
"                        a short run's ranks otherwise may share a core\n"
"                        until the scheduler spreads them\n"
"      --rank R --id FILE  for other launchers: this process is rank R of\n"
"                        --nranks N; rank 0 writes the id to FILE, the\n"
"                        others wait for it (a shared file system)\n"
"      --timeout MS      tutti's timeout for init and each call "
"(default %d)\n"
"      --env             print the TUTTI_* variables and exit\n"
"  -h, --help            this text; -V, --version: the version\n"
"Launch: forks -n ranks, or one rank per process under mpiexec\n"
"(PMI_RANK/PMI_SIZE set); with --peer mpi and no launcher it re-runs\n"
"itself under `mpiexec -n N`. Exit: 0 ok, 1 error, 2 usage, 3 wrong "
"results.\n",
            TUTTI_DEFAULT_TIMEOUT_MS);
}

static int usage_error(const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 1, 2)))
#endif
    ;

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("tutti-bench: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    bench_usage(stderr);
    return BENCH_EXIT_USAGE;
}

/* "64", "4K", "1m", "2G", "8KB": powers of 1024, as nccl-tests' parsesize. */
static int parse_size(const char *s, size_t *out)
{
    char              *end;
    unsigned long long v;
    unsigned           shift = 0;

    if (*s == '-' || *s == '\0') {
        return -1;
    }
    errno = 0;
    v     = strtoull(s, &end, 10);
    if (errno != 0 || end == s) {
        return -1;
    }
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    default: break;
    }
    if (*end == 'b' || *end == 'B') {
        end++;
    }
    if (*end != '\0' || (shift && v > (SIZE_MAX >> shift))) {
        return -1;
    }
    *out = (size_t)(v << shift);
    return 0;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long  v;

    errno = 0;
    v     = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_combine(const char *s, bench_combine_t *out)
{
    static const char *const names[] = {"rank0", "avg", "min", "max"};
    int                      k;

    for (k = 0; k < 4; k++) {
        if (strcasecmp(s, names[k]) == 0 ||
            (s[0] == '0' + k && s[1] == '\0')) {
            *out = (bench_combine_t)k;
            return 0;
        }
    }
    return -1;
}

static int parse_ops(const char *s, bench_opts_t *o)
{
    int k;

    if (strcasecmp(s, "all") == 0) {
        for (k = 0; k < TUTTI_NUM_REDOPS; k++) {
            o->ops[k] = (tutti_redop_t)k;
        }
        o->nops = TUTTI_NUM_REDOPS;
        return 0;
    }
    o->nops = 1;
    return bench_parse_op(s, &o->ops[0]);
}

static int parse_dtypes(const char *s, bench_opts_t *o)
{
    int k;

    if (strcasecmp(s, "all") == 0) {
        for (k = 0; k < TUTTI_NUM_DATATYPES; k++) {
            o->dtypes[k] = (tutti_datatype_t)k;
        }
        o->ndtypes = TUTTI_NUM_DATATYPES;
        return 0;
    }
    o->ndtypes = 1;
    return bench_parse_dtype(s, &o->dtypes[0]);
}

static void set_defaults(bench_opts_t *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    o->min_bytes   = 8;
    o->max_bytes   = 32u << 20;
    o->step_factor = 2;
    o->iters       = 20;
    o->warmup      = 5;
    o->check       = 1;
    o->nops        = 1;
    o->ops[0]      = TUTTI_SUM;
    o->ndtypes     = 1;
    o->dtypes[0]   = TUTTI_FLOAT32;
    o->combine     = BENCH_COMBINE_MAX;
    o->blocking    = 1;
    o->bind        = 1;
    o->timeout_ms  = TUTTI_DEFAULT_TIMEOUT_MS;
    o->rank        = -1;
    o->progress    = isatty(STDERR_FILENO);
    o->argc        = argc;
    o->argv        = argv;
}

/*
 * --algo against the library's table: NAME must be one of the
 * collective's algorithms; "all" takes every one, in the table's order.
 * Without --algo the one entry NULL means "as configured". TUTTI_ALGO
 * would silently override the config field --algo sets (the environment
 * wins, so an operator can always override), so the two exclude each
 * other. 0, or the usage error's exit code.
 */
static int resolve_algos(bench_opts_t *o)
{
    const tt_algo_t *const *a;
    const char             *env = getenv("TUTTI_ALGO");
    char                    known[256] = "";
    int                     all;

    o->nalgos   = 1;
    o->algos[0] = NULL;
    if (o->algo == NULL) {
        return 0;
    }
    if (env != NULL && *env != '\0') {
        return usage_error("--algo and TUTTI_ALGO='%s' exclude each other "
                           "(the variable would override --algo)", env);
    }
    all       = strcasecmp(o->algo, "all") == 0;
    o->nalgos = 0;
    for (a = tutti__algos; *a != NULL; a++) {
        if (strcmp(tutti__coll_name((*a)->coll), o->coll->name) != 0) {
            continue;
        }
        snprintf(known + strlen(known), sizeof(known) - strlen(known),
                 "%s, ", (*a)->name);
        if ((all || strcasecmp(o->algo, (*a)->name) == 0) &&
            o->nalgos < BENCH_MAX_ALGOS) {
            o->algos[o->nalgos++] = (*a)->name;
        }
    }
    if (known[0] == '\0') {
        return usage_error("--algo: %s has no algorithms to choose from",
                           o->coll->name);
    }
    if (o->nalgos == 0) {
        return usage_error("--algo: no %s algorithm '%s' (%sall)",
                           o->coll->name, o->algo, known);
    }
    return 0;
}

/* The checks that need more than one option. */
static int check_opts(bench_opts_t *o, int have_factor)
{
    int nsizes;

    if (o->coll == NULL) {
        return usage_error("no collective given");
    }
    if (o->min_bytes > o->max_bytes) {
        return usage_error("-b %zu is larger than -e %zu", o->min_bytes,
                           o->max_bytes);
    }
    if (o->step_bytes && have_factor) {
        return usage_error("-f and -i exclude each other");
    }
    nsizes = bench_sizes(o, NULL, BENCH_MAX_SIZES + 1);
    if (nsizes > BENCH_MAX_SIZES) {
        return usage_error("more than %d sizes; raise -i or -f",
                           BENCH_MAX_SIZES);
    }
    if (o->rank >= 0 && (o->nranks == 0 || o->id_file == NULL)) {
        return usage_error("--rank needs --nranks N and --id FILE");
    }
    if (o->rank >= o->nranks && o->rank >= 0) {
        return usage_error("--rank %d is not below --nranks %d", o->rank,
                           o->nranks);
    }
    if (o->nranks && o->coll->rooted && o->root >= o->nranks) {
        return usage_error("-r %d is not below -n %d", o->root, o->nranks);
    }
    if (o->nranks && o->nranks < o->coll->min_ranks) {
        return usage_error("%s needs -n %d or more", o->coll->name,
                           o->coll->min_ranks);
    }
    if (resolve_algos(o) != 0) {
        return BENCH_EXIT_USAGE;
    }
    if (o->peer == BENCH_PEER_MPI && bench_peer_mpi() == NULL) {
        return usage_error("--peer mpi: this tutti-bench was built "
                           "without MPI");
    }
    if (o->peer == BENCH_PEER_GLOO && bench_peer_gloo() == NULL) {
        return usage_error("--peer gloo: this tutti-bench was built "
                           "without Gloo");
    }
    return 0;
}

/*
 * One option; returns 0, the usage error's exit code, or -1 to exit 0.
 * One flat case per flag: longer than our usual function, but each case
 * reads on its own, which a table of parser callbacks would not buy.
 */
static int parse_one(int c, const char *arg, bench_opts_t *o,
                     int *have_factor)
{
    int v;

    switch (c) {
    case 'n':
        return parse_int(arg, 1, 1 << 20, &o->nranks)
                   ? usage_error("-n wants a rank count >= 1, not '%s'", arg)
                   : 0;
    case 'b':
        return parse_size(arg, &o->min_bytes)
                   ? usage_error("-b: bad size '%s'", arg) : 0;
    case 'e':
        return parse_size(arg, &o->max_bytes)
                   ? usage_error("-e: bad size '%s'", arg) : 0;
    case 'i':
        if (parse_size(arg, &o->step_bytes) || o->step_bytes == 0) {
            return usage_error("-i: bad step '%s'", arg);
        }
        return 0;
    case 'f':
        if (parse_int(arg, -1000000, 1000000, &v) || v < 2) {
            return usage_error("-f wants an integer factor >= 2, not '%s'",
                               arg);
        }
        o->step_factor = (unsigned)v;
        *have_factor   = 1;
        return 0;
    case 'N':
        return parse_int(arg, 1, 1 << 30, &o->iters)
                   ? usage_error("-N wants iterations >= 1, not '%s'", arg)
                   : 0;
    case 'w':
        return parse_int(arg, 0, 1 << 30, &o->warmup)
                   ? usage_error("-w wants iterations >= 0, not '%s'", arg)
                   : 0;
    case 'c':
        return parse_int(arg, 0, 1 << 30, &o->check)
                   ? usage_error("-c wants 0 or 1, not '%s'", arg) : 0;
    case 'o':
        return parse_ops(arg, o) ? usage_error("unknown op '%s'", arg) : 0;
    case 'd':
        return parse_dtypes(arg, o) ? usage_error("unknown type '%s'", arg)
                                    : 0;
    case 'r':
        return parse_int(arg, 0, 1 << 20, &o->root)
                   ? usage_error("-r wants a rank >= 0, not '%s'", arg) : 0;
    case OPT_ALGO:
        o->algo = arg; /* checked once the collective is known */
        return 0;
    case 'a':
        return parse_combine(arg, &o->combine)
                   ? usage_error("-a wants max|avg|min|rank0, not '%s'", arg)
                   : 0;
    case 'z':
        return parse_int(arg, 0, 1, &o->blocking)
                   ? usage_error("-z wants 0 or 1, not '%s'", arg) : 0;
    case 'I':
        o->latency = 1;
        return 0;
    case 'J':
        o->json_path = arg;
        return 0;
    case OPT_PEER:
        if (strcmp(arg, "mpi") == 0) {
            o->peer = BENCH_PEER_MPI;
        } else if (strcmp(arg, "gloo") == 0) {
            o->peer = BENCH_PEER_GLOO;
        } else if (strcmp(arg, "none") != 0) {
            return usage_error("unknown peer '%s' (mpi, gloo)", arg);
        }
        return 0;
    case OPT_BOUND:
        o->bound = 1;
        return 0;
    case OPT_BIND:
        if (strcmp(arg, "core") == 0) {
            o->bind = 1;
        } else if (strcmp(arg, "none") == 0) {
            o->bind = 0;
        } else {
            return usage_error("--bind wants core or none, not '%s'", arg);
        }
        return 0;
    case OPT_RANK:
        return parse_int(arg, 0, 1 << 20, &o->rank)
                   ? usage_error("--rank wants a rank >= 0, not '%s'", arg)
                   : 0;
    case OPT_ID:
        o->id_file = arg;
        return 0;
    case OPT_TIMEOUT:
        return parse_int(arg, 0, 1 << 30, &o->timeout_ms)
                   ? usage_error("--timeout wants milliseconds, not '%s'",
                                 arg)
                   : 0;
    case OPT_ENV:
        tutti__config_print(stdout);
        return -1;
    case 'h':
        bench_usage(stdout);
        return -1;
    case 'V':
        printf("tutti-bench %s (tutti library %d)\n", BENCH_VERSION,
               tutti_version());
        return -1;
    case ':':
        return usage_error("option '%s' needs a value", arg);
    default:
        return usage_error("unknown option '%s'", arg);
    }
}

int bench_opts_parse(int argc, char **argv, bench_opts_t *o)
{
    static const char short_opts[] = ":n:b:e:f:i:N:w:c:o:d:r:a:z:IJ:hV";
    int               c, rc, have_factor = 0;

    set_defaults(o, argc, argv);
    /* getopt permutes argv: keep the command as typed, for JSON and exec */
    o->argv = calloc((size_t)argc + 1, sizeof(char *));
    if (o->argv == NULL) {
        return usage_error("out of memory");
    }
    memcpy(o->argv, argv, (size_t)argc * sizeof(char *));
    /* the collective may come first or last; getopt permutes argv */
    opterr = 0; /* errors are ours: one line, then the usage */
    while ((c = getopt_long(argc, argv, short_opts, long_opts, NULL)) != -1) {
        rc = parse_one(c, c == '?' || c == ':' ? argv[optind - 1] : optarg,
                       o, &have_factor);
        if (rc != 0) {
            return rc;
        }
    }
    if (optind < argc) {
        o->coll = bench_coll_find(argv[optind]);
        if (o->coll == NULL) {
            return usage_error("unknown collective '%s' (%s)",
                               argv[optind], bench_coll_names());
        }
        if (optind + 1 < argc) {
            return usage_error("unexpected argument '%s'", argv[optind + 1]);
        }
    }
    return check_opts(o, have_factor);
}

int bench_sizes(const bench_opts_t *o, size_t *sizes, int max)
{
    size_t s = o->min_bytes;
    int    n = 0;

    while (s <= o->max_bytes && n < max) {
        size_t next = o->step_bytes ? s + o->step_bytes
                    : s == 0        ? 1
                                    : s * o->step_factor;

        if (sizes != NULL) {
            sizes[n] = s;
        }
        n++;
        if (next <= s || (!o->step_bytes && next / o->step_factor != s &&
                          s != 0)) {
            break; /* the next size would overflow: this was the last */
        }
        s = next;
    }
    return n;
}

static const bench_coll_t *const bench_colls[] = {
    &bench_allreduce, &bench_allgather, &bench_reduce_scatter,
    &bench_broadcast, &bench_reduce,    &bench_alltoall,
    &bench_sendrecv,  &bench_barrier_coll,
};

#define BENCH_NCOLLS (sizeof(bench_colls) / sizeof(bench_colls[0]))

const bench_coll_t *bench_coll_find(const char *name)
{
    size_t k;

    for (k = 0; k < BENCH_NCOLLS; k++) {
        if (strcmp(name, bench_colls[k]->name) == 0) {
            return bench_colls[k];
        }
    }
    return NULL;
}

const char *bench_coll_names(void)
{
    static char names[256];
    size_t      k;

    if (names[0] == '\0') {
        for (k = 0; k < BENCH_NCOLLS; k++) {
            snprintf(names + strlen(names), sizeof(names) - strlen(names),
                     "%s%s", k ? ", " : "", bench_colls[k]->name);
        }
    }
    return names;
}

const char *bench_algo_label(const char *algo)
{
    const char *env = getenv("TUTTI_ALGO");

    if (algo != NULL) {
        return algo;
    }
    return env != NULL && *env != '\0' ? env : "auto";
}

const char *bench_algo_setting(const bench_opts_t *o, char *buf, size_t cap)
{
    if (o->algo == NULL) {
        return bench_algo_label(NULL);
    }
    if (strcasecmp(o->algo, "all") == 0) {
        return "all";
    }
    snprintf(buf, cap, "%s:%s", o->coll->name, o->algos[0]);
    return buf;
}
