/*
 * The shared-memory transport's single-copy path: a large message is not
 * copied into the FIFO by its sender and out again by its receiver; the
 * receiver reads it straight from the sender's buffer with process_vm_readv
 * (Linux cross-memory attach, CMA). The slot protocol is in shm.h; this
 * file owns the set-up (a cookie each rank publishes, the probe that reads
 * it at connect, the flag the receiver hands its sender) and the pull.
 *
 * Who may pull is settled once per ordered pair at connect, never per
 * message: once a sender has published a descriptor there is no going back
 * to the FIFO for that message, so the receiver proves first that it can
 * read the sender (same pid namespace, ptrace permission, a kernel with
 * CMA: EPERM, ESRCH or ENOSYS otherwise) and that the pid names the right
 * process (the cookie's value). A failed probe is logged at INFO once per
 * instance; its pairs keep the two-copy FIFO path.
 *
 * Nor is it used when the host's ranks outnumber its CPUs: a pulled send
 * completes only when its receiver gets a CPU to pull it, where a FIFO
 * lets the sender run ahead by a ring's worth: 4 ranks on 2 CPUs ran
 * allreduce and allgather of 256 KiB-64 MiB 1.05-1.9x slower with it.
 *
 * A pull that fails later is an error of that receive, never a hang: the
 * sender died (ESRCH) or its buffer is no longer mapped (EFAULT). The slot
 * stays where it is, so later receives from that peer fail too (as a
 * mismatch, or as this one if they expect the same message) until the
 * core notices the dead peer.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shm.h"

tutti_result_t tt_shm_cma_init(tt_tp_t *tp)
{
    int ncpus;

    if (tp->cma_min == 0) {
        return TUTTI_SUCCESS;
    }
    ncpus = tutti__ncpus();
    if (ncpus > 0 && tp->nlocal > ncpus) {
        TT_INFO(TT_SUB_SHM,
                "shm: single copy off: %d ranks on this host share %d "
                "cpus, and a pulled send waits for its receiver to run",
                tp->nlocal, ncpus);
        tp->cma_min = 0;
        return TUTTI_SUCCESS;
    }
    if (tutti__random_bytes(&tp->cma_cookie, sizeof(tp->cma_cookie)) != 0) {
        tp->cma_cookie = tp->job_id ^ ((uint64_t)getpid() << 32) ^
                         (uint64_t)(uintptr_t)tp;
    }
    tp->cma_cookie |= 1; /* never 0, the value of unwritten memory */
    tp->cma_bounce = aligned_alloc(TT_CACHE_LINE, TT_SHM_CMA_BOUNCE);
    if (tp->cma_bounce == NULL) {
        return tutti__error(TUTTI_ERR_NO_MEMORY,
                            "shm: cannot allocate a bounce buffer of %u "
                            "bytes for single-copy receives",
                            TT_SHM_CMA_BOUNCE);
    }
    return TUTTI_SUCCESS;
}

void tt_shm_cma_fini(tt_tp_t *tp)
{
    free(tp->cma_bounce);
    tp->cma_bounce = NULL;
}

/* Reads len bytes at raddr in process pid into buf; returns the count
 * read or -1 with errno set. */
static ssize_t tt_shm_cma_read(pid_t pid, void *buf, uint64_t raddr,
                               size_t len)
{
    struct iovec local  = {.iov_base = buf, .iov_len = len};
    struct iovec remote = {.iov_base = (void *)(uintptr_t)raddr,
                           .iov_len  = len};

    return process_vm_readv(pid, &local, 1, &remote, 1, 0);
}

void tt_shm_cma_probe(tt_tp_t *tp, tt_ep_t *ep, const tt_shm_addr_t *addr,
                      tt_shm_fifo_id_t *const rx_ids[TT_NUM_CHANNELS])
{
    uint64_t value = 0;
    ssize_t  n;
    int      c;

    /* we do not pull, or the peer does not offer */
    if (tp->cma_min == 0 || tp->cma_failed || addr->cma_cookie_addr == 0 ||
        addr->pid <= 0) {
        return;
    }
    n = tt_shm_cma_read(addr->pid, &value, addr->cma_cookie_addr,
                        sizeof(value));
    if (n != (ssize_t)sizeof(value) || value != addr->cma_cookie) {
        tp->cma_failed = 1;
        TT_INFO(TT_SUB_SHM,
                "shm: single copy off for this rank: process_vm_readv of "
                "peer %d (pid %d): %s; its messages, and those of peers "
                "connected later, go through the FIFOs",
                addr->rank, (int)addr->pid,
                n < 0 ? strerror(errno)
                      : "another process (its cookie is not there)");
        return;
    }
    ep->peer_pid = addr->pid;
    for (c = 0; c < TT_NUM_CHANNELS; c++) {
        rx_ids[c]->cma = 1;
    }
}

void tt_shm_cma_enable(tt_tp_t *tp)
{
    int i, c;

    for (i = 0; i < tp->nlocal; i++) {
        tt_ep_t *ep = tp->eps[i];

        if (ep == NULL || tp->cma_min == 0) {
            continue;
        }
        for (c = 0; c < TT_NUM_CHANNELS; c++) {
            tt_shm_fifo_t          *tx = &ep->chan[c].tx;
            const tt_shm_fifo_id_t *id =
                (const tt_shm_fifo_id_t *)((char *)tx->hdrs -
                                           TT_SHM_HDRS_OFFSET);

            tx->cma_min = id->cma ? tp->cma_min : SIZE_MAX;
        }
        TT_INFO(TT_SUB_SHM, "shm: peer %d pulls our messages of %zu bytes "
                "or more with process_vm_readv: %s", ep->peer_rank,
                tp->cma_min,
                ep->chan[TT_CHANNEL_COLL].tx.cma_min != SIZE_MAX ? "yes"
                                                                 : "no");
    }
}

/* The error of a failed pull: who, how far, and why. */
static tutti_result_t tt_shm_cma_error(const tt_ep_t *ep, uint64_t len,
                                       uint64_t done, ssize_t n, int err)
{
    if (n >= 0 || err == EFAULT) {
        return tutti__error(TUTTI_ERR_REMOTE,
                            "shm: peer %d (pid %d) unmapped the buffer of a "
                            "%" PRIu64 "-byte message while this rank "
                            "pulled it at offset %" PRIu64,
                            ep->peer_rank, (int)ep->peer_pid, len, done);
    }
    if (err == ESRCH) {
        return tutti__error(TUTTI_ERR_REMOTE,
                            "shm: peer %d (pid %d) exited while this rank "
                            "pulled a %" PRIu64 "-byte message from it (at "
                            "offset %" PRIu64 ")",
                            ep->peer_rank, (int)ep->peer_pid, len, done);
    }
    return tutti__error(TUTTI_ERR_SYSTEM,
                        "shm: process_vm_readv of %" PRIu64 " bytes from "
                        "peer %d (pid %d) at offset %" PRIu64 " failed: %s",
                        len - done, ep->peer_rank, (int)ep->peer_pid, done,
                        strerror(err));
}

tutti_result_t tt_shm_cma_pull(const tt_ep_t *ep, tt_req_t *req,
                               const tt_shm_slot_hdr_t *hdr)
{
    tt_shm_cma_desc_t desc;
    uint64_t          len  = hdr->msg_len;
    uint64_t          done = req->priv[TT_SHM_PRIV_DONE];
    uint64_t          end  = TT_MIN(len, done + TT_SHM_CMA_STEP);
    char             *buf  = (char *)(uintptr_t)req->priv[TT_SHM_PRIV_BUF];
    ssize_t           n;

    memcpy(&desc, hdr->inl, sizeof(desc));
    while (done < end) {
        /* Copy receives take the step in one call; delivering ones go
         * through the cache-resident bounce buffer, whose pieces the
         * deliver hook reads before the next pull overwrites them. */
        size_t want = req->deliver != NULL
                          ? TT_MIN(end - done, TT_SHM_CMA_BOUNCE)
                          : (size_t)(end - done);
        char  *dst  = req->deliver != NULL ? ep->tp->cma_bounce : buf + done;

        n = tt_shm_cma_read(ep->peer_pid, dst, desc.addr + done, want);
        /* A short read means the rest is not readable: the next call
         * would fail with EFAULT, and a partial piece could split an
         * element under deliver. */
        if (n != (ssize_t)want) {
            req->priv[TT_SHM_PRIV_DONE] = done;
            return tt_shm_cma_error(ep, len, done, n, errno);
        }
        if (req->deliver != NULL) {
            req->deliver(req, done, dst, want);
        }
        done += want;
    }
    req->priv[TT_SHM_PRIV_DONE] = done;
    return done == len ? TUTTI_SUCCESS : TUTTI_INPROGRESS;
}
