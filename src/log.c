/*
 * Log output: level and subsystem filtering read from the environment once,
 * and the line format "host:pid:tid [rank] SUB message".
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"

int      tutti__log_level = TT_LOG_WARN;
uint32_t tutti__log_mask  = TT_SUB_ALL;

static pthread_once_t  tt_log_once = PTHREAD_ONCE_INIT;
static char            tt_log_host[64];
static _Thread_local int tt_log_rank = -1;

static const struct {
    const char *name;
    uint32_t    bit;
} tt_subsys[] = {
    {"INIT", TT_SUB_INIT}, {"BOOT", TT_SUB_BOOT},   {"TOPO", TT_SUB_TOPO},
    {"TUNE", TT_SUB_TUNE}, {"COLL", TT_SUB_COLL},   {"SCHED", TT_SUB_SCHED},
    {"SHM", TT_SUB_SHM},   {"UCX", TT_SUB_UCX},     {"OFI", TT_SUB_OFI},
    {"ENV", TT_SUB_ENV},   {"NET", TT_SUB_NET},     {"ALL", TT_SUB_ALL},
};

static uint32_t tt_log_parse_mask(const char *s)
{
    uint32_t mask   = 0;
    int      negate = 0;
    char     buf[256];
    char    *tok, *save = NULL;

    if (s[0] == '^') {
        negate = 1;
        s++;
    }
    snprintf(buf, sizeof(buf), "%s", s);
    for (tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        size_t i;
        for (i = 0; i < sizeof(tt_subsys) / sizeof(tt_subsys[0]); i++) {
            if (strcasecmp(tok, tt_subsys[i].name) == 0) {
                mask |= tt_subsys[i].bit;
                break;
            }
        }
        if (i == sizeof(tt_subsys) / sizeof(tt_subsys[0])) {
            fprintf(stderr, "tutti: TUTTI_DEBUG_SUBSYS: unknown subsystem "
                            "'%s' ignored\n", tok);
        }
    }
    return negate ? ~mask : mask;
}

static void tt_log_init_once(void)
{
    const char *level = getenv("TUTTI_DEBUG");
    const char *subsys = getenv("TUTTI_DEBUG_SUBSYS");

    if (gethostname(tt_log_host, sizeof(tt_log_host)) != 0) {
        snprintf(tt_log_host, sizeof(tt_log_host), "unknown");
    }
    tt_log_host[sizeof(tt_log_host) - 1] = '\0';
    if (level != NULL && level[0] != '\0') {
        if (strcasecmp(level, "NONE") == 0) {
            tutti__log_level = TT_LOG_NONE;
        } else if (strcasecmp(level, "WARN") == 0) {
            tutti__log_level = TT_LOG_WARN;
        } else if (strcasecmp(level, "INFO") == 0) {
            tutti__log_level = TT_LOG_INFO;
        } else if (strcasecmp(level, "TRACE") == 0) {
            tutti__log_level = TT_LOG_TRACE;
        } else {
            fprintf(stderr, "tutti: TUTTI_DEBUG: unknown level '%s' (use "
                            "NONE, WARN, INFO or TRACE); using WARN\n", level);
        }
    }
    if (subsys != NULL && subsys[0] != '\0') {
        tutti__log_mask = tt_log_parse_mask(subsys);
    }
}

void tutti__log_init(void)
{
    pthread_once(&tt_log_once, tt_log_init_once);
}

void tutti__log_set_rank(int rank)
{
    tt_log_rank = rank;
}

static const char *tt_log_sub_name(uint32_t sub)
{
    size_t i;

    if (sub == TT_SUB_ALL) {
        return "";
    }
    for (i = 0; i < sizeof(tt_subsys) / sizeof(tt_subsys[0]); i++) {
        if (sub & tt_subsys[i].bit) {
            return tt_subsys[i].name;
        }
    }
    return "";
}

void tutti__log(int level, uint32_t sub, const char *file, int line,
                const char *fmt, ...)
{
    static const char *const lvl[] = {"", "WARN", "INFO", "TRACE"};
    int     saved = errno;
    char    msg[1024];
    va_list ap;

    tutti__log_init();
    if (level > tutti__log_level) {
        errno = saved;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (level == TT_LOG_WARN) {
        fprintf(stderr, "%s:%d:%d [%d] tutti %s %s:%d %s\n", tt_log_host,
                (int)getpid(), (int)gettid(), tt_log_rank, lvl[level],
                file, line, msg);
    } else {
        fprintf(stderr, "%s:%d:%d [%d] tutti %s %s %s\n", tt_log_host,
                (int)getpid(), (int)gettid(), tt_log_rank, lvl[level],
                tt_log_sub_name(sub), msg);
    }
    errno = saved;
}
