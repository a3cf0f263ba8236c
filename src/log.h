/*
 * Logging: levels, subsystems and the TT_WARN/TT_INFO/TT_TRACE macros.
 *
 * TUTTI_DEBUG=NONE|WARN|INFO|TRACE sets the level, TUTTI_DEBUG_SUBSYS a
 * comma-separated list of subsystems (INIT,BOOT,...,ALL; a leading ^ negates)
 * that INFO and TRACE lines are filtered by. Level and mask are checked
 * before anything is formatted. Each line reads
 * "host:pid:tid [rank] SUB message". The macros preserve errno.
 */
#ifndef TUTTI_LOG_H
#define TUTTI_LOG_H

#include <stdint.h>

typedef enum tt_log_level {
    TT_LOG_NONE  = 0,
    TT_LOG_WARN  = 1,
    TT_LOG_INFO  = 2,
    TT_LOG_TRACE = 3
} tt_log_level_t;

/* Subsystems (bit mask). Keep tutti__log_subsys_names in log.c in step. */
#define TT_SUB_INIT  (1u << 0)
#define TT_SUB_BOOT  (1u << 1)
#define TT_SUB_TOPO  (1u << 2)
#define TT_SUB_TUNE  (1u << 3)
#define TT_SUB_COLL  (1u << 4)
#define TT_SUB_SCHED (1u << 5)
#define TT_SUB_SHM   (1u << 6)
#define TT_SUB_UCX   (1u << 7)
#define TT_SUB_OFI   (1u << 8)
#define TT_SUB_ENV   (1u << 9)
#define TT_SUB_NET   (1u << 10)
#define TT_SUB_ALL   0xffffffffu

extern int      tutti__log_level;
extern uint32_t tutti__log_mask;

/* Reads TUTTI_DEBUG and TUTTI_DEBUG_SUBSYS once (idempotent, thread-safe). */
void tutti__log_init(void);
/* Sets the rank printed by this thread's log lines (-1: none). */
void tutti__log_set_rank(int rank);

void tutti__log(int level, uint32_t sub, const char *file, int line,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The logger handed to transports, so they need not link against log.c. */
typedef void (*tt_log_fn)(int level, uint32_t sub, const char *file, int line,
                          const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#define TT_LOG_ENABLED(_lvl, _sub)                                           \
    (tutti__log_level >= (_lvl) && (tutti__log_mask & (_sub)))

#define TT_WARN(...)                                                         \
    do {                                                                     \
        if (tutti__log_level >= TT_LOG_WARN)                                 \
            tutti__log(TT_LOG_WARN, TT_SUB_ALL, __FILE__, __LINE__,          \
                       __VA_ARGS__);                                         \
    } while (0)

#define TT_INFO(_sub, ...)                                                   \
    do {                                                                     \
        if (TT_LOG_ENABLED(TT_LOG_INFO, (_sub)))                             \
            tutti__log(TT_LOG_INFO, (_sub), __FILE__, __LINE__,              \
                       __VA_ARGS__);                                         \
    } while (0)

#ifdef TUTTI_ENABLE_TRACE
#define TT_TRACE(_sub, ...)                                                  \
    do {                                                                     \
        if (TT_LOG_ENABLED(TT_LOG_TRACE, (_sub)))                            \
            tutti__log(TT_LOG_TRACE, (_sub), __FILE__, __LINE__,             \
                       __VA_ARGS__);                                         \
    } while (0)
#else
#define TT_TRACE(_sub, ...)                                                  \
    do {                                                                     \
    } while (0)
#endif

#endif /* TUTTI_LOG_H */
