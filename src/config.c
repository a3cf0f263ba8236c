/*
 * The one table of TUTTI_* environment variables, and the loader that
 * applies defaults, the user's tutti_config_t and the environment in that
 * order. Every variable is declared here once, with its default and help
 * text (UCX's config tables); `tutti-bench --env` prints this table.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "internal.h"

#define TT_OFF(_f) offsetof(tt_config_t, _f)

const tt_param_t tutti__params[] = {
    {"DEBUG", "WARN",
     "Log level: NONE, WARN, INFO or TRACE (TRACE needs a debug build).",
     0, TT_PARAM_LOG, 0, 0},
    {"DEBUG_SUBSYS", "ALL",
     "Comma-separated subsystems for INFO/TRACE lines: INIT, BOOT, TOPO, "
     "TUNE, COLL, SCHED, SHM, UCX, OFI, ENV, NET or ALL; ^ negates.",
     0, TT_PARAM_LOG, 0, 0},
    {"UNIQUE_ID", "",
     "Rendezvous id as text (tutti_unique_id_to_text), read by "
     "tutti_comm_init when its id argument is NULL.",
     0, TT_PARAM_LOG, 0, 0},
    {"TIMEOUT_MS", "120000",
     "Bound in milliseconds on communicator init, and on how long a call "
     "may wait without any progress; 0 waits forever.",
     TT_OFF(timeout_ms), TT_PARAM_INT, 0, INT_MAX},
    {"ALGO", "auto",
     "Algorithm override, e.g. \"ring\" or \"allreduce:ring;allgather:ring\" "
     "(grammar in src/algo/algo.c).",
     TT_OFF(algo), TT_PARAM_STRING, 0, 0},
    {"TRANSPORT", "auto",
     "Transport override for every peer: auto, shm, ucx or ofi. auto "
     "picks shm within a host, else UCX, else libfabric.",
     TT_OFF(transport), TT_PARAM_STRING, 0, 0},
    {"SOCKET_IFNAME", "",
     "Network interface for the bootstrap (e.g. eth0, or ^docker to exclude "
     "a prefix). Default: the first non-loopback interface that is up, else "
     "loopback.",
     TT_OFF(socket_ifname), TT_PARAM_STRING, 0, 0},
    {"HOSTID", "",
     "Host identity; ranks with equal ids share memory. Default: hostname "
     "and kernel boot id.",
     TT_OFF(hostid), TT_PARAM_STRING, 0, 0},
    {"SLICE_SIZE", "0",
     "Pipelining unit in bytes: collectives move data in slices of this "
     "size, several in flight. 0 lets each communicator take the largest "
     "preference of the transports its ranks use (shm 256k, UCX and "
     "libfabric 64k).",
     TT_OFF(slice_size), TT_PARAM_SIZE, 0, 1LL << 30},
    {"PIPELINE_DEPTH", "8",
     "Slices of one step kept in flight at once.",
     TT_OFF(pipeline_depth), TT_PARAM_INT, 1, 64},
    {"SPIN_COUNT", "1000",
     "Idle polls of the progress loop before it starts to yield the CPU.",
     TT_OFF(spin_count), TT_PARAM_INT, 0, INT_MAX},
    {"YIELD_COUNT", "20000",
     "Yields (sched_yield) of an idle progress loop before it sleeps.",
     TT_OFF(yield_count), TT_PARAM_INT, 0, INT_MAX},
    {"SLEEP_US", "50",
     "Sleep in microseconds of a long-idle progress loop between polls.",
     TT_OFF(sleep_us), TT_PARAM_INT, 0, 1000000},
    {"SHM_SLOT_SIZE", "128k",
     "Bytes of one slot of a shared-memory FIFO (a multiple of 64).",
     TT_OFF(shm_slot_size), TT_PARAM_SIZE, 256, 64LL << 20},
    {"SHM_NSLOTS", "8",
     "Slots per shared-memory FIFO (one FIFO per ordered pair of ranks on "
     "a host).",
     TT_OFF(shm_nslots), TT_PARAM_INT, 2, 1024},
    {"SHM_BUDGET", "32M",
     "Bytes of inbound shared-memory FIFOs per rank at most (they are "
     "reserved in /dev/shm): with many ranks on a host the slots shrink, "
     "not below 1k, to fit; 0 = no limit.",
     TT_OFF(shm_budget), TT_PARAM_SIZE, 0, 1LL << 40},
    {"SHM_CMA_MIN", "0",
     "Shared-memory messages of at least this many bytes are read by the "
     "receiver straight from the sender's buffer (process_vm_readv: one "
     "copy instead of two); 0 = off, the default: the FIFOs measured "
     "faster here.",
     TT_OFF(shm_cma_min), TT_PARAM_SIZE, 0, 1LL << 40},
    {"OFI_PROVIDER", "",
     "libfabric provider for the ofi transport (e.g. \"tcp;ofi_rxm\" or "
     "\"tcp\"). Default: the first provider offering reliable tagged "
     "messages.",
     TT_OFF(ofi_provider), TT_PARAM_STRING, 0, 0},
    {NULL, NULL, NULL, 0, TT_PARAM_INT, 0, 0},
};

int tutti__parse_size(const char *s, unsigned long long *v_p)
{
    char              *end;
    unsigned long long v;

    errno = 0;
    if (s[0] == '-') {
        return -1;
    }
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s) {
        return -1;
    }
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
    }
    if (*end == 'b' || *end == 'B') {
        end++;
    }
    if (*end != '\0') {
        return -1;
    }
    *v_p = v;
    return 0;
}

static tutti_result_t tt_param_set(const tt_param_t *p, const char *value,
                                   const char *origin, tt_config_t *cfg)
{
    char              *field = (char *)cfg + p->offset;
    char              *end;
    long long          iv;
    unsigned long long sv;

    switch (p->type) {
    case TT_PARAM_LOG:
        return TUTTI_SUCCESS;
    case TT_PARAM_INT:
        errno = 0;
        iv    = strtoll(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0' || iv < p->min ||
            iv > p->max) {
            return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                                "%s%s='%s': expected an integer in "
                                "[%lld, %lld]", origin, p->name, value,
                                p->min, p->max);
        }
        *(int *)field = (int)iv;
        return TUTTI_SUCCESS;
    case TT_PARAM_SIZE:
        if (tutti__parse_size(value, &sv) != 0 ||
            sv < (unsigned long long)p->min ||
            sv > (unsigned long long)p->max) {
            return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                                "%s%s='%s': expected a size in [%lld, %lld] "
                                "bytes (suffixes k, m, g)", origin, p->name,
                                value, p->min, p->max);
        }
        *(size_t *)field = (size_t)sv;
        return TUTTI_SUCCESS;
    case TT_PARAM_STRING:
        if (strlen(value) >= TT_STR_MAX) {
            return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                                "%s%s: value longer than %d characters",
                                origin, p->name, TT_STR_MAX - 1);
        }
        snprintf(field, TT_STR_MAX, "%s", value);
        return TUTTI_SUCCESS;
    }
    return tutti__error(TUTTI_ERR_INTERNAL, "parameter %s has bad type",
                        p->name);
}

void tutti__config_defaults(tt_config_t *cfg)
{
    const tt_param_t *p;

    memset(cfg, 0, sizeof(*cfg));
    for (p = tutti__params; p->name != NULL; p++) {
        tutti_result_t res = tt_param_set(p, p->dflt, "default ", cfg);
        tt_assert(res == TUTTI_SUCCESS);
    }
}

static const tt_param_t *tt_param_find(const char *name)
{
    const tt_param_t *p;

    for (p = tutti__params; p->name != NULL; p++) {
        if (strcmp(p->name, name) == 0) {
            return p;
        }
    }
    return NULL;
}

tutti_result_t tutti__config_load(const tutti_config_t *user,
                                  tt_config_t *cfg)
{
    const tt_param_t *p;
    char              buf[32];

    tutti__config_defaults(cfg);
    if (user != NULL) {
        if (user->size < offsetof(tutti_config_t, transport) +
                             sizeof(user->transport)) {
            return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                                "config->size %zu is too small (expected %zu:"
                                " initialise it with TUTTI_CONFIG_INIT)",
                                user->size, sizeof(tutti_config_t));
        }
        cfg->timeout_ms = user->timeout_ms < 0 ? 0 : user->timeout_ms;
        if (user->algo != NULL) {
            TT_CHECK(tt_param_set(tt_param_find("ALGO"), user->algo,
                                  "config field ", cfg));
        }
        if (user->transport != NULL) {
            TT_CHECK(tt_param_set(tt_param_find("TRANSPORT"), user->transport,
                                  "config field ", cfg));
        }
    }
    for (p = tutti__params; p->name != NULL; p++) {
        const char *v;

        snprintf(buf, sizeof(buf), "TUTTI_%s", p->name);
        v = getenv(buf);
        if (v != NULL && p->type != TT_PARAM_LOG) {
            TT_CHECK(tt_param_set(p, v, "TUTTI_", cfg));
            TT_INFO(TT_SUB_ENV, "%s set by environment to '%s'", buf, v);
        }
    }
    if (cfg->shm_slot_size % TT_CACHE_LINE != 0) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "TUTTI_SHM_SLOT_SIZE=%zu: must be a multiple of %d",
                            cfg->shm_slot_size, TT_CACHE_LINE);
    }
    return TUTTI_SUCCESS;
}

void tutti__config_print(FILE *out)
{
    const tt_param_t *p;
    char              buf[32];

    for (p = tutti__params; p->name != NULL; p++) {
        const char *v;

        snprintf(buf, sizeof(buf), "TUTTI_%s", p->name);
        v = getenv(buf);
        fprintf(out, "%-22s default '%s'%s%s%s\n    %s\n", buf, p->dflt,
                v != NULL ? ", set to '" : "", v != NULL ? v : "",
                v != NULL ? "'" : "", p->help);
    }
}
