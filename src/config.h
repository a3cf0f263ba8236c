/*
 * tt_config_t: every knob of a communicator, filled once in tutti_comm_init
 * from the built-in defaults, the user's tutti_config_t and then the
 * environment (TUTTI_<NAME>), in that order. The one table of variables, with
 * defaults and help text, is in config.c; `tutti-bench --env` prints it and a
 * test checks the README's table against it.
 */
#ifndef TUTTI_CONFIG_H
#define TUTTI_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "tutti.h"

#define TT_STR_MAX 256

typedef struct tt_config {
    int    timeout_ms;                /* TIMEOUT_MS; <= 0: none */
    char   algo[TT_STR_MAX];          /* ALGO; "" or "auto" = auto */
    char   transport[TT_STR_MAX];     /* TRANSPORT; "" or "auto" = auto */
    char   socket_ifname[TT_STR_MAX]; /* SOCKET_IFNAME */
    char   hostid[TT_STR_MAX];        /* HOSTID; "" = hostname + boot id */
    size_t slice_size;                /* SLICE_SIZE: pipelining unit, bytes;
                                         0 = per communicator (comm.c) */
    int    pipeline_depth;            /* PIPELINE_DEPTH: slices in flight */
    int    spin_count;                /* SPIN_COUNT: polls before yielding */
    int    yield_count;               /* YIELD_COUNT: yields before sleeping */
    int    sleep_us;                  /* SLEEP_US: sleep when long idle */
    size_t shm_slot_size;             /* SHM_SLOT_SIZE */
    int    shm_nslots;                /* SHM_NSLOTS */
    size_t shm_cma_min;               /* SHM_CMA_MIN: single copy; 0 = off */
    size_t shm_budget;                /* SHM_BUDGET: inbound FIFO bytes per
                                         rank; 0 = no limit */
    char   ofi_provider[TT_STR_MAX];  /* OFI_PROVIDER; "" = best */
} tt_config_t;

typedef enum tt_param_type {
    TT_PARAM_INT,    /* int, decimal */
    TT_PARAM_SIZE,   /* size_t, with k/m/g suffixes (powers of 1024) */
    TT_PARAM_STRING, /* char[TT_STR_MAX] */
    TT_PARAM_LOG     /* read by log.c, not stored in tt_config_t */
} tt_param_type_t;

typedef struct tt_param {
    const char     *name;   /* without the TUTTI_ prefix */
    const char     *dflt;   /* default, as text */
    const char     *help;   /* one or two sentences */
    size_t          offset; /* into tt_config_t */
    tt_param_type_t type;
    long long       min, max; /* bounds for INT and SIZE */
} tt_param_t;

/* The table, terminated by an entry whose name is NULL. */
extern const tt_param_t tutti__params[];

/* Defaults into *cfg (cannot fail: the defaults are checked by a test). */
void tutti__config_defaults(tt_config_t *cfg);

/*
 * Applies the user's config (may be NULL) then every TUTTI_* variable set in
 * the environment. A malformed or out-of-range value is
 * TUTTI_ERR_INVALID_ARGUMENT naming the variable or field.
 */
tutti_result_t tutti__config_load(const tutti_config_t *user, tt_config_t *cfg);

/* Parses "123", "64k", "1M", "2g", "64kb" (powers of 1024) into *v_p: 0,
 * or -1 when s is not such a size. */
int tutti__parse_size(const char *s, unsigned long long *v_p);

/* Prints the table: name, default, current value in the environment, help. */
void tutti__config_print(FILE *out);

#endif /* TUTTI_CONFIG_H */
