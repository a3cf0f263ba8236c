/*
 * The 'multihost' suite: tutti between "hosts" that are network
 * namespaces on this machine (netbed.h), each rank a process of its own
 * (mh_rank.c) with its own address and TUTTI_HOSTID.
 *
 *   bed_*            the harness itself: the bed appears and goes away,
 *                    also when its creator dies (janitor) and when the
 *                    janitor died too (sweep)
 *   bootstrap_*      the TCP bootstrap crosses namespaces: with only shm
 *                    allowed, init fails with "no transport reaches"; with
 *                    one TUTTI_HOSTID for all, shm works across them
 *   collectives/     every collective x algorithm (small cases; large ones
 *   large            of about 512 KiB) at 2 hosts x 1 rank, 2 x 2, 3 x 1
 *                    and 4 x 1, over UCX and over libfabric (forced by
 *                    TUTTI_TRANSPORT, also within a host)
 *   mixed            2 x 2 automatic: shm within a host, the network across
 *   rate_limited     large cases over 200 Mbit/s tbf links
 *   link_cut         a cable pulled while ranks loop on allreduce (3 x 1
 *                    over UCX and over libfabric, 2 x 2 automatic): every
 *                    rank gets TUTTI_ERR_REMOTE or TUTTI_ERR_TIMEOUT within
 *                    TUTTI_TIMEOUT_MS (plus slack for this loaded machine),
 *                    then exits: no hang
 *
 * A transport that is not compiled in is skipped with the reason; so is the
 * whole suite without root or network namespaces. Each test's bed is torn
 * down by the .fini, and by the janitor if the test process dies.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netbed.h"
#include "spawn.h"
#include "transport.h"

#ifndef TT_MH_RANK
#error "meson defines TT_MH_RANK, the path of the rank program"
#endif

/* Bound on one job (tt_mh_run); the .timeout of tests that run jobs is
 * above it, so a hung job fails with the harness's report, not a kill. */
#define TT_MH_JOB_MS        240000
/* The link-cut test: the library's bound on a call without progress, and
 * what this (shared, loaded) machine may add before the error shows. */
#define TT_MH_CUT_TIMEOUT_MS 3000
#define TT_MH_CUT_SLACK_MS   7000
/* Floats per allreduce of the link-cut loop (1 MiB). */
#define TT_MH_CUT_COUNT      "262144"

#define TT_MH_NETNS_DIR "/run/netns/"

static tt_netbed_t tt_mh_bed = {.janitor = -1, .janitor_fd = -1};

static void tt_mh_fini(void)
{
    tt_netbed_down(&tt_mh_bed);
}

/* Brings the test's bed up; skips when the machine cannot have one. */
static void tt_mh_up(int nhosts, int mbit)
{
    char why[1024];
    int  rc = tt_netbed_up(&tt_mh_bed, nhosts, mbit, why, sizeof(why));

    if (rc == TT_NETBED_UNAVAILABLE) {
        cr_skip_test("no multi-host bed here: %s", why);
    }
    cr_assert_eq(rc, 0, "netbed up (%d hosts): %s", nhosts, why);
}

/* Skips unless meson compiled the transport in. */
static void tt_mh_need(const char *name)
{
    int t;

    for (t = 0; tutti__transports[t] != NULL; t++) {
        if (strcmp(tutti__transports[t]->name, name) == 0) {
            return;
        }
    }
    cr_skip_test("transport %s is not compiled in (meson option -D%s, or "
                 "no %s found at setup)", name, name,
                 strcmp(name, "ofi") == 0 ? "libfabric" : "UCX");
}

/* The network transport auto picks between hosts, or NULL. */
static const char *tt_mh_network_choice(void)
{
    int t;

    for (t = 0; tutti__transports[t] != NULL; t++) {
        if (!(tutti__transports[t]->caps & TT_CAP_SAME_HOST_ONLY)) {
            return tutti__transports[t]->name;
        }
    }
    return NULL;
}

static int tt_mh_ns_exists(const char *name)
{
    char path[256];

    snprintf(path, sizeof(path), TT_MH_NETNS_DIR "%s", name);
    return access(path, F_OK) == 0;
}

/* Runs a job of mh_rank on the bed and asserts every rank exited 0. */
static void tt_mh_run(int nranks, int rph, const char *const *argv,
                      const char *const *env, const char *what)
{
    tt_netbed_job_t job = TT_NETBED_JOB_INIT;
    int             i;

    job.nranks         = nranks;
    job.ranks_per_host = rph;
    job.argv           = argv;
    for (i = 0; env != NULL && env[i] != NULL && i < TT_NETBED_MAX_ENV; i++) {
        job.env[i] = env[i];
    }
    cr_assert_eq(tt_netbed_spawn(&tt_mh_bed, &job), 0, "%s: spawn", what);
    cr_assert_eq(tt_netbed_wait(&job, TT_MH_JOB_MS), 0,
                 "%s failed (see stderr)", what);
}

/* ---------------------------------------------------------------------- */
/* the harness                                                            */
/* ---------------------------------------------------------------------- */

TestSuite(multihost, .fini = tt_mh_fini);

Test(multihost, bed_up_and_down, .timeout = 120)
{
    char ns[64];
    int  h;

    tt_mh_up(3, 0);
    for (h = 0; h < 3; h++) {
        tt_netbed_ns(&tt_mh_bed, h, ns, sizeof(ns));
        cr_expect(tt_mh_ns_exists(ns), "namespace %s missing", ns);
    }
    snprintf(ns, sizeof(ns), "%s-sw", tt_mh_bed.tag);
    cr_expect(tt_mh_ns_exists(ns), "switch namespace %s missing", ns);
    cr_expect_eq(tt_netbed_link(&tt_mh_bed, 1, 0), 0, "pull host 1");
    cr_expect_eq(tt_netbed_link(&tt_mh_bed, 1, 1), 0, "plug host 1");
    tt_netbed_down(&tt_mh_bed);
    cr_expect(!tt_mh_ns_exists(ns), "%s left after down", ns);
    for (h = 0; h < 3; h++) {
        char name[64];

        snprintf(name, sizeof(name), "%.40s-h%d", ns, h);
        cr_expect(!tt_mh_ns_exists(name), "%s left after down", name);
    }
}

/*
 * A child brings a bed up and dies without tearing it down; with
 * kill_janitor it takes its janitor with it. Returns the bed's switch
 * namespace name in sw.
 */
static void tt_mh_orphan_bed(int kill_janitor, char *sw, size_t len)
{
    int   fds[2], status;
    pid_t pid;

    cr_assert_eq(pipe(fds), 0);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        tt_netbed_t bed;
        char        why[512];
        int         rc;

        close(fds[0]);
        rc = tt_netbed_up(&bed, 1, 0, why, sizeof(why));
        if (rc != 0) {
            dprintf(fds[1], "!%d %s", rc, why);
            _exit(1);
        }
        dprintf(fds[1], "%s-sw", bed.tag);
        if (kill_janitor) {
            kill(bed.janitor, SIGKILL);
            waitpid(bed.janitor, &status, 0);
        }
        _exit(0); /* a crash: no tt_netbed_down */
    }
    close(fds[1]);
    memset(sw, 0, len);
    cr_assert_gt(read(fds[0], sw, len - 1), 0, "the child said nothing");
    close(fds[0]);
    waitpid(pid, &status, 0);
    if (sw[0] == '!' && atoi(sw + 1) == TT_NETBED_UNAVAILABLE) {
        cr_skip_test("no multi-host bed here: %s",
                     strchr(sw, ' ') != NULL ? strchr(sw, ' ') + 1 : sw);
    }
    cr_assert_neq(sw[0], '!', "child's bed: %s", sw);
}

Test(multihost, bed_janitor_cleans_after_a_crash, .timeout = 120)
{
    char     sw[128];
    uint64_t deadline;

    tt_mh_orphan_bed(0, sw, sizeof(sw));
    deadline = tt_test_now_ms() + 60000;
    while (tt_mh_ns_exists(sw) && tt_test_now_ms() < deadline) {
        tt_test_sleep_ms(50);
    }
    cr_expect(!tt_mh_ns_exists(sw), "%s still there 60 s after its "
              "creator died", sw);
}

Test(multihost, bed_sweep_removes_stale_beds, .timeout = 120)
{
    char sw[128];

    tt_mh_orphan_bed(1, sw, sizeof(sw));
    cr_assert(tt_mh_ns_exists(sw), "%s: the orphan bed is not there", sw);
    /* the next bed's creation sweeps the dead creator's bed away */
    tt_mh_up(1, 0);
    cr_expect(!tt_mh_ns_exists(sw), "%s survived the sweep", sw);
}

/* ---------------------------------------------------------------------- */
/* bootstrap across namespaces                                            */
/* ---------------------------------------------------------------------- */

Test(multihost, bootstrap_crosses_namespaces, .timeout = 300)
{
    static const char *const argv[] = {
        TT_MH_RANK, "init-fails", "TUTTI_ERR_UNSUPPORTED",
        "no transport reaches rank", NULL};
    static const char *const env[] = {"TUTTI_TRANSPORT=shm",
                                      "TUTTI_TIMEOUT_MS=30000", NULL};

    tt_mh_up(2, 0);
    tt_mh_run(2, 1, argv, env, "2 hosts, shm only");
}

Test(multihost, bootstrap_shm_across_namespaces_one_hostid, .timeout = 300)
{
    static const char *const argv[] = {TT_MH_RANK, "init", NULL};
    static const char *const env[]  = {"TUTTI_HOSTID=one-host",
                                       "TT_MH_EXPECT_REMOTE=shm", NULL};

    tt_mh_up(2, 0);
    tt_mh_run(2, 1, argv, env, "2 namespaces, one TUTTI_HOSTID");
}

/* ---------------------------------------------------------------------- */
/* collectives over the network transports                                */
/* ---------------------------------------------------------------------- */

/* Parameters hold no pointers: Criterion's workers are fresh processes
 * (BoxFort), where the parent's addresses mean nothing. */
typedef struct tt_mh_layout {
    char transport[8];
    int  hosts;
    int  rph; /* ranks per host */
} tt_mh_layout_t;

static tt_mh_layout_t tt_mh_layouts[] = {
    {"ucx", 2, 1}, {"ucx", 2, 2}, {"ucx", 3, 1}, {"ucx", 4, 1},
    {"ofi", 2, 1}, {"ofi", 2, 2}, {"ofi", 3, 1}, {"ofi", 4, 1},
};

#define TT_MH_NLAYOUTS (sizeof(tt_mh_layouts) / sizeof(tt_mh_layouts[0]))

/* One job of `mh_rank coll <sweep>` over the layout's transport, forced
 * for every peer (so also between ranks of one host). */
static void tt_mh_coll(const tt_mh_layout_t *l, const char *sweep)
{
    const char *argv[] = {TT_MH_RANK, "coll", sweep, NULL};
    char        tp[48], local[48], remote[48], what[96];
    const char *env[]  = {tp, local, remote, NULL};

    tt_mh_need(l->transport);
    snprintf(tp, sizeof(tp), "TUTTI_TRANSPORT=%s", l->transport);
    snprintf(local, sizeof(local), "TT_MH_EXPECT_LOCAL=%s", l->transport);
    snprintf(remote, sizeof(remote), "TT_MH_EXPECT_REMOTE=%s", l->transport);
    snprintf(what, sizeof(what), "%s collectives over %s, %d hosts x %d",
             sweep, l->transport, l->hosts, l->rph);
    fprintf(stderr, "multihost: %s\n", what);
    tt_mh_up(l->hosts, 0);
    tt_mh_run(l->hosts * l->rph, l->rph, argv, env, what);
}

ParameterizedTestParameters(multihost, collectives)
{
    return cr_make_param_array(tt_mh_layout_t, tt_mh_layouts,
                               TT_MH_NLAYOUTS);
}

ParameterizedTest(tt_mh_layout_t *l, multihost, collectives, .timeout = 300)
{
    tt_mh_coll(l, "small");
}

ParameterizedTestParameters(multihost, large)
{
    return cr_make_param_array(tt_mh_layout_t, tt_mh_layouts,
                               TT_MH_NLAYOUTS);
}

ParameterizedTest(tt_mh_layout_t *l, multihost, large, .timeout = 300)
{
    tt_mh_coll(l, "large");
}

/* 2 hosts x 2 ranks, automatic choice: shm within a host, the preferred
 * network transport across, checked peer by peer, then the collectives. */
Test(multihost, mixed, .timeout = 300)
{
    static const char *const argv[] = {TT_MH_RANK, "coll", "small", NULL};
    const char              *net    = tt_mh_network_choice();
    char                     remote[48];
    const char              *env[]  = {"TUTTI_TRANSPORT=auto",
                                       "TT_MH_EXPECT_LOCAL=shm", remote,
                                       NULL};

    if (net == NULL) {
        cr_skip_test("no network transport is compiled in (UCX, libfabric)");
    }
    snprintf(remote, sizeof(remote), "TT_MH_EXPECT_REMOTE=%s", net);
    tt_mh_up(2, 0);
    tt_mh_run(4, 2, argv, env, "mixed shm and network, 2 hosts x 2");
}

Test(multihost, rate_limited, .timeout = 300)
{
    static const char *const argv[] = {TT_MH_RANK, "coll", "large", NULL};
    const char              *net    = tt_mh_network_choice();
    char                     remote[48];
    const char              *env[]  = {remote, NULL};

    if (net == NULL) {
        cr_skip_test("no network transport is compiled in (UCX, libfabric)");
    }
    snprintf(remote, sizeof(remote), "TT_MH_EXPECT_REMOTE=%s", net);
    tt_mh_up(2, 200);
    tt_mh_run(2, 1, argv, env, "2 hosts over 200 Mbit/s links");
}

/* ---------------------------------------------------------------------- */
/* the link cut                                                           */
/* ---------------------------------------------------------------------- */

/*
 * Layouts of the link cut: 3 hosts x 1 rank over each network transport
 * (host 2 pulled: ranks 0 and 1 still reach each other, not rank 2), and
 * 2 x 2 with the automatic choice (host 1 pulled: ranks 2 and 3 still talk
 * over shm, and must hear of the failure all the same). "auto" needs some
 * network transport.
 */
static tt_mh_layout_t tt_mh_cuts[] = {
    {"ucx", 3, 1}, {"ofi", 3, 1}, {"auto", 2, 2},
};

ParameterizedTestParameters(multihost, link_cut)
{
    return cr_make_param_array(tt_mh_layout_t, tt_mh_cuts,
                               sizeof(tt_mh_cuts) / sizeof(tt_mh_cuts[0]));
}

/*
 * The ranks loop on 1 MiB allreduces; once every rank is in the loop, the
 * last host's cable is pulled at the switch. Every rank must fail within
 * the timeout, with a result that says so, and then exit.
 */
ParameterizedTest(tt_mh_layout_t *l, multihost, link_cut, .timeout = 180)
{
    static const char *const argv[] = {TT_MH_RANK, "loop", TT_MH_CUT_COUNT,
                                       NULL};
    tt_netbed_job_t job = TT_NETBED_JOB_INIT;
    char            tpenv[48], timeout[48];
    uint64_t        cut_ms;
    int             r, ready, failed, bound;

    fprintf(stderr, "multihost: link cut over %s, %d hosts x %d\n",
            l->transport, l->hosts, l->rph);
    if (strcmp(l->transport, "auto") != 0) {
        tt_mh_need(l->transport);
    } else if (tt_mh_network_choice() == NULL) {
        cr_skip_test("no network transport is compiled in (UCX, libfabric)");
    }
    snprintf(tpenv, sizeof(tpenv), "TUTTI_TRANSPORT=%s", l->transport);
    snprintf(timeout, sizeof(timeout), "TUTTI_TIMEOUT_MS=%d",
             TT_MH_CUT_TIMEOUT_MS);
    tt_mh_up(l->hosts, 0);
    job.nranks         = l->hosts * l->rph;
    job.ranks_per_host = l->rph;
    job.argv           = argv;
    job.env[0]         = tpenv;
    job.env[1]         = timeout;
    cr_assert_eq(tt_netbed_spawn(&tt_mh_bed, &job), 0);

    ready = tt_netbed_wait_event(&job, "ready", 60000);
    if (ready != job.nranks) {
        tt_netbed_wait(&job, 0);
        cr_assert_fail("only %d of %d ranks got their allreduce loop "
                       "going", ready, job.nranks);
    }
    cr_assert_eq(tt_netbed_link(&tt_mh_bed, l->hosts - 1, 0),
                 0, "pull host %d", l->hosts - 1);
    cut_ms = tt_test_now_ms();
    bound  = TT_MH_CUT_TIMEOUT_MS + TT_MH_CUT_SLACK_MS;
    failed = tt_netbed_wait_event(&job, "error", bound);
    for (r = 0; r < job.nranks; r++) {
        const tt_netbed_rank_t *rk = &job.ranks[r];
        int after = (int)(rk->event_ms - cut_ms);

        fprintf(stderr, "link_cut %s: rank %d: '%s' %d ms after the cut\n",
                l->transport, r, rk->event, after);
        cr_expect(strncmp(rk->event, "error TUTTI_ERR_REMOTE", 22) == 0 ||
                      strncmp(rk->event, "error TUTTI_ERR_TIMEOUT", 23) == 0,
                  "rank %d: last event '%s', not an error REMOTE/TIMEOUT", r,
                  rk->event);
        cr_expect(strncmp(rk->event, "error", 5) != 0 || after <= bound,
                  "rank %d: the error came %d ms after the cut "
                  "(TUTTI_TIMEOUT_MS %d)", r, after, TT_MH_CUT_TIMEOUT_MS);
    }
    cr_expect_eq(failed, job.nranks, "%d of %d ranks saw an error within "
                 "%d ms", failed, job.nranks, bound);
    /* and then they leave: destroy after the failure must not hang */
    cr_expect_eq(tt_netbed_wait(&job, 30000), 0,
                 "ranks did not all exit cleanly after the cut");
}
