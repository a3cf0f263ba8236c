/*
 * Result codes (one X-macro list generates the names and the descriptions),
 * the thread-local last error and small system helpers.
 */
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* XX(code, description) */
#define TT_RESULT_MAP(XX)                                                    \
    XX(TUTTI_SUCCESS, "success")                                             \
    XX(TUTTI_INPROGRESS, "operation in progress")                            \
    XX(TUTTI_ERR_INVALID_ARGUMENT, "invalid argument")                       \
    XX(TUTTI_ERR_INVALID_USAGE, "invalid usage")                             \
    XX(TUTTI_ERR_SYSTEM, "system call failed")                               \
    XX(TUTTI_ERR_INTERNAL, "internal error")                                 \
    XX(TUTTI_ERR_REMOTE, "remote peer failed")                               \
    XX(TUTTI_ERR_TIMEOUT, "timed out")                                       \
    XX(TUTTI_ERR_ABORTED, "communicator aborted")                            \
    XX(TUTTI_ERR_UNSUPPORTED, "operation not supported")                     \
    XX(TUTTI_ERR_NO_MEMORY, "out of memory")

#define TT_LAST_ERROR_MAX 512

static _Thread_local char tt_last_error[TT_LAST_ERROR_MAX];

const char *tutti_strerror(tutti_result_t result)
{
#define TT_STRERROR_GEN(_name, _msg)                                         \
    case _name:                                                              \
        return _msg;
    switch (result) {
        TT_RESULT_MAP(TT_STRERROR_GEN)
    }
#undef TT_STRERROR_GEN
    return "unknown result code";
}

const char *tutti_result_name(tutti_result_t result)
{
#define TT_NAME_GEN(_name, _msg)                                             \
    case _name:                                                              \
        return #_name;
    switch (result) {
        TT_RESULT_MAP(TT_NAME_GEN)
    }
#undef TT_NAME_GEN
    return "TUTTI_ERR_UNKNOWN";
}

const char *tutti_last_error(void)
{
    return tt_last_error;
}

void tutti__error_clear(void)
{
    tt_last_error[0] = '\0';
}

tutti_result_t tutti__error_at(int level, const char *file, int line,
                               tutti_result_t code, const char *fmt, ...)
{
    int     saved = errno;
    char    text[sizeof(tt_last_error)];
    va_list ap;

    /* formatted aside first: an argument may be tutti_last_error() itself
     * (a reason wrapped in context) */
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    memcpy(tt_last_error, text, sizeof(text));
    if (level == TT_LOG_WARN) {
        if (tutti__log_level >= TT_LOG_WARN) {
            tutti__log(TT_LOG_WARN, TT_SUB_ALL, file, line, "%s: %s",
                       tutti_result_name(code), tt_last_error);
        }
    } else if (TT_LOG_ENABLED(TT_LOG_INFO, TT_SUB_ALL)) {
        tutti__log(TT_LOG_INFO, TT_SUB_ALL, file, line, "%s: %s",
                   tutti_result_name(code), tt_last_error);
    }
    errno = saved;
    return code;
}

void tutti__assert_fail(const char *cond, const char *file, int line)
{
    fprintf(stderr, "tutti: assertion '%s' failed at %s:%d\n", cond, file,
            line);
    abort();
}

uint64_t tutti__now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int tutti__ncpus(void)
{
    cpu_set_t set;

    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        return CPU_COUNT(&set);
    }
    return (int)sysconf(_SC_NPROCESSORS_ONLN);
}

tutti_result_t tutti__random_bytes(void *buf, size_t len)
{
    char *p = buf;

    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return tutti__error(TUTTI_ERR_SYSTEM, "getrandom(%zu bytes): %s",
                                len, strerror(errno));
        }
        p += n;
        len -= (size_t)n;
    }
    return TUTTI_SUCCESS;
}

int tutti_version(void)
{
    return TUTTI_VERSION_CODE;
}
