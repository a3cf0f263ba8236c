/*
 * How the ranks start and how the unique id reaches them. Three modes:
 *
 * fork (default): this process forks -n children, then calls
 *   tutti_get_unique_id() (so it hosts the rendezvous), sends the id down
 *   one pipe per child, and waits.
 *   When a rank dies or fails, the others get a grace second to report the
 *   error they saw, then SIGTERM, then SIGKILL: nothing hangs. The parent
 *   names each rank that died and how. Children also die with the parent
 *   (PR_SET_PDEATHSIG), so killing the launcher leaves no orphans.
 * pmi: started by mpiexec or another launcher that sets PMI_RANK and
 *   PMI_SIZE (MPICH's hydra, slurm) or OMPI_COMM_WORLD_RANK and
 *   OMPI_COMM_WORLD_SIZE (Open MPI's mpiexec): one rank per process.
 *   Rank 0 creates the id; it travels by MPI_Bcast when built with MPI,
 *   else through --id FILE.
 * explicit: --rank R --nranks N --id FILE, for any other launcher.
 *
 * The id file: rank 0 writes the id's text to FILE.tmp.PID and renames it,
 * so a reader sees all of it or nothing; the others poll until it appears
 * (up to --timeout). Rank 0 unlinks FILE when its run ends: init could not
 * have returned unless every rank had read it. A FILE left by a crashed run
 * points at a dead rendezvous: the ranks that read it fail with a timeout.
 *
 * --peer mpi in fork mode cannot work (a forked child cannot MPI_Init
 * without a launcher), so the bench re-runs itself as
 * `mpiexec [ARGS] -n N <this binary> <same arguments>`; TUTTI_BENCH_REEXEC
 * marks the second run and TUTTI_BENCH_MPIEXEC names another mpiexec. The
 * build picks the default mpiexec and its ARGS (TUTTI_BENCH_MPIEXEC_DEFAULT,
 * TUTTI_BENCH_MPIEXEC_ARGS, space-separated): plain `mpiexec` for the
 * MPICH build, Open MPI's with its flags for tutti-bench-ompi.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#ifndef TUTTI_BENCH_MPIEXEC_DEFAULT
#define TUTTI_BENCH_MPIEXEC_DEFAULT "mpiexec"
#endif
#ifndef TUTTI_BENCH_MPIEXEC_ARGS
#define TUTTI_BENCH_MPIEXEC_ARGS ""
#endif

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* Reads exactly `len` bytes; 0, or -1 on EOF or error. */
static int read_all(int fd, void *buf, size_t len)
{
    char *p = buf;

    while (len > 0) {
        ssize_t n = read(fd, p, len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/*
 * Child side of the fork launcher. Never returns. The id arrives through
 * the pipe `fd`; EOF means the launcher could not make one and has said
 * why, so the child leaves quietly.
 */
static void fork_child(const bench_opts_t *o, int rank, int nranks, int fd,
                       pid_t parent)
{
    tutti_unique_id_t id;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent || read_all(fd, &id, sizeof(id)) != 0) {
        _exit(BENCH_EXIT_ERROR);
    }
    close(fd);
    exit(bench_rank_main(o, BENCH_LAUNCH_FORK, rank, nranks, &id));
}

/* Sends sig to every rank still alive. */
static void signal_ranks(const pid_t *pids, int n, int sig)
{
    int r;

    for (r = 0; r < n; r++) {
        if (pids[r] > 0) {
            kill(pids[r], sig);
        }
    }
}

/* Reports one rank's end; returns its contribution to the exit code. */
static int reap(int rank, pid_t pid, int status, int killed_by_us)
{
    if (WIFEXITED(status)) {
        int code = WEXITSTATUS(status);

        if (code == BENCH_EXIT_OK || code == BENCH_EXIT_WRONG) {
            return code;
        }
        fprintf(stderr, "tutti-bench: rank %d (pid %d) exited with "
                        "status %d\n", rank, (int)pid, code);
        return BENCH_EXIT_ERROR;
    }
    if (WIFSIGNALED(status) && !killed_by_us) {
        fprintf(stderr, "tutti-bench: rank %d (pid %d) was killed by "
                        "signal %d (%s)%s\n",
                rank, (int)pid, WTERMSIG(status),
                strsignal(WTERMSIG(status)),
                WCOREDUMP(status) ? ", core dumped" : "");
    } else if (WIFSIGNALED(status)) {
        fprintf(stderr, "tutti-bench: rank %d (pid %d) stopped by the "
                        "launcher after another rank failed\n",
                rank, (int)pid);
    }
    return BENCH_EXIT_ERROR;
}

/*
 * Waits for every child. After the first failure: 1 s of grace, then
 * SIGTERM, then 1 s later SIGKILL to whoever is left.
 */
static int wait_ranks(pid_t *pids, int n)
{
    int    alive = n, ret = BENCH_EXIT_OK, stage = 0, status, r;
    double failed_at = 0;

    while (alive > 0) {
        pid_t pid = waitpid(-1, &status, failed_at > 0 ? WNOHANG : 0);

        if (pid < 0 && errno == EINTR) {
            continue;
        }
        if (pid < 0) {
            perror("tutti-bench: waitpid");
            return BENCH_EXIT_ERROR;
        }
        if (pid == 0) { /* a failure happened; nobody else ended yet */
            double idle = now_s() - failed_at;

            if (stage == 0 && idle > 1.0) {
                signal_ranks(pids, n, SIGTERM);
                stage = 1;
            } else if (stage == 1 && idle > 2.0) {
                signal_ranks(pids, n, SIGKILL);
                stage = 2;
            }
            sleep_ms(10);
            continue;
        }
        for (r = 0; r < n && pids[r] != pid; r++) {
        }
        if (r == n) {
            continue; /* not one of ours */
        }
        pids[r] = -pid;
        alive--;
        status = reap(r, pid, status, stage > 0);
        if (status == BENCH_EXIT_ERROR && failed_at == 0) {
            failed_at = now_s();
        }
        if (status == BENCH_EXIT_ERROR) {
            ret = BENCH_EXIT_ERROR;
        } else if (status == BENCH_EXIT_WRONG && ret == BENCH_EXIT_OK) {
            ret = BENCH_EXIT_WRONG;
        }
    }
    return ret;
}

/* Forks n children, each waiting on its own pipe; fills pids and wfds. */
static int fork_ranks(const bench_opts_t *o, int n, pid_t *pids, int *wfds)
{
    pid_t self = getpid();
    int   r, k, p[2];

    fflush(stdout);
    fflush(stderr);
    for (r = 0; r < n; r++) {
        if (pipe(p) != 0) {
            fprintf(stderr, "tutti-bench: pipe: %s\n", strerror(errno));
            return -1;
        }
        pids[r] = fork();
        if (pids[r] == 0) {
            for (k = 0; k < r; k++) {
                close(wfds[k]); /* so EOF reaches the others if we die */
            }
            close(p[1]);
            fork_child(o, r, n, p[0], self);
        }
        close(p[0]);
        wfds[r] = p[1];
        if (pids[r] < 0) {
            fprintf(stderr, "tutti-bench: fork of rank %d: %s\n", r,
                    strerror(errno));
            close(p[1]);
            return -1;
        }
    }
    return 0;
}

/*
 * The ranks are forked before the id exists and get it through a pipe:
 * tutti_get_unique_id() starts the rendezvous thread, and forking a
 * process with a second thread running could copy a lock that thread
 * holds (and its memory, which leak checkers then report in every rank).
 */
static int launch_fork(const bench_opts_t *o)
{
    int               n = o->nranks ? o->nranks : 2, r, ret;
    int              *wfds = calloc((size_t)n, sizeof(int));
    pid_t            *pids = calloc((size_t)n, sizeof(pid_t));
    tutti_unique_id_t id;
    tutti_result_t    rc;

    if (pids == NULL || wfds == NULL) {
        fprintf(stderr, "tutti-bench: out of memory for %d ranks\n", n);
        return BENCH_EXIT_ERROR;
    }
    if (fork_ranks(o, n, pids, wfds) != 0) {
        for (r = 0; r < n && pids[r] > 0; r++) {
            kill(pids[r], SIGKILL);
            close(wfds[r]);
        }
        while (wait(NULL) > 0) {
        }
        free(pids);
        free(wfds);
        return BENCH_EXIT_ERROR;
    }
    signal(SIGPIPE, SIG_IGN); /* a dead child's pipe must not kill us */
    rc = tutti_get_unique_id(&id);
    if (rc != TUTTI_SUCCESS) {
        bench_tutti_err(rc, "tutti_get_unique_id");
        fprintf(stderr, "tutti-bench: %s\n", bench_errbuf);
    }
    for (r = 0; r < n; r++) {
        if (rc == TUTTI_SUCCESS &&
            write(wfds[r], &id, sizeof(id)) != (ssize_t)sizeof(id)) {
            fprintf(stderr, "tutti-bench: sending the id to rank %d: %s\n",
                    r, strerror(errno));
        }
        close(wfds[r]);
    }
    ret = wait_ranks(pids, n);
    free(pids);
    free(wfds);
    return rc == TUTTI_SUCCESS ? ret : BENCH_EXIT_ERROR;
}

static int write_id_file(const char *path, const tutti_unique_id_t *id)
{
    char  text[TUTTI_UNIQUE_ID_TEXT_LEN], tmp[PATH_MAX];
    FILE *f;

    if (tutti_unique_id_to_text(id, text) != TUTTI_SUCCESS) {
        return bench_err("tutti_unique_id_to_text: %s", tutti_last_error());
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    f = fopen(tmp, "w");
    if (f == NULL) {
        return bench_err("%s: %s", tmp, strerror(errno));
    }
    fprintf(f, "%s\n", text);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return bench_err("%s: %s", path, strerror(errno));
    }
    return 0;
}

static int read_id_file(const char *path, int timeout_ms,
                        tutti_unique_id_t *id)
{
    double deadline = now_s() + (timeout_ms > 0 ? timeout_ms / 1e3 : 1e9);
    char   text[TUTTI_UNIQUE_ID_TEXT_LEN + 2];

    for (;;) {
        FILE *f = fopen(path, "r");

        if (f != NULL) {
            char *ok = fgets(text, sizeof(text), f);

            fclose(f);
            text[strcspn(text, "\r\n")] = '\0';
            if (ok != NULL && tutti_unique_id_from_text(text, id) ==
                                  TUTTI_SUCCESS) {
                return 0;
            }
        }
        if (now_s() > deadline) {
            return bench_err("no valid id in %s after %d ms", path,
                             timeout_ms);
        }
        sleep_ms(10);
    }
}

/* Gets the id to every rank of a pmi or explicit job, then runs the rank. */
static int launch_one(const bench_opts_t *o, bench_launch_t mode, int rank,
                      int nranks, int use_mpi)
{
    tutti_unique_id_t id;
    tutti_result_t    rc;
    int               ret;

    memset(&id, 0, sizeof(id));
    if (rank == 0) {
        rc = tutti_get_unique_id(&id);
        if (rc != TUTTI_SUCCESS) {
            bench_tutti_err(rc, "tutti_get_unique_id");
            goto err;
        }
    }
    if (use_mpi && o->id_file == NULL) {
        if (bench_mpi_bcast_id(&id) != 0) {
            goto err;
        }
    } else if (rank == 0 ? write_id_file(o->id_file, &id)
                         : read_id_file(o->id_file, o->timeout_ms, &id)) {
        goto err;
    }
    ret = bench_rank_main(o, mode, rank, nranks, &id);
    if (rank == 0 && o->id_file != NULL) {
        unlink(o->id_file);
    }
    return ret;
err:
    fprintf(stderr, "tutti-bench: rank %d: %s\n", rank, bench_errbuf);
    return BENCH_EXIT_ERROR;
}

static int reexec_mpiexec(const bench_opts_t *o, int nranks)
{
    const char *mpiexec = getenv("TUTTI_BENCH_MPIEXEC");
    char        self[PATH_MAX], n[16], args[] = TUTTI_BENCH_MPIEXEC_ARGS;
    char      **argv = calloc((size_t)o->argc + sizeof(args) / 2 + 8,
                              sizeof(char *));
    ssize_t     len  = readlink("/proc/self/exe", self, sizeof(self) - 1);
    char       *tok, *save = NULL;
    int         a, k = 0;

    if (argv == NULL || len <= 0) {
        fprintf(stderr, "tutti-bench: cannot find my own binary for "
                        "mpiexec\n");
        free(argv);
        return BENCH_EXIT_ERROR;
    }
    self[len] = '\0';
    mpiexec   = mpiexec ? mpiexec : TUTTI_BENCH_MPIEXEC_DEFAULT;
    snprintf(n, sizeof(n), "%d", nranks);
    argv[k++] = (char *)mpiexec;
    for (tok = strtok_r(args, " ", &save); tok != NULL;
         tok = strtok_r(NULL, " ", &save)) {
        argv[k++] = tok;
    }
    argv[k++] = "-n";
    argv[k++] = n;
    argv[k++] = self;
    for (a = 1; a < o->argc; a++) {
        argv[k++] = o->argv[a];
    }
    argv[k] = NULL;
    setenv("TUTTI_BENCH_REEXEC", "1", 1);
    fflush(stdout);
    execvp(mpiexec, argv);
    fprintf(stderr, "tutti-bench: --peer mpi needs mpiexec: %s: %s\n",
            mpiexec, strerror(errno));
    free(argv);
    return BENCH_EXIT_ERROR;
}

/*
 * PMI_RANK/PMI_SIZE, as MPICH's hydra (and slurm's PMI) set them, else
 * OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE, as Open MPI's mpiexec does.
 */
static int pmi_env(int *rank_p, int *size_p)
{
    const char *r = getenv("PMI_RANK"), *s = getenv("PMI_SIZE");

    if (r == NULL || s == NULL) {
        r = getenv("OMPI_COMM_WORLD_RANK");
        s = getenv("OMPI_COMM_WORLD_SIZE");
    }
    if (r == NULL || s == NULL) {
        return 0;
    }
    *rank_p = atoi(r);
    *size_p = atoi(s);
    return *size_p > 0 && *rank_p >= 0 && *rank_p < *size_p;
}

int bench_launch(const bench_opts_t *o)
{
    int rank, size, use_mpi, ret;

    if (o->rank >= 0) {
        use_mpi = o->peer == BENCH_PEER_MPI;
        if (use_mpi && bench_mpi_init(&rank, &size) != 0) {
            fprintf(stderr, "tutti-bench: %s\n", bench_errbuf);
            return BENCH_EXIT_ERROR;
        }
        ret = launch_one(o, BENCH_LAUNCH_EXPLICIT, o->rank, o->nranks,
                         use_mpi);
    } else if (pmi_env(&rank, &size)) {
        if (o->nranks && o->nranks != size) {
            fprintf(stderr, "tutti-bench: error: -n %d, but the launcher "
                            "started %d ranks\n", o->nranks, size);
            return BENCH_EXIT_USAGE;
        }
        use_mpi = bench_peer_mpi() != NULL &&
                  (o->peer == BENCH_PEER_MPI || o->id_file == NULL);
        if (!use_mpi && o->id_file == NULL) {
            fprintf(stderr, "tutti-bench: error: under a launcher, this "
                            "build (no MPI) needs --id FILE\n");
            return BENCH_EXIT_USAGE;
        }
        if (use_mpi && bench_mpi_init(&rank, &size) != 0) {
            fprintf(stderr, "tutti-bench: %s\n", bench_errbuf);
            return BENCH_EXIT_ERROR;
        }
        ret = launch_one(o, BENCH_LAUNCH_PMI, rank, size, use_mpi);
    } else if (o->peer == BENCH_PEER_MPI) {
        if (getenv("TUTTI_BENCH_REEXEC") != NULL) {
            fprintf(stderr, "tutti-bench: re-run under mpiexec, but no "
                            "PMI_RANK/PMI_SIZE (nor OMPI_COMM_WORLD_*): is "
                            "mpiexec the MPI this build uses?\n");
            return BENCH_EXIT_ERROR;
        }
        return reexec_mpiexec(o, o->nranks ? o->nranks : 2);
    } else {
        return launch_fork(o);
    }
    bench_mpi_finalize();
    return ret;
}
