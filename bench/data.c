/*
 * Typed element access and the values the correctness check (-c) uses.
 * Every element is read and written as a double, through the conversions
 * below (float16 and bfloat16 included, round to nearest even), so the
 * per-collective checks need no per-type code.
 *
 * The check data is small integers, chosen per op so that every partial
 * result is an integer the type holds exactly; a float result is then
 * exact whatever order the library reduces in, and the check compares
 * floats exactly (tolerance 0), except for avg (one division) and for sums
 * at rank counts past the type's exact-integer range:
 *   sum, avg  {-1, 0, 1, 2} (unsigned types {0, 1, 2}); |partial| <= 2n,
 *             exact in bfloat16 up to n = 128, float16 up to n = 1024;
 *   prod      1 on every rank but two, which hold small values from
 *             {2, -1, 3, 0} and {-1, 2, 1}, so a product is at most 9;
 *   min, max  [-8, 8] (unsigned [0, 16]);
 *   gather    [-14, 14] (unsigned [0, 28]), different on most ranks.
 * Integer sums and products wrap as the library's integer arithmetic does,
 * so the expected value is computed in int64 and then wrapped to the type.
 * The poison byte 0xA5 makes no value in these ranges, in any type.
 */
#include <math.h>
#include <string.h>
#include <strings.h>

#include "bench.h"

static uint16_t f32_to_f16(float f)
{
    uint32_t x, sign, absx, e, m, r, rem, half, s;

    memcpy(&x, &f, sizeof(x));
    sign = (x >> 16) & 0x8000u;
    absx = x & 0x7fffffffu;
    if (absx > 0x7f800000u) {
        return (uint16_t)(sign | 0x7e00u | ((absx >> 13) & 0x3ffu));
    }
    if (absx >= 0x477ff000u) { /* 65520 and above round to infinity */
        return (uint16_t)(sign | 0x7c00u);
    }
    e = absx >> 23;
    if (e < 113) { /* below 2^-14: a float16 subnormal, or zero */
        if (e < 102) {
            return (uint16_t)sign;
        }
        m    = (absx & 0x7fffffu) | 0x800000u;
        s    = 126 - e;
        r    = m >> s;
        rem  = m & ((1u << s) - 1);
        half = 1u << (s - 1);
        if (rem > half || (rem == half && (r & 1))) {
            r++;
        }
        return (uint16_t)(sign | r);
    }
    r   = ((e - 112) << 10) | ((absx >> 13) & 0x3ffu);
    rem = absx & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) {
        r++; /* a carry into the exponent is the right answer */
    }
    return (uint16_t)(sign | r);
}

static double f16_to_double(uint16_t h)
{
    int    e = (h >> 10) & 0x1f;
    int    m = h & 0x3ff;
    double v;

    if (e == 0) {
        v = ldexp(m, -24);
    } else if (e == 31) {
        v = m ? NAN : INFINITY;
    } else {
        v = ldexp(1024 + m, e - 25);
    }
    return (h & 0x8000) ? -v : v;
}

static uint16_t f32_to_bf16(float f)
{
    uint32_t x;

    memcpy(&x, &f, sizeof(x));
    if ((x & 0x7fffffffu) > 0x7f800000u) {
        return (uint16_t)((x >> 16) | 0x40u);
    }
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

static double bf16_to_double(uint16_t b)
{
    uint32_t x = (uint32_t)b << 16;
    float    f;

    memcpy(&f, &x, sizeof(f));
    return f;
}

double bench_load(tutti_datatype_t dt, const void *buf, size_t i)
{
    const char *p = buf;

    switch (dt) {
    case TUTTI_INT8:
        return ((const int8_t *)p)[i];
    case TUTTI_UINT8:
        return ((const uint8_t *)p)[i];
    case TUTTI_INT32:
        return ((const int32_t *)p)[i];
    case TUTTI_UINT32:
        return ((const uint32_t *)p)[i];
    case TUTTI_INT64:
        return (double)((const int64_t *)p)[i];
    case TUTTI_UINT64:
        return (double)((const uint64_t *)p)[i];
    case TUTTI_FLOAT16:
        return f16_to_double(((const uint16_t *)p)[i]);
    case TUTTI_BFLOAT16:
        return bf16_to_double(((const uint16_t *)p)[i]);
    case TUTTI_FLOAT32:
        return ((const float *)p)[i];
    case TUTTI_FLOAT64:
        return ((const double *)p)[i];
    default:
        return NAN;
    }
}

/*
 * Integers go through uint64_t so that out-of-range values wrap modulo the
 * type's width (a defined conversion) rather than trap or saturate.
 */
void bench_store(tutti_datatype_t dt, void *buf, size_t i, double v)
{
    char    *p = buf;
    uint64_t u = (uint64_t)(int64_t)v;

    switch (dt) {
    case TUTTI_INT8:
    case TUTTI_UINT8:
        ((uint8_t *)p)[i] = (uint8_t)u;
        break;
    case TUTTI_INT32:
    case TUTTI_UINT32:
        ((uint32_t *)p)[i] = (uint32_t)u;
        break;
    case TUTTI_INT64:
    case TUTTI_UINT64:
        ((uint64_t *)p)[i] = u;
        break;
    case TUTTI_FLOAT16:
        ((uint16_t *)p)[i] = f32_to_f16((float)v);
        break;
    case TUTTI_BFLOAT16:
        ((uint16_t *)p)[i] = f32_to_bf16((float)v);
        break;
    case TUTTI_FLOAT32:
        ((float *)p)[i] = (float)v;
        break;
    case TUTTI_FLOAT64:
        ((double *)p)[i] = v;
        break;
    default:
        break;
    }
}

double bench_as_type(tutti_datatype_t dt, double v)
{
    uint64_t tmp = 0;

    bench_store(dt, &tmp, 0, v);
    return bench_load(dt, &tmp, 0);
}

int bench_dtype_is_float(tutti_datatype_t dt)
{
    return dt == TUTTI_FLOAT16 || dt == TUTTI_BFLOAT16 ||
           dt == TUTTI_FLOAT32 || dt == TUTTI_FLOAT64;
}

static int dtype_is_unsigned(tutti_datatype_t dt)
{
    return dt == TUTTI_UINT8 || dt == TUTTI_UINT32 || dt == TUTTI_UINT64;
}

static double prod_value(int uns, int rank, int nranks, size_t i)
{
    static const int first_s[4]  = {2, -1, 3, 0};
    static const int first_u[4]  = {2, 1, 3, 0};
    static const int second_s[3] = {-1, 2, 1};
    static const int second_u[3] = {3, 2, 1};
    size_t           n           = (size_t)nranks;
    size_t           round       = i / n;

    if ((size_t)rank == i % n) {
        return uns ? first_u[round % 4] : first_s[round % 4];
    }
    if (nranks > 1 && (size_t)rank == (i + 1) % n) {
        return uns ? second_u[round % 3] : second_s[round % 3];
    }
    return 1;
}

double bench_value(tutti_datatype_t dt, tutti_redop_t op, int rank,
                   int nranks, size_t i)
{
    int    uns = dtype_is_unsigned(dt);
    size_t r   = (size_t)rank;

    switch (op) {
    case TUTTI_PROD:
        return prod_value(uns, rank, nranks, i);
    case TUTTI_MIN:
    case TUTTI_MAX:
        return uns ? (double)((i * 5 + r * 11) % 17)
                   : (double)((i * 5 + r * 11) % 17) - 8;
    default: /* sum, avg */
        return uns ? (double)((i + r * 3) % 3)
                   : (double)((i + r * 3) % 4) - 1;
    }
}

double bench_gather_value(tutti_datatype_t dt, int rank, size_t i)
{
    size_t v = (i * 7 + (size_t)rank * 13) % 29;

    return dtype_is_unsigned(dt) ? (double)v : (double)v - 14;
}

double bench_expect(tutti_datatype_t dt, tutti_redop_t op, int nranks,
                    size_t i)
{
    double acc = bench_value(dt, op, 0, nranks, i);
    int    r;

    if (!bench_dtype_is_float(dt)) {
        int64_t a = (int64_t)acc;

        for (r = 1; r < nranks; r++) {
            int64_t v = (int64_t)bench_value(dt, op, r, nranks, i);

            switch (op) {
            case TUTTI_PROD:
                a = (int64_t)((uint64_t)a * (uint64_t)v);
                break;
            case TUTTI_MIN:
                a = v < a ? v : a;
                break;
            case TUTTI_MAX:
                a = v > a ? v : a;
                break;
            default:
                a = (int64_t)((uint64_t)a + (uint64_t)v);
                break;
            }
        }
        if (op == TUTTI_AVG) {
            a /= nranks; /* C division truncates toward zero, as tutti's */
        }
        return bench_as_type(dt, (double)a);
    }
    for (r = 1; r < nranks; r++) {
        double v = bench_value(dt, op, r, nranks, i);

        switch (op) {
        case TUTTI_PROD:
            acc *= v;
            break;
        case TUTTI_MIN:
            acc = fmin(acc, v);
            break;
        case TUTTI_MAX:
            acc = fmax(acc, v);
            break;
        default:
            acc += v;
            break;
        }
    }
    if (op == TUTTI_AVG) {
        acc /= nranks;
    }
    return bench_as_type(dt, acc);
}

/*
 * eps is the type's machine epsilon (2^-mantissa bits). avg does one
 * division of an exact sum, but a library may instead scale each input by
 * 1/n before summing (NCCL does for some types), so allow n + 1 roundings
 * of values up to 2. Sums stay exact while 2n fits the type's integers.
 */
double bench_tolerance(tutti_datatype_t dt, tutti_redop_t op, int nranks)
{
    double eps, exact_limit;

    switch (dt) {
    case TUTTI_FLOAT16:
        eps         = ldexp(1, -10);
        exact_limit = 2048;
        break;
    case TUTTI_BFLOAT16:
        eps         = ldexp(1, -7);
        exact_limit = 256;
        break;
    case TUTTI_FLOAT32:
        eps         = ldexp(1, -23);
        exact_limit = ldexp(1, 24);
        break;
    case TUTTI_FLOAT64:
        eps         = ldexp(1, -52);
        exact_limit = ldexp(1, 53);
        break;
    default:
        return 0;
    }
    if (op == TUTTI_AVG) {
        return eps * (nranks + 1) * 2.0;
    }
    if (op == TUTTI_SUM && 2.0 * nranks > exact_limit) {
        return eps * 2.0 * nranks * nranks;
    }
    return 0;
}

void bench_poison(void *buf, size_t bytes)
{
    memset(buf, 0xa5, bytes);
}

/* Canonical names are the library's; the aliases are nccl-tests' (-d). */
int bench_parse_dtype(const char *s, tutti_datatype_t *dt_p)
{
    static const struct {
        const char      *alias;
        tutti_datatype_t dt;
    } aliases[] = {
        {"char", TUTTI_INT8},      {"int", TUTTI_INT32},
        {"half", TUTTI_FLOAT16},   {"fp16", TUTTI_FLOAT16},
        {"float", TUTTI_FLOAT32},  {"fp32", TUTTI_FLOAT32},
        {"double", TUTTI_FLOAT64}, {"fp64", TUTTI_FLOAT64},
        {"bf16", TUTTI_BFLOAT16},
    };
    int    t;
    size_t k;

    for (t = 0; t < TUTTI_NUM_DATATYPES; t++) {
        const char *name = tutti_datatype_name((tutti_datatype_t)t);

        if (name != NULL && strcasecmp(s, name) == 0) {
            *dt_p = (tutti_datatype_t)t;
            return 0;
        }
    }
    for (k = 0; k < sizeof(aliases) / sizeof(aliases[0]); k++) {
        if (strcasecmp(s, aliases[k].alias) == 0) {
            *dt_p = aliases[k].dt;
            return 0;
        }
    }
    return -1;
}

int bench_parse_op(const char *s, tutti_redop_t *op_p)
{
    int o;

    for (o = 0; o < TUTTI_NUM_REDOPS; o++) {
        const char *name = tutti_redop_name((tutti_redop_t)o);

        if (name != NULL && strcasecmp(s, name) == 0) {
            *op_p = (tutti_redop_t)o;
            return 0;
        }
    }
    return -1;
}
