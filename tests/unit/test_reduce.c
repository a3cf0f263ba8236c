/*
 * Unit tests of the reduction kernels (src/reduce.c) and the AVG division:
 * every datatype x op against a reference on odd counts and with dst
 * aliasing a or b, every float16/bfloat16 pattern against a spread of
 * partners, NaN and signed-zero rules, integer wrap-around, and the
 * division's truncation and rounding. Kernel tests run twice: on the
 * kernels that tutti__reduce_fn() dispatches to (AVX2/F16C on such a CPU)
 * and on the portable ones.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reduce.h"
#include "reduce_impl.h"
#include "reduce_ref.h"

Test(reduce, fn_lookup)
{
    for (int d = 0; d < TUTTI_NUM_DATATYPES; d++) {
        for (int o = 0; o < TUTTI_NUM_REDOPS; o++) {
            tt_reduce_fn fn = tutti__reduce_fn((tutti_datatype_t)d,
                                               (tutti_redop_t)o);

            cr_assert_not_null(fn, "datatype %d op %d", d, o);
            cr_assert_not_null(tutti__reduce_fn_portable(
                (tutti_datatype_t)d, (tutti_redop_t)o));
        }
        /* AVG reduces as SUM: the same kernel */
        cr_assert_eq(tutti__reduce_fn((tutti_datatype_t)d, TUTTI_AVG),
                     tutti__reduce_fn((tutti_datatype_t)d, TUTTI_SUM));
        cr_assert_null(tutti__reduce_fn((tutti_datatype_t)d,
                                        TUTTI_NUM_REDOPS));
        cr_assert_null(tutti__reduce_fn((tutti_datatype_t)d,
                                        (tutti_redop_t)-1));
    }
    cr_assert_null(tutti__reduce_fn(TUTTI_NUM_DATATYPES, TUTTI_SUM));
    cr_assert_null(tutti__reduce_fn((tutti_datatype_t)-1, TUTTI_SUM));
    cr_assert_null(tutti__reduce_fn_portable(TUTTI_NUM_DATATYPES, TUTTI_SUM));
    cr_assert_null(tutti__reduce_fn_portable(TUTTI_FLOAT32,
                                             TUTTI_NUM_REDOPS));
}

/* ---- kernels against a reference -------------------------------------- */

/*
 * Reference results, one element at a time, computed differently from the
 * library: integers in 64-bit (or 128-bit) arithmetic truncated to their
 * width; float32/float64 max/min by explicit classification; float16 and
 * bfloat16 in double, rounded by ref_encode() (double carries
 * enough bits that rounding once in double, then to the narrow type, is
 * the correctly rounded result).
 */
static double ref_fmax(double x, double y)
{
    if (isnan(x) || isnan(y)) {
        return NAN;
    }
    if (x == 0 && y == 0) {
        return signbit(x) && signbit(y) ? -0.0 : 0.0;
    }
    return x > y ? x : y;
}

static double ref_fmin(double x, double y)
{
    if (isnan(x) || isnan(y)) {
        return NAN;
    }
    if (x == 0 && y == 0) {
        return signbit(x) || signbit(y) ? -0.0 : 0.0;
    }
    return x < y ? x : y;
}

static double ref_fop(double x, double y, tutti_redop_t op)
{
    switch (op) {
    case TUTTI_SUM:
    case TUTTI_AVG:
        return x + y;
    case TUTTI_PROD:
        return x * y;
    case TUTTI_MAX:
        return ref_fmax(x, y);
    default:
        return ref_fmin(x, y);
    }
}

static int64_t ref_signed(const void *p, size_t i, int size)
{
    switch (size) {
    case 1:
        return ((const int8_t *)p)[i];
    case 4:
        return ((const int32_t *)p)[i];
    default:
        return ((const int64_t *)p)[i];
    }
}

static uint64_t ref_unsigned(const void *p, size_t i, int size)
{
    switch (size) {
    case 1:
        return ((const uint8_t *)p)[i];
    case 4:
        return ((const uint32_t *)p)[i];
    default:
        return ((const uint64_t *)p)[i];
    }
}

static void ref_store(void *p, size_t i, int size, uint64_t v)
{
    switch (size) {
    case 1:
        ((uint8_t *)p)[i] = (uint8_t)v;
        break;
    case 4:
        ((uint32_t *)p)[i] = (uint32_t)v;
        break;
    default:
        ((uint64_t *)p)[i] = v;
        break;
    }
}

/*
 * x * y mod 2^64 from 32-bit halves, schoolbook: written without relying
 * on the wrap-around of a 64-bit multiply, which the kernels use.
 */
static uint64_t ref_mul_mod64(uint64_t x, uint64_t y)
{
    uint64_t xl = x & 0xffffffffu;
    uint64_t xh = x >> 32;
    uint64_t yl = y & 0xffffffffu;
    uint64_t yh = y >> 32;
    uint64_t cross = (xl * yh + xh * yl) & 0xffffffffu;

    return xl * yl + (cross << 32);
}

static int dt_is_signed(tutti_datatype_t dt)
{
    return dt == TUTTI_INT8 || dt == TUTTI_INT32 || dt == TUTTI_INT64;
}

static void ref_int(tutti_datatype_t dt, tutti_redop_t op, void *out,
                    const void *a, const void *b, size_t i)
{
    int size = (int)tutti_datatype_size(dt);

    if (dt_is_signed(dt)) {
        int64_t x = ref_signed(a, i, size);
        int64_t y = ref_signed(b, i, size);

        switch (op) {
        case TUTTI_SUM:
        case TUTTI_AVG:
            ref_store(out, i, size, (uint64_t)x + (uint64_t)y);
            break;
        case TUTTI_PROD:
            /* two's complement: the same bits as the unsigned product */
            ref_store(out, i, size, ref_mul_mod64((uint64_t)x, (uint64_t)y));
            break;
        case TUTTI_MAX:
            ref_store(out, i, size, (uint64_t)(x > y ? x : y));
            break;
        default:
            ref_store(out, i, size, (uint64_t)(x < y ? x : y));
            break;
        }
    } else {
        uint64_t x = ref_unsigned(a, i, size);
        uint64_t y = ref_unsigned(b, i, size);

        switch (op) {
        case TUTTI_SUM:
        case TUTTI_AVG:
            ref_store(out, i, size, x + y);
            break;
        case TUTTI_PROD:
            ref_store(out, i, size, ref_mul_mod64(x, y));
            break;
        case TUTTI_MAX:
            ref_store(out, i, size, x > y ? x : y);
            break;
        default:
            ref_store(out, i, size, x < y ? x : y);
            break;
        }
    }
}

/* Reference for one element into out[i]. */
static void ref_elem(tutti_datatype_t dt, tutti_redop_t op, void *out,
                     const void *a, const void *b, size_t i)
{
    switch (dt) {
    case TUTTI_FLOAT32: {
        float x = ((const float *)a)[i];
        float y = ((const float *)b)[i];

        /* sum and product in float32 itself: one rounding, as C does */
        if (op == TUTTI_SUM || op == TUTTI_AVG) {
            ((float *)out)[i] = x + y;
        } else if (op == TUTTI_PROD) {
            ((float *)out)[i] = x * y;
        } else {
            ((float *)out)[i] = (float)ref_fop(x, y, op);
        }
        break;
    }
    case TUTTI_FLOAT64:
        ((double *)out)[i] = ref_fop(((const double *)a)[i],
                                     ((const double *)b)[i], op);
        break;
    case TUTTI_FLOAT16:
    case TUTTI_BFLOAT16: {
        const ref_fmt_t *fmt = dt == TUTTI_FLOAT16 ? &ref_half : &ref_bf16;
        double x = ref_decode(fmt, ((const uint16_t *)a)[i]);
        double y = ref_decode(fmt, ((const uint16_t *)b)[i]);

        ((uint16_t *)out)[i] = ref_encode(fmt, ref_fop(x, y, op));
        break;
    }
    default:
        ref_int(dt, op, out, a, b, i);
        break;
    }
}

/* Is element i of got the expected one? NaN matches any quiet NaN. */
static int elem_matches(tutti_datatype_t dt, const void *got,
                        const void *want, size_t i)
{
    switch (dt) {
    case TUTTI_FLOAT32: {
        float g = ((const float *)got)[i];
        float w = ((const float *)want)[i];

        if (isnan(w)) {
            return isnan(g) && (f32_bits(g) & 0x00400000u);
        }
        return f32_bits(g) == f32_bits(w);
    }
    case TUTTI_FLOAT64: {
        double g = ((const double *)got)[i];
        double w = ((const double *)want)[i];

        if (isnan(w)) {
            return isnan(g) && (f64_bits(g) & 0x0008000000000000ull);
        }
        return f64_bits(g) == f64_bits(w);
    }
    case TUTTI_FLOAT16:
    case TUTTI_BFLOAT16: {
        const ref_fmt_t *fmt = dt == TUTTI_FLOAT16 ? &ref_half : &ref_bf16;
        uint16_t         g   = ((const uint16_t *)got)[i];
        uint16_t         w   = ((const uint16_t *)want)[i];

        if (ref_is_nan(fmt, w)) {
            return ref_is_nan(fmt, g) &&
                   (g & (dt == TUTTI_FLOAT16 ? 0x0200 : 0x0040));
        }
        return g == w;
    }
    default: {
        size_t size = tutti_datatype_size(dt);

        return memcmp((const char *)got + i * size,
                      (const char *)want + i * size, size) == 0;
    }
    }
}

/*
 * Random test data. Floats mix random bit patterns (every class: NaN,
 * infinities, subnormals, huge and tiny) with small integers and signed
 * zeros, so that sums and products land in range, equal values and +-0
 * pairs occur, and narrow types hit exact ties. Integers are random bits,
 * with the extremes frequent.
 */
static void fill_random(tutti_datatype_t dt, void *buf, size_t count)
{
    size_t size = tutti_datatype_size(dt);

    for (size_t i = 0; i < count; i++) {
        uint64_t r    = rng_next();
        unsigned kind = (unsigned)(r >> 60);
        uint64_t bits = rng_next();

        switch (dt) {
        case TUTTI_FLOAT32: {
            int   e = -(int)(r % 40);
            float f = kind < 6   ? f32_of((uint32_t)bits) :
                      kind < 12  ? (float)((int)(bits % 17) - 8) :
                      kind < 14  ? ((bits & 1) ? -0.0f : 0.0f) :
                      kind == 14 ? f32_of((uint32_t)bits & 0x807fffffu) :
                                   ldexpf((float)(bits % 1000), e);

            memcpy((char *)buf + i * size, &f, size);
            break;
        }
        case TUTTI_FLOAT64: {
            int    e = -(int)(r % 40);
            double d = kind < 6   ? 0.0 :
                       kind < 12  ? (double)((int)(bits % 17) - 8) :
                       kind < 14  ? ((bits & 1) ? -0.0 : 0.0) :
                       kind == 14 ? (double)f32_of((uint32_t)bits) :
                                    ldexp((double)(bits % 1000), e);

            if (kind < 6) {
                memcpy(&d, &bits, sizeof(d));
            }
            memcpy((char *)buf + i * size, &d, size);
            break;
        }
        case TUTTI_FLOAT16:
        case TUTTI_BFLOAT16: {
            const ref_fmt_t *fmt = dt == TUTTI_FLOAT16 ? &ref_half :
                                                         &ref_bf16;
            uint16_t         h;

            if (kind < 8) {
                h = (uint16_t)bits;
            } else if (kind == 8) {
                h = (bits & 1) ? 0x8000 : 0x0000; /* +-0 pairs for MAX/MIN */
            } else if (kind < 13) {
                h = ref_encode(fmt, (double)((int)(bits % 33) - 16) *
                                        ldexp(1.0, (int)(r % 8) - 4));
            } else {
                /* near the largest value or among the subnormals */
                h = (uint16_t)((bits & 1 ? fmt->inf - 1 - (bits >> 1) % 64 :
                                           (bits >> 1) % 64) |
                               (kind & 1 ? 0x8000 : 0));
            }
            memcpy((char *)buf + i * size, &h, size);
            break;
        }
        default:
            if (kind < 3) {
                bits = kind == 0   ? 0 :
                       kind == 1   ? ~0ull :
                                     (1ull << 63) >> (64 - 8 * size);
            }
            memcpy((char *)buf + i * size, &bits, size);
            break;
        }
    }
}

typedef enum alias_mode {
    ALIAS_NONE,  /* dst, a, b distinct */
    ALIAS_DST_A, /* dst == a */
    ALIAS_DST_B, /* dst == b */
    ALIAS_A_B,   /* a == b, dst distinct */
    ALIAS_ALL,   /* dst == a == b */
} alias_mode_t;

static const size_t test_counts[] = {0, 1, 7, 8, 9, 255, 256, 257, 1023,
                                     4099};

/*
 * One (kernel, datatype, op, count, aliasing) case: the result must equal
 * the reference element for element, and the guard bytes past count must
 * be untouched. Returns the number of wrong elements (logs the first).
 */
static size_t run_case(tt_reduce_fn fn, tutti_datatype_t dt,
                       tutti_redop_t op, size_t count, alias_mode_t mode)
{
    const size_t   guard = 64;
    size_t         size  = tutti_datatype_size(dt);
    size_t         bytes = (count + guard) * size;
    unsigned char *a     = malloc(bytes);
    unsigned char *b     = malloc(bytes);
    unsigned char *d     = malloc(bytes);
    unsigned char *want  = malloc(bytes);
    unsigned char *dst;
    const void    *pa;
    const void    *pb;
    size_t         wrong = 0;

    cr_assert(a && b && d && want);
    fill_random(dt, a, count + guard);
    fill_random(dt, b, count + guard);
    memset(d, 0xa5, bytes);
    if (mode == ALIAS_A_B || mode == ALIAS_ALL) {
        memcpy(b, a, bytes);
    }
    for (size_t i = 0; i < count; i++) {
        ref_elem(dt, op, want, a, b, i);
    }

    switch (mode) {
    case ALIAS_NONE:
        dst = d, pa = a, pb = b;
        break;
    case ALIAS_DST_A:
        dst = a, pa = a, pb = b;
        break;
    case ALIAS_DST_B:
        dst = b, pa = a, pb = b;
        break;
    case ALIAS_A_B:
        dst = d, pa = a, pb = a;
        break;
    default:
        dst = a, pa = a, pb = a;
        break;
    }
    /* the guard region of dst, as it is before the call */
    memcpy(want + count * size, dst + count * size, guard * size);
    fn(dst, pa, pb, count);

    for (size_t i = 0; i < count; i++) {
        if (!elem_matches(dt, dst, want, i) && wrong++ == 0) {
            char got_hex[40] = "";
            char want_hex[40] = "";

            for (size_t k = 0; k < size; k++) {
                snprintf(got_hex + 2 * k, 3, "%02x",
                         dst[i * size + size - 1 - k]);
                snprintf(want_hex + 2 * k, 3, "%02x",
                         want[i * size + size - 1 - k]);
            }
            cr_log_error("%s %s count %zu alias %d: [%zu] = 0x%s, want 0x%s",
                         tutti_datatype_name(dt), tutti_redop_name(op),
                         count, (int)mode, i, got_hex, want_hex);
        }
    }
    if (memcmp(dst + count * size, want + count * size, guard * size) != 0) {
        cr_log_error("%s %s count %zu: wrote past the end",
                     tutti_datatype_name(dt), tutti_redop_name(op), count);
        wrong++;
    }
    free(a);
    free(b);
    free(d);
    free(want);
    return wrong;
}

static void check_all_kernels(int portable)
{
    size_t wrong = 0;

    ref_init();
    for (int d = 0; d < TUTTI_NUM_DATATYPES; d++) {
        for (int o = 0; o < TUTTI_NUM_REDOPS; o++) {
            tutti_datatype_t dt = (tutti_datatype_t)d;
            tutti_redop_t    op = (tutti_redop_t)o;
            tt_reduce_fn     fn = portable ?
                                      tutti__reduce_fn_portable(dt, op) :
                                      tutti__reduce_fn(dt, op);

            for (size_t c = 0;
                 c < sizeof(test_counts) / sizeof(test_counts[0]); c++) {
                for (int m = ALIAS_NONE; m <= ALIAS_ALL; m++) {
                    wrong += run_case(fn, dt, op, test_counts[c],
                                      (alias_mode_t)m);
                }
            }
        }
    }
    cr_assert_eq(wrong, 0, "%zu wrong elements", wrong);
}

Test(reduce, all_kernels_dispatched, .timeout = 60)
{
    cr_log_info("dispatch: %s", tutti__reduce_x86_ok() ? "x86 avx2+f16c" :
                                                         "portable");
    check_all_kernels(0);
}

Test(reduce, all_kernels_portable, .timeout = 60)
{
    check_all_kernels(1);
}

/*
 * Every float16 value against every one of a spread of others (and
 * bfloat16 likewise), for each op: 65536 x 67 pairs, so every exponent,
 * subnormal and special meets every kind of partner, through both kernel
 * sets.
 */
static void check_narrow_pairs(tutti_datatype_t dt)
{
    const ref_fmt_t *fmt = dt == TUTTI_FLOAT16 ? &ref_half : &ref_bf16;
    uint16_t        *a   = malloc(65536 * sizeof(uint16_t));
    uint16_t        *b   = malloc(65536 * sizeof(uint16_t));
    uint16_t        *got = malloc(65536 * sizeof(uint16_t));
    uint16_t        *want = malloc(65536 * sizeof(uint16_t));
    size_t           wrong = 0;

    ref_init();
    for (unsigned p = 0; p < 65536; p++) {
        a[p] = (uint16_t)p;
    }
    for (unsigned shift = 0; shift < 65536; shift += 983) {
        for (unsigned p = 0; p < 65536; p++) {
            b[p] = (uint16_t)(p * 40503u + shift);
        }
        for (int o = 0; o < TUTTI_AVG; o++) {
            for (int portable = 0; portable < 2; portable++) {
                tt_reduce_fn fn =
                    portable ? tutti__reduce_fn_portable(dt, (tutti_redop_t)o) :
                               tutti__reduce_fn(dt, (tutti_redop_t)o);

                fn(got, a, b, 65536);
                for (size_t i = 0; i < 65536; i++) {
                    ref_elem(dt, (tutti_redop_t)o, want, a, b, i);
                    if (!elem_matches(dt, got, want, i) && wrong++ < 5) {
                        cr_log_error("%s %s%s: %#06x, %#06x -> %#06x, "
                                     "want %#06x", fmt->name,
                                     tutti_redop_name((tutti_redop_t)o),
                                     portable ? " (portable)" : "", a[i],
                                     b[i], got[i], want[i]);
                    }
                }
            }
        }
    }
    free(a);
    free(b);
    free(got);
    free(want);
    cr_assert_eq(wrong, 0, "%zu wrong results", wrong);
}

Test(reduce, half_pairs, .timeout = 60)
{
    check_narrow_pairs(TUTTI_FLOAT16);
}

Test(reduce, bf16_pairs, .timeout = 60)
{
    check_narrow_pairs(TUTTI_BFLOAT16);
}

/* ---- specific rules --------------------------------------------------- */

/*
 * The rule tests below run one (x, y) pair through a kernel RULE_COPIES
 * times in a row, so that both the vector body and the scalar tail of
 * every loop see it (the x86 float16/bfloat16 loop works 8 at a time), and
 * check that every copy gives the same bits.
 */
#define RULE_COPIES 19

static float run_f32(tt_reduce_fn fn, float x, float y)
{
    float a[RULE_COPIES];
    float b[RULE_COPIES];
    float r[RULE_COPIES];

    for (int i = 0; i < RULE_COPIES; i++) {
        a[i] = x;
        b[i] = y;
    }
    fn(r, a, b, RULE_COPIES);
    for (int i = 1; i < RULE_COPIES; i++) {
        cr_assert(isnan(r[0]) ? isnan(r[i]) : f32_bits(r[i]) == f32_bits(r[0]),
                  "copy %d differs", i);
    }
    return r[0];
}

static double run_f64(tt_reduce_fn fn, double x, double y)
{
    double a[RULE_COPIES];
    double b[RULE_COPIES];
    double r[RULE_COPIES];

    for (int i = 0; i < RULE_COPIES; i++) {
        a[i] = x;
        b[i] = y;
    }
    fn(r, a, b, RULE_COPIES);
    for (int i = 1; i < RULE_COPIES; i++) {
        cr_assert(isnan(r[0]) ? isnan(r[i]) : f64_bits(r[i]) == f64_bits(r[0]),
                  "copy %d differs", i);
    }
    return r[0];
}

static uint16_t run_u16(const ref_fmt_t *fmt, tt_reduce_fn fn, uint16_t x,
                        uint16_t y)
{
    uint16_t a[RULE_COPIES];
    uint16_t b[RULE_COPIES];
    uint16_t r[RULE_COPIES];

    for (int i = 0; i < RULE_COPIES; i++) {
        a[i] = x;
        b[i] = y;
    }
    fn(r, a, b, RULE_COPIES);
    for (int i = 1; i < RULE_COPIES; i++) {
        cr_assert(ref_is_nan(fmt, r[0]) ? ref_is_nan(fmt, r[i]) :
                                          r[i] == r[0],
                  "copy %d differs", i);
    }
    return r[0];
}

static tt_reduce_fn get_fn(int portable, tutti_datatype_t dt,
                           tutti_redop_t op)
{
    return portable ? tutti__reduce_fn_portable(dt, op) :
                      tutti__reduce_fn(dt, op);
}

Test(reduce, nan_propagates)
{
    const float snan32 = f32_of(0x7f800001);
    double      snan64;
    uint64_t    snan64_bits = 0x7ff0000000000001ull;

    memcpy(&snan64, &snan64_bits, sizeof(snan64));

    for (int portable = 0; portable < 2; portable++) {
        for (int o = 0; o < TUTTI_NUM_REDOPS; o++) {
            tutti_redop_t op  = (tutti_redop_t)o;
            tt_reduce_fn  f32 = get_fn(portable, TUTTI_FLOAT32, op);
            tt_reduce_fn  f64 = get_fn(portable, TUTTI_FLOAT64, op);
            tt_reduce_fn  f16 = get_fn(portable, TUTTI_FLOAT16, op);
            tt_reduce_fn  b16 = get_fn(portable, TUTTI_BFLOAT16, op);
            float         vals[] = {1.0f, -3.5f, 0.0f, -0.0f, INFINITY,
                                    -INFINITY, NAN};

            for (size_t k = 0; k < sizeof(vals) / sizeof(vals[0]); k++) {
                float v = vals[k];
                float r;

                r = run_f32(f32, NAN, v);
                cr_assert(isnan(r) && (f32_bits(r) & 0x400000u),
                          "%s portable %d", tutti_redop_name(op), portable);
                r = run_f32(f32, v, NAN);
                cr_assert(isnan(r) && (f32_bits(r) & 0x400000u));
                r = run_f32(f32, snan32, v);
                cr_assert(isnan(r) && (f32_bits(r) & 0x400000u),
                          "signalling NaN must come out quiet");
                r = run_f32(f32, v, snan32);
                cr_assert(isnan(r) && (f32_bits(r) & 0x400000u));
                cr_assert(isnan(run_f64(f64, NAN, v)));
                cr_assert(isnan(run_f64(f64, v, NAN)));
                cr_assert(f64_bits(run_f64(f64, snan64, v)) >> 51 == 0xfff);
                cr_assert(f64_bits(run_f64(f64, v, snan64)) >> 51 == 0xfff);
                cr_assert_eq(run_u16(&ref_half, f16, 0x7e00,
                                     tutti__float_to_half(v)) & 0x7e00,
                             0x7e00);
                cr_assert_eq(run_u16(&ref_half, f16, tutti__float_to_half(v),
                                     0xfc01) & 0x7e00, 0x7e00);
                cr_assert_eq(run_u16(&ref_bf16, b16, 0x7fc0,
                                     tutti__float_to_bf16(v)) & 0x7fc0,
                             0x7fc0);
                cr_assert_eq(run_u16(&ref_bf16, b16, tutti__float_to_bf16(v),
                                     0xff81) & 0x7fc0, 0x7fc0);
            }
        }
    }
}

/*
 * Decision under test: MAX and MIN order -0 below +0 whatever the operand
 * order (IEEE 754-2019 maximum/minimum), so the result is commutative.
 */
Test(reduce, signed_zero)
{
    for (int portable = 0; portable < 2; portable++) {
        tt_reduce_fn max32 = get_fn(portable, TUTTI_FLOAT32, TUTTI_MAX);
        tt_reduce_fn min32 = get_fn(portable, TUTTI_FLOAT32, TUTTI_MIN);
        tt_reduce_fn max64 = get_fn(portable, TUTTI_FLOAT64, TUTTI_MAX);
        tt_reduce_fn min64 = get_fn(portable, TUTTI_FLOAT64, TUTTI_MIN);
        tt_reduce_fn max16 = get_fn(portable, TUTTI_FLOAT16, TUTTI_MAX);
        tt_reduce_fn min16 = get_fn(portable, TUTTI_FLOAT16, TUTTI_MIN);
        tt_reduce_fn maxbf = get_fn(portable, TUTTI_BFLOAT16, TUTTI_MAX);
        tt_reduce_fn minbf = get_fn(portable, TUTTI_BFLOAT16, TUTTI_MIN);

        cr_assert_eq(f32_bits(run_f32(max32, -0.0f, 0.0f)), 0x00000000u);
        cr_assert_eq(f32_bits(run_f32(max32, 0.0f, -0.0f)), 0x00000000u);
        cr_assert_eq(f32_bits(run_f32(min32, -0.0f, 0.0f)), 0x80000000u);
        cr_assert_eq(f32_bits(run_f32(min32, 0.0f, -0.0f)), 0x80000000u);
        cr_assert_eq(f32_bits(run_f32(max32, -0.0f, -0.0f)), 0x80000000u);
        cr_assert_eq(f32_bits(run_f32(min32, 0.0f, 0.0f)), 0x00000000u);
        cr_assert_eq(f64_bits(run_f64(max64, -0.0, 0.0)), 0);
        cr_assert_eq(f64_bits(run_f64(max64, 0.0, -0.0)), 0);
        cr_assert_eq(f64_bits(run_f64(min64, -0.0, 0.0)), 1ull << 63);
        cr_assert_eq(f64_bits(run_f64(min64, 0.0, -0.0)), 1ull << 63);
        cr_assert_eq(run_u16(&ref_half, max16, 0x8000, 0x0000), 0x0000);
        cr_assert_eq(run_u16(&ref_half, max16, 0x0000, 0x8000), 0x0000);
        cr_assert_eq(run_u16(&ref_half, min16, 0x8000, 0x0000), 0x8000);
        cr_assert_eq(run_u16(&ref_half, min16, 0x0000, 0x8000), 0x8000);
        cr_assert_eq(run_u16(&ref_bf16, maxbf, 0x8000, 0x0000), 0x0000);
        cr_assert_eq(run_u16(&ref_bf16, minbf, 0x0000, 0x8000), 0x8000);
        /* ordinary values are unaffected */
        cr_assert_eq(run_f32(max32, -1.0f, 2.0f), 2.0f);
        cr_assert_eq(run_f32(min32, -1.0f, 2.0f), -1.0f);
        cr_assert_eq(run_f32(max32, 3.0f, 3.0f), 3.0f);
        cr_assert_eq(run_f64(min64, -INFINITY, 2.0), -INFINITY);
    }
}

Test(reduce, integer_wrap)
{
    for (int portable = 0; portable < 2; portable++) {
        int8_t   i8a[]  = {127, -128, 100, -1};
        int8_t   i8b[]  = {1, -1, 100, -1};
        int8_t   i8s[4];
        uint8_t  u8a[]  = {255, 16};
        uint8_t  u8b[]  = {1, 16};
        uint8_t  u8r[2];
        int32_t  i32a[] = {INT32_MAX, INT32_MIN, 65536};
        int32_t  i32b[] = {1, -1, 65536};
        int32_t  i32r[3];
        uint32_t u32a[] = {UINT32_MAX, 0x80000000u};
        uint32_t u32b[] = {2, 2};
        uint32_t u32r[2];
        int64_t  i64a[] = {INT64_MAX, INT64_MIN, INT64_MIN};
        int64_t  i64b[] = {1, -1, -1};
        int64_t  i64r[3];
        uint64_t u64a[] = {UINT64_MAX, 1ull << 63};
        uint64_t u64b[] = {1, 2};
        uint64_t u64r[2];

        get_fn(portable, TUTTI_INT8, TUTTI_SUM)(i8s, i8a, i8b, 4);
        cr_assert_eq(i8s[0], -128);
        cr_assert_eq(i8s[1], 127);
        cr_assert_eq(i8s[2], -56);
        cr_assert_eq(i8s[3], -2);
        get_fn(portable, TUTTI_INT8, TUTTI_PROD)(i8s, i8a, i8b, 4);
        cr_assert_eq(i8s[0], 127);
        cr_assert_eq(i8s[1], -128); /* -128 * -1 wraps to -128 */
        cr_assert_eq(i8s[2], 16);   /* 10000 mod 256 */
        get_fn(portable, TUTTI_INT8, TUTTI_MAX)(i8s, i8a, i8b, 4);
        cr_assert_eq(i8s[1], -1);
        get_fn(portable, TUTTI_INT8, TUTTI_MIN)(i8s, i8a, i8b, 4);
        cr_assert_eq(i8s[1], -128);
        get_fn(portable, TUTTI_UINT8, TUTTI_SUM)(u8r, u8a, u8b, 2);
        cr_assert_eq(u8r[0], 0);
        get_fn(portable, TUTTI_UINT8, TUTTI_PROD)(u8r, u8a, u8b, 2);
        cr_assert_eq(u8r[1], 0);
        get_fn(portable, TUTTI_UINT8, TUTTI_MAX)(u8r, u8a, u8b, 2);
        cr_assert_eq(u8r[0], 255);
        get_fn(portable, TUTTI_INT32, TUTTI_SUM)(i32r, i32a, i32b, 3);
        cr_assert_eq(i32r[0], INT32_MIN);
        cr_assert_eq(i32r[1], INT32_MAX);
        get_fn(portable, TUTTI_INT32, TUTTI_PROD)(i32r, i32a, i32b, 3);
        cr_assert_eq(i32r[1], INT32_MIN);
        cr_assert_eq(i32r[2], 0); /* 2^32 */
        get_fn(portable, TUTTI_INT32, TUTTI_MIN)(i32r, i32a, i32b, 3);
        cr_assert_eq(i32r[0], 1);
        cr_assert_eq(i32r[1], INT32_MIN);
        get_fn(portable, TUTTI_UINT32, TUTTI_SUM)(u32r, u32a, u32b, 2);
        cr_assert_eq(u32r[0], 1);
        get_fn(portable, TUTTI_UINT32, TUTTI_PROD)(u32r, u32a, u32b, 2);
        cr_assert_eq(u32r[0], UINT32_MAX - 1);
        cr_assert_eq(u32r[1], 0);
        get_fn(portable, TUTTI_UINT32, TUTTI_MAX)(u32r, u32a, u32b, 2);
        cr_assert_eq(u32r[1], 0x80000000u); /* unsigned compare */
        get_fn(portable, TUTTI_INT64, TUTTI_SUM)(i64r, i64a, i64b, 3);
        cr_assert_eq(i64r[0], INT64_MIN);
        cr_assert_eq(i64r[1], INT64_MAX);
        get_fn(portable, TUTTI_INT64, TUTTI_PROD)(i64r, i64a, i64b, 3);
        cr_assert_eq(i64r[2], INT64_MIN);
        get_fn(portable, TUTTI_INT64, TUTTI_MAX)(i64r, i64a, i64b, 3);
        cr_assert_eq(i64r[0], INT64_MAX);
        cr_assert_eq(i64r[1], -1);
        get_fn(portable, TUTTI_UINT64, TUTTI_SUM)(u64r, u64a, u64b, 2);
        cr_assert_eq(u64r[0], 0);
        get_fn(portable, TUTTI_UINT64, TUTTI_PROD)(u64r, u64a, u64b, 2);
        cr_assert_eq(u64r[0], UINT64_MAX);
        cr_assert_eq(u64r[1], 0);
        get_fn(portable, TUTTI_UINT64, TUTTI_MIN)(u64r, u64a, u64b, 2);
        cr_assert_eq(u64r[0], 1);
        cr_assert_eq(u64r[1], 2); /* unsigned compare */
    }
}

/* ---- AVG division ----------------------------------------------------- */

Test(reduce_div, integers_truncate_toward_zero)
{
    int8_t   i8[]  = {-128, -7, 7, 127, -1, 0};
    uint8_t  u8[]  = {255, 7, 1};
    int32_t  i32[] = {-7, 7, INT32_MIN, INT32_MAX, -1, -6};
    uint32_t u32[] = {UINT32_MAX, 5};
    int64_t  i64[] = {-7, INT64_MIN, INT64_MAX, -2};
    uint64_t u64[] = {UINT64_MAX, 9};
    int32_t  out32[6];

    tutti__reduce_div(i8, i8, 6, TUTTI_INT8, 3);
    cr_assert_eq(i8[0], -42);
    cr_assert_eq(i8[1], -2);
    cr_assert_eq(i8[2], 2);
    cr_assert_eq(i8[3], 42);
    cr_assert_eq(i8[4], 0);
    cr_assert_eq(i8[5], 0);
    tutti__reduce_div(u8, u8, 3, TUTTI_UINT8, 2);
    cr_assert_eq(u8[0], 127);
    cr_assert_eq(u8[1], 3);
    cr_assert_eq(u8[2], 0);
    tutti__reduce_div(out32, i32, 6, TUTTI_INT32, 2);
    cr_assert_eq(out32[0], -3);
    cr_assert_eq(out32[1], 3);
    cr_assert_eq(out32[2], INT32_MIN / 2);
    cr_assert_eq(out32[3], INT32_MAX / 2);
    cr_assert_eq(out32[4], 0);
    cr_assert_eq(out32[5], -3);
    cr_assert_eq(i32[0], -7, "src untouched out of place");
    tutti__reduce_div(u32, u32, 2, TUTTI_UINT32, 4);
    cr_assert_eq(u32[0], UINT32_MAX / 4);
    cr_assert_eq(u32[1], 1);
    tutti__reduce_div(i64, i64, 4, TUTTI_INT64, 4);
    cr_assert_eq(i64[0], -1);
    cr_assert_eq(i64[1], INT64_MIN / 4);
    cr_assert_eq(i64[2], INT64_MAX / 4);
    cr_assert_eq(i64[3], 0);
    tutti__reduce_div(u64, u64, 2, TUTTI_UINT64, 3);
    cr_assert_eq(u64[0], UINT64_MAX / 3);
    cr_assert_eq(u64[1], 3);
}

Test(reduce_div, divisor_one_and_empty)
{
    int32_t a[] = {-5, 9};
    int32_t b[2];

    tutti__reduce_div(b, a, 2, TUTTI_INT32, 1);
    cr_assert_eq(b[0], -5);
    cr_assert_eq(b[1], 9);
    tutti__reduce_div(a, a, 2, TUTTI_INT32, 1);
    cr_assert_eq(a[0], -5);
    tutti__reduce_div(NULL, NULL, 0, TUTTI_FLOAT16, 3);
    tutti__reduce_div(b, a, 0, TUTTI_INT32, 5);
    cr_assert_eq(b[0], -5);
}

Test(reduce_div, floats_in_their_precision)
{
    float  f[]  = {1.0f, -7.0f, 0x1p-149f, NAN, INFINITY, -0.0f};
    double d[]  = {1.0, -7.0, 0x1p-1074, NAN};
    float  f2[6];

    tutti__reduce_div(f2, f, 6, TUTTI_FLOAT32, 3);
    cr_assert_eq(f32_bits(f2[0]), f32_bits(1.0f / 3.0f));
    cr_assert_eq(f32_bits(f2[1]), f32_bits(-7.0f / 3.0f));
    cr_assert_eq(f2[2], 0.0f);
    cr_assert(isnan(f2[3]));
    cr_assert(isinf(f2[4]));
    cr_assert_eq(f32_bits(f2[5]), 0x80000000u);
    tutti__reduce_div(d, d, 4, TUTTI_FLOAT64, 3);
    cr_assert_eq(f64_bits(d[0]), f64_bits(1.0 / 3.0));
    cr_assert_eq(f64_bits(d[1]), f64_bits(-7.0 / 3.0));
    cr_assert_eq(d[2], 0.0);
    cr_assert(isnan(d[3]));
}

/* Every float16 and bfloat16 value, divided by 2, 3, 7 and 1000. */
static void check_div_narrow(tutti_datatype_t dt)
{
    static const int divisors[] = {2, 3, 7, 1000};
    const ref_fmt_t *fmt = dt == TUTTI_FLOAT16 ? &ref_half : &ref_bf16;
    uint16_t        *src = malloc(65536 * sizeof(uint16_t));
    uint16_t        *out = malloc(65536 * sizeof(uint16_t));
    size_t           wrong = 0;

    ref_init();
    for (size_t k = 0; k < sizeof(divisors) / sizeof(divisors[0]); k++) {
        for (unsigned p = 0; p < 65536; p++) {
            src[p] = (uint16_t)p;
        }
        tutti__reduce_div(out, src, 65536, dt, divisors[k]);
        tutti__reduce_div(src, src, 65536, dt, divisors[k]); /* in place */
        for (unsigned p = 0; p < 65536; p++) {
            double   x    = ref_decode(fmt, (uint16_t)p);
            uint16_t want = ref_encode(fmt, x / divisors[k]);
            int      ok;

            if (isnan(x)) {
                ok = ref_is_nan(fmt, out[p]);
            } else {
                ok = out[p] == want;
            }
            if ((!ok || src[p] != out[p]) && wrong++ < 5) {
                cr_log_error("%s %#06x / %d -> %#06x (in place %#06x), "
                             "want %#06x", fmt->name, p, divisors[k],
                             out[p], src[p], want);
            }
        }
    }
    free(src);
    free(out);
    cr_assert_eq(wrong, 0, "%zu wrong quotients", wrong);
}

Test(reduce_div, half_exhaustive)
{
    check_div_narrow(TUTTI_FLOAT16);
}

Test(reduce_div, bf16_exhaustive)
{
    check_div_narrow(TUTTI_BFLOAT16);
}
