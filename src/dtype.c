/*
 * Datatype and operator helpers: element sizes and names for the public
 * API (tutti_datatype_size/_name, tutti_redop_name), the float16 and
 * bfloat16 <-> float32 conversions, one element at a time (reduce.h) and by
 * blocks for the portable kernels (reduce_impl.h), and AVG's final division
 * (tutti__reduce_div). The x86 kernels in reduce.c convert with F16C/AVX2
 * instructions and must agree with these bit for bit.
 *
 * The portable conversions are branch-free bit arithmetic on
 * uint32_t/int32_t plus at most one float operation, so gcc turns the block
 * loops into SSE2 code without any target flag. No result depends on how
 * the FPU treats float32 subnormals, so they stay correct when the process
 * runs with flush-to-zero or denormals-are-zero (-ffast-math, or
 * torch.set_flush_denormal). They assume the default rounding mode (round
 * to nearest even), as all of tutti does.
 *
 * NaN handling follows IEEE 754 convertFormat, and matches what the F16C
 * instructions do: a NaN converts to a quiet NaN of the
 * same sign that keeps the payload's leading bits. Every other value
 * converts exactly (widening) or rounds to nearest even (narrowing),
 * overflowing to infinity and underflowing through the subnormals to zero.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"
#include "reduce.h"
#include "reduce_impl.h"

/* float16/bfloat16 elements divided per float32 block on the stack. */
#define TT_DIV_BLOCK 256

static const size_t tt_datatype_sizes[TUTTI_NUM_DATATYPES] = {
    [TUTTI_INT8]     = 1,
    [TUTTI_UINT8]    = 1,
    [TUTTI_INT32]    = 4,
    [TUTTI_UINT32]   = 4,
    [TUTTI_INT64]    = 8,
    [TUTTI_UINT64]   = 8,
    [TUTTI_FLOAT16]  = 2,
    [TUTTI_FLOAT32]  = 4,
    [TUTTI_FLOAT64]  = 8,
    [TUTTI_BFLOAT16] = 2,
};

static const char *const tt_datatype_names[TUTTI_NUM_DATATYPES] = {
    [TUTTI_INT8]     = "int8",
    [TUTTI_UINT8]    = "uint8",
    [TUTTI_INT32]    = "int32",
    [TUTTI_UINT32]   = "uint32",
    [TUTTI_INT64]    = "int64",
    [TUTTI_UINT64]   = "uint64",
    [TUTTI_FLOAT16]  = "float16",
    [TUTTI_FLOAT32]  = "float32",
    [TUTTI_FLOAT64]  = "float64",
    [TUTTI_BFLOAT16] = "bfloat16",
};

static const char *const tt_redop_names[TUTTI_NUM_REDOPS] = {
    [TUTTI_SUM]  = "sum",
    [TUTTI_PROD] = "prod",
    [TUTTI_MAX]  = "max",
    [TUTTI_MIN]  = "min",
    [TUTTI_AVG]  = "avg",
};

/*
 * The enums may hold any int the caller passes, negative included, so each
 * lookup compares as unsigned: one test rejects both ends.
 */
size_t tutti_datatype_size(tutti_datatype_t datatype)
{
    if ((unsigned)datatype >= TUTTI_NUM_DATATYPES) {
        return 0;
    }
    return tt_datatype_sizes[datatype];
}

const char *tutti_datatype_name(tutti_datatype_t datatype)
{
    if ((unsigned)datatype >= TUTTI_NUM_DATATYPES) {
        return NULL;
    }
    return tt_datatype_names[datatype];
}

const char *tutti_redop_name(tutti_redop_t op)
{
    if ((unsigned)op >= TUTTI_NUM_REDOPS) {
        return NULL;
    }
    return tt_redop_names[op];
}

/*
 * binary16 -> float32, exact. A normal half only needs its exponent rebiased
 * (15 -> 127, +112). A subnormal half is man * 2^-24 = (1 + man/1024) *
 * 2^-14 - 2^-14: build the first term as a normal float32 and subtract
 * 2^-14, which is exact and never produces a float32 subnormal, so no
 * count-leading-zeros is needed. Every other value subtracts 0.0f, which
 * keeps it unchanged; doing the subtraction for all values keeps the loop
 * free of a conditional float operation, which gcc would not if-convert (it
 * may trap under -ftrapping-math) and would then not vectorise. Exponent 31
 * is infinity or NaN; a NaN gets the quiet bit.
 */
static inline float tt_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    int32_t  exp  = (h >> 10) & 0x1f;
    uint32_t man  = (uint32_t)(h & 0x3ffu) << 13;
    uint32_t bits = ((uint32_t)(exp + 112) << 23) | man;
    float    bias = 0.0f;

    if (exp == 0) {
        bits = 0x38800000u | man;
        bias = 0x1p-14f;
    }
    if (exp == 31) {
        bits = 0x7f800000u | man | (man != 0 ? 0x00400000u : 0u);
    }
    return tt_f32_from_bits(sign |
                            tt_f32_bits(tt_f32_from_bits(bits) - bias));
}

/*
 * float32 -> binary16, round to nearest even. By magnitude a (the bits
 * without the sign):
 * - NaN: quiet NaN, the payload's top 10 bits kept;
 * - a >= 65520 (halfway between 65504, the largest half, and 65536):
 *   infinity, since the tie goes to the even 65536;
 * - a >= 2^-14 (smallest normal half): rebias the exponent and round the
 *   13 dropped mantissa bits; a carry out of the mantissa correctly bumps
 *   the exponent;
 * - below: a half subnormal is a multiple of 2^-24, which is exactly the
 *   ulp of float32 values in [0.5, 1). Adding 0.5f makes the FPU round a
 *   to that grid (to nearest even), and the low bits of the sum are the
 *   half's bits; 2^-14 itself comes out as 0x0400, the smallest normal.
 *   A float32 subnormal input rounds to zero here, as it must, even when
 *   DAZ treats it as zero.
 */
static inline uint16_t tt_float_to_half(float f)
{
    uint32_t x    = tt_f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    int32_t  a    = (int32_t)(x & 0x7fffffffu);
    uint32_t n    = (uint32_t)a - 0x38000000u;
    uint32_t normal = (n + 0x0fffu + ((n >> 13) & 1u)) >> 13;
    uint32_t tiny   = tt_f32_bits(tt_f32_from_bits((uint32_t)a) + 0.5f) -
                      0x3f000000u;
    uint32_t nan    = 0x7e00u | (((uint32_t)a >> 13) & 0x3ffu);
    /* all ones where a is normal, infinite or NaN in float16 terms */
    uint32_t not_tiny = 0u - (uint32_t)(a >= 0x38800000);
    uint32_t mag;

    mag = a >= 0x477ff000 ? 0x7c00u : normal;
    mag = a > 0x7f800000 ? nan : mag;
    /*
     * The last step is a bitwise blend, not a ?:, so that the float sum in
     * `tiny` is used unconditionally: gcc would otherwise sink it into a
     * branch and not vectorise the loop (see tt_half_to_float).
     */
    mag = (mag & not_tiny) | (tiny & ~not_tiny);
    return (uint16_t)(sign | mag);
}

/* bfloat16 -> float32, exact: bfloat16 is the top half of a float32. */
static inline float tt_bf16_to_float(uint16_t b)
{
    uint32_t x = (uint32_t)b << 16;
    int32_t  a = (int32_t)(x & 0x7fffffffu);

    return tt_f32_from_bits(a > 0x7f800000 ? x | 0x00400000u : x);
}

/*
 * float32 -> bfloat16, round to nearest even on the 16 dropped bits. The
 * same exponent range means subnormals need nothing special, and a carry
 * out of the largest finite values gives infinity. Adding to a NaN could
 * carry into the sign, so NaN is handled apart: quiet, top payload kept.
 */
static inline uint16_t tt_float_to_bf16(float f)
{
    uint32_t x   = tt_f32_bits(f);
    int32_t  a   = (int32_t)(x & 0x7fffffffu);
    uint32_t r   = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
    uint32_t nan = (x >> 16) | 0x0040u;

    return (uint16_t)(a > 0x7f800000 ? nan : r);
}

/*
 * The exported scalar conversions and the block ones: the same inline code,
 * which the block loops vectorise.
 */
float tutti__half_to_float(uint16_t h)
{
    return tt_half_to_float(h);
}

uint16_t tutti__float_to_half(float f)
{
    return tt_float_to_half(f);
}

float tutti__bf16_to_float(uint16_t b)
{
    return tt_bf16_to_float(b);
}

uint16_t tutti__float_to_bf16(float f)
{
    return tt_float_to_bf16(f);
}

void tutti__half_to_float_n(float *dst, const uint16_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dst[i] = tt_half_to_float(src[i]);
    }
}

void tutti__float_to_half_n(uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dst[i] = tt_float_to_half(src[i]);
    }
}

void tutti__bf16_to_float_n(float *dst, const uint16_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dst[i] = tt_bf16_to_float(src[i]);
    }
}

void tutti__float_to_bf16_n(uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dst[i] = tt_float_to_bf16(src[i]);
    }
}

/*
 * AVG's division, one loop per type. Integer division does not vectorise
 * on x86 and AVG over integers is rare, so those loops stay scalar; the
 * float loops divide (no reciprocal multiply, which would round twice).
 * float16 and bfloat16 divide in float32 and round once more: float32 has
 * more than 2p + 2 bits, so that gives the correctly rounded quotient (for
 * bfloat16 subnormal quotients, where float32 is subnormal too, as long as
 * the divisor is below 2^16).
 */
static void tt_div_narrow(uint16_t *dst, const uint16_t *src, size_t n,
                          float divisor, tt_widen_fn widen,
                          tt_narrow_fn narrow)
{
    float f[TT_DIV_BLOCK];

    for (size_t off = 0; off < n; off += TT_DIV_BLOCK) {
        size_t len = TT_MIN(n - off, (size_t)TT_DIV_BLOCK);

        widen(f, src + off, len);
        for (size_t i = 0; i < len; i++) {
            f[i] /= divisor;
        }
        narrow(dst + off, f, len);
    }
}

void tutti__reduce_div(void *dst, const void *src, size_t count,
                       tutti_datatype_t datatype, int divisor)
{
    /* The divisor is the rank count, never user input. */
    tt_assert(divisor > 0);
    if (divisor == 1) {
        if (dst != src && count > 0) {
            memcpy(dst, src, count * tutti_datatype_size(datatype));
        }
        return;
    }

    switch (datatype) {
    case TUTTI_INT8: {
        int8_t       *d = dst;
        const int8_t *s = src;

        for (size_t i = 0; i < count; i++) {
            d[i] = (int8_t)(s[i] / divisor);
        }
        break;
    }
    case TUTTI_UINT8: {
        uint8_t       *d = dst;
        const uint8_t *s = src;

        for (size_t i = 0; i < count; i++) {
            d[i] = (uint8_t)(s[i] / divisor);
        }
        break;
    }
    case TUTTI_INT32: {
        int32_t       *d = dst;
        const int32_t *s = src;

        for (size_t i = 0; i < count; i++) {
            d[i] = s[i] / divisor;
        }
        break;
    }
    case TUTTI_UINT32: {
        uint32_t       *d = dst;
        const uint32_t *s = src;

        for (size_t i = 0; i < count; i++) {
            d[i] = s[i] / (uint32_t)divisor;
        }
        break;
    }
    case TUTTI_INT64: {
        int64_t       *d = dst;
        const int64_t *s = src;

        for (size_t i = 0; i < count; i++) {
            d[i] = s[i] / (int64_t)divisor;
        }
        break;
    }
    case TUTTI_UINT64: {
        uint64_t       *d = dst;
        const uint64_t *s = src;

        for (size_t i = 0; i < count; i++) {
            d[i] = s[i] / (uint64_t)divisor;
        }
        break;
    }
    case TUTTI_FLOAT16:
        tt_div_narrow(dst, src, count, (float)divisor, tutti__half_to_float_n,
                      tutti__float_to_half_n);
        break;
    case TUTTI_BFLOAT16:
        tt_div_narrow(dst, src, count, (float)divisor, tutti__bf16_to_float_n,
                      tutti__float_to_bf16_n);
        break;
    case TUTTI_FLOAT32: {
        float       *d = dst;
        const float *s = src;
        float        f = (float)divisor;

        for (size_t i = 0; i < count; i++) {
            d[i] = s[i] / f;
        }
        break;
    }
    case TUTTI_FLOAT64: {
        double       *d = dst;
        const double *s = src;
        double        f = (double)divisor;

        for (size_t i = 0; i < count; i++) {
            d[i] = s[i] / f;
        }
        break;
    }
    default:
        break;
    }
}
