/*
 * Gloo as a peer (--peer gloo): Gloo's twin of each collective over its
 * TCP transport, in the same processes and on the same buffers as tutti.
 * Built only when meson finds libgloo (Debian's libgloo-dev, a 2022
 * snapshot). The twins, and what the snapshot lacks:
 *
 *   allreduce, allgather, reduce, broadcast   gloo::allreduce, ...; in
 *                       place: an output and no input
 *   reduce_scatter      ReduceScatterHalvingDoubling, the one reduce-
 *                       scatter Gloo has: an older-style algorithm that
 *                       works in place only, leaving the result at the
 *                       buffer's start (prepare() points the check there);
 *                       out of place is n/a
 *   alltoall            gloo::alltoall; it has no in-place form (n/a)
 *   sendrecv            unbound buffers: recv from the left, send to the
 *                       right, wait for both
 *   barrier             gloo::barrier
 *
 * Rendezvous: rank 0 makes a fresh directory (under TUTTI_BENCH_GLOO_DIR,
 * default /tmp; it must be shared when ranks span hosts), its path reaches
 * the other ranks through a tutti allgather, every rank connects a full
 * mesh through a gloo FileStore there, and rank 0 removes the directory
 * once everyone is connected. Ranks on one host talk over 127.0.0.1.
 *
 * Each timed call reuses Gloo options (or the algorithm object, or the
 * buffers) built once per size and placement (prepare()), so the loop
 * holds nothing but the Gloo call, as tutti's holds nothing but its call.
 * Gloo has no average (avg is n/a) and no bfloat16. Gloo reports errors by
 * exceptions; each is caught here and becomes the bench's error text.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <chrono>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/alltoall.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/config.h>
#include <gloo/math.h>
#include <gloo/reduce.h>
#include <gloo/reduce_scatter.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/transport/tcp/device.h>

#include "bench.h"

namespace {

typedef void (*reduce_fn)(void *, const void *, const void *, size_t);

struct gloo_peer {
    std::shared_ptr<gloo::rendezvous::Context> ctx;
};

/* The unbound buffers' slot for sendrecv: a prefix no Gloo collective
 * uses (theirs are small), so it cannot match a collective's message. */
const uint64_t sendrecv_slot = 0x7eull << 56;

/* What prepare() builds; one member is set, for the collective run. */
struct gloo_prep {
    std::unique_ptr<gloo::AllreduceOptions>          allreduce;
    std::unique_ptr<gloo::AllgatherOptions>          allgather;
    std::unique_ptr<gloo::ReduceOptions>             reduce;
    std::unique_ptr<gloo::BroadcastOptions>          broadcast;
    std::unique_ptr<gloo::AlltoallOptions>           alltoall;
    std::unique_ptr<gloo::BarrierOptions>            barrier;
    std::unique_ptr<gloo::Algorithm>                 algorithm;
    std::unique_ptr<gloo::transport::UnboundBuffer> send, recv;
    int                                              right = 0, left = 0;
};

/* Rank 0's directory path, shared through tutti. */
int share_dir(bench_world_t *w, std::string *dir)
{
    std::string all((size_t)w->nranks * 256, '\0');
    char        mine[256] = "";

    if (w->rank == 0) {
        const char *base = getenv("TUTTI_BENCH_GLOO_DIR");

        snprintf(mine, sizeof(mine), "%s/tutti-bench-gloo-XXXXXX",
                 base ? base : "/tmp");
        if (mkdtemp(mine) == NULL) {
            mine[0] = '\0'; /* the others see "" and fail too */
        }
    }
    tutti_result_t rc = tutti_allgather(mine, &all[0], sizeof(mine),
                                        TUTTI_UINT8, w->comm);
    if (rc != TUTTI_SUCCESS) {
        return bench_tutti_err(rc, "tutti_allgather of the gloo directory");
    }
    *dir = std::string(all.c_str());
    return dir->empty() ? bench_err("--peer gloo: cannot create a "
                                    "rendezvous directory")
                        : 0;
}

void remove_dir(const std::string &dir)
{
    DIR *d = opendir(dir.c_str());

    if (d == NULL) {
        return;
    }
    while (struct dirent *e = readdir(d)) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            unlink((dir + "/" + e->d_name).c_str());
        }
    }
    closedir(d);
    rmdir(dir.c_str());
}

int gloo_init(bench_world_t *w, void **ctx_p)
{
    std::string dir;

    if (share_dir(w, &dir) != 0) {
        return -1;
    }
    try {
        gloo::transport::tcp::attr attr;
        attr.hostname = w->same_host ? "127.0.0.1" : w->info[w->rank].host;

        auto dev = gloo::transport::tcp::CreateDevice(attr);
        auto peer = new gloo_peer;
        gloo::rendezvous::FileStore store(dir);

        peer->ctx = std::make_shared<gloo::rendezvous::Context>(w->rank,
                                                                w->nranks);
        peer->ctx->setTimeout(std::chrono::milliseconds(
            TUTTI_DEFAULT_TIMEOUT_MS));
        peer->ctx->connectFullMesh(store, dev);
        *ctx_p = peer;
    } catch (const std::exception &e) {
        return bench_err("--peer gloo: connecting: %s", e.what());
    }
    if (bench_barrier(w) != 0) {
        return -1;
    }
    if (w->rank == 0) {
        remove_dir(dir);
    }
    return 0;
}

void gloo_fini(void *ctx)
{
    delete static_cast<gloo_peer *>(ctx);
}

const char *gloo_supports(bench_coll_id_t coll, const bench_call_t *c)
{
    tutti_datatype_t dt      = c->dtype;
    tutti_redop_t    op      = c->op;
    int              inplace = c->inplace;
    bool             reduces = coll == BENCH_ALLREDUCE ||
                               coll == BENCH_REDUCE ||
                               coll == BENCH_REDUCE_SCATTER;

    if (coll == BENCH_BARRIER) {
        return NULL;
    }
    if (dt == TUTTI_BFLOAT16) {
        return "no Gloo bfloat16";
    }
    if (reduces && op == TUTTI_AVG) {
        return "no Gloo avg";
    }
    if (coll == BENCH_REDUCE_SCATTER && !inplace) {
        return "Gloo's reduce-scatter works in place only";
    }
    if (coll == BENCH_ALLTOALL && inplace) {
        return "Gloo's alltoall has no in-place form";
    }
    return NULL;
}

template <typename T>
reduce_fn reduce_for(tutti_redop_t op)
{
    switch (op) {
    case TUTTI_PROD:
        return static_cast<reduce_fn>(&gloo::product<T>);
    case TUTTI_MAX:
        return static_cast<reduce_fn>(&gloo::max<T>);
    case TUTTI_MIN:
        return static_cast<reduce_fn>(&gloo::min<T>);
    default:
        return static_cast<reduce_fn>(&gloo::sum<T>);
    }
}

template <typename T>
const gloo::ReductionFunction<T> *reduction_for(tutti_redop_t op)
{
    switch (op) {
    case TUTTI_PROD:
        return gloo::ReductionFunction<T>::product;
    case TUTTI_MAX:
        return gloo::ReductionFunction<T>::max;
    case TUTTI_MIN:
        return gloo::ReductionFunction<T>::min;
    default:
        return gloo::ReductionFunction<T>::sum;
    }
}

template <typename T>
T *send_as(const bench_call_t *c)
{
    return const_cast<T *>(static_cast<const T *>(c->sendbuf));
}

/*
 * The typed builders for the reductions, one struct per collective so
 * that by_type() below can pick T once for all of them. Each fills its
 * member of `prep`.
 */
template <typename T>
struct make_allreduce {
    static void make(gloo_peer *peer, bench_call_t *c, gloo_prep *prep)
    {
        auto *o = new gloo::AllreduceOptions(peer->ctx);

        prep->allreduce.reset(o);
        if (!c->inplace) {
            o->setInput(send_as<T>(c), c->count);
        }
        o->setOutput(static_cast<T *>(c->recvbuf), c->count);
        o->setReduceFunction(reduce_for<T>(c->op));
    }
};

template <typename T>
struct make_reduce {
    static void make(gloo_peer *peer, bench_call_t *c, gloo_prep *prep)
    {
        auto *o = new gloo::ReduceOptions(peer->ctx);

        prep->reduce.reset(o);
        if (!c->inplace) {
            o->setInput(send_as<T>(c), c->count);
        }
        o->setOutput(static_cast<T *>(c->recvbuf), c->count);
        o->setRoot(c->root);
        o->setReduceFunction(reduce_for<T>(c->op));
    }
};

/* In place only (supports() says so): the input is the whole send
 * buffer, and rank r's block ends up at its start. */
template <typename T>
struct make_reduce_scatter {
    static void make(gloo_peer *peer, bench_call_t *c, gloo_prep *prep)
    {
        int              n = c->world->nranks;
        std::vector<T *> ptrs(1, send_as<T>(c));
        std::vector<int> counts((size_t)n, (int)c->count);

        prep->algorithm.reset(new gloo::ReduceScatterHalvingDoubling<T>(
            peer->ctx, ptrs, (int)c->count * n, counts,
            reduction_for<T>(c->op)));
        c->recvbuf = ptrs[0];
    }
};

/* Make<T>::make() for the C++ type of c->dtype. */
template <template <typename> class Make>
void by_type(gloo_peer *peer, bench_call_t *c, gloo_prep *prep)
{
    switch (c->dtype) {
    case TUTTI_INT8:
        return Make<int8_t>::make(peer, c, prep);
    case TUTTI_UINT8:
        return Make<uint8_t>::make(peer, c, prep);
    case TUTTI_INT32:
        return Make<int32_t>::make(peer, c, prep);
    case TUTTI_UINT32:
        return Make<uint32_t>::make(peer, c, prep);
    case TUTTI_INT64:
        return Make<int64_t>::make(peer, c, prep);
    case TUTTI_UINT64:
        return Make<uint64_t>::make(peer, c, prep);
    case TUTTI_FLOAT16:
        return Make<gloo::float16>::make(peer, c, prep);
    case TUTTI_FLOAT64:
        return Make<double>::make(peer, c, prep);
    default:
        return Make<float>::make(peer, c, prep);
    }
}

int run_noop(bench_call_t *c)
{
    (void)c;
    return 0;
}

gloo_prep *prep_of(bench_call_t *c)
{
    return static_cast<gloo_prep *>(c->prep);
}

/* One Gloo call; its exception becomes the bench's error text. */
template <typename F>
int gloo_call(const char *what, F call)
{
    try {
        call();
    } catch (const std::exception &e) {
        return bench_err("%s: %s", what, e.what());
    }
    return 0;
}

int run_allreduce(bench_call_t *c)
{
    return gloo_call("gloo::allreduce",
                     [c] { gloo::allreduce(*prep_of(c)->allreduce); });
}

int run_allgather(bench_call_t *c)
{
    return gloo_call("gloo::allgather",
                     [c] { gloo::allgather(*prep_of(c)->allgather); });
}

int run_reduce(bench_call_t *c)
{
    return gloo_call("gloo::reduce",
                     [c] { gloo::reduce(*prep_of(c)->reduce); });
}

int run_broadcast(bench_call_t *c)
{
    return gloo_call("gloo::broadcast",
                     [c] { gloo::broadcast(*prep_of(c)->broadcast); });
}

int run_alltoall(bench_call_t *c)
{
    return gloo_call("gloo::alltoall",
                     [c] { gloo::alltoall(*prep_of(c)->alltoall); });
}

int run_reduce_scatter(bench_call_t *c)
{
    return gloo_call("gloo::ReduceScatterHalvingDoubling",
                     [c] { prep_of(c)->algorithm->run(); });
}

int run_barrier(bench_call_t *c)
{
    return gloo_call("gloo::barrier",
                     [c] { gloo::barrier(*prep_of(c)->barrier); });
}

/* Posts the receive first, so the left neighbour's send finds it. */
int run_sendrecv(bench_call_t *c)
{
    return gloo_call("gloo send/recv", [c] {
        gloo_prep *p = prep_of(c);

        p->recv->recv(p->left, sendrecv_slot);
        p->send->send(p->right, sendrecv_slot);
        p->send->waitSend();
        p->recv->waitRecv();
    });
}

/*
 * The collectives that only move data take bytes: the type sets nothing
 * but the block size. Each builder fills its member of prep and returns
 * the call the timed loop makes.
 */
bench_call_fn allgather_for(gloo_peer *peer, bench_call_t *c, gloo_prep *p)
{
    size_t block = c->count * tutti_datatype_size(c->dtype);
    auto  *o     = new gloo::AllgatherOptions(peer->ctx);

    p->allgather.reset(o);
    if (!c->inplace) { /* without an input Gloo gathers in place */
        o->setInput(send_as<uint8_t>(c), block);
    }
    o->setOutput(static_cast<uint8_t *>(c->recvbuf),
                 block * (size_t)c->world->nranks);
    return run_allgather;
}

bench_call_fn broadcast_for(gloo_peer *peer, bench_call_t *c, gloo_prep *p)
{
    size_t bytes = c->count * tutti_datatype_size(c->dtype);
    auto  *o     = new gloo::BroadcastOptions(peer->ctx);

    p->broadcast.reset(o);
    if (!c->inplace && c->world->rank == c->root) {
        o->setInput(send_as<uint8_t>(c), bytes);
    }
    o->setOutput(static_cast<uint8_t *>(c->recvbuf), bytes);
    o->setRoot(c->root);
    return run_broadcast;
}

bench_call_fn alltoall_for(gloo_peer *peer, bench_call_t *c, gloo_prep *p)
{
    size_t bytes = c->count * tutti_datatype_size(c->dtype) *
                   (size_t)c->world->nranks;
    auto  *o     = new gloo::AlltoallOptions(peer->ctx);

    p->alltoall.reset(o);
    o->setInput(send_as<uint8_t>(c), bytes);
    o->setOutput(static_cast<uint8_t *>(c->recvbuf), bytes);
    return run_alltoall;
}

bench_call_fn sendrecv_for(gloo_peer *peer, bench_call_t *c, gloo_prep *p)
{
    size_t bytes = c->count * tutti_datatype_size(c->dtype);
    int    n     = c->world->nranks;

    p->send  = peer->ctx->createUnboundBuffer(send_as<uint8_t>(c), bytes);
    p->recv  = peer->ctx->createUnboundBuffer(c->recvbuf, bytes);
    p->right = (c->world->rank + 1) % n;
    p->left  = (c->world->rank + n - 1) % n;
    return run_sendrecv;
}

bench_call_fn prepare_for(bench_coll_id_t coll, gloo_peer *peer,
                          bench_call_t *c, gloo_prep *p)
{
    switch (coll) {
    case BENCH_ALLREDUCE:
        by_type<make_allreduce>(peer, c, p);
        return run_allreduce;
    case BENCH_REDUCE:
        by_type<make_reduce>(peer, c, p);
        return run_reduce;
    case BENCH_REDUCE_SCATTER:
        if ((size_t)c->world->nranks * c->count > INT32_MAX) {
            throw std::length_error("count does not fit Gloo's int");
        }
        by_type<make_reduce_scatter>(peer, c, p);
        return run_reduce_scatter;
    case BENCH_ALLGATHER:
        return allgather_for(peer, c, p);
    case BENCH_BROADCAST:
        return broadcast_for(peer, c, p);
    case BENCH_ALLTOALL:
        return alltoall_for(peer, c, p);
    case BENCH_SENDRECV:
        return sendrecv_for(peer, c, p);
    default:
        p->barrier.reset(new gloo::BarrierOptions(peer->ctx));
        return run_barrier;
    }
}

int gloo_prepare(bench_coll_id_t coll, bench_call_t *c)
{
    auto *peer = static_cast<gloo_peer *>(c->peer);

    if (c->count == 0 && coll != BENCH_BARRIER) {
        c->fn   = run_noop; /* Gloo rejects empty buffers; nothing to move */
        c->prep = NULL;
        return 0;
    }
    try {
        std::unique_ptr<gloo_prep> prep(new gloo_prep);

        c->fn   = prepare_for(coll, peer, c, prep.get());
        c->prep = prep.release();
    } catch (const std::exception &e) {
        return bench_err("--peer gloo: %s", e.what());
    }
    return 0;
}

void gloo_release(bench_call_t *c)
{
    delete static_cast<gloo_prep *>(c->prep);
    c->prep = NULL;
}

const char *gloo_version()
{
    static char v[32];

    snprintf(v, sizeof(v), "Gloo %d.%d.%d", GLOO_VERSION_MAJOR,
             GLOO_VERSION_MINOR, GLOO_VERSION_PATCH);
    return v;
}

} /* namespace */

extern "C" const bench_peer_ops_t *bench_peer_gloo(void)
{
    static bench_peer_ops_t ops;

    if (ops.name == NULL) { /* C++17 has no designated initializers */
        ops.init     = gloo_init;
        ops.fini     = gloo_fini;
        ops.supports = gloo_supports;
        ops.prepare  = gloo_prepare;
        ops.release  = gloo_release;
        ops.version  = gloo_version;
        ops.name     = "gloo";
    }
    return &ops;
}
