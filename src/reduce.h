/*
 * Typed reduction kernels and datatype helpers (src/reduce.c, src/dtype.c).
 *
 * Every kernel computes dst[i] = a[i] OP b[i] for i < count. dst may be the
 * same pointer as a or b (not a partial overlap). float16 and bfloat16 are
 * widened to float32, combined, and rounded back to nearest even; NaN
 * propagates through SUM, PROD, MAX and MIN. TUTTI_AVG reduces as TUTTI_SUM;
 * the division by the rank count happens once, in tutti__reduce_div().
 * Kernels are written so that gcc -O3 vectorises the loops.
 */
#ifndef TUTTI_REDUCE_H
#define TUTTI_REDUCE_H

#include <stddef.h>
#include <stdint.h>

#include "tutti.h"

typedef void (*tt_reduce_fn)(void *dst, const void *a, const void *b,
                             size_t count);

/* The kernel for (datatype, op), NULL if either is out of range. */
tt_reduce_fn tutti__reduce_fn(tutti_datatype_t datatype, tutti_redop_t op);

/*
 * dst[i] = src[i] / divisor (AVG's final step). Integers truncate toward
 * zero; float16/bfloat16 divide in float32 and round to nearest even.
 * dst may equal src.
 */
void tutti__reduce_div(void *dst, const void *src, size_t count,
                       tutti_datatype_t datatype, int divisor);

/* IEEE binary16 and bfloat16 <-> float32, round to nearest even, NaN kept. */
float    tutti__half_to_float(uint16_t h);
uint16_t tutti__float_to_half(float f);
float    tutti__bf16_to_float(uint16_t b);
uint16_t tutti__float_to_bf16(float f);

#endif /* TUTTI_REDUCE_H */
