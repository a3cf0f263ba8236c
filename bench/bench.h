/*
 * tutti-bench: the types shared by the benchmark's files. The runner
 * (runner.c) sweeps sizes for one collective described by a bench_coll_t
 * (coll_*.c, one file per collective), once per algorithm with --algo; the
 * launcher (launch.c) decides how ranks start and how the unique id reaches
 * them; report.c owns the table on stdout and the JSON file; data.c owns
 * typed element access and the check values; bound.c measures memcpy
 * bandwidth; peer_*.c run another library's collective on the same buffers.
 * The bench uses only the public API in tutti.h, except `--env`, which
 * prints the library's variable table, and `--algo`, which reads the
 * library's algorithm table (names per collective) to check a name and to
 * sweep `all`.
 *
 * This header is also read by the C++ Gloo adapter, so it keeps to the
 * common subset of C and C++.
 */
#ifndef TUTTI_BENCH_H
#define TUTTI_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tutti.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BENCH_VERSION "0.1.0"

/* Exit codes, shared by every rank and by the fork launcher's parent. */
#define BENCH_EXIT_OK    0
#define BENCH_EXIT_ERROR 1 /* a call failed, a rank died, a timeout */
#define BENCH_EXIT_USAGE 2 /* bad arguments */
#define BENCH_EXIT_WRONG 3 /* the run finished, but #wrong > 0 somewhere */

#define BENCH_MAX_SIZES 4096
#define BENCH_HOST_MAX  64
#define BENCH_MAX_ALGOS 16

typedef enum bench_coll_id {
    BENCH_ALLREDUCE,
    BENCH_ALLGATHER,
    BENCH_REDUCE_SCATTER,
    BENCH_BROADCAST,
    BENCH_REDUCE,
    BENCH_ALLTOALL,
    BENCH_SENDRECV, /* a ring of send/recv pairs, not a collective */
    BENCH_BARRIER
} bench_coll_id_t;

/* How per-rank times become one number (nccl-tests' -a). */
typedef enum bench_combine {
    BENCH_COMBINE_RANK0 = 0, /* rank 0's own time */
    BENCH_COMBINE_AVG   = 1,
    BENCH_COMBINE_MIN   = 2,
    BENCH_COMBINE_MAX   = 3
} bench_combine_t;

typedef enum bench_launch {
    BENCH_LAUNCH_FORK,     /* this process forks -n ranks (default) */
    BENCH_LAUNCH_PMI,      /* started by mpiexec: PMI_RANK, PMI_SIZE */
    BENCH_LAUNCH_EXPLICIT  /* --rank R --nranks N --id FILE */
} bench_launch_t;

typedef enum bench_peer_id {
    BENCH_PEER_NONE,
    BENCH_PEER_MPI,
    BENCH_PEER_GLOO
} bench_peer_id_t;

struct bench_coll;

/* Everything the command line says; filled by opts.c, then read-only. */
typedef struct bench_opts {
    const struct bench_coll *coll;
    int             nranks;      /* -n; 0 = not given */
    size_t          min_bytes;   /* -b */
    size_t          max_bytes;   /* -e */
    size_t          step_bytes;  /* -i; 0 = multiply by step_factor */
    unsigned        step_factor; /* -f */
    int             iters;       /* -N / --iters */
    int             warmup;      /* -w */
    int             check;       /* -c */
    int             nops;        /* -o: the ops to sweep */
    tutti_redop_t   ops[TUTTI_NUM_REDOPS];
    int             ndtypes;     /* -d: the types to sweep */
    tutti_datatype_t dtypes[TUTTI_NUM_DATATYPES];
    int             root;        /* -r */
    const char     *algo;        /* --algo as typed; NULL = not given */
    int             nalgos;      /* the algorithms to sweep, in order; */
    const char     *algos[BENCH_MAX_ALGOS]; /* NULL = as configured */
    bench_combine_t combine;     /* -a */
    int             blocking;    /* -z */
    int             latency;     /* -I */
    const char     *json_path;   /* -J */
    bench_peer_id_t peer;        /* --peer */
    int             bound;       /* --bound */
    int             bind;        /* --bind: 1 core (default), 0 none */
    int             timeout_ms;  /* --timeout */
    int             rank;        /* --rank; -1 = not given */
    const char     *id_file;     /* --id */
    int             progress;    /* stderr is a TTY */
    int             argc;        /* the command line, for JSON and re-exec */
    char          **argv;
} bench_opts_t;

/*
 * Parses argv into *opts. Returns 0 on success; on a usage error prints one
 * line and the usage to stderr and returns BENCH_EXIT_USAGE; for --help or
 * --env it prints and returns -1 (the caller exits 0).
 */
int bench_opts_parse(int argc, char **argv, bench_opts_t *opts);
void bench_usage(FILE *out);
/* Writes up to max sweep sizes into sizes (NULL: only count them). */
int  bench_sizes(const bench_opts_t *o, size_t *sizes, int max);
/*
 * What the header and the JSON call the algorithm choice of the run:
 * "<coll>:<name>" for one --algo, "all" for --algo all, else TUTTI_ALGO
 * or "auto"; and what a row of algorithm `algo` (an opts->algos entry)
 * records: the name, or TUTTI_ALGO or "auto" for NULL.
 */
const char *bench_algo_setting(const bench_opts_t *o, char *buf, size_t cap);
const char *bench_algo_label(const char *algo);

/* What one rank knows about the job; filled by the runner after init. */
typedef struct bench_rank_info {
    int  pid;
    char host[BENCH_HOST_MAX];
} bench_rank_info_t;

typedef struct bench_world {
    int                rank;
    int                nranks;
    tutti_comm_t       comm;
    bench_launch_t     launch;
    int                same_host; /* every rank on rank 0's host */
    int                cpu;       /* --bind core: this rank's CPU, else -1 */
    bench_rank_info_t *info;      /* [nranks] */
} bench_world_t;

/*
 * One prepared collective call. The runner fills it for a size and a
 * placement; the timed loop then calls fn(call) and nothing else. fn
 * returns 0 on success; on failure it writes a sentence into
 * bench_errbuf and returns non-zero.
 */
typedef struct bench_call bench_call_t;
typedef int (*bench_call_fn)(bench_call_t *call);

struct bench_call {
    bench_call_fn    fn;
    const void      *sendbuf;
    void            *recvbuf;
    size_t           count;   /* the count the call takes (see coll_*.c) */
    tutti_datatype_t dtype;
    tutti_redop_t    op;
    int              root;
    int              inplace;
    bench_world_t   *world;
    tutti_comm_t     comm;    /* tutti's measured calls run on this one */
    void            *peer;    /* the peer library's context */
    void            *prep;    /* per-call state a peer built in prepare() */
};

/*
 * The transports rank w->rank reaches its peers through, as the library
 * chose them: "shm", or "shm (1 peer), ucx (2 peers)" when they differ.
 */
void bench_transport_summary(const bench_world_t *w, char *buf, size_t len);

extern char bench_errbuf[512];
/* Formats into bench_errbuf; returns -1 so callers can `return`. */
int bench_err(const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* bench_err() with tutti_strerror(rc) and tutti_last_error(). */
int bench_tutti_err(tutti_result_t rc, const char *what);

/*
 * One collective, as the runner sees it. Sizes follow nccl-tests: `bytes`
 * is the sweep's size; layout() turns it into the call's count and the
 * bytes each buffer needs (see the per-collective files for the rules).
 */
typedef struct bench_coll {
    const char     *name;    /* as the library names it (TUTTI_ALGO) */
    bench_coll_id_t id;
    int             reduces; /* takes an op (-o) */
    int             rooted;  /* takes a root (-r) */
    int             sized;   /* moves data: sweeps sizes and types; else
                                one row, size 0, type "none" */
    int             min_ranks;
    const char     *no_inplace; /* why there is no in-place form, or NULL */
    void   (*layout)(size_t bytes, size_t tsize, int nranks, size_t *count_p,
                     size_t *send_bytes_p, size_t *recv_bytes_p);
    /* Bytes moved per call, the numerator of algbw. */
    double (*alg_bytes)(size_t count, size_t tsize, int nranks);
    /* busbw = algbw * bus_factor(nranks), as nccl-tests' PERFORMANCE.md. */
    double (*bus_factor)(int nranks);
    /*
     * Memory-traffic model for --bound: a lower bound on memcpy-equivalent
     * bytes each rank moves per bus byte (see README-bench.md).
     */
    double   bound_cost;
    /* Points call->sendbuf/recvbuf at the buffers, honouring inplace. */
    void (*place)(bench_call_t *call, void *sendbuf, void *recvbuf);
    /* Writes this rank's input (and poisons the output) for a check. */
    void (*fill)(const bench_call_t *call);
    /* Counts wrong elements of this rank's output after fill + call. */
    size_t (*check)(const bench_call_t *call);
    /* The tutti call. */
    bench_call_fn run;
} bench_coll_t;

extern const bench_coll_t bench_allreduce;
extern const bench_coll_t bench_allgather;
extern const bench_coll_t bench_reduce_scatter;
extern const bench_coll_t bench_broadcast;
extern const bench_coll_t bench_reduce;
extern const bench_coll_t bench_alltoall;
extern const bench_coll_t bench_sendrecv;
extern const bench_coll_t bench_barrier_coll;
const bench_coll_t *bench_coll_find(const char *name);
/* "allreduce, allgather, ...": every collective, for messages. */
const char *bench_coll_names(void);

/* One measurement: one library, one placement, one size. */
typedef struct bench_result {
    int         done;   /* measured; otherwise `skip` says why not */
    const char *skip;
    double      time_us;
    double      algbw;  /* GB/s, 1e9 bytes */
    double      busbw;
    long long   wrong;  /* summed over ranks; -1 when not checked */
    double      p50_us; /* -I only, else NAN */
    double      p99_us;
    double      max_us;
} bench_result_t;

/* One size of a sweep: a table row and a JSON "rows" entry. */
typedef struct bench_row {
    size_t           size;  /* bytes, as the table prints it */
    size_t           count; /* elements, as the table prints it */
    tutti_datatype_t dtype;
    int              op;    /* a tutti_redop_t, or -1 for "none" */
    int              root;  /* -1 for collectives without a root */
    const char      *algo;  /* bench_algo_label() */
    bench_result_t   tutti[2]; /* [0] out of place, [1] in place */
    bench_result_t   peer[2];
    double           memcpy_single;  /* GB/s; NAN without --bound */
    double           memcpy_concurrent;
    double           bound_busbw;    /* GB/s */
} bench_row_t;

/*
 * report.c: the table on stdout and the JSON file, written by rank 0 only.
 * begin() prints the header; row() prints one row and keeps it for the
 * JSON; end() prints the footer and writes -J's file (0, or -1 with a
 * message on stderr).
 */
void bench_report_begin(const bench_opts_t *o, const bench_world_t *w,
                        const char *peer_name, const char *peer_version);
void bench_report_row(const bench_opts_t *o, const bench_world_t *w,
                      const bench_row_t *row);
int  bench_report_end(const bench_opts_t *o, const bench_world_t *w);
/* Mean busbw over measured rows, both placements (nccl-tests' average),
 * of tutti's results or the peer's; *wrong_p gets their #wrong sum. */
double bench_avg_busbw(const bench_row_t *rows, size_t nrows, int peer,
                       long long *wrong_p);

/* json.c: -J's document. Returns 0, or -1 after a message on stderr. */
typedef struct bench_json {
    const bench_opts_t  *o;
    const bench_world_t *w;
    const char          *start;        /* UTC, ISO 8601 */
    const char          *peer_name;    /* NULL without --peer */
    const char          *peer_version;
    const bench_row_t   *rows;
    size_t               nrows;
} bench_json_t;
int bench_json_write(const bench_json_t *j);

/*
 * bound.c: memcpy bandwidth (GB/s per rank) for `bytes`, copying src to
 * dst: rank 0 alone (single), and every rank at once (concurrent, the
 * slowest rank's). Collective over the tutti communicator; results are
 * cached per size, so each size is measured once per run.
 */
int bench_bound_measure(bench_world_t *w, void *dst, const void *src,
                        size_t bytes, double *single_p, double *concurrent_p);

/* runner.c: one rank's whole run; returns the process's exit code. */
int bench_rank_main(const bench_opts_t *o, bench_launch_t launch, int rank,
                    int nranks, const tutti_unique_id_t *id);
/* launch.c: starts the ranks as the options say; returns the exit code. */
int bench_launch(const bench_opts_t *o);
/* A barrier: a one-element tutti allreduce. 0 or bench_err(). */
int bench_barrier(bench_world_t *w);

/*
 * Typed element access and check values (data.c). Integer-valued data is
 * used everywhere so that float results are exact for sum, prod, min and
 * max at the rank counts we run (see data.c for the ranges).
 */
double bench_load(tutti_datatype_t dt, const void *buf, size_t i);
void   bench_store(tutti_datatype_t dt, void *buf, size_t i, double v);
/* The value `v` as the type stores it (integers wrap, floats round). */
double bench_as_type(tutti_datatype_t dt, double v);
int    bench_dtype_is_float(tutti_datatype_t dt);
/* Input of `rank` at index i for a reduction with op, or for a gather. */
double bench_value(tutti_datatype_t dt, tutti_redop_t op, int rank,
                   int nranks, size_t i);
double bench_gather_value(tutti_datatype_t dt, int rank, size_t i);
/* Expected reduction of every rank's bench_value at i, and its tolerance. */
double bench_expect(tutti_datatype_t dt, tutti_redop_t op, int nranks,
                    size_t i);
double bench_tolerance(tutti_datatype_t dt, tutti_redop_t op, int nranks);
/* Fills bytes with the poison pattern no check value ever equals. */
void   bench_poison(void *buf, size_t bytes);
int    bench_parse_dtype(const char *s, tutti_datatype_t *dt_p);
int    bench_parse_op(const char *s, tutti_redop_t *op_p);

/*
 * Another library on the same processes and buffers. init() runs on every
 * rank once the tutti communicator exists; supports() says whether the
 * collective exists there for the call's type, op, root, count and
 * placement (NULL reason = yes; every rank must give the same answer);
 * prepare() may build per-call state before the timed loop and release()
 * frees it. prepare() may also move call->recvbuf to where the library
 * leaves its result (MPI's in-place reduce-scatter: the buffer's start),
 * so that the collective's check reads the right elements.
 */
typedef struct bench_peer_ops {
    const char *name;
    int  (*init)(bench_world_t *world, void **ctx_p);
    void (*fini)(void *ctx);
    const char *(*supports)(bench_coll_id_t coll, const bench_call_t *call);
    /* Sets call->fn (and call->prep); 0 or bench_err(). */
    int  (*prepare)(bench_coll_id_t coll, bench_call_t *call);
    void (*release)(bench_call_t *call);
    const char *(*version)(void);
} bench_peer_ops_t;

const bench_peer_ops_t *bench_peer_mpi(void);  /* NULL: built without */
const bench_peer_ops_t *bench_peer_gloo(void); /* NULL: built without */

/*
 * The MPI out-of-band channel (peer_mpi.c; stubs when built without MPI):
 * init() starts MPI if nobody did and returns rank and size; bcast_id()
 * sends rank 0's id to every rank; finalize() ends MPI if init() began it.
 */
int  bench_mpi_init(int *rank_p, int *size_p);
int  bench_mpi_bcast_id(tutti_unique_id_t *id);
void bench_mpi_finalize(void);

#ifdef __cplusplus
}
#endif

#endif /* TUTTI_BENCH_H */
