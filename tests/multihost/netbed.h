/*
 * The multi-host test bed: "hosts" that are network namespaces on one
 * machine, joined by veth cables to one bridge (netbed.sh builds and
 * removes the network), and the ranks of a job started inside them with
 * `ip netns exec`, one process each, with the environment that makes them
 * behave as ranks of separate hosts.
 *
 * Life cycle. tt_netbed_up() first forks a janitor, a process that holds
 * the read end of a pipe whose write end stays in the test process, and
 * tears the bed down (netbed.sh down, then the scratch directory) when that
 * pipe reaches EOF: when tt_netbed_down() closes it, and just as well when
 * the test process crashes or is killed by Criterion's timeout. Ranks die
 * with the test process (PR_SET_PDEATHSIG). Beds whose creator and janitor
 * both died anyway are removed by the sweep (netbed.sh sweep) that
 * tt_netbed_up() runs first. Names carry the creator's pid, so beds of
 * concurrent test processes never meet.
 *
 * A rank of a job runs the job's program in host r / ranks_per_host, with
 * in its environment, besides the job's own variables:
 *   TUTTI_HOSTID         the host's namespace name (shm only within it)
 *   TUTTI_SOCKET_IFNAME  the host's interface (bootstrap traffic)
 *   TT_NETBED_RANK, TT_NETBED_NRANKS, TT_NETBED_HOST,
 *   TT_NETBED_RANKS_PER_HOST, TT_NETBED_NHOSTS
 *   TT_NETBED_ID_FILE    a path fresh for the job: rank 0 writes the
 *                        unique id's text there (it hosts the rendezvous
 *                        in its namespace: the test process, in the root
 *                        namespace, cannot be reached), the others read it
 *   TT_NETBED_EVENT_FD   a descriptor the rank writes event lines to
 *                        ("ready\n", "error TUTTI_ERR_TIMEOUT\n"); the
 *                        harness timestamps each line as it arrives
 *
 * Everything here runs in the test process; nothing is thread-safe.
 */
#ifndef TT_TEST_NETBED_H
#define TT_TEST_NETBED_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#define TT_NETBED_MAX_HOSTS 8
#define TT_NETBED_MAX_RANKS 16
#define TT_NETBED_MAX_ENV   16

/* Environment variable names shared with the rank program. */
#define TT_NETBED_ENV_RANK     "TT_NETBED_RANK"
#define TT_NETBED_ENV_NRANKS   "TT_NETBED_NRANKS"
#define TT_NETBED_ENV_HOST     "TT_NETBED_HOST"
#define TT_NETBED_ENV_NHOSTS   "TT_NETBED_NHOSTS"
#define TT_NETBED_ENV_RPH      "TT_NETBED_RANKS_PER_HOST"
#define TT_NETBED_ENV_ID_FILE  "TT_NETBED_ID_FILE"
#define TT_NETBED_ENV_EVENT_FD "TT_NETBED_EVENT_FD"

typedef struct tt_netbed {
    char  tag[40];        /* ttnb-<pid>-<seq>: netbed.sh's handle */
    int   nhosts;
    int   mbit;           /* tbf rate of every host link, 0: none */
    char  dir[PATH_MAX];  /* scratch directory (id files) */
    pid_t janitor;        /* -1 when none */
    int   janitor_fd;     /* closing it tears the bed down */
    int   njobs;          /* jobs spawned so far (names id files) */
} tt_netbed_t;

/* What tt_netbed_up() returns besides 0. */
#define TT_NETBED_UNAVAILABLE 77 /* not root, no iproute2, no netns */

/*
 * Builds a bed of nhosts hosts (1..TT_NETBED_MAX_HOSTS), each link limited
 * to mbit Mbit/s in both directions by tc tbf (0: no limit). Blocks for the
 * few iproute2 calls that takes. Returns 0, TT_NETBED_UNAVAILABLE with the
 * reason in why (the test should skip), or -1 with the reason in why.
 * On failure nothing is left behind.
 */
int tt_netbed_up(tt_netbed_t *bed, int nhosts, int mbit, char *why,
                 size_t whylen);

/* Tears the bed down and waits (bounded) until it is gone. Idempotent; a
 * bed that was never brought up (janitor -1) is left alone. */
void tt_netbed_down(tt_netbed_t *bed);

/* Plugs (up = 1) or pulls (up = 0) host h's cable at the switch. Returns 0,
 * or -1 with netbed.sh's message on stderr. */
int tt_netbed_link(const tt_netbed_t *bed, int h, int up);

/* Host h's namespace name and interface name. */
void tt_netbed_ns(const tt_netbed_t *bed, int h, char *buf, size_t len);
void tt_netbed_ifname(int h, char *buf, size_t len);

/* One rank of a job, as the harness sees it. */
typedef struct tt_netbed_rank {
    pid_t    pid;       /* -1 when not started */
    int      host;
    int      evfd;      /* read end of its event pipe, -1 after EOF */
    char     part[128]; /* an event line not complete yet */
    size_t   partlen;
    char     event[128]; /* the last complete event line, no newline */
    int      nevents;
    uint64_t event_ms;  /* when it arrived (tt_test_now_ms clock) */
    int      exited;    /* 1 once reaped; status is then valid */
    int      status;    /* wait status */
    int      killed;    /* 1: the harness had to kill it */
    uint64_t exit_ms;   /* when it was reaped */
} tt_netbed_rank_t;

/*
 * A job: nranks copies of argv[0] (an absolute path), rank r on host
 * r / ranks_per_host. env holds extra NAME=value strings for every rank
 * (NULL-terminated, at most TT_NETBED_MAX_ENV). Start from
 * TT_NETBED_JOB_INIT and set the fields; ranks[] is filled by the calls.
 */
typedef struct tt_netbed_job {
    int                nranks;
    int                ranks_per_host;
    const char *const *argv;
    const char        *env[TT_NETBED_MAX_ENV + 1];
    char               id_file[PATH_MAX + 16];
    tt_netbed_rank_t   ranks[TT_NETBED_MAX_RANKS];
} tt_netbed_job_t;

#define TT_NETBED_JOB_INIT {.nranks = 0, .ranks_per_host = 1}

/*
 * Starts every rank of the job. Returns 0; or -1 (reported on stderr)
 * when the layout does not fit the bed or a fork failed, with any rank
 * already started killed and reaped.
 */
int tt_netbed_spawn(tt_netbed_t *bed, tt_netbed_job_t *job);

/*
 * Waits until every rank has sent an event line starting with `prefix`
 * or has exited, at most timeout_ms. Returns the number of ranks that sent
 * one (so nranks means all did); ranks that exited meanwhile are reaped.
 */
int tt_netbed_wait_event(tt_netbed_job_t *job, const char *prefix,
                         int timeout_ms);

/*
 * Waits until every rank has exited, at most timeout_ms, then kills and
 * reaps the rest (killed = 1). Prints one line per rank that did not exit
 * 0 to stderr. Returns 0 when every rank exited 0, else 1. Also removes
 * the job's id file.
 */
int tt_netbed_wait(tt_netbed_job_t *job, int timeout_ms);

#endif /* TT_TEST_NETBED_H */
