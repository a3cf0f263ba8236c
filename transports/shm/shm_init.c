/*
 * The shared-memory transport's life cycle and its ops table: the instance
 * (init/fini), the segment of inbound FIFOs it owns (created at init,
 * unlinked at connect_done), the address it publishes, and the endpoints
 * (connect maps our pair of FIFOs, one per channel, in the peer's segment;
 * ep_close unmaps it). The data path is in shm_fifo.c, the single-copy
 * path in shm_cma.c; the memory layout is described in shm.h.
 *
 * Cleanup on failure: a segment's name exists from init until
 * connect_done. If fini comes first, it unlinks the segment names of every
 * rank of the host, not only ours: a peer that died can no longer remove
 * its own. This is safe because the core connects every endpoint before
 * the barrier that precedes connect_done: a rank that finishes before
 * connect_done either never reaches that barrier (so no rank passes it and
 * init fails everywhere) or has passed it (so every rank has mapped every
 * segment it needs). For the same reason connect_done unlinks every
 * rank's name, not only its own, so a peer that dies right after the
 * barrier leaves nothing either. Only a job whose ranks all die between
 * init and connect_done leaves segments behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "shm.h"
#include "shm_ops.h"

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2,
               "the FIFO counters need lock-free 64-bit atomics");

void tt_shm_seg_name(char *name, uint64_t job_id, int rank)
{
    snprintf(name, TT_SHM_NAME_MAX, "/tutti-%016" PRIx64 "-%d", job_id,
             rank);
}

/*
 * The slot size within the budget: each rank reserves (in /dev/shm, by
 * posix_fallocate) a pair of FIFOs per other rank of its host, so with the
 * default 8 + 4 slots of 128 KiB, 64 ranks on a host would hold 95 MiB
 * each, 6 GiB in all. Past SHM_BUDGET the slots shrink to fit, in
 * multiples of a cache line and not below TT_SHM_SLOT_MIN (small slots
 * still carry any message, in more fragments).
 */
#define TT_SHM_SLOT_MIN 1024u

static size_t tt_shm_budget_slot(const tt_config_t *cfg, int nlocal)
{
    size_t slots = 0, slot = cfg->shm_slot_size;
    int    c;

    if (cfg->shm_budget == 0 || nlocal < 2) {
        return slot;
    }
    for (c = 0; c < TT_NUM_CHANNELS; c++) {
        slots += tt_shm_chan_nslots((uint32_t)cfg->shm_nslots, c);
    }
    slots *= (size_t)(nlocal - 1);
    if (slots * slot <= cfg->shm_budget) {
        return slot;
    }
    slot = TT_MAX(cfg->shm_budget / slots / TT_CACHE_LINE * TT_CACHE_LINE,
                  (size_t)TT_SHM_SLOT_MIN);
    slot = TT_MIN(slot, cfg->shm_slot_size);
    TT_INFO(TT_SUB_SHM, "shm: %d ranks on this host: slots of %zu bytes "
            "instead of %zu, to keep the inbound FIFOs within "
            "SHM_BUDGET=%zu bytes", nlocal, slot, cfg->shm_slot_size,
            cfg->shm_budget);
    return slot;
}

size_t tt_shm_fifo_size(uint32_t nslots, size_t slot_size, size_t page_size)
{
    size_t hdrs = TT_SHM_HDRS_END(nslots);

    return TT_ALIGN_UP(hdrs, page_size) +
           TT_ALIGN_UP((size_t)nslots * slot_size, page_size);
}

void tt_shm_fifo_attach(tt_shm_fifo_t *fifo, char *base, uint32_t nslots,
                        size_t slot_size, size_t page_size)
{
    *fifo = (tt_shm_fifo_t){
        .tail      = (_Atomic uint64_t *)(base + TT_SHM_TAIL_OFFSET),
        .hdrs      = (tt_shm_slot_hdr_t *)(base + TT_SHM_HDRS_OFFSET),
        .data      = base + TT_ALIGN_UP(TT_SHM_HDRS_END(nslots), page_size),
        .slot_size = slot_size,
        .nslots    = nslots,
        .cma_min   = SIZE_MAX, /* until connect_done says otherwise */
    };
}

static int tt_shm_local_index(const tt_tp_t *tp, int rank)
{
    int i;

    for (i = 0; i < tp->nlocal; i++) {
        if (tp->local_ranks[i] == rank) {
            return i;
        }
    }
    return -1;
}

/* Where the inbound FIFO of channel c from a local peer lies in our
 * segment. */
static char *tt_shm_fifo_base(tt_tp_t *tp, int peer_local, int c)
{
    int idx = tt_shm_fifo_index(tp->local_idx, peer_local);

    return tp->seg + (size_t)idx * tp->pair_size +
           tt_shm_chan_offset(tp->fifo_size[TT_CHANNEL_COLL], c);
}

/*
 * Creates, sizes and maps our segment, then writes the identity line of
 * each inbound FIFO. posix_fallocate, not only ftruncate: tmpfs allocates
 * lazily, and a full /dev/shm would otherwise show up as SIGBUS on the
 * first store instead of ENOSPC here.
 */
static tutti_result_t tt_shm_seg_create(tt_tp_t *tp)
{
    tutti_result_t status;
    char          *seg;
    int            fd, rc, i, c;

    fd = shm_open(tp->seg_name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        return tutti__error(TUTTI_ERR_SYSTEM,
                            "shm: shm_open(%s) for a segment of %zu bytes "
                            "failed: %s",
                            tp->seg_name, tp->seg_size, strerror(errno));
    }
    tp->seg_linked = 1;

    if (ftruncate(fd, (off_t)tp->seg_size) != 0) {
        status = tutti__error(TUTTI_ERR_SYSTEM,
                              "shm: ftruncate(%s, %zu bytes) failed: %s",
                              tp->seg_name, tp->seg_size, strerror(errno));
        goto err_unlink;
    }
    rc = posix_fallocate(fd, 0, (off_t)tp->seg_size);
    if (rc == ENOSPC) {
        status = tutti__error(TUTTI_ERR_SYSTEM,
                              "shm: no space left in /dev/shm for segment %s "
                              "of %zu bytes (%d pairs of FIFOs of %u + %u "
                              "slots of %zu bytes): enlarge /dev/shm or lower "
                              "TUTTI_SHM_NSLOTS or TUTTI_SHM_SLOT_SIZE",
                              tp->seg_name, tp->seg_size, tp->nlocal - 1,
                              tp->nslots[TT_CHANNEL_COLL],
                              tp->nslots[TT_CHANNEL_P2P], tp->slot_size);
        goto err_unlink;
    } else if (rc != 0) {
        status = tutti__error(TUTTI_ERR_SYSTEM,
                              "shm: posix_fallocate(%s, %zu bytes) failed: "
                              "%s",
                              tp->seg_name, tp->seg_size, strerror(rc));
        goto err_unlink;
    }

    seg = mmap(NULL, tp->seg_size, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_POPULATE, fd, 0);
    if (seg == MAP_FAILED) {
        status = tutti__error(TUTTI_ERR_SYSTEM,
                              "shm: mmap(%s, %zu bytes) failed: %s",
                              tp->seg_name, tp->seg_size, strerror(errno));
        goto err_unlink;
    }
    close(fd);

    /* Fresh tmpfs pages are zero: every tail and seq starts at 0. */
    tp->seg = seg;
    for (i = 0; i < tp->nlocal; i++) {
        if (i == tp->local_idx) {
            continue;
        }
        for (c = 0; c < TT_NUM_CHANNELS; c++) {
            tt_shm_fifo_id_t *id =
                (tt_shm_fifo_id_t *)tt_shm_fifo_base(tp, i, c);

            *id = (tt_shm_fifo_id_t){
                .magic       = TT_SHM_MAGIC,
                .job_id      = tp->job_id,
                .owner_rank  = tp->rank,
                .sender_rank = tp->local_ranks[i],
                .nslots      = tp->nslots[c],
                .channel     = (uint32_t)c,
                .slot_size   = tp->slot_size,
            };
        }
    }
    return TUTTI_SUCCESS;

err_unlink:
    shm_unlink(tp->seg_name);
    tp->seg_linked = 0;
    close(fd);
    return status;
}

static void tt_shm_fini(tt_tp_t *tp);

static tutti_result_t tt_shm_init(const tt_tp_params_t *params,
                                  tt_tp_t **tp_p)
{
    const tt_config_t *cfg = params->config;
    tutti_result_t     status;
    tt_tp_t           *tp;
    long               page;
    int                c;

    if (cfg->shm_slot_size == 0 || cfg->shm_slot_size % TT_CACHE_LINE != 0 ||
        cfg->shm_slot_size > UINT32_MAX || cfg->shm_nslots < 1) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "shm: slot size %zu and %d slots: the size must "
                            "be a nonzero multiple of %d below 4 GiB",
                            cfg->shm_slot_size, cfg->shm_nslots,
                            TT_CACHE_LINE);
    }
    page = sysconf(_SC_PAGESIZE);
    if (page <= 0) {
        return tutti__error(TUTTI_ERR_SYSTEM, "shm: sysconf(PAGESIZE): %s",
                            strerror(errno));
    }

    tp = calloc(1, sizeof(*tp));
    if (tp == NULL) {
        return tutti__error(TUTTI_ERR_NO_MEMORY,
                            "shm: cannot allocate the instance");
    }
    tp->rank      = params->rank;
    tp->nranks    = params->nranks;
    tp->job_id    = params->job_id;
    tp->nlocal    = params->nlocal;
    tp->slot_size = tt_shm_budget_slot(cfg, params->nlocal);
    tp->cma_min   = cfg->shm_cma_min;
    tp->page_size = (size_t)page;
    for (c = 0; c < TT_NUM_CHANNELS; c++) {
        tp->nslots[c]    = tt_shm_chan_nslots((uint32_t)cfg->shm_nslots, c);
        tp->fifo_size[c] = tt_shm_fifo_size(tp->nslots[c], tp->slot_size,
                                            tp->page_size);
        tp->pair_size += tp->fifo_size[c];
    }
    snprintf(tp->hostid, sizeof(tp->hostid), "%s", params->self->hostid);
    tt_shm_seg_name(tp->seg_name, tp->job_id, tp->rank);

    tp->local_ranks = calloc((size_t)tp->nlocal, sizeof(int));
    tp->eps         = calloc((size_t)tp->nlocal, sizeof(tt_ep_t *));
    tp->active      = calloc((size_t)tp->nlocal, sizeof(tt_ep_t *));
    if (tp->local_ranks == NULL || tp->eps == NULL || tp->active == NULL) {
        status = tutti__error(TUTTI_ERR_NO_MEMORY,
                              "shm: cannot allocate tables for %d local "
                              "ranks", tp->nlocal);
        goto err_fini;
    }
    memcpy(tp->local_ranks, params->local_ranks,
           (size_t)tp->nlocal * sizeof(int));
    tp->local_idx = tt_shm_local_index(tp, tp->rank);
    if (tp->local_idx < 0) {
        status = tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                              "shm: rank %d is missing from its own list of "
                              "%d local ranks", tp->rank, tp->nlocal);
        goto err_fini;
    }

    if (tp->nlocal > 1) {
        tp->seg_size = (size_t)(tp->nlocal - 1) * tp->pair_size;
        TT_CHECK_GOTO(tt_shm_seg_create(tp), status, err_fini);
        TT_CHECK_GOTO(tt_shm_cma_init(tp), status, err_fini);
    }
    TT_INFO(TT_SUB_SHM,
            "shm: segment %s of %zu bytes: %d pairs of inbound FIFOs "
            "(collectives, point to point) of %u + %u slots of %zu bytes",
            tp->nlocal > 1 ? tp->seg_name : "(none)", tp->seg_size,
            tp->nlocal - 1, tp->nslots[TT_CHANNEL_COLL],
            tp->nslots[TT_CHANNEL_P2P], tp->slot_size);
    tp->ready = 1;
    *tp_p = tp;
    return TUTTI_SUCCESS;

err_fini:
    tt_shm_fini(tp);
    return status;
}

static void tt_shm_ep_close(tt_ep_t *ep);

static void tt_shm_fini(tt_tp_t *tp)
{
    char name[TT_SHM_NAME_MAX];
    int  i;

    for (i = 0; tp->eps != NULL && i < tp->nlocal; i++) {
        if (tp->eps[i] != NULL) {
            tt_shm_ep_close(tp->eps[i]);
        }
    }
    if (tp->seg != NULL) {
        munmap(tp->seg, tp->seg_size);
    }
    if (tp->seg_linked) {
        shm_unlink(tp->seg_name);
    }
    /* Before connect_done, a dead peer's segment is ours to remove (see
     * the top of this file); ENOENT is the usual answer. Not after a
     * failed init: the core then goes on without shm on this rank only. */
    for (i = 0; tp->ready && !tp->connect_done && i < tp->nlocal; i++) {
        if (i != tp->local_idx) {
            tt_shm_seg_name(name, tp->job_id, tp->local_ranks[i]);
            shm_unlink(name);
        }
    }
    tt_shm_cma_fini(tp);
    free(tp->active);
    free(tp->eps);
    free(tp->local_ranks);
    free(tp);
}

static tutti_result_t tt_shm_address(tt_tp_t *tp, void *buf, size_t *len_p)
{
    tt_shm_addr_t addr = {
        .magic     = TT_SHM_ADDR_MAGIC,
        .rank      = tp->rank,
        .nlocal    = tp->nlocal,
        .pid       = (int32_t)getpid(),
        .slot_size = tp->slot_size,
        .seg_size  = tp->seg_size,
    };
    int           c;

    for (c = 0; c < TT_NUM_CHANNELS; c++) {
        addr.nslots[c]    = tp->nslots[c];
        addr.fifo_size[c] = tp->fifo_size[c];
    }

    if (*len_p < sizeof(addr)) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "shm: address buffer of %zu bytes, %zu needed",
                            *len_p, sizeof(addr));
    }
    if (tp->cma_bounce != NULL) {
        addr.cma_cookie_addr = (uint64_t)(uintptr_t)&tp->cma_cookie;
        addr.cma_cookie      = tp->cma_cookie;
    }
    snprintf(addr.name, sizeof(addr.name), "%s", tp->seg_name);
    memcpy(buf, &addr, sizeof(addr));
    *len_p = sizeof(addr);
    return TUTTI_SUCCESS;
}

static int tt_shm_reachable(tt_tp_t *tp, const tt_peer_info_t *peer)
{
    return peer->rank != tp->rank &&
           strncmp(peer->hostid, tp->hostid, TT_HOSTID_MAX) == 0 &&
           tt_shm_local_index(tp, peer->rank) >= 0;
}

/* The bytes a sender maps in the segment of the owner of addr: its pair
 * of FIFOs. */
static uint64_t tt_shm_addr_pair_size(const tt_shm_addr_t *addr)
{
    return addr->fifo_size[TT_CHANNEL_COLL] + addr->fifo_size[TT_CHANNEL_P2P];
}

/* Checks the geometry of one channel's FIFOs in a published address. */
static int tt_shm_addr_chan_ok(const tt_tp_t *tp, const tt_shm_addr_t *addr,
                               int c)
{
    return addr->nslots[c] != 0 &&
           addr->fifo_size[c] == tt_shm_fifo_size(addr->nslots[c],
                                                  addr->slot_size,
                                                  tp->page_size);
}

/* Checks a published address against what we know of its owner. */
static tutti_result_t tt_shm_addr_check(const tt_tp_t *tp, int peer_rank,
                                        const void *buf, size_t len,
                                        tt_shm_addr_t *addr)
{
    if (len != sizeof(*addr)) {
        return tutti__error(TUTTI_ERR_REMOTE,
                            "shm: address of peer %d has %zu bytes, %zu "
                            "expected", peer_rank, len, sizeof(*addr));
    }
    memcpy(addr, buf, sizeof(*addr));
    if (addr->magic != TT_SHM_ADDR_MAGIC || addr->rank != peer_rank ||
        memchr(addr->name, '\0', sizeof(addr->name)) == NULL) {
        return tutti__error(TUTTI_ERR_REMOTE,
                            "shm: address of peer %d is not an shm address "
                            "of that rank", peer_rank);
    }
    if (addr->nlocal != tp->nlocal || addr->seg_size == 0) {
        return tutti__error(TUTTI_ERR_INVALID_USAGE,
                            "shm: peer %d counts %d ranks on its host where "
                            "rank %d counts %d: the host ids disagree",
                            peer_rank, addr->nlocal, tp->rank, tp->nlocal);
    }
    if (addr->slot_size == 0 || addr->slot_size > UINT32_MAX ||
        !tt_shm_addr_chan_ok(tp, addr, TT_CHANNEL_COLL) ||
        !tt_shm_addr_chan_ok(tp, addr, TT_CHANNEL_P2P) ||
        addr->seg_size !=
            (uint64_t)(tp->nlocal - 1) * tt_shm_addr_pair_size(addr)) {
        return tutti__error(TUTTI_ERR_REMOTE,
                            "shm: address of peer %d has an inconsistent "
                            "geometry (%u + %u slots of %" PRIu64 " bytes, "
                            "FIFOs of %" PRIu64 " + %" PRIu64 ", segment "
                            "%" PRIu64 " bytes)",
                            peer_rank, addr->nslots[TT_CHANNEL_COLL],
                            addr->nslots[TT_CHANNEL_P2P], addr->slot_size,
                            addr->fifo_size[TT_CHANNEL_COLL],
                            addr->fifo_size[TT_CHANNEL_P2P], addr->seg_size);
    }
    return TUTTI_SUCCESS;
}

/* Maps our pair of FIFOs in the segment described by addr into *map_p. */
static tutti_result_t tt_shm_map_peer(tt_tp_t *tp, int peer_local,
                                      const tt_shm_addr_t *addr,
                                      void **map_p)
{
    int         idx  = tt_shm_fifo_index(peer_local, tp->local_idx);
    uint64_t    pair = tt_shm_addr_pair_size(addr);
    struct stat st;
    void       *map;
    int         fd;

    fd = shm_open(addr->name, O_RDWR, 0);
    if (fd < 0) {
        return tutti__error(TUTTI_ERR_SYSTEM,
                            "shm: cannot open segment %s of peer %d (%" PRIu64
                            " bytes): %s",
                            addr->name, addr->rank, addr->seg_size,
                            strerror(errno));
    }
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != addr->seg_size) {
        close(fd);
        return tutti__error(TUTTI_ERR_REMOTE,
                            "shm: segment %s of peer %d is not the %" PRIu64
                            " bytes it published",
                            addr->name, addr->rank, addr->seg_size);
    }
    map = mmap(NULL, pair, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_POPULATE, fd, (off_t)((uint64_t)idx * pair));
    if (map == MAP_FAILED) {
        close(fd);
        return tutti__error(TUTTI_ERR_SYSTEM,
                            "shm: mmap of %" PRIu64 " bytes at offset %" PRIu64
                            " of segment %s (peer %d) failed: %s",
                            pair, (uint64_t)idx * pair, addr->name,
                            addr->rank, strerror(errno));
    }
    close(fd);
    *map_p = map;
    return TUTTI_SUCCESS;
}

/* Checks that both FIFOs we mapped were set up by the peer for us, each
 * for its channel. */
static tutti_result_t tt_shm_fifo_check(const tt_tp_t *tp, const char *map,
                                        const tt_shm_addr_t *addr)
{
    int c;

    for (c = 0; c < TT_NUM_CHANNELS; c++) {
        const tt_shm_fifo_id_t *id = (const tt_shm_fifo_id_t *)(
            map + tt_shm_chan_offset(addr->fifo_size[TT_CHANNEL_COLL], c));

        if (id->magic != TT_SHM_MAGIC || id->job_id != tp->job_id ||
            id->owner_rank != addr->rank || id->sender_rank != tp->rank ||
            id->channel != (uint32_t)c || id->nslots != addr->nslots[c] ||
            id->slot_size != addr->slot_size) {
            return tutti__error(TUTTI_ERR_REMOTE,
                                "shm: the FIFO of channel %d for rank %d in "
                                "segment %s of peer %d belongs to rank %d "
                                "(channel %u) of job %016" PRIx64 " instead",
                                c, tp->rank, addr->name, addr->rank,
                                id->sender_rank, id->channel, id->job_id);
        }
    }
    return TUTTI_SUCCESS;
}

static tutti_result_t tt_shm_connect(tt_tp_t *tp, const tt_peer_info_t *peer,
                                     const void *buf, size_t len,
                                     tt_ep_t **ep_p)
{
    tutti_result_t    status;
    tt_shm_addr_t     addr;
    tt_shm_fifo_id_t *rx_ids[TT_NUM_CHANNELS];
    tt_ep_t          *ep;
    void             *map = NULL;
    int               peer_local, c;

    peer_local = tt_shm_local_index(tp, peer->rank);
    if (peer_local < 0 || peer_local == tp->local_idx) {
        return tutti__error(TUTTI_ERR_INVALID_USAGE,
                            "shm: rank %d cannot connect to rank %d: not "
                            "another rank of its host", tp->rank, peer->rank);
    }
    if (tp->eps[peer_local] != NULL) {
        return tutti__error(TUTTI_ERR_INVALID_USAGE,
                            "shm: rank %d is already connected to peer %d",
                            tp->rank, peer->rank);
    }
    TT_CHECK(tt_shm_addr_check(tp, peer->rank, buf, len, &addr));
    TT_CHECK(tt_shm_map_peer(tp, peer_local, &addr, &map));
    TT_CHECK_GOTO(tt_shm_fifo_check(tp, map, &addr), status, err_unmap);

    ep = calloc(1, sizeof(*ep));
    if (ep == NULL) {
        status = tutti__error(TUTTI_ERR_NO_MEMORY,
                              "shm: cannot allocate the endpoint to peer %d",
                              peer->rank);
        goto err_unmap;
    }
    for (c = 0; c < TT_NUM_CHANNELS; c++) {
        tt_shm_fifo_attach(&ep->chan[c].tx,
                           (char *)map + tt_shm_chan_offset(
                                             addr.fifo_size[TT_CHANNEL_COLL],
                                             c),
                           addr.nslots[c], addr.slot_size, tp->page_size);
        tt_shm_fifo_attach(&ep->chan[c].rx,
                           tt_shm_fifo_base(tp, peer_local, c), tp->nslots[c],
                           tp->slot_size, tp->page_size);
        rx_ids[c] = (tt_shm_fifo_id_t *)tt_shm_fifo_base(tp, peer_local, c);
    }
    tt_shm_cma_probe(tp, ep, &addr, rx_ids);
    ep->tp         = tp;
    ep->active     = -1;
    ep->peer_rank  = peer->rank;
    ep->peer_local = peer_local;
    ep->tx_map     = map;
    ep->tx_map_len = tt_shm_addr_pair_size(&addr);
    tp->eps[peer_local] = ep;
    TT_INFO(TT_SUB_SHM,
            "shm: connected to peer %d: sending through %s (%u + %u slots "
            "of %" PRIu64 " bytes)%s", peer->rank, addr.name,
            addr.nslots[TT_CHANNEL_COLL], addr.nslots[TT_CHANNEL_P2P],
            addr.slot_size,
            ep->peer_pid != 0 ? "; pulling its large messages with "
                                "process_vm_readv" : "");
    *ep_p = ep;
    return TUTTI_SUCCESS;

err_unmap:
    munmap(map, tt_shm_addr_pair_size(&addr));
    return status;
}

/*
 * Every rank has mapped every segment it needs by now (all connects
 * precede the barrier before this call), so every name of the host's job
 * can go: ours, and the others', in case a peer dies before its own
 * connect_done (ENOENT is the usual answer for theirs).
 */
static tutti_result_t tt_shm_connect_done(tt_tp_t *tp)
{
    char name[TT_SHM_NAME_MAX];
    int  i;

    tp->connect_done = 1;
    tt_shm_cma_enable(tp);
    for (i = 0; i < tp->nlocal; i++) {
        if (i != tp->local_idx) {
            tt_shm_seg_name(name, tp->job_id, tp->local_ranks[i]);
            shm_unlink(name);
        }
    }
    if (!tp->seg_linked) {
        return TUTTI_SUCCESS;
    }
    tp->seg_linked = 0;
    /* ENOENT: a peer's connect_done got there first */
    if (shm_unlink(tp->seg_name) != 0 && errno != ENOENT) {
        return tutti__error(TUTTI_ERR_SYSTEM, "shm: shm_unlink(%s): %s",
                            tp->seg_name, strerror(errno));
    }
    TT_INFO(TT_SUB_SHM, "shm: unlinked segment %s", tp->seg_name);
    return TUTTI_SUCCESS;
}

static void tt_shm_ep_close(tt_ep_t *ep)
{
    tt_tp_t *tp = ep->tp;

    tt_shm_ep_abort(ep);
    munmap(ep->tx_map, ep->tx_map_len);
    tp->eps[ep->peer_local] = NULL;
    free(ep);
}

const tt_transport_ops_t tt_shm_ops = {
    .size         = sizeof(tt_transport_ops_t),
    .name         = "shm",
    .caps         = TT_CAP_SAME_HOST_ONLY | TT_CAP_RECV_DELIVER,
    .init         = tt_shm_init,
    .fini         = tt_shm_fini,
    .address      = tt_shm_address,
    .reachable    = tt_shm_reachable,
    .connect      = tt_shm_connect,
    .connect_done = tt_shm_connect_done,
    .isend        = tt_shm_isend,
    .irecv        = tt_shm_irecv,
    .progress     = tt_shm_progress,
    .ep_close     = tt_shm_ep_close,
    .wait_fd      = NULL,
    .arm          = NULL,
    .slice_hint   = TT_SHM_SLICE_HINT,
};
