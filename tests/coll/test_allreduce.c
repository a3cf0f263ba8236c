/*
 * Multi-process allreduce suite: every datatype with every operator, in
 * place and out of place, over 1 to 8 forked ranks, counts 0, 1, 2, 7, a
 * prime, a count that spans many pipeline slices and one of more than 16
 * MiB, under the default configuration and under configurations that make
 * slices and FIFO slots tiny. Each rank computes the expected result
 * locally from the same deterministic data every rank generates, and checks
 * the receive buffer, the guard bytes around it and (out of place) that the
 * send buffer is untouched.
 *
 * Reference semantics (tutti.h): integer SUM and PROD wrap (computed here in
 * uint64_t and truncated), AVG of integers is the wrapped sum divided by the
 * rank count with C's truncating division, MAX and MIN compare signed types
 * as signed. float32 and float64 results are compared with a tolerance
 * derived from the rank count and the type's epsilon; float16 and bfloat16
 * data are small integers (or powers of two for PROD), so every partial
 * result is exact whatever the reduction order, and only AVG's final
 * division is compared with a one-ulp tolerance; on two ranks, where the
 * order cannot matter, arbitrary float16/bfloat16 values are compared bit
 * for bit with widen-combine-round. NaN must propagate through every
 * operator.
 *
 * One communicator per forked job runs all of a job's cases, so the suite
 * stays fast with 8 ranks on 2 cores.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tutti.h>

#include "spawn.h"

/* Bound on every collective inside the jobs: a hang becomes an error. */
#define TT_AR_COLL_TIMEOUT_MS 30000
#define TT_AR_JOB_TIMEOUT_MS  90000
#define TT_AR_MAX_REPORTS     4

#define TT_AR_ALL_OPS  ((1u << TUTTI_NUM_REDOPS) - 1)
#define TT_AR_ALL_DTS  ((1u << TUTTI_NUM_DATATYPES) - 1)
#define TT_AR_OOP      1u /* out of place */
#define TT_AR_INPLACE  2u
#define TT_AR_BOTH     (TT_AR_OOP | TT_AR_INPLACE)

/* One group of cases: a count, run for every datatype and op in the masks,
 * out of place and/or in place. */
typedef struct tt_ar_sweep {
    size_t   count;
    unsigned dts;
    unsigned ops;
    unsigned modes;
} tt_ar_sweep_t;

/* What a job runs. */
typedef struct tt_ar_plan {
    const tt_ar_sweep_t *sweeps;
    int                  nsweeps;
    int                  extras; /* count-0 and NaN cases too */
} tt_ar_plan_t;

/* One case. */
typedef struct tt_ar_case {
    tutti_datatype_t dt;
    tutti_redop_t    op;
    size_t           count;
    int              inplace;
    uint64_t         seed;
} tt_ar_case_t;

/* ------------------------------------------------------------------------ */
/* float16 and bfloat16, written here so the reference does not share code
 * with the library it checks. Both round to nearest even. */

static uint32_t tt_f32_bits(float f)
{
    uint32_t u;

    memcpy(&u, &f, sizeof(u));
    return u;
}

static float tt_f32_from_bits(uint32_t u)
{
    float f;

    memcpy(&f, &u, sizeof(f));
    return f;
}

static float tt_h2f(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp  = (h >> 10) & 0x1fu, mant = h & 0x3ffu;

    if (exp == 0) {
        float v = ldexpf((float)mant, -24);
        return sign ? -v : v;
    }
    if (exp == 31) {
        return tt_f32_from_bits(sign | 0x7f800000u | (mant << 13));
    }
    return tt_f32_from_bits(sign | ((exp + 112) << 23) | (mant << 13));
}

static uint16_t tt_f2h(float f)
{
    uint32_t x = tt_f32_bits(f), sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu, h, rem;

    if (ax > 0x7f800000u) {
        return (uint16_t)(sign | 0x7e00u);
    }
    if (ax >= 0x477ff000u) { /* 65520 and up round to infinity */
        return (uint16_t)(sign | 0x7c00u);
    }
    if (ax < 0x38800000u) { /* below 2^-14: subnormal, exact scaling */
        return (uint16_t)(sign | (uint32_t)lrintf(fabsf(f) * 16777216.0f));
    }
    h   = ((((ax >> 23) - 112) << 10) | ((ax & 0x7fffffu) >> 13));
    rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) {
        h++;
    }
    return (uint16_t)(sign | h);
}

static float tt_bf2f(uint16_t b)
{
    return tt_f32_from_bits((uint32_t)b << 16);
}

static uint16_t tt_f2bf(float f)
{
    uint32_t u = tt_f32_bits(f);

    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return (uint16_t)((u >> 16) | 0x40u);
    }
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* ------------------------------------------------------------------------ */
/* Data: element i of rank r is a pure function of (case seed, r, i). */

static uint64_t tt_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t tt_rand(const tt_ar_case_t *c, int rank, size_t i)
{
    return tt_mix(c->seed ^ ((uint64_t)(rank + 1) << 44) ^ (uint64_t)i);
}

static int tt_is_float(tutti_datatype_t dt)
{
    return dt == TUTTI_FLOAT16 || dt == TUTTI_FLOAT32 ||
           dt == TUTTI_FLOAT64 || dt == TUTTI_BFLOAT16;
}

static int tt_is_half(tutti_datatype_t dt)
{
    return dt == TUTTI_FLOAT16 || dt == TUTTI_BFLOAT16;
}

static int tt_is_signed(tutti_datatype_t dt)
{
    return dt == TUTTI_INT8 || dt == TUTTI_INT32 || dt == TUTTI_INT64;
}

static uint64_t tt_mask(tutti_datatype_t dt)
{
    size_t bits = tutti_datatype_size(dt) * 8;

    return bits >= 64 ? ~0ull : (1ull << bits) - 1;
}

static int64_t tt_sext(uint64_t v, tutti_datatype_t dt)
{
    size_t   bits = tutti_datatype_size(dt) * 8;
    uint64_t sign;

    if (bits >= 64) {
        return (int64_t)v;
    }
    sign = 1ull << (bits - 1);
    return (int64_t)((v ^ sign) - sign);
}

/* An integer element: random bits of the type's width; for PROD odd half
 * the time, so products do not collapse to 0 in the low bits. */
static uint64_t tt_ivalue(const tt_ar_case_t *c, int rank, size_t i)
{
    uint64_t h = tt_rand(c, rank, i);

    if (c->op == TUTTI_PROD) {
        h |= h >> 63;
    }
    return h & tt_mask(c->dt);
}

/* A floating-point element, already representable in the type. */
static double tt_fvalue(const tt_ar_case_t *c, int rank, size_t i)
{
    uint64_t h = tt_rand(c, rank, i);
    double   u = (double)(h >> 11) / 9007199254740992.0; /* [0, 1) */
    double   sign = (h & 1u) ? -1.0 : 1.0;

    if (tt_is_half(c->dt)) {
        switch (c->op) {
        case TUTTI_PROD:
            /* +-0.5, +-1, +-2: every product is a power of two */
            return sign * (double)(1u << ((h >> 8) % 3)) * 0.5;
        case TUTTI_MAX:
        case TUTTI_MIN:
            /* distinct non-zero integers, exact in both types */
            return sign * (double)(1 + (h >> 8) % 200);
        default:
            /* |sum| <= 8 * 8 = 64: exact in bfloat16 (8 bits) */
            return (double)((int)((h >> 8) % 17) - 8);
        }
    }
    if (c->op == TUTTI_PROD) {
        return sign * (0.5 + 1.5 * u); /* |product of 8| in [2^-8, 2^8] */
    }
    if (c->dt == TUTTI_FLOAT32) {
        return (double)(float)(2.0 * u - 1.0);
    }
    return 2.0 * u - 1.0;
}

static void tt_store_f(tutti_datatype_t dt, void *buf, size_t i, double v)
{
    uint16_t h;
    float    f;

    switch (dt) {
    case TUTTI_FLOAT64:
        memcpy((char *)buf + i * 8, &v, 8);
        break;
    case TUTTI_FLOAT32:
        f = (float)v;
        memcpy((char *)buf + i * 4, &f, 4);
        break;
    case TUTTI_FLOAT16:
        h = tt_f2h((float)v);
        memcpy((char *)buf + i * 2, &h, 2);
        break;
    default:
        h = tt_f2bf((float)v);
        memcpy((char *)buf + i * 2, &h, 2);
        break;
    }
}

static double tt_load_f(tutti_datatype_t dt, const void *buf, size_t i)
{
    uint16_t h;
    float    f;
    double   d;

    switch (dt) {
    case TUTTI_FLOAT64:
        memcpy(&d, (const char *)buf + i * 8, 8);
        return d;
    case TUTTI_FLOAT32:
        memcpy(&f, (const char *)buf + i * 4, 4);
        return f;
    case TUTTI_FLOAT16:
        memcpy(&h, (const char *)buf + i * 2, 2);
        return tt_h2f(h);
    default:
        memcpy(&h, (const char *)buf + i * 2, 2);
        return tt_bf2f(h);
    }
}

/* Little-endian, as the machines this runs on. */
static void tt_store_i(tutti_datatype_t dt, void *buf, size_t i, uint64_t v)
{
    size_t size = tutti_datatype_size(dt);

    memcpy((char *)buf + i * size, &v, size);
}

static uint64_t tt_load_i(tutti_datatype_t dt, const void *buf, size_t i)
{
    size_t   size = tutti_datatype_size(dt);
    uint64_t v    = 0;

    memcpy(&v, (const char *)buf + i * size, size);
    return v;
}

static void tt_fill(const tt_ar_case_t *c, int rank, void *buf)
{
    size_t i;

    for (i = 0; i < c->count; i++) {
        if (tt_is_float(c->dt)) {
            tt_store_f(c->dt, buf, i, tt_fvalue(c, rank, i));
        } else {
            tt_store_i(c->dt, buf, i, tt_ivalue(c, rank, i));
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Reference and comparison. */

static uint64_t tt_ref_int(const tt_ar_case_t *c, int nranks, size_t i)
{
    int      signed_ = tt_is_signed(c->dt), r;
    uint64_t acc     = tt_ivalue(c, 0, i);

    for (r = 1; r < nranks; r++) {
        uint64_t x = tt_ivalue(c, r, i);

        switch (c->op) {
        case TUTTI_SUM:
        case TUTTI_AVG:
            acc += x;
            break;
        case TUTTI_PROD:
            acc *= x;
            break;
        case TUTTI_MAX:
            if (signed_ ? tt_sext(x, c->dt) > tt_sext(acc, c->dt) : x > acc) {
                acc = x;
            }
            break;
        default:
            if (signed_ ? tt_sext(x, c->dt) < tt_sext(acc, c->dt) : x < acc) {
                acc = x;
            }
            break;
        }
    }
    acc &= tt_mask(c->dt);
    if (c->op == TUTTI_AVG) {
        acc = signed_ ? (uint64_t)(tt_sext(acc, c->dt) / nranks)
                      : acc / (uint64_t)nranks;
        acc &= tt_mask(c->dt);
    }
    return acc;
}

static double tt_eps(tutti_datatype_t dt)
{
    switch (dt) {
    case TUTTI_FLOAT64:
        return 0x1p-52;
    case TUTTI_FLOAT32:
        return 0x1p-23;
    case TUTTI_FLOAT16:
        return 0x1p-10;
    default:
        return 0x1p-7;
    }
}

/* Expected value of a float element and the error allowed around it. */
static double tt_ref_float(const tt_ar_case_t *c, int nranks, size_t i,
                           double *tol_p)
{
    double acc = tt_fvalue(c, 0, i), mag = fabs(acc), eps = tt_eps(c->dt);
    int    r;

    for (r = 1; r < nranks; r++) {
        double x = tt_fvalue(c, r, i);

        switch (c->op) {
        case TUTTI_SUM:
        case TUTTI_AVG:
            acc += x;
            mag += fabs(x);
            break;
        case TUTTI_PROD:
            acc *= x;
            break;
        case TUTTI_MAX:
            acc = x > acc ? x : acc;
            break;
        default:
            acc = x < acc ? x : acc;
            break;
        }
    }
    if (tt_is_half(c->dt)) {
        /* exact data: only AVG's division rounds, once or twice */
        if (c->op == TUTTI_AVG) {
            acc /= nranks;
            *tol_p = 2.0 * eps * fabs(acc);
        } else {
            *tol_p = 0.0;
        }
        return acc;
    }
    switch (c->op) {
    case TUTTI_SUM:
        *tol_p = (nranks + 1) * eps * mag;
        break;
    case TUTTI_AVG:
        acc /= nranks;
        *tol_p = (nranks + 1) * eps * mag / nranks + eps * fabs(acc);
        break;
    case TUTTI_PROD:
        *tol_p = (nranks + 1) * eps * fabs(acc);
        break;
    default:
        *tol_p = 0.0;
        break;
    }
    return acc;
}

static const char *tt_case_text(const tt_ar_case_t *c, char *buf, size_t len)
{
    snprintf(buf, len, "allreduce %s %s count %zu %s",
             tutti_datatype_name(c->dt), tutti_redop_name(c->op), c->count,
             c->inplace ? "in place" : "out of place");
    return buf;
}

/* Compares recvbuf with the reference; returns the number of mismatches. */
static int tt_check(const tt_ar_case_t *c, int nranks, const void *recv)
{
    char   what[128];
    size_t i;
    int    bad = 0;

    for (i = 0; i < c->count; i++) {
        if (tt_is_float(c->dt)) {
            double tol, want = tt_ref_float(c, nranks, i, &tol);
            double got = tt_load_f(c->dt, recv, i);

            if (!(fabs(got - want) <= tol)) {
                if (bad < TT_AR_MAX_REPORTS) {
                    tt_test_fail(__FILE__, __LINE__, "%s: element %zu is "
                                 "%.17g, expected %.17g (tolerance %.3g)",
                                 tt_case_text(c, what, sizeof(what)), i, got,
                                 want, tol);
                }
                bad++;
            }
        } else {
            uint64_t want = tt_ref_int(c, nranks, i);
            uint64_t got  = tt_load_i(c->dt, recv, i);

            if (got != want) {
                if (bad < TT_AR_MAX_REPORTS) {
                    tt_test_fail(__FILE__, __LINE__, "%s: element %zu is "
                                 "0x%" PRIx64 ", expected 0x%" PRIx64,
                                 tt_case_text(c, what, sizeof(what)), i, got,
                                 want);
                }
                bad++;
            }
        }
    }
    if (bad > TT_AR_MAX_REPORTS) {
        tt_test_fail(__FILE__, __LINE__, "%s: %d wrong elements in all",
                     tt_case_text(c, what, sizeof(what)), bad);
    }
    return bad;
}

/* ------------------------------------------------------------------------ */
/* Running cases inside a rank. */

/*
 * Runs one case. Returns 0 if it passed, 1 if the result was wrong (the
 * communicator is still usable) and -1 if the call itself failed.
 */
static int tt_run_case(const tt_ar_case_t *c, int rank, int nranks,
                       tutti_comm_t comm)
{
    size_t         esize = tutti_datatype_size(c->dt);
    size_t         bytes = c->count * esize;
    tt_test_buf_t  send = {0}, recv = {0};
    unsigned char *snap = NULL;
    tutti_result_t res;
    char           what[128];
    int            bad = 0;

    tt_case_text(c, what, sizeof(what));
    /* send and recv at different offsets from a 64-byte boundary */
    if (tt_test_buf_alloc(&recv, bytes, esize) != 0 ||
        (!c->inplace && tt_test_buf_alloc(&send, bytes, 3 * esize) != 0)) {
        bad = -1;
        goto out;
    }
    if (c->inplace) {
        tt_fill(c, rank, recv.p);
    } else {
        tt_fill(c, rank, send.p);
        memset(recv.p, 0x5a, bytes);
        snap = malloc(bytes);
        if (snap == NULL) {
            bad = -1;
            goto out;
        }
        memcpy(snap, send.p, bytes);
    }
    res = tutti_allreduce(c->inplace ? recv.p : send.p, recv.p, c->count,
                          c->dt, c->op, comm);
    if (res != TUTTI_SUCCESS) {
        tt_test_fail(__FILE__, __LINE__, "%s: %s (%s)", what,
                     tutti_result_name(res), tutti_last_error());
        bad = -1;
        goto out;
    }
    bad += tt_check(c, nranks, recv.p) != 0;
    bad += !tt_test_buf_guards_ok(&recv, what);
    if (!c->inplace) {
        bad += !tt_test_buf_guards_ok(&send, what);
        bad += TT_TEST_EXPECT(memcmp(snap, send.p, bytes) == 0,
                              "%s: the send buffer changed", what);
    }
    bad = bad != 0;
out:
    free(snap);
    tt_test_buf_free(&send);
    tt_test_buf_free(&recv);
    return bad;
}

/* count 0 is a no-op that writes nothing, NULL buffers included. */
static int tt_run_zero(int rank, tutti_comm_t comm)
{
    unsigned char  sbuf[16], rbuf[16], want[16];
    tutti_result_t res;
    int            dt, op, bad = 0;

    (void)rank;
    memset(sbuf, 1, sizeof(sbuf));
    memset(want, 0x5a, sizeof(want));
    for (dt = 0; dt < TUTTI_NUM_DATATYPES; dt++) {
        for (op = 0; op < TUTTI_NUM_REDOPS; op++) {
            memset(rbuf, 0x5a, sizeof(rbuf));
            res = tutti_allreduce(sbuf, rbuf, 0, dt, op, comm);
            bad += TT_TEST_EXPECT(res == TUTTI_SUCCESS, "count 0 %s %s: %s "
                                  "(%s)", tutti_datatype_name(dt),
                                  tutti_redop_name(op),
                                  tutti_result_name(res), tutti_last_error());
            bad += TT_TEST_EXPECT(memcmp(rbuf, want, sizeof(rbuf)) == 0,
                                  "count 0 %s %s wrote to recvbuf",
                                  tutti_datatype_name(dt),
                                  tutti_redop_name(op));
            res = tutti_allreduce(rbuf, rbuf, 0, dt, op, comm);
            bad += TT_TEST_EXPECT(res == TUTTI_SUCCESS, "count 0 in place: "
                                  "%s", tutti_result_name(res));
            bad += TT_TEST_EXPECT(memcmp(rbuf, want, sizeof(rbuf)) == 0,
                                  "count 0 in place wrote to recvbuf");
            res = tutti_allreduce(NULL, NULL, 0, dt, op, comm);
            bad += TT_TEST_EXPECT(res == TUTTI_SUCCESS, "count 0 with NULL "
                                  "buffers: %s (%s)", tutti_result_name(res),
                                  tutti_last_error());
        }
    }
    return bad;
}

/* A NaN from one rank (element 3) or from every rank (element 6) comes out
 * as NaN on every rank, whatever the op; the other elements are normal. */
static int tt_run_nan(int rank, int nranks, tutti_comm_t comm)
{
    static const tutti_datatype_t dts[] = {TUTTI_FLOAT16, TUTTI_FLOAT32,
                                           TUTTI_FLOAT64, TUTTI_BFLOAT16};
    enum { n = 9 };
    unsigned char  buf[n * 8];
    tutti_result_t res;
    size_t         d, i;
    int            op, bad = 0;

    for (d = 0; d < sizeof(dts) / sizeof(dts[0]); d++) {
        tutti_datatype_t dt = dts[d];

        for (op = 0; op < TUTTI_NUM_REDOPS; op++) {
            for (i = 0; i < n; i++) {
                tt_store_f(dt, buf, i, 1.0 + (double)(i % 2));
            }
            if (rank == nranks - 1) {
                tt_store_f(dt, buf, 3, NAN);
            }
            tt_store_f(dt, buf, 6, NAN);
            res = tutti_allreduce(buf, buf, n, dt, op, comm);
            if (res != TUTTI_SUCCESS) {
                return tt_test_fail(__FILE__, __LINE__, "NaN case %s %s: %s "
                                    "(%s)", tutti_datatype_name(dt),
                                    tutti_redop_name(op),
                                    tutti_result_name(res),
                                    tutti_last_error());
            }
            for (i = 0; i < n; i++) {
                double got = tt_load_f(dt, buf, i);
                int    nan = i == 3 || i == 6;

                bad += TT_TEST_EXPECT(nan ? isnan(got) : !isnan(got),
                                      "%s %s over %d ranks: element %zu is "
                                      "%g", tutti_datatype_name(dt),
                                      tutti_redop_name(op), nranks, i, got);
            }
        }
    }
    return bad;
}

/*
 * float16 and bfloat16 with arbitrary values, bit for bit. With two ranks
 * every element is one combination, whatever the algorithm, so the
 * reference is exactly the documented arithmetic: widen both to float32,
 * combine, round to nearest even (AVG: the rounded sum, divided in float32
 * and rounded again). Random finite inputs cover subnormals, overflow to
 * infinity and ties.
 */
static uint16_t tt_half_value(tutti_datatype_t dt, uint64_t h)
{
    uint16_t v = (uint16_t)h;
    float    f = dt == TUTTI_FLOAT16 ? tt_h2f(v) : tt_bf2f(v);

    /* no NaN or infinity among the inputs */
    return isfinite(f) ? v : (uint16_t)(v & 0x3fffu);
}

static int tt_run_half_exact(int rank, tutti_comm_t comm)
{
    static const tutti_datatype_t dts[] = {TUTTI_FLOAT16, TUTTI_BFLOAT16};
    enum { n = 4099 };
    uint16_t      *send = malloc(n * 2), *recv = malloc(n * 2);
    tutti_result_t res;
    size_t         d, i;
    int            op, bad = 0;

    if (send == NULL || recv == NULL) {
        free(send);
        free(recv);
        return tt_test_fail(__FILE__, __LINE__, "out of memory");
    }
    for (d = 0; d < 2 && bad == 0; d++) {
        tutti_datatype_t dt  = dts[d];
        int              f16 = dt == TUTTI_FLOAT16;

        for (op = 0; op < TUTTI_NUM_REDOPS && bad == 0; op++) {
            for (i = 0; i < n; i++) {
                send[i] = tt_half_value(dt, tt_mix(((uint64_t)op << 40) ^
                                                   ((uint64_t)rank << 32) ^
                                                   (d << 48) ^ i));
            }
            res = tutti_allreduce(send, recv, n, dt, op, comm);
            if (res != TUTTI_SUCCESS) {
                free(send);
                free(recv);
                return tt_test_fail(__FILE__, __LINE__, "exact %s %s: %s "
                                    "(%s)", tutti_datatype_name(dt),
                                    tutti_redop_name(op),
                                    tutti_result_name(res),
                                    tutti_last_error());
            }
            for (i = 0; i < n; i++) {
                uint16_t a = tt_half_value(dt, tt_mix(((uint64_t)op << 40) ^
                                                      (d << 48) ^ i));
                uint16_t b = tt_half_value(dt, tt_mix(((uint64_t)op << 40) ^
                                                      (1ull << 32) ^
                                                      (d << 48) ^ i));
                float    x = f16 ? tt_h2f(a) : tt_bf2f(a);
                float    y = f16 ? tt_h2f(b) : tt_bf2f(b);
                float    z, got;

                switch (op) {
                case TUTTI_PROD:
                    z = x * y;
                    break;
                case TUTTI_MAX:
                    z = x > y ? x : y;
                    break;
                case TUTTI_MIN:
                    z = x < y ? x : y;
                    break;
                default:
                    z = x + y;
                    break;
                }
                z = f16 ? tt_h2f(tt_f2h(z)) : tt_bf2f(tt_f2bf(z));
                if (op == TUTTI_AVG) {
                    z /= 2.0f;
                    z = f16 ? tt_h2f(tt_f2h(z)) : tt_bf2f(tt_f2bf(z));
                }
                got = f16 ? tt_h2f(recv[i]) : tt_bf2f(recv[i]);
                if (got != z && !(isnan(got) && isnan(z))) {
                    bad += tt_test_fail(__FILE__, __LINE__, "exact %s %s: "
                                        "element %zu: %a %s %a gave %a, "
                                        "expected %a",
                                        tutti_datatype_name(dt),
                                        tutti_redop_name(op), i, x,
                                        tutti_redop_name(op), y, got, z);
                    if (bad >= TT_AR_MAX_REPORTS) {
                        break;
                    }
                }
            }
        }
    }
    free(send);
    free(recv);
    return bad;
}

static uint64_t tt_seed_next(uint64_t *seed)
{
    *seed = tt_mix(*seed);
    return *seed;
}

static int tt_ar_rank(int rank, int nranks, const tutti_unique_id_t *id,
                      void *arg)
{
    const tt_ar_plan_t *plan   = arg;
    tutti_config_t      config = TUTTI_CONFIG_INIT;
    tutti_comm_t        comm;
    uint64_t            seed = 42;
    int                 s, dt, op, mode, got, failed = 0;

    config.timeout_ms = TT_AR_COLL_TIMEOUT_MS;
    TT_TEST_CALL(tutti_comm_init(nranks, id, rank, &config, &comm));
    TT_TEST_CALL(tutti_comm_rank(comm, &got));
    failed += TT_TEST_EXPECT(got == rank, "tutti_comm_rank gave %d", got);
    TT_TEST_CALL(tutti_comm_size(comm, &got));
    failed += TT_TEST_EXPECT(got == nranks, "tutti_comm_size gave %d", got);
    if (plan->extras) {
        failed += tt_run_zero(rank, comm);
        failed += tt_run_nan(rank, nranks, comm);
        if (nranks == 2) {
            failed += tt_run_half_exact(rank, comm);
        }
    }
    for (s = 0; s < plan->nsweeps; s++) {
        const tt_ar_sweep_t *sw = &plan->sweeps[s];

        for (dt = 0; dt < TUTTI_NUM_DATATYPES; dt++) {
            for (op = 0; op < TUTTI_NUM_REDOPS; op++) {
                for (mode = 0; mode < 2; mode++) {
                    tt_ar_case_t c = {.dt      = dt,
                                      .op      = op,
                                      .count   = sw->count,
                                      .inplace = mode};
                    int          r;

                    if (!((sw->dts >> dt) & 1u) || !((sw->ops >> op) & 1u) ||
                        !((sw->modes >> mode) & 1u)) {
                        continue;
                    }
                    c.seed = tt_seed_next(&seed);
                    r      = tt_run_case(&c, rank, nranks, comm);
                    if (r < 0) {
                        /* the call failed: the communicator is broken */
                        return 1;
                    }
                    failed += r;
                }
            }
        }
    }
    TT_TEST_CALL(tutti_comm_destroy(comm));
    return failed != 0;
}

/* ------------------------------------------------------------------------ */
/* The tests. */

static const tt_ar_sweep_t tt_sweeps_full[] = {
    {1, TT_AR_ALL_DTS, TT_AR_ALL_OPS, TT_AR_BOTH},
    {2, TT_AR_ALL_DTS, TT_AR_ALL_OPS, TT_AR_BOTH},
    {3, TT_AR_ALL_DTS, TT_AR_ALL_OPS, TT_AR_BOTH},
    {7, TT_AR_ALL_DTS, TT_AR_ALL_OPS, TT_AR_BOTH},
    /* chunks of 24 bytes (the shm transport's inline size) on 2 and 4
     * ranks for every type width, and a little more */
    {48, TT_AR_ALL_DTS, TT_AR_ALL_OPS, TT_AR_BOTH},
    {100, TT_AR_ALL_DTS, TT_AR_ALL_OPS, TT_AR_BOTH},
    {1021, TT_AR_ALL_DTS, TT_AR_ALL_OPS, TT_AR_BOTH},
    /* a prime of several 64 KiB slices per chunk on few ranks; a subset
     * of the ops, as the local reference dominates the suite's time */
    {65537, TT_AR_ALL_DTS,
     (1u << TUTTI_SUM) | (1u << TUTTI_MIN) | (1u << TUTTI_AVG), TT_AR_OOP},
    {65537, TT_AR_ALL_DTS, 1u << TUTTI_PROD, TT_AR_INPLACE},
};

static int tt_ranks_1_to_8[] = {1, 2, 3, 4, 5, 6, 7, 8};

ParameterizedTestParameters(allreduce, every_type_and_op)
{
    return cr_make_param_array(int, tt_ranks_1_to_8,
                               sizeof(tt_ranks_1_to_8) / sizeof(int));
}

ParameterizedTest(int *nranks, allreduce, every_type_and_op, .timeout = 120)
{
    tt_ar_plan_t plan = {.sweeps  = tt_sweeps_full,
                         .nsweeps = sizeof(tt_sweeps_full) /
                                    sizeof(tt_sweeps_full[0]),
                         .extras  = 1};

    cr_assert_eq(tt_test_spawn(*nranks, tt_ar_rank, &plan,
                               TT_AR_JOB_TIMEOUT_MS), 0,
                 "allreduce over %d ranks failed (see stderr)", *nranks);
}

/* More than 16 MiB per rank, a count no rank count divides. */
static const tt_ar_sweep_t tt_sweeps_large[] = {
    {(4u << 20) + 3, 1u << TUTTI_FLOAT32, 1u << TUTTI_SUM, TT_AR_OOP},
    {(4u << 20) + 3, 1u << TUTTI_INT32, 1u << TUTTI_SUM, TT_AR_INPLACE},
};

static int tt_ranks_large[] = {2, 3, 4};

ParameterizedTestParameters(allreduce, large)
{
    return cr_make_param_array(int, tt_ranks_large,
                               sizeof(tt_ranks_large) / sizeof(int));
}

ParameterizedTest(int *nranks, allreduce, large, .timeout = 120)
{
    tt_ar_plan_t plan = {.sweeps  = tt_sweeps_large,
                         .nsweeps = sizeof(tt_sweeps_large) /
                                    sizeof(tt_sweeps_large[0]),
                         .extras  = 0};

    cr_assert_eq(tt_test_spawn(*nranks, tt_ar_rank, &plan,
                               TT_AR_JOB_TIMEOUT_MS), 0,
                 "16 MiB allreduce over %d ranks failed (see stderr)",
                 *nranks);
}

/*
 * The same checks under configurations that stress the pipeline (slices
 * and FIFO slots at their minimum, a slice size that is not a multiple of
 * 8 bytes, one slice in flight, a progress loop that sleeps at once), and
 * with each allreduce algorithm forced through TUTTI_ALGO on rank counts
 * that are and are not powers of two (the default choice depends on size
 * and rank count, so some algorithms never run by default here).
 */
typedef struct tt_ar_env {
    int  nranks;
    /* "NAME=value NAME=value": an array, not a pointer, because Criterion
     * copies parameters into a worker that is a new image of the program */
    char vars[200];
} tt_ar_env_t;

static tt_ar_env_t tt_envs[] = {
    {3, "TUTTI_SLICE_SIZE=64 TUTTI_SHM_SLOT_SIZE=256 TUTTI_SHM_NSLOTS=2"},
    {4, "TUTTI_SLICE_SIZE=100 TUTTI_PIPELINE_DEPTH=1"},
    {5, "TUTTI_SLICE_SIZE=1000 TUTTI_SHM_SLOT_SIZE=512 TUTTI_PIPELINE_DEPTH=64"
        " TUTTI_SPIN_COUNT=0 TUTTI_YIELD_COUNT=0 TUTTI_SLEEP_US=1"},
    {2, "TUTTI_TRANSPORT=shm TUTTI_SHM_NSLOTS=3"},
    /* slots shrunk to fit the budget: 4 KiB for 4 ranks, the 1 KiB floor
     * for 5 */
    {4, "TUTTI_SHM_BUDGET=144k"},
    {5, "TUTTI_SHM_BUDGET=1k"},
    {3, "TUTTI_ALGO=allreduce:ring"},
    {4, "TUTTI_ALGO=allreduce:ring TUTTI_SLICE_SIZE=256"},
    {3, "TUTTI_ALGO=allreduce:tree"},
    {4, "TUTTI_ALGO=allreduce:tree TUTTI_SLICE_SIZE=256"},
    {7, "TUTTI_ALGO=allreduce:tree"},
    {3, "TUTTI_ALGO=allreduce:rd"},
    {4, "TUTTI_ALGO=allreduce:rd TUTTI_SLICE_SIZE=256"},
    {6, "TUTTI_ALGO=allreduce:rd"},
    {3, "TUTTI_ALGO=allreduce:rabenseifner"},
    {4, "TUTTI_ALGO=allreduce:rabenseifner TUTTI_SLICE_SIZE=256"},
    {7, "TUTTI_ALGO=allreduce:rabenseifner"},
    /* size ranges: each call picks its algorithm by bytes */
    {5, "TUTTI_ALGO=allreduce:0-64:tree,64-4k:rd,4k-64k:rabenseifner,"
        "64k-inf:ring"},
};

static const tt_ar_sweep_t tt_sweeps_env[] = {
    {1, TT_AR_ALL_DTS, TT_AR_ALL_OPS, TT_AR_BOTH},
    {3, TT_AR_ALL_DTS, TT_AR_ALL_OPS, TT_AR_BOTH},
    {7, TT_AR_ALL_DTS, TT_AR_ALL_OPS, TT_AR_BOTH},
    {48, TT_AR_ALL_DTS, TT_AR_ALL_OPS, TT_AR_OOP},
    {1021, TT_AR_ALL_DTS, (1u << TUTTI_SUM) | (1u << TUTTI_AVG) |
                              (1u << TUTTI_MAX), TT_AR_BOTH},
    {20011, (1u << TUTTI_FLOAT32) | (1u << TUTTI_UINT8) |
                (1u << TUTTI_BFLOAT16) | (1u << TUTTI_INT64),
     (1u << TUTTI_SUM) | (1u << TUTTI_PROD), TT_AR_BOTH},
};

/* Sets each NAME=value of a space-separated list. */
static void tt_setenv_list(const char *vars)
{
    char  buf[512];
    char *tok, *save = NULL;

    snprintf(buf, sizeof(buf), "%s", vars);
    for (tok = strtok_r(buf, " ", &save); tok != NULL;
         tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');

        cr_assert_not_null(eq, "bad variable '%s'", tok);
        *eq = '\0';
        cr_assert_eq(setenv(tok, eq + 1, 1), 0);
    }
}

ParameterizedTestParameters(allreduce, configurations)
{
    return cr_make_param_array(tt_ar_env_t, tt_envs,
                               sizeof(tt_envs) / sizeof(tt_envs[0]));
}

ParameterizedTest(tt_ar_env_t *env, allreduce, configurations,
                  .timeout = 120)
{
    tt_ar_plan_t plan = {.sweeps  = tt_sweeps_env,
                         .nsweeps = sizeof(tt_sweeps_env) /
                                    sizeof(tt_sweeps_env[0]),
                         .extras  = 1};

    /* Criterion forks each test: these variables do not leak. */
    tt_setenv_list(env->vars);
    cr_assert_eq(tt_test_spawn(env->nranks, tt_ar_rank, &plan,
                               TT_AR_JOB_TIMEOUT_MS), 0,
                 "allreduce over %d ranks with %s failed (see stderr)",
                 env->nranks, env->vars);
}
