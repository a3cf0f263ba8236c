/*
 * The collective entry points: argument validation (every bad input is
 * TUTTI_ERR_INVALID_ARGUMENT with a sentence, and nothing is written to the
 * receive buffer then), algorithm choice, schedule building and execution.
 */
#include <stdint.h>
#include <string.h>

#include "comm.h"
#include "reduce.h"

static tutti_result_t tt_coll_check_type(const char *fn,
                                         tutti_datatype_t datatype)
{
    if ((unsigned)datatype >= TUTTI_NUM_DATATYPES) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "%s: datatype %d is not a tutti_datatype_t", fn,
                            (int)datatype);
    }
    return TUTTI_SUCCESS;
}

/* Both buffers, `bytes` each, either equal (in place) or disjoint. */
static int tt_coll_overlap(const void *a, size_t alen, const void *b,
                           size_t blen)
{
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;

    return x < y + blen && y < x + alen;
}

static tutti_result_t tt_coll_run(tutti_comm_t comm, tt_coll_args_t *args,
                                  const void *sendbuf, void *recvbuf)
{
    const tt_algo_t *algo;
    tt_sched_t       s;
    tt_bufs_t        bufs = {.send = sendbuf, .recv = recvbuf,
                             .send_mem = TT_MEM_HOST,
                             .recv_mem = TT_MEM_HOST};
    tutti_result_t   res;

    TT_CHECK(tutti__algo_select(&comm->algo_sel, args, &algo));
    TT_CHECK(tutti__sched_init(&s, args->datatype, args->op, args->rank,
                               args->nranks));
    s.algo     = algo->name;
    s.tag_kind = (uint8_t)args->coll;
    TT_CHECK_GOTO(algo->build(args, &s), res, out);
    comm->seq++;
    TT_CHECK_GOTO(tutti__sched_run(comm, &s, &bufs), res, out);
out:
    tutti__sched_fini(&s);
    return res;
}

tutti_result_t tutti_allreduce(const void *sendbuf, void *recvbuf,
                               size_t count, tutti_datatype_t datatype,
                               tutti_redop_t op, tutti_comm_t comm)
{
    static const char fn[] = "tutti_allreduce";
    tt_coll_args_t    args;
    size_t            esize;

    tutti__error_clear();
    TT_CHECK(tutti__comm_check(comm));
    TT_CHECK(tt_coll_check_type(fn, datatype));
    if ((unsigned)op >= TUTTI_NUM_REDOPS) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "%s: op %d is not a tutti_redop_t", fn, (int)op);
    }
    esize = tutti_datatype_size(datatype);
    if (count > SIZE_MAX / esize) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "%s: count %zu of %s overflows the address space",
                            fn, count, tutti_datatype_name(datatype));
    }
    if (count == 0) {
        return TUTTI_SUCCESS;
    }
    if (sendbuf == NULL || recvbuf == NULL) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "%s: %s is NULL with count %zu", fn,
                            sendbuf == NULL ? "sendbuf" : "recvbuf", count);
    }
    if (sendbuf != recvbuf &&
        tt_coll_overlap(sendbuf, count * esize, recvbuf, count * esize)) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "%s: sendbuf %p and recvbuf %p overlap without "
                            "being equal (in place)", fn, sendbuf, recvbuf);
    }
    args = (tt_coll_args_t){.coll     = TT_COLL_ALLREDUCE,
                            .count    = count,
                            .datatype = datatype,
                            .op       = op,
                            .rank     = comm->rank,
                            .nranks   = comm->nranks,
                            .inplace  = sendbuf == recvbuf};
    return tt_coll_run(comm, &args, sendbuf, recvbuf);
}

tutti_result_t tutti_allgather(const void *sendbuf, void *recvbuf,
                               size_t sendcount, tutti_datatype_t datatype,
                               tutti_comm_t comm)
{
    static const char fn[] = "tutti_allgather";
    tt_coll_args_t    args;
    size_t            esize, block;
    const char       *own;

    tutti__error_clear();
    TT_CHECK(tutti__comm_check(comm));
    TT_CHECK(tt_coll_check_type(fn, datatype));
    esize = tutti_datatype_size(datatype);
    if (sendcount > SIZE_MAX / esize / (size_t)comm->nranks) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "%s: sendcount %zu of %s times %d ranks overflows "
                            "the address space", fn, sendcount,
                            tutti_datatype_name(datatype), comm->nranks);
    }
    if (sendcount == 0) {
        return TUTTI_SUCCESS;
    }
    if (sendbuf == NULL || recvbuf == NULL) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "%s: %s is NULL with sendcount %zu", fn,
                            sendbuf == NULL ? "sendbuf" : "recvbuf",
                            sendcount);
    }
    block = sendcount * esize;
    own   = (const char *)recvbuf + (size_t)comm->rank * block;
    if (sendbuf != own && tt_coll_overlap(sendbuf, block, recvbuf,
                                          block * (size_t)comm->nranks)) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "%s: sendbuf %p overlaps recvbuf %p but is not "
                            "this rank's block (recvbuf + %d * %zu bytes, "
                            "for in place)", fn, sendbuf, recvbuf,
                            comm->rank, block);
    }
    args = (tt_coll_args_t){.coll     = TT_COLL_ALLGATHER,
                            .count    = sendcount,
                            .datatype = datatype,
                            .op       = TUTTI_SUM,
                            .rank     = comm->rank,
                            .nranks   = comm->nranks,
                            .inplace  = sendbuf == own};
    return tt_coll_run(comm, &args, sendbuf, recvbuf);
}
