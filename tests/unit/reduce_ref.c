/*
 * Reference float16/bfloat16 arithmetic and small helpers for the
 * reduction unit tests (test_reduce.c, test_convert.c). The reference
 * shares no code or trick with src/dtype.c: it decodes with ldexp from the
 * IEEE definition and encodes by searching a sorted table of every
 * positive finite value for the nearest one.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "reduce_ref.h"

static double ref_half_values[0x7c00];
static double ref_bf16_values[0x7f80];

ref_fmt_t ref_half = {"float16", 10, 15, 0x7c00, ref_half_values, 0};
ref_fmt_t ref_bf16 = {"bfloat16", 7, 127, 0x7f80, ref_bf16_values, 0};

/* Value of a positive finite pattern p, from the IEEE definition. */
static double ref_decode_pos(const ref_fmt_t *fmt, unsigned p)
{
    unsigned exp = p >> fmt->man_bits;
    unsigned man = p & ((1u << fmt->man_bits) - 1);

    if (exp == 0) {
        return ldexp((double)man, 1 - fmt->bias - fmt->man_bits);
    }
    return ldexp((double)((1u << fmt->man_bits) + man),
                 (int)exp - fmt->bias - fmt->man_bits);
}

static void ref_init_fmt(ref_fmt_t *fmt)
{
    double max;

    if (fmt->inf_from != 0) {
        return;
    }
    for (unsigned p = 0; p < fmt->inf; p++) {
        fmt->values[p] = ref_decode_pos(fmt, p);
    }
    /*
     * Halfway between the largest finite value and the next power of two;
     * a tie there goes to the even pattern, which is infinity.
     */
    max           = fmt->values[fmt->inf - 1];
    fmt->inf_from = (max + ldexp(1.0, fmt->bias + 1)) / 2;
}

void ref_init(void)
{
    ref_init_fmt(&ref_half);
    ref_init_fmt(&ref_bf16);
}

int ref_is_nan(const ref_fmt_t *fmt, uint16_t h)
{
    return (h & 0x7fff) > fmt->inf;
}

double ref_decode(const ref_fmt_t *fmt, uint16_t h)
{
    double mag;

    if (ref_is_nan(fmt, h)) {
        return NAN;
    }
    mag = (h & 0x7fff) == fmt->inf ? INFINITY : fmt->values[h & 0x7fff];
    return (h & 0x8000) ? -mag : mag;
}

/*
 * Round x to the nearest value of fmt, ties to the even pattern. NaN maps
 * to the canonical quiet NaN; callers compare NaNs by class only.
 */
uint16_t ref_encode(const ref_fmt_t *fmt, double x)
{
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    double   ax   = fabs(x);
    unsigned lo   = 0;
    unsigned hi   = fmt->inf - 1;
    double   mid;

    if (isnan(x)) {
        return (uint16_t)(fmt->inf | ((fmt->inf >> 1) & ~fmt->inf) | sign);
    }
    if (ax >= fmt->inf_from) {
        return (uint16_t)(sign | fmt->inf);
    }
    if (ax >= fmt->values[hi]) {
        return (uint16_t)(sign | hi);
    }
    /* largest lo with values[lo] <= ax; ax < values[hi] */
    while (hi - lo > 1) {
        unsigned m = (lo + hi) / 2;

        if (fmt->values[m] <= ax) {
            lo = m;
        } else {
            hi = m;
        }
    }
    /* neighbours within a factor of two: the midpoint is exact in double */
    mid = (fmt->values[lo] + fmt->values[hi]) / 2;
    if (ax < mid || (ax == mid && (lo & 1) == 0)) {
        return (uint16_t)(sign | lo);
    }
    return (uint16_t)(sign | hi);
}

uint32_t f32_bits(float f)
{
    uint32_t u;

    memcpy(&u, &f, sizeof(u));
    return u;
}

float f32_of(uint32_t u)
{
    float f;

    memcpy(&f, &u, sizeof(f));
    return f;
}

uint64_t f64_bits(double d)
{
    uint64_t u;

    memcpy(&u, &d, sizeof(u));
    return u;
}

/* xorshift64*, deterministic per seed */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}
