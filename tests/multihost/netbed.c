/*
 * The multi-host test bed (netbed.h): runs netbed.sh for the network, owns
 * the janitor that guarantees the teardown, and starts, watches and reaps
 * the ranks of jobs inside the namespaces. Every wait here is bounded.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netbed.h"
#include "spawn.h" /* tt_test_now_ms, tt_test_sleep_ms */

#ifndef TT_NETBED_SCRIPT
#error "meson defines TT_NETBED_SCRIPT, the path of netbed.sh"
#endif

/* Bounds on netbed.sh runs, and on the janitor's teardown. */
#define TT_NETBED_SCRIPT_MS 60000
#define TT_NETBED_DOWN_MS   60000
/* The descriptor event lines go to, in every rank. */
#define TT_NETBED_EVENT_FD  3
/* Poll period of the waits: events are timestamped to about this. */
#define TT_NETBED_POLL_MS   10

static int tt_netbed_seq = -1;

/* ---------------------------------------------------------------------- */
/* netbed.sh                                                              */
/* ---------------------------------------------------------------------- */

/*
 * Runs `sh netbed.sh args...` (NULL-terminated), its output (stdout and
 * stderr, truncated) into out. Returns its exit status, or -1 when it could
 * not run or was killed after TT_NETBED_SCRIPT_MS.
 */
static int tt_netbed_sh(char *out, size_t outlen, const char *arg, ...)
{
    const char *argv[10] = {"sh", TT_NETBED_SCRIPT};
    int         fds[2], status, n = 2;
    size_t      used = 0;
    uint64_t    deadline = tt_test_now_ms() + TT_NETBED_SCRIPT_MS;
    pid_t       pid;
    va_list     ap;

    va_start(ap, arg);
    for (; arg != NULL && n < 9; arg = va_arg(ap, const char *)) {
        argv[n++] = arg;
    }
    va_end(ap);
    argv[n] = NULL;
    out[0]  = '\0';
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(out, outlen, "pipe: %s", strerror(errno));
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        snprintf(out, outlen, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        execv("/bin/sh", (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    for (;;) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        char          sink[256];
        ssize_t       got;
        int64_t       left = (int64_t)(deadline - tt_test_now_ms());

        if (left <= 0) {
            kill(pid, SIGKILL);
            break;
        }
        if (poll(&p, 1, (int)left) < 0 && errno != EINTR) {
            break;
        }
        if (used + 1 < outlen) {
            got = read(fds[0], out + used, outlen - used - 1);
        } else {
            got = read(fds[0], sink, sizeof(sink));
        }
        if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN)) {
            break;
        }
        if (got > 0 && used + 1 < outlen) {
            used += (size_t)got;
            out[used] = '\0';
        }
    }
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    /* one line for messages: the script's last newline is noise */
    while (used > 0 && out[used - 1] == '\n') {
        out[--used] = '\0';
    }
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    snprintf(out + used, outlen - used, "%snetbed.sh killed (signal %d)",
             used > 0 ? "; " : "", WTERMSIG(status));
    return -1;
}

/* ---------------------------------------------------------------------- */
/* the janitor                                                            */
/* ---------------------------------------------------------------------- */

/* Removes the files of the scratch directory (one level), then it. */
static void tt_netbed_rmdir(const char *dir)
{
    DIR           *d = opendir(dir);
    struct dirent *e;
    char           path[PATH_MAX + 256];

    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
    rmdir(dir);
}

/*
 * The janitor's life: in a session of its own (a signal to the test's
 * process group must not stop the cleanup), with no descriptor but the
 * pipe and stderr, it waits for EOF on the pipe, then tears the bed down.
 */
static void tt_netbed_janitor(const tt_netbed_t *bed, int rfd)
{
    char buf[512];
    int  fd, devnull;

    setsid();
    devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
        dup2(devnull, 0);
        dup2(devnull, 1);
    }
    for (fd = 3; fd < 1024; fd++) {
        if (fd != rfd) {
            close(fd);
        }
    }
    for (;;) {
        ssize_t got = read(rfd, buf, sizeof(buf));

        if (got == 0 || (got < 0 && errno != EINTR)) {
            break;
        }
    }
    if (tt_netbed_sh(buf, sizeof(buf), "down", bed->tag, NULL) != 0) {
        fprintf(stderr, "netbed: janitor: down %s: %s\n", bed->tag, buf);
    }
    tt_netbed_rmdir(bed->dir);
    _exit(0);
}

static int tt_netbed_janitor_start(tt_netbed_t *bed, char *why,
                                   size_t whylen)
{
    int   fds[2];
    pid_t pid;

    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(why, whylen, "pipe: %s", strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        snprintf(why, whylen, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[1]);
        tt_netbed_janitor(bed, fds[0]);
    }
    close(fds[0]);
    bed->janitor    = pid;
    bed->janitor_fd = fds[1];
    return 0;
}

/* ---------------------------------------------------------------------- */
/* the bed                                                                */
/* ---------------------------------------------------------------------- */

void tt_netbed_ns(const tt_netbed_t *bed, int h, char *buf, size_t len)
{
    snprintf(buf, len, "%s-h%d", bed->tag, h);
}

void tt_netbed_ifname(int h, char *buf, size_t len)
{
    snprintf(buf, len, "veth%d", h);
}

int tt_netbed_up(tt_netbed_t *bed, int nhosts, int mbit, char *why,
                 size_t whylen)
{
    char k[16], rate[16], out[1024];
    int  rc;

    memset(bed, 0, sizeof(*bed));
    bed->janitor    = -1;
    bed->janitor_fd = -1;
    if (geteuid() != 0) {
        snprintf(why, whylen, "the multi-host bed needs root (network "
                 "namespaces); running as uid %d", (int)geteuid());
        return TT_NETBED_UNAVAILABLE;
    }
    if (nhosts < 1 || nhosts > TT_NETBED_MAX_HOSTS) {
        snprintf(why, whylen, "%d hosts: the bed has 1 to %d", nhosts,
                 TT_NETBED_MAX_HOSTS);
        return -1;
    }
    /* the subnet's third octet is seq % 256: differs between processes */
    if (tt_netbed_seq < 0) {
        tt_netbed_seq = (int)(getpid() % 256);
    }
    snprintf(bed->tag, sizeof(bed->tag), "ttnb-%d-%d", (int)getpid(),
             tt_netbed_seq++);
    bed->nhosts = nhosts;
    bed->mbit   = mbit;

    /* beds left by crashed runs first: their names would not collide, but
     * their processes and links would load the machine */
    rc = tt_netbed_sh(out, sizeof(out), "sweep", NULL);
    if (rc == TT_NETBED_UNAVAILABLE) {
        snprintf(why, whylen, "%s", out);
        return TT_NETBED_UNAVAILABLE;
    }
    if (out[0] != '\0') {
        fprintf(stderr, "%s\n", out);
    }
    snprintf(bed->dir, sizeof(bed->dir), "/tmp/%s.XXXXXX", bed->tag);
    if (mkdtemp(bed->dir) == NULL) {
        snprintf(why, whylen, "mkdtemp %s: %s", bed->dir, strerror(errno));
        return -1;
    }
    if (tt_netbed_janitor_start(bed, why, whylen) != 0) {
        rmdir(bed->dir);
        return -1;
    }
    snprintf(k, sizeof(k), "%d", nhosts);
    snprintf(rate, sizeof(rate), "%d", mbit);
    rc = tt_netbed_sh(out, sizeof(out), "up", bed->tag, k, rate, NULL);
    if (rc != 0) {
        snprintf(why, whylen, "%s", out[0] ? out : "netbed.sh up failed");
        tt_netbed_down(bed);
        return rc == TT_NETBED_UNAVAILABLE ? TT_NETBED_UNAVAILABLE : -1;
    }
    return 0;
}

void tt_netbed_down(tt_netbed_t *bed)
{
    uint64_t deadline = tt_test_now_ms() + TT_NETBED_DOWN_MS;
    int      status;

    if (bed->janitor <= 0) {
        return;
    }
    close(bed->janitor_fd);
    bed->janitor_fd = -1;
    for (;;) {
        pid_t got = waitpid(bed->janitor, &status, WNOHANG);

        if (got == bed->janitor || (got < 0 && errno != EINTR)) {
            break;
        }
        if (tt_test_now_ms() > deadline) {
            char out[512];

            /* a stuck janitor: do its work here */
            fprintf(stderr, "netbed: janitor %d of %s stuck, killed\n",
                    (int)bed->janitor, bed->tag);
            kill(bed->janitor, SIGKILL);
            waitpid(bed->janitor, &status, 0);
            tt_netbed_sh(out, sizeof(out), "down", bed->tag, NULL);
            tt_netbed_rmdir(bed->dir);
            break;
        }
        tt_test_sleep_ms(TT_NETBED_POLL_MS);
    }
    bed->janitor = -1;
}

int tt_netbed_link(const tt_netbed_t *bed, int h, int up)
{
    char host[16], out[512];

    snprintf(host, sizeof(host), "%d", h);
    if (tt_netbed_sh(out, sizeof(out), "link", bed->tag, host,
                     up ? "up" : "down", NULL) != 0) {
        fprintf(stderr, "netbed: link %s host %d %s: %s\n", bed->tag, h,
                up ? "up" : "down", out);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* ranks                                                                  */
/* ---------------------------------------------------------------------- */

/* iproute2's ip, wherever this distribution keeps it. */
static const char *tt_netbed_ip(void)
{
    static const char *const paths[] = {"/usr/sbin/ip", "/sbin/ip",
                                        "/usr/bin/ip", "/bin/ip"};
    size_t                   i;

    for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        if (access(paths[i], X_OK) == 0) {
            return paths[i];
        }
    }
    return "ip";
}

static void tt_netbed_setenv_int(const char *name, int v)
{
    char buf[16];

    snprintf(buf, sizeof(buf), "%d", v);
    setenv(name, buf, 1);
}

/*
 * The child side of one rank: never returns. Sets the rank's environment,
 * moves its event pipe to TT_NETBED_EVENT_FD and becomes
 * `ip netns exec <ns> argv...` (which enters the namespace, mounts its
 * own /sys, so that libraries listing /sys/class/net see the host's
 * interfaces, and executes the program in place, keeping the pid).
 */
static void tt_netbed_child(const tt_netbed_t *bed,
                            const tt_netbed_job_t *job, int r, int evfd,
                            pid_t parent)
{
    const char *argv[64];
    char        ns[64], ifname[16];
    int         host = r / job->ranks_per_host, i, n = 0;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
        _exit(127);
    }
    if (evfd == TT_NETBED_EVENT_FD) {
        fcntl(evfd, F_SETFD, 0);
    } else if (dup2(evfd, TT_NETBED_EVENT_FD) < 0) {
        _exit(127);
    }
    tt_netbed_ns(bed, host, ns, sizeof(ns));
    tt_netbed_ifname(host, ifname, sizeof(ifname));
    setenv("TUTTI_HOSTID", ns, 1);
    setenv("TUTTI_SOCKET_IFNAME", ifname, 1);
    tt_netbed_setenv_int(TT_NETBED_ENV_RANK, r);
    tt_netbed_setenv_int(TT_NETBED_ENV_NRANKS, job->nranks);
    tt_netbed_setenv_int(TT_NETBED_ENV_HOST, host);
    tt_netbed_setenv_int(TT_NETBED_ENV_NHOSTS, bed->nhosts);
    tt_netbed_setenv_int(TT_NETBED_ENV_RPH, job->ranks_per_host);
    tt_netbed_setenv_int(TT_NETBED_ENV_EVENT_FD, TT_NETBED_EVENT_FD);
    setenv(TT_NETBED_ENV_ID_FILE, job->id_file, 1);
    for (i = 0; i < TT_NETBED_MAX_ENV && job->env[i] != NULL; i++) {
        putenv((char *)job->env[i]);
    }
    argv[n++] = "ip";
    argv[n++] = "netns";
    argv[n++] = "exec";
    argv[n++] = ns;
    for (i = 0; job->argv[i] != NULL && n < 63; i++) {
        argv[n++] = job->argv[i];
    }
    argv[n] = NULL;
    execv(tt_netbed_ip(), (char *const *)argv);
    fprintf(stderr, "netbed: rank %d: exec %s: %s\n", r, tt_netbed_ip(),
            strerror(errno));
    _exit(127);
}

static void tt_netbed_kill_all(tt_netbed_job_t *job);

int tt_netbed_spawn(tt_netbed_t *bed, tt_netbed_job_t *job)
{
    pid_t parent = getpid();
    int   r;

    for (r = 0; r < TT_NETBED_MAX_RANKS; r++) {
        job->ranks[r] = (tt_netbed_rank_t){.pid = -1, .evfd = -1};
    }
    if (job->nranks < 1 || job->nranks > TT_NETBED_MAX_RANKS ||
        job->ranks_per_host < 1 ||
        (job->nranks + job->ranks_per_host - 1) / job->ranks_per_host >
            bed->nhosts) {
        fprintf(stderr, "netbed: %d ranks at %d per host do not fit %d "
                "hosts\n", job->nranks, job->ranks_per_host, bed->nhosts);
        return -1;
    }
    snprintf(job->id_file, sizeof(job->id_file), "%s/id.%d", bed->dir,
             bed->njobs++);
    unlink(job->id_file);
    fflush(NULL);
    for (r = 0; r < job->nranks; r++) {
        tt_netbed_rank_t *rk = &job->ranks[r];
        int               fds[2];

        rk->host = r / job->ranks_per_host;
        if (pipe2(fds, O_CLOEXEC) != 0) {
            fprintf(stderr, "netbed: pipe: %s\n", strerror(errno));
            tt_netbed_kill_all(job);
            return -1;
        }
        rk->pid = fork();
        if (rk->pid < 0) {
            fprintf(stderr, "netbed: fork: %s\n", strerror(errno));
            close(fds[0]);
            close(fds[1]);
            tt_netbed_kill_all(job);
            return -1;
        }
        if (rk->pid == 0) {
            close(fds[0]);
            tt_netbed_child(bed, job, r, fds[1], parent);
        }
        close(fds[1]);
        rk->evfd = fds[0];
        fcntl(rk->evfd, F_SETFL, O_NONBLOCK);
    }
    return 0;
}

/* Appends what a rank wrote; each complete line becomes its last event. */
static void tt_netbed_read_events(tt_netbed_rank_t *rk)
{
    char    buf[256];
    ssize_t got, i;

    for (;;) {
        got = read(rk->evfd, buf, sizeof(buf));
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0 && errno == EAGAIN) {
            return;
        }
        if (got <= 0) {
            close(rk->evfd);
            rk->evfd = -1;
            return;
        }
        for (i = 0; i < got; i++) {
            if (buf[i] == '\n') {
                rk->part[rk->partlen] = '\0';
                memcpy(rk->event, rk->part, rk->partlen + 1);
                rk->partlen  = 0;
                rk->event_ms = tt_test_now_ms();
                rk->nevents++;
            } else if (rk->partlen + 1 < sizeof(rk->part)) {
                rk->part[rk->partlen++] = buf[i];
            }
        }
    }
}

/* Reaps the ranks that exited; returns how many are still running. */
static int tt_netbed_reap(tt_netbed_job_t *job)
{
    int r, running = 0;

    for (r = 0; r < job->nranks; r++) {
        tt_netbed_rank_t *rk = &job->ranks[r];
        pid_t             got;

        if (rk->pid <= 0 || rk->exited) {
            continue;
        }
        got = waitpid(rk->pid, &rk->status, WNOHANG);
        if (got == rk->pid) {
            rk->exited  = 1;
            rk->exit_ms = tt_test_now_ms();
        } else if (got < 0 && errno == ECHILD) {
            rk->exited = 1;
            rk->status = 0x7f00; /* not ours any more: report it failed */
        } else {
            running++;
        }
    }
    return running;
}

/* One round: waits up to TT_NETBED_POLL_MS for event lines, reads them,
 * reaps; returns how many ranks are still running. */
static int tt_netbed_pump(tt_netbed_job_t *job)
{
    struct pollfd p[TT_NETBED_MAX_RANKS];
    int           map[TT_NETBED_MAX_RANKS], n = 0, r, i;

    for (r = 0; r < job->nranks; r++) {
        if (job->ranks[r].evfd >= 0) {
            p[n]     = (struct pollfd){.fd = job->ranks[r].evfd,
                                       .events = POLLIN};
            map[n++] = r;
        }
    }
    if (n > 0 && poll(p, (nfds_t)n, TT_NETBED_POLL_MS) > 0) {
        for (i = 0; i < n; i++) {
            if (p[i].revents != 0) {
                tt_netbed_read_events(&job->ranks[map[i]]);
            }
        }
    } else if (n == 0) {
        tt_test_sleep_ms(TT_NETBED_POLL_MS);
    }
    return tt_netbed_reap(job);
}

int tt_netbed_wait_event(tt_netbed_job_t *job, const char *prefix,
                         int timeout_ms)
{
    uint64_t deadline = tt_test_now_ms() + (uint64_t)timeout_ms;
    size_t   plen     = strlen(prefix);
    int      r, seen;

    for (;;) {
        tt_netbed_pump(job);
        seen = 0;
        for (r = 0; r < job->nranks; r++) {
            const tt_netbed_rank_t *rk = &job->ranks[r];

            if (rk->nevents > 0 && strncmp(rk->event, prefix, plen) == 0) {
                seen++;
            } else if (!rk->exited) {
                break;
            }
        }
        if (r == job->nranks || tt_test_now_ms() > deadline) {
            return seen;
        }
    }
}

static void tt_netbed_kill_all(tt_netbed_job_t *job)
{
    int r;

    for (r = 0; r < TT_NETBED_MAX_RANKS; r++) {
        tt_netbed_rank_t *rk = &job->ranks[r];

        if (rk->pid > 0 && !rk->exited) {
            kill(rk->pid, SIGKILL);
            while (waitpid(rk->pid, &rk->status, 0) < 0 && errno == EINTR) {
            }
            rk->exited  = 1;
            rk->killed  = 1;
            rk->exit_ms = tt_test_now_ms();
        }
        if (rk->evfd >= 0) {
            close(rk->evfd);
            rk->evfd = -1;
        }
    }
}

int tt_netbed_wait(tt_netbed_job_t *job, int timeout_ms)
{
    uint64_t deadline = tt_test_now_ms() + (uint64_t)timeout_ms;
    int      r, bad = 0;

    while (tt_netbed_pump(job) > 0 && tt_test_now_ms() < deadline) {
    }
    tt_netbed_kill_all(job);
    for (r = 0; r < job->nranks; r++) {
        const tt_netbed_rank_t *rk = &job->ranks[r];
        int                     st = rk->status;

        if (rk->killed) {
            fprintf(stderr, "netbed: rank %d (host %d): still running after "
                    "%d ms, killed\n", r, rk->host, timeout_ms);
        } else if (WIFSIGNALED(st)) {
            fprintf(stderr, "netbed: rank %d (host %d): killed by signal %d "
                    "(%s)\n", r, rk->host, WTERMSIG(st),
                    strsignal(WTERMSIG(st)));
        } else if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
            fprintf(stderr, "netbed: rank %d (host %d): exited with status "
                    "%d\n", r, rk->host, WEXITSTATUS(st));
        } else if (!WIFEXITED(st)) {
            fprintf(stderr, "netbed: rank %d (host %d): wait status 0x%x\n",
                    r, rk->host, st);
        } else {
            continue;
        }
        bad = 1;
    }
    unlink(job->id_file);
    return bad;
}
