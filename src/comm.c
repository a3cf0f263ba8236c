/*
 * The communicator's life cycle: unique ids, init (rendezvous, host
 * grouping, transport set-up and per-peer selection, connection), destroy,
 * abort and the asynchronous failure state fed by the bootstrap watchdog.
 *
 * Init, in order:
 *   1. configuration (defaults, the user's config, TUTTI_* variables);
 *   2. bootstrap rendezvous (authenticated, bounded by timeout_ms);
 *   3. allgather of peer info (pid, host identity) -> ranks on this host;
 *   4. every compiled-in transport (or the forced one) initialises; one that
 *      fails is skipped with its reason at INFO;
 *   5. allgather of every transport's address;
 *   6. per peer, the first transport in preference order that is up on both
 *      sides and reaches the peer is chosen (logged at INFO) and connected;
 *   7. agreement on the slice size (the transports' preferences);
 *   8. barrier, then connect_done (shm unlinks its segments), watchdog on.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "comm.h"

/* The slice of transports without a preference (transport.h). */
#define TT_SLICE_DEFAULT (64u * 1024u)
/* The slice of a network transport used within one host: through loopback
 * the cost is the CPU's per message, not a link's queue (see
 * tt_comm_agree_slice). */
#define TT_SLICE_LOOPBACK (256u * 1024u)

/* What every rank publishes about itself, exchanged in steps 3 and 5. */
typedef struct tt_card_addr {
    uint32_t len[TT_MAX_TRANSPORTS];
    uint8_t  addr[TT_MAX_TRANSPORTS][TT_ADDR_MAX];
} tt_card_addr_t;

static int tt_transport_count(void)
{
    int n = 0;

    while (tutti__transports[n] != NULL) {
        n++;
    }
    return n;
}

tutti_result_t tutti_get_unique_id(tutti_unique_id_t *id_p)
{
    tt_config_t cfg;

    tutti__log_init();
    tutti__error_clear();
    if (id_p == NULL) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "tutti_get_unique_id: id_p is NULL");
    }
    TT_CHECK(tutti__config_load(NULL, &cfg));
    return tutti__boot_root_start(&cfg, id_p);
}

tutti_result_t tutti_unique_id_to_text(const tutti_unique_id_t *id,
                                       char text[TUTTI_UNIQUE_ID_TEXT_LEN])
{
    tutti__error_clear();
    if (id == NULL || text == NULL) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "tutti_unique_id_to_text: %s is NULL",
                            id == NULL ? "id" : "text");
    }
    return tutti__boot_id_to_text(id, text, TUTTI_UNIQUE_ID_TEXT_LEN);
}

tutti_result_t tutti_unique_id_from_text(const char *text,
                                         tutti_unique_id_t *id_p)
{
    tutti__error_clear();
    if (id_p == NULL || text == NULL) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "tutti_unique_id_from_text: %s is NULL",
                            text == NULL ? "text" : "id_p");
    }
    return tutti__boot_id_from_text(text, id_p);
}

/* Host identity: TUTTI_HOSTID, else hostname + kernel boot id (two
 * containers on one kernel with one hostname share memory, which is what
 * shared memory needs). */
static void tt_comm_hostid(const tt_config_t *cfg, char *out, size_t len)
{
    char host[64] = "unknown", boot[64] = "";
    int  fd;

    if (cfg->hostid[0] != '\0') {
        snprintf(out, len, "%.*s", (int)len - 1, cfg->hostid);
        return;
    }
    gethostname(host, sizeof(host) - 1);
    fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, boot, sizeof(boot) - 1);
        boot[n > 0 ? n : 0] = '\0';
        boot[strcspn(boot, "\n")] = '\0';
        close(fd);
    }
    snprintf(out, len, "%s:%s", host, boot);
}

void tutti__comm_set_async_error(tutti_comm_t comm, int peer,
                                 tutti_result_t code, const char *why)
{
    int expected = -1;

    if (atomic_compare_exchange_strong(&comm->failed_peer, &expected, peer)) {
        snprintf(comm->fail_why, sizeof(comm->fail_why), "%s", why);
        atomic_store_explicit(&comm->async_error, code, memory_order_release);
    }
}

static void tt_comm_on_fail(void *arg, int peer, tutti_result_t code,
                            const char *why)
{
    tutti__comm_set_async_error(arg, peer, code, why);
}

/* Step 4: bring up the transports this rank may use. */
static tutti_result_t tt_comm_init_transports(tutti_comm_t comm,
                                              const int *local_ranks)
{
    const char    *force = comm->cfg.transport;
    int            auto_ = force[0] == '\0' || strcasecmp(force, "auto") == 0;
    int            t, found = 0;
    tt_tp_params_t params = {
        .rank        = comm->rank,
        .nranks      = comm->nranks,
        .job_id      = comm->job_id,
        .self        = &comm->peers[comm->rank].info,
        .config      = &comm->cfg,
        .local_ranks = local_ranks,
        .nlocal      = comm->nlocal,
        .log         = tutti__log,
    };

    int            same_host_up = 0;

    comm->ntps = tt_transport_count();
    tt_assert(comm->ntps <= TT_MAX_TRANSPORTS);
    for (t = 0; t < comm->ntps; t++) {
        const tt_transport_ops_t *ops = tutti__transports[t];
        tutti_result_t            res;

        comm->tp_ops[t] = ops;
        if (!auto_ && strcasecmp(force, ops->name) != 0) {
            continue;
        }
        /* every rank on this host and a same-host transport up: network
         * transports would cost their start-up (libfabric's takes
         * 0.2-0.5 s) for nothing. The registry lists same-host ones
         * first. */
        if (auto_ && same_host_up && comm->nlocal == comm->nranks &&
            !(ops->caps & TT_CAP_SAME_HOST_ONLY)) {
            TT_INFO(TT_SUB_INIT, "transport %s not started: every rank is "
                    "on this host", ops->name);
            continue;
        }
        found = 1;
        res   = ops->init(&params, &comm->tps[t]);
        if (res < 0) {
            comm->tps[t] = NULL;
            if (!auto_) {
                return tutti__error(res, "transport %s, forced by "
                                    "TUTTI_TRANSPORT, failed to initialise: "
                                    "%s", ops->name, tutti_last_error());
            }
            TT_INFO(TT_SUB_INIT, "transport %s skipped: %s", ops->name,
                    tutti_last_error());
        } else if (ops->caps & TT_CAP_SAME_HOST_ONLY) {
            same_host_up = 1;
        }
    }
    if (!auto_ && !found) {
        char names[128] = "";
        for (t = 0; t < comm->ntps; t++) {
            strncat(names, " ", sizeof(names) - strlen(names) - 1);
            strncat(names, tutti__transports[t]->name,
                    sizeof(names) - strlen(names) - 1);
        }
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "TUTTI_TRANSPORT '%s': no such transport "
                            "(compiled in:%s)", force, names);
    }
    return TUTTI_SUCCESS;
}

/* Steps 5 and 6: exchange addresses, choose and connect per peer. */
static tutti_result_t tt_comm_connect(tutti_comm_t comm)
{
    tt_card_addr_t *all, *mine;
    tutti_result_t  res = TUTTI_SUCCESS;
    int             t, p;

    all = calloc((size_t)comm->nranks + 1, sizeof(*all));
    if (all == NULL) {
        return tutti__error(TUTTI_ERR_NO_MEMORY, "address table of %d ranks",
                            comm->nranks);
    }
    mine = &all[comm->nranks];
    for (t = 0; t < comm->ntps; t++) {
        size_t len = TT_ADDR_MAX;
        if (comm->tps[t] == NULL) {
            continue;
        }
        TT_CHECK_GOTO(comm->tp_ops[t]->address(comm->tps[t], mine->addr[t],
                                               &len), res, out);
        mine->len[t] = (uint32_t)len;
    }
    TT_CHECK_GOTO(tutti__boot_allgather(comm->boot, mine, all, sizeof(*mine)),
                  res, out);
    for (p = 0; p < comm->nranks; p++) {
        tt_peer_t *peer = &comm->peers[p];

        if (p == comm->rank) {
            continue;
        }
        for (t = 0; t < comm->ntps; t++) {
            if (comm->tps[t] != NULL && all[p].len[t] > 0 &&
                comm->tp_ops[t]->reachable(comm->tps[t], &peer->info)) {
                break;
            }
        }
        if (t == comm->ntps) {
            res = tutti__error(TUTTI_ERR_UNSUPPORTED,
                               "no transport reaches rank %d (host %s) from "
                               "rank %d (host %s); TUTTI_TRANSPORT='%s'", p,
                               peer->info.hostid, comm->rank,
                               comm->peers[comm->rank].info.hostid,
                               comm->cfg.transport);
            goto out;
        }
        TT_CHECK_GOTO(comm->tp_ops[t]->connect(comm->tps[t], &peer->info,
                                               all[p].addr[t], all[p].len[t],
                                               &peer->ep), res, out);
        peer->ops         = comm->tp_ops[t];
        peer->tp          = t;
        comm->tp_used[t]  = 1;
        TT_INFO(TT_SUB_INIT, "rank %d -> rank %d via %s", comm->rank, p,
                peer->ops->name);
    }
out:
    free(all);
    return res;
}

/*
 * The pipelining unit. Both ends of a message slice it alike, and a step
 * that receives from one peer and forwards to another slices both parts
 * alike, so every rank must use the same one: SLICE_SIZE when set, else
 * the largest hint of the transports any rank uses, agreed through the
 * bootstrap (every rank's configuration is assumed to be the same).
 */
static tutti_result_t tt_comm_agree_slice(tutti_comm_t comm)
{
    uint64_t      *all, mine = TT_SLICE_DEFAULT;
    tutti_result_t res;
    int            t, p;

    if (comm->cfg.slice_size > 0) {
        comm->slice_size = comm->cfg.slice_size;
        TT_INFO(TT_SUB_INIT, "rank %d: slice size %zu bytes (SLICE_SIZE)",
                comm->rank, comm->slice_size);
        return TUTTI_SUCCESS;
    }
    for (t = 0; t < comm->ntps; t++) {
        const tt_transport_ops_t *ops = comm->tp_ops[t];
        size_t                    hint = ops->slice_hint;

        if (!comm->tp_used[t]) {
            continue;
        }
        /* A network transport between ranks of one host (forced with
         * TUTTI_TRANSPORT) runs over loopback, where each message costs
         * CPU and no link queue overflows: 64 KiB slices moved tcp;ofi_rxm
         * at 39-55% of fi_pingpong there. 256 KiB ones keep a slice in
         * cache between the socket copy and the reduction: against 1 MiB
         * slices a 16 MiB allreduce over UCX went from 0.94 to 1.38 GB/s
         * (median of 5), and from 1.47 to 1.95 with 256 KiB UCX TCP
         * segments (median of 7); libfabric stayed level. Every rank sees
         * the same nlocal == nranks, so they still agree. */
        if (!(ops->caps & TT_CAP_SAME_HOST_ONLY) &&
            comm->nlocal == comm->nranks) {
            hint = TT_MAX(hint, TT_SLICE_LOOPBACK);
        }
        mine = TT_MAX(mine, hint);
    }
    all = calloc((size_t)comm->nranks, sizeof(*all));
    if (all == NULL) {
        return tutti__error(TUTTI_ERR_NO_MEMORY, "slice table of %d ranks",
                            comm->nranks);
    }
    res = tutti__boot_allgather(comm->boot, &mine, all, sizeof(mine));
    for (p = 0; res == TUTTI_SUCCESS && p < comm->nranks; p++) {
        mine = TT_MAX(mine, all[p]);
    }
    free(all);
    if (res != TUTTI_SUCCESS) {
        return res;
    }
    comm->slice_size = (size_t)mine;
    TT_INFO(TT_SUB_INIT, "rank %d: slice size %zu bytes (the largest "
            "preference of the transports in use)", comm->rank,
            comm->slice_size);
    return TUTTI_SUCCESS;
}

static void tt_comm_free(tutti_comm_t comm)
{
    int p, t;

    if (comm->boot != NULL) {
        tutti__boot_fini(comm->boot);
    }
    if (comm->peers != NULL) {
        for (p = 0; p < comm->nranks; p++) {
            if (comm->peers[p].ep != NULL) {
                comm->peers[p].ops->ep_close(comm->peers[p].ep);
            }
        }
    }
    for (t = 0; t < comm->ntps; t++) {
        if (comm->tps[t] != NULL) {
            comm->tp_ops[t]->fini(comm->tps[t]);
        }
    }
    tutti__exec_cleanup(comm);
    free(comm->peers);
    free(comm);
}

static tutti_result_t tt_comm_check_init_args(int nranks, int rank,
                                              tutti_comm_t *comm_p)
{
    if (comm_p == NULL) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "tutti_comm_init: comm_p is NULL");
    }
    if (nranks < 1) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "tutti_comm_init: nranks %d < 1", nranks);
    }
    if (rank < 0 || rank >= nranks) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "tutti_comm_init: rank %d out of range [0, %d)",
                            rank, nranks);
    }
    return TUTTI_SUCCESS;
}

tutti_result_t tutti_comm_init(int nranks, const tutti_unique_id_t *id,
                               int rank, const tutti_config_t *config,
                               tutti_comm_t *comm_p)
{
    tutti_unique_id_t env_id;
    tt_peer_info_t   *infos = NULL;
    int              *local = NULL;
    tutti_comm_t      comm;
    tutti_result_t    res;
    int               p, ncpus;

    tutti__log_init();
    tutti__error_clear();
    TT_CHECK(tt_comm_check_init_args(nranks, rank, comm_p));
    if (id == NULL) {
        const char *text = getenv("TUTTI_UNIQUE_ID");
        if (text == NULL) {
            return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                                "tutti_comm_init: id is NULL and "
                                "TUTTI_UNIQUE_ID is not set");
        }
        TT_CHECK(tutti__boot_id_from_text(text, &env_id));
        id = &env_id;
    }
    comm = calloc(1, sizeof(*comm));
    if (comm == NULL) {
        return tutti__error(TUTTI_ERR_NO_MEMORY, "communicator");
    }
    comm->rank   = rank;
    comm->nranks = nranks;
    comm->job_id = tutti__boot_job_id(id);
    atomic_init(&comm->aborted, 0);
    atomic_init(&comm->async_error, 0);
    atomic_init(&comm->failed_peer, -1);
    tutti__log_set_rank(rank);
    TT_CHECK_GOTO(tutti__config_load(config, &comm->cfg), res, err_free);
    TT_CHECK_GOTO(tutti__algo_parse(comm->cfg.algo, &comm->algo_sel), res,
                  err_free);
    comm->peers = calloc((size_t)nranks, sizeof(*comm->peers));
    infos       = calloc((size_t)nranks, sizeof(*infos));
    local       = calloc((size_t)nranks, sizeof(*local));
    if (comm->peers == NULL || infos == NULL || local == NULL) {
        res = tutti__error(TUTTI_ERR_NO_MEMORY, "peer table of %d ranks",
                           nranks);
        goto err_free;
    }

    TT_CHECK_GOTO(tutti__boot_init(id, rank, nranks, &comm->cfg,
                                   comm->cfg.timeout_ms, &comm->boot),
                  res, err_free);
    comm->peers[rank].info.rank = rank;
    comm->peers[rank].info.pid  = getpid();
    tt_comm_hostid(&comm->cfg, comm->peers[rank].info.hostid, TT_HOSTID_MAX);
    TT_CHECK_GOTO(tutti__boot_allgather(comm->boot, &comm->peers[rank].info,
                                        infos, sizeof(*infos)), res, err_free);
    for (p = 0; p < nranks; p++) {
        comm->peers[p].info = infos[p];
        if (strcmp(infos[p].hostid, infos[rank].hostid) == 0) {
            if (p == rank) {
                comm->local_index = comm->nlocal;
            }
            local[comm->nlocal++] = p;
        }
    }
    ncpus                = tutti__ncpus();
    comm->oversubscribed = comm->nlocal > ncpus;
    TT_INFO(TT_SUB_INIT, "rank %d of %d, pid %d, host %s: %d ranks on this "
            "host, %d cpus%s", rank, nranks, (int)getpid(),
            infos[rank].hostid, comm->nlocal, ncpus,
            comm->oversubscribed ? " (oversubscribed: yield, do not spin)"
                                 : "");

    TT_CHECK_GOTO(tt_comm_init_transports(comm, local), res, err_free);
    TT_CHECK_GOTO(tt_comm_connect(comm), res, err_free);
    TT_CHECK_GOTO(tt_comm_agree_slice(comm), res, err_free);
    TT_CHECK_GOTO(tutti__boot_barrier(comm->boot), res, err_free);
    for (p = 0; p < comm->ntps; p++) {
        if (comm->tps[p] != NULL && comm->tp_ops[p]->connect_done != NULL) {
            TT_CHECK_GOTO(comm->tp_ops[p]->connect_done(comm->tps[p]), res,
                          err_free);
        }
    }
    TT_CHECK_GOTO(tutti__boot_watch(comm->boot, tt_comm_on_fail, comm), res,
                  err_free);
    free(infos);
    free(local);
    *comm_p = comm;
    return TUTTI_SUCCESS;

err_free:
    free(infos);
    free(local);
    tt_comm_free(comm);
    return res;
}

tutti_result_t tutti_comm_destroy(tutti_comm_t comm)
{
    tutti__error_clear();
    if (comm == NULL) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "tutti_comm_destroy: comm is NULL");
    }
    tt_comm_free(comm);
    return TUTTI_SUCCESS;
}

tutti_result_t tutti_comm_abort(tutti_comm_t comm)
{
    if (comm == NULL) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "tutti_comm_abort: comm is NULL");
    }
    if (atomic_exchange(&comm->aborted, 1) == 0) {
        TT_INFO(TT_SUB_INIT, "rank %d: communicator aborted", comm->rank);
        tutti__boot_abort_notify(comm->boot);
    }
    return TUTTI_SUCCESS;
}

tutti_result_t tutti_comm_get_async_error(tutti_comm_t comm,
                                          tutti_result_t *error_p)
{
    tutti__error_clear();
    if (comm == NULL || error_p == NULL) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "tutti_comm_get_async_error: %s is NULL",
                            comm == NULL ? "comm" : "error_p");
    }
    if (atomic_load(&comm->aborted)) {
        *error_p = TUTTI_ERR_ABORTED;
    } else {
        *error_p = (tutti_result_t)atomic_load_explicit(
            &comm->async_error, memory_order_acquire);
    }
    return TUTTI_SUCCESS;
}

tutti_result_t tutti_comm_rank(tutti_comm_t comm, int *rank_p)
{
    tutti__error_clear();
    if (comm == NULL || rank_p == NULL) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "tutti_comm_rank: %s is NULL",
                            comm == NULL ? "comm" : "rank_p");
    }
    *rank_p = comm->rank;
    return TUTTI_SUCCESS;
}

tutti_result_t tutti_comm_size(tutti_comm_t comm, int *size_p)
{
    tutti__error_clear();
    if (comm == NULL || size_p == NULL) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "tutti_comm_size: %s is NULL",
                            comm == NULL ? "comm" : "size_p");
    }
    *size_p = comm->nranks;
    return TUTTI_SUCCESS;
}

tutti_result_t tutti_comm_peer_transport(tutti_comm_t comm, int peer,
                                         const char **name_p)
{
    tutti__error_clear();
    if (comm == NULL || name_p == NULL) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "tutti_comm_peer_transport: %s is NULL",
                            comm == NULL ? "comm" : "name_p");
    }
    if (peer < 0 || peer >= comm->nranks) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "tutti_comm_peer_transport: peer %d out of range "
                            "[0, %d)", peer, comm->nranks);
    }
    *name_p = peer == comm->rank ? "self" : comm->peers[peer].ops->name;
    return TUTTI_SUCCESS;
}

tutti_result_t tutti__comm_check(tutti_comm_t comm)
{
    if (comm == NULL) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT, "comm is NULL");
    }
    if (atomic_load_explicit(&comm->aborted, memory_order_relaxed)) {
        return tutti__error_quiet(TUTTI_ERR_ABORTED,
                                  "rank %d: communicator was aborted",
                                  comm->rank);
    }
    if (atomic_load_explicit(&comm->async_error, memory_order_acquire)) {
        return tutti__error(TUTTI_ERR_REMOTE, "rank %d: %s", comm->rank,
                            comm->fail_why);
    }
    if (comm->broken < 0) {
        return tutti__error(comm->broken,
                            "rank %d: an earlier collective failed (%s); the "
                            "communicator can only be destroyed",
                            comm->rank, tutti_result_name(comm->broken));
    }
    return TUTTI_SUCCESS;
}
