/*
 * Private declarations shared by src/reduce.c, src/dtype.c and the unit
 * tests: float bit-pattern helpers, block conversions between
 * float16/bfloat16 and float32 (the portable kernels widen a block of
 * elements, combine in float32 and narrow back), and access to the
 * portable kernels that the runtime dispatch would otherwise hide on a
 * machine with AVX2.
 */
#ifndef TUTTI_REDUCE_IMPL_H
#define TUTTI_REDUCE_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "reduce.h"

/* Bit patterns of floats and back (memcpy: no aliasing violation). */
static inline uint32_t tt_f32_bits(float f)
{
    uint32_t u;

    memcpy(&u, &f, sizeof(u));
    return u;
}

static inline float tt_f32_from_bits(uint32_t u)
{
    float f;

    memcpy(&f, &u, sizeof(f));
    return f;
}

static inline uint64_t tt_f64_bits(double d)
{
    uint64_t u;

    memcpy(&u, &d, sizeof(u));
    return u;
}

static inline double tt_f64_from_bits(uint64_t u)
{
    double d;

    memcpy(&d, &u, sizeof(d));
    return d;
}

/*
 * x86-64 with a GNU-compatible compiler: kernels built for AVX2 (and F16C
 * for float16) exist beside the portable ones and tutti__reduce_fn()
 * returns them when the CPU and the OS support those instructions.
 */
#if defined(__x86_64__) && defined(__GNUC__)
#define TT_REDUCE_X86 1
#else
#define TT_REDUCE_X86 0
#endif

/*
 * Block conversions, n elements, same rounding and NaN rules as the scalar
 * ones in reduce.h. dst and src never overlap (dst is a float32 array when
 * src is 16-bit and the reverse).
 */
typedef void (*tt_widen_fn)(float *dst, const uint16_t *src, size_t n);
typedef void (*tt_narrow_fn)(uint16_t *dst, const float *src, size_t n);

void tutti__half_to_float_n(float *dst, const uint16_t *src, size_t n);
void tutti__float_to_half_n(uint16_t *dst, const float *src, size_t n);
void tutti__bf16_to_float_n(float *dst, const uint16_t *src, size_t n);
void tutti__float_to_bf16_n(uint16_t *dst, const float *src, size_t n);

/* Whether this CPU and OS run the AVX2 + F16C kernels (0 off x86-64). */
int tutti__reduce_x86_ok(void);

/*
 * The portable kernel for (datatype, op), never an ISA-specific one; NULL
 * like tutti__reduce_fn(). For tests and bench_reduce, which check and time
 * both paths on any machine.
 */
tt_reduce_fn tutti__reduce_fn_portable(tutti_datatype_t datatype,
                                       tutti_redop_t op);

#endif /* TUTTI_REDUCE_IMPL_H */
