/*
 * Double binary tree allreduce (the shape NCCL uses).
 *
 * Two binary trees span the ranks; each carries half of the vector. Tree 0
 * is the in-order tree over u = rank + 1 (node u's children are u -+ b/2,
 * b = u's lowest set bit; nodes past n are skipped), whose leaves are the
 * even ranks. Tree 1 is the same tree over the ranks mirrored (n even) or
 * shifted by one (n odd), so that its leaves are the odd ranks: no rank is
 * an inner node of both, and each sends about 2 * count elements in all.
 * Each half is cut into chunks (TT_TREE_CHUNK_BYTES); per chunk, a node
 * receive-reduces its children's partial sums into RECV and forwards the
 * last one to its parent as it lands (recv-reduce-send); the root divides
 * (AVG) and sends the result down, which each node forwards to its
 * children (recv-copy-send). Chunks pipeline up and down both trees.
 *
 * Cost: per chunk and tree, depth ~log2(n) hops up and down; each rank
 * sends at most 4 messages per chunk pair and 2 * count + 1 elements:
 * latency ~2 log2(n) alpha, bandwidth ~2 bytes beta. Any n; no SCRATCH.
 */
#include "algo.h"
#include "internal.h"

/* Pipeline chunk of one tree; provisional until the tuner measures. */
#define TT_TREE_CHUNK_BYTES (64 * 1024)
#define TT_TREE_MAX_CHUNKS  64

typedef struct tree_node {
    int parent;      /* rank, or -1 at the root */
    int nchildren;
    int children[2]; /* ranks */
} tree_node_t;

static int tree_lowbit(int u)
{
    return u & -u;
}

/* Parent of in-order node u in 1..n, 0 for the root. */
static int tree_parent(int u, int n)
{
    int root = 1;

    while (root * 2 <= n) {
        root *= 2;
    }
    if (u == root) {
        return 0;
    }
    do { /* climb past the nodes that do not exist */
        int b = tree_lowbit(u);
        u = (u & 2 * b) ? u - b : u + b;
    } while (u > n);
    return u;
}

/* Child of u (left or right), 0 if none: a missing right child is
 * replaced by the first existing node down its left spine. */
static int tree_child(int u, int n, int right)
{
    int b = tree_lowbit(u), c;

    if (b == 1) {
        return 0;
    }
    c = right ? u + b / 2 : u - b / 2;
    while (c > n) {
        if (tree_lowbit(c) == 1) {
            return 0;
        }
        c -= tree_lowbit(c) / 2;
    }
    return c;
}

/* Rank <-> tree-1 position: mirrored for even n, shifted for odd n. */
static int tree_map(int x, int n, int t)
{
    if (t == 0) {
        return x;
    }
    return n % 2 == 0 ? n - 1 - x : (x + 1) % n;
}

static int tree_unmap(int v, int n, int t)
{
    if (t == 0) {
        return v;
    }
    return n % 2 == 0 ? n - 1 - v : (v + n - 1) % n;
}

static tree_node_t tree_node(int rank, int n, int t)
{
    int         u = tree_map(rank, n, t) + 1, i, c;
    tree_node_t node = {.parent = -1};

    c = tree_parent(u, n);
    if (c > 0) {
        node.parent = tree_unmap(c - 1, n, t);
    }
    for (i = 0; i < 2; i++) {
        c = tree_child(u, n, i);
        if (c > 0) {
            node.children[node.nchildren++] = tree_unmap(c - 1, n, t);
        }
    }
    return node;
}

static tutti_result_t tree_allreduce_supports(const tt_coll_args_t *args,
                                              const char **why_p)
{
    (void)args;
    (void)why_p;
    return TUTTI_SUCCESS;
}

/* Reduce up one tree for elements [off, off + len); returns the index of
 * the last step (the one that sent to the parent or finished the sum). */
static int tree_up(const tt_coll_args_t *args, tt_sched_t *s,
                   const tree_node_t *node, size_t off, size_t len)
{
    tt_buf_t in  = args->inplace ? TT_BUF_RECV : TT_BUF_SEND;
    int      st  = -1, i;

    if (node->nchildren == 0) {
        return tutti__sched_send(s, node->parent, tt_range(in, off), len, 0,
                                 NULL);
    }
    for (i = 0; i < node->nchildren; i++) {
        tt_step_t step = {
            .flags     = TT_STEP_RECV,
            .recv_mode = TT_RECV_REDUCE,
            .recv_peer = node->children[i],
            .count     = len,
            .dst       = tt_range(TT_BUF_RECV, off),
            .local     = tt_range(i == 0 ? in : TT_BUF_RECV, off)};

        if (i == node->nchildren - 1) {
            if (node->parent >= 0) {
                step.flags    |= TT_STEP_SEND | TT_STEP_FORWARD;
                step.send_peer = node->parent;
            } else if (args->op == TUTTI_AVG) {
                step.flags |= TT_STEP_FINALIZE;
            }
        }
        if (i > 0) {
            step.ndeps   = 1;
            step.deps[0] = st;
        }
        st = tutti__sched_add(s, &step);
        if (st < 0) {
            return st;
        }
    }
    return st;
}

/* Broadcast the result down one tree, after step `up`. */
static int tree_down(tt_sched_t *s, const tree_node_t *node, size_t off,
                     size_t len, int up)
{
    int st = 0, src = up, i = 0;

    if (node->parent >= 0) {
        /* after `up`: in place, it read what this overwrites */
        tt_step_t step = {
            .flags     = TT_STEP_RECV,
            .recv_mode = TT_RECV_COPY,
            .recv_peer = node->parent,
            .count     = len,
            .dst       = tt_range(TT_BUF_RECV, off),
            .ndeps     = 1,
            .deps      = {up}};

        if (node->nchildren > 0) {
            step.flags    |= TT_STEP_SEND | TT_STEP_FORWARD;
            step.send_peer = node->children[i++];
        }
        src = tutti__sched_add(s, &step);
    }
    /* the other children get the chunk once it is all here */
    for (; i < node->nchildren && src >= 0; i++) {
        st = tutti__sched_send(s, node->children[i],
                               tt_range(TT_BUF_RECV, off), len, 1, &src);
    }
    return st < 0 ? st : src;
}

static tutti_result_t tree_allreduce_build(const tt_coll_args_t *args,
                                           tt_sched_t *s)
{
    int         n = args->nranks, r = args->rank, t, c, nchunks, st;
    size_t      count = args->count, esize;
    tree_node_t node[2];

    if (n == 1) {
        return tt_step_res(tutti__sched_add(s, &(tt_step_t){
            .flags = TT_STEP_COPY |
                     (args->op == TUTTI_AVG ? TT_STEP_FINALIZE : 0),
            .count = count,
            .src   = tt_range(args->inplace ? TT_BUF_RECV : TT_BUF_SEND, 0),
            .dst   = tt_range(TT_BUF_RECV, 0)}));
    }
    esize   = tutti_datatype_size(args->datatype);
    nchunks = (int)TT_MIN(TT_DIV_UP(tt_chunk_count(count, 2, 0) * esize,
                                    TT_TREE_CHUNK_BYTES),
                          TT_TREE_MAX_CHUNKS);
    nchunks = TT_MAX(nchunks, 1);
    node[0] = tree_node(r, n, 0);
    node[1] = tree_node(r, n, 1);
    /* every rank emits (chunk, up/down, tree) in the same order, so the
     * messages between any two ranks line up; empty chunks are skipped by
     * all. Ups before downs: a chunk's reduction in one tree never waits
     * behind the other tree's broadcast of the same chunk. */
    for (c = 0; c < nchunks; c++) {
        int    up[2];
        size_t off[2], len[2];

        for (t = 0; t < 2; t++) {
            size_t half = tt_chunk_count(count, 2, t);

            len[t] = tt_chunk_count(half, nchunks, c);
            off[t] = tt_chunk_off(count, 2, t) +
                     tt_chunk_off(half, nchunks, c);
            if (len[t] > 0) {
                up[t] = tree_up(args, s, &node[t], off[t], len[t]);
                TT_CHECK(tt_step_res(up[t]));
            }
        }
        for (t = 0; t < 2; t++) {
            if (len[t] > 0) {
                st = tree_down(s, &node[t], off[t], len[t], up[t]);
                TT_CHECK(tt_step_res(st));
            }
        }
    }
    return TUTTI_SUCCESS;
}

const tt_algo_t tutti__algo_tree_allreduce = {
    .name     = "tree",
    .desc     = "double binary tree, reduce up then broadcast down, "
                "chunked; ~2 log2(n) steps, ~2x bytes sent per rank",
    .coll     = TT_COLL_ALLREDUCE,
    .supports = tree_allreduce_supports,
    .build    = tree_allreduce_build,
};
