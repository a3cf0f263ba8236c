/*
 * Gloo as a peer (--peer gloo): gloo::allreduce and gloo::allgather over
 * Gloo's TCP transport, in the same processes and on the same buffers as
 * tutti. Built only when meson finds libgloo (Debian's libgloo-dev).
 *
 * Rendezvous: rank 0 makes a fresh directory (under TUTTI_BENCH_GLOO_DIR,
 * default /tmp; it must be shared when ranks span hosts), its path reaches
 * the other ranks through a tutti allgather, every rank connects a full
 * mesh through a gloo FileStore there, and rank 0 removes the directory
 * once everyone is connected. Ranks on one host talk over 127.0.0.1.
 *
 * Each timed call reuses Gloo options built once per size and placement
 * (prepare()), so the loop holds nothing but gloo::allreduce/allgather, as
 * tutti's holds nothing but its call. Gloo has no average (avg is n/a) and
 * no bfloat16. Gloo reports errors by exceptions; each is caught here and
 * becomes the bench's error text.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <chrono>
#include <exception>
#include <memory>
#include <string>

#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/config.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/transport/tcp/device.h>

#include "bench.h"

namespace {

typedef void (*reduce_fn)(void *, const void *, const void *, size_t);

struct gloo_peer {
    std::shared_ptr<gloo::rendezvous::Context> ctx;
};

struct gloo_prep {
    std::unique_ptr<gloo::AllreduceOptions> reduce;
    std::unique_ptr<gloo::AllgatherOptions> gather;
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

const char *gloo_supports(bench_coll_id_t coll, tutti_datatype_t dt,
                          tutti_redop_t op)
{
    if (dt == TUTTI_BFLOAT16) {
        return "no Gloo bfloat16";
    }
    if (coll == BENCH_ALLREDUCE && op == TUTTI_AVG) {
        return "no Gloo avg";
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
gloo::AllreduceOptions *make_allreduce(gloo_peer *peer, bench_call_t *c)
{
    auto *o = new gloo::AllreduceOptions(peer->ctx);
    T    *out = static_cast<T *>(c->recvbuf);

    if (!c->inplace) {
        o->setInput(const_cast<T *>(static_cast<const T *>(c->sendbuf)),
                    c->count);
    }
    o->setOutput(out, c->count);
    o->setReduceFunction(reduce_for<T>(c->op));
    return o;
}

gloo::AllreduceOptions *allreduce_for(gloo_peer *peer, bench_call_t *c)
{
    switch (c->dtype) {
    case TUTTI_INT8:
        return make_allreduce<int8_t>(peer, c);
    case TUTTI_UINT8:
        return make_allreduce<uint8_t>(peer, c);
    case TUTTI_INT32:
        return make_allreduce<int32_t>(peer, c);
    case TUTTI_UINT32:
        return make_allreduce<uint32_t>(peer, c);
    case TUTTI_INT64:
        return make_allreduce<int64_t>(peer, c);
    case TUTTI_UINT64:
        return make_allreduce<uint64_t>(peer, c);
    case TUTTI_FLOAT16:
        return make_allreduce<gloo::float16>(peer, c);
    case TUTTI_FLOAT64:
        return make_allreduce<double>(peer, c);
    default:
        return make_allreduce<float>(peer, c);
    }
}

int run_noop(bench_call_t *c)
{
    (void)c;
    return 0;
}

int run_allreduce(bench_call_t *c)
{
    try {
        gloo::allreduce(*static_cast<gloo_prep *>(c->prep)->reduce);
    } catch (const std::exception &e) {
        return bench_err("gloo::allreduce: %s", e.what());
    }
    return 0;
}

int run_allgather(bench_call_t *c)
{
    try {
        gloo::allgather(*static_cast<gloo_prep *>(c->prep)->gather);
    } catch (const std::exception &e) {
        return bench_err("gloo::allgather: %s", e.what());
    }
    return 0;
}

/* Allgather moves bytes: the type only sets the block size. */
gloo::AllgatherOptions *allgather_for(gloo_peer *peer, bench_call_t *c)
{
    size_t block = c->count * tutti_datatype_size(c->dtype);
    auto  *o     = new gloo::AllgatherOptions(peer->ctx);

    if (!c->inplace) { /* without an input Gloo gathers in place */
        o->setInput(const_cast<uint8_t *>(
                        static_cast<const uint8_t *>(c->sendbuf)),
                    block);
    }
    o->setOutput(static_cast<uint8_t *>(c->recvbuf),
                 block * (size_t)c->world->nranks);
    return o;
}

int gloo_prepare(bench_coll_id_t coll, bench_call_t *c)
{
    auto *peer = static_cast<gloo_peer *>(c->peer);

    if (c->count == 0) { /* Gloo rejects empty buffers; nothing to move */
        c->fn   = run_noop;
        c->prep = NULL;
        return 0;
    }
    try {
        auto *prep = new gloo_prep;

        if (coll == BENCH_ALLREDUCE) {
            prep->reduce.reset(allreduce_for(peer, c));
            c->fn = run_allreduce;
        } else {
            prep->gather.reset(allgather_for(peer, c));
            c->fn = run_allgather;
        }
        c->prep = prep;
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
