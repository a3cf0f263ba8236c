/*
 * Internal helpers shared by every part of the core: error reporting,
 * the TT_CHECK macros, assertions and small utilities. Internal non-static
 * symbols are prefixed tutti__ (libuv's rule).
 */
#ifndef TUTTI_INTERNAL_H
#define TUTTI_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "tutti.h"
#include "log.h"

#define TT_MIN(_a, _b) ((_a) < (_b) ? (_a) : (_b))
#define TT_MAX(_a, _b) ((_a) > (_b) ? (_a) : (_b))
#define TT_DIV_UP(_a, _b) (((_a) + (_b) - 1) / (_b))
#define TT_ALIGN_UP(_a, _b) (TT_DIV_UP((_a), (_b)) * (_b))
#define TT_ARRAY_SIZE(_a) (sizeof(_a) / sizeof((_a)[0]))
#define TT_CACHE_LINE 64

#define tt_container_of(_ptr, _type, _member)                                \
    ((_type *)((char *)(_ptr) - offsetof(_type, _member)))

/*
 * Records an error: formats the message into the thread-local last error,
 * logs it at WARN once (here, at the point of detection, with the caller's
 * file and line) and returns code.
 * Use: return tutti__error(TUTTI_ERR_INVALID_ARGUMENT, "count %zu ...", n);
 * tutti__error_quiet() logs at INFO instead: for expected conditions (a
 * peer went away, an abort).
 */
tutti_result_t tutti__error_at(int level, const char *file, int line,
                               tutti_result_t code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
#define tutti__error(_code, ...)                                             \
    tutti__error_at(TT_LOG_WARN, __FILE__, __LINE__, (_code), __VA_ARGS__)
#define tutti__error_quiet(_code, ...)                                       \
    tutti__error_at(TT_LOG_INFO, __FILE__, __LINE__, (_code), __VA_ARGS__)
/* Clears the thread's last error (at the start of every API call). */
void tutti__error_clear(void);

/* Propagates an error; the per-frame trail goes to TRACE only. */
#define TT_CHECK(_expr)                                                      \
    do {                                                                     \
        tutti_result_t tt__res = (_expr);                                    \
        if (tt__res < 0) {                                                   \
            TT_TRACE(TT_SUB_ALL, "-> %s", tutti_result_name(tt__res));       \
            return tt__res;                                                  \
        }                                                                    \
    } while (0)

#define TT_CHECK_GOTO(_expr, _status, _label)                                \
    do {                                                                     \
        (_status) = (_expr);                                                 \
        if ((_status) < 0) {                                                 \
            TT_TRACE(TT_SUB_ALL, "-> %s", tutti_result_name(_status));       \
            goto _label;                                                     \
        }                                                                    \
    } while (0)

/* Invariants only, never user input. */
#define tt_assert(_cond)                                                     \
    do {                                                                     \
        if (!(_cond))                                                        \
            tutti__assert_fail(#_cond, __FILE__, __LINE__);                  \
    } while (0)

void tutti__assert_fail(const char *cond, const char *file, int line)
    __attribute__((noreturn));

/* Monotonic clock in nanoseconds. */
uint64_t tutti__now_ns(void);

/* CPUs this process may run on: its affinity mask, else the online
 * count. */
int tutti__ncpus(void);

/* Fills buf with len cryptographically random bytes (getrandom). */
tutti_result_t tutti__random_bytes(void *buf, size_t len);

#endif /* TUTTI_INTERNAL_H */
