/*
 * The algorithm table, the TUTTI_ALGO override grammar and the default
 * choice of algorithm per call (the topology-aware tuner replaces the
 * default later; overrides stay).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "algo.h"
#include "internal.h"

const tt_algo_t *const tutti__algos[] = {
    &tutti__algo_ring_allreduce,
    &tutti__algo_ring_allgather,
    NULL,
};

static const char *const tt_coll_names[TT_COLL_NUM] = {
    [TT_COLL_ALLREDUCE] = "allreduce",
    [TT_COLL_ALLGATHER] = "allgather",
    [TT_COLL_REDUCE_SCATTER] = "reduce_scatter",
    [TT_COLL_BROADCAST] = "broadcast",
    [TT_COLL_REDUCE] = "reduce",
    [TT_COLL_ALLTOALL] = "alltoall",
    [TT_COLL_BARRIER] = "barrier",
};

const char *tutti__coll_name(tt_coll_t coll)
{
    return (unsigned)coll < TT_COLL_NUM ? tt_coll_names[coll] : "unknown";
}

size_t tutti__coll_bytes(const tt_coll_args_t *args)
{
    size_t bytes = args->count * tutti_datatype_size(args->datatype);

    switch (args->coll) {
    case TT_COLL_ALLGATHER:
    case TT_COLL_REDUCE_SCATTER:
    case TT_COLL_ALLTOALL:
        return bytes * (size_t)args->nranks;
    default:
        return bytes;
    }
}

static int tt_parse_bytes(const char *s, size_t *v_p)
{
    char              *end;
    unsigned long long v;

    if (strcasecmp(s, "inf") == 0) {
        *v_p = SIZE_MAX;
        return 0;
    }
    if (s[0] < '0' || s[0] > '9') {
        return -1;
    }
    v = strtoull(s, &end, 10);
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
    }
    if (*end != '\0') {
        return -1;
    }
    *v_p = (size_t)v;
    return 0;
}

static const tt_algo_t *tt_algo_find(tt_coll_t coll, const char *name)
{
    const tt_algo_t *const *a;

    for (a = tutti__algos; *a != NULL; a++) {
        if ((*a)->coll == coll && strcasecmp((*a)->name, name) == 0) {
            return *a;
        }
    }
    return NULL;
}

static tutti_result_t tt_algo_add_rule(tt_algo_sel_t *sel, const char *text,
                                       tt_coll_t coll, size_t lo, size_t hi,
                                       const tt_algo_t *algo)
{
    if (sel->nrules == TT_ALGO_MAX_RULES) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "TUTTI_ALGO '%s': more than %d rules", text,
                            TT_ALGO_MAX_RULES);
    }
    sel->rules[sel->nrules++] =
        (tt_algo_rule_t){.coll = coll, .lo = lo, .hi = hi, .algo = algo};
    return TUTTI_SUCCESS;
}

/*
 * One entry: "[lo-hi:]algo" for collective `coll`, or for every collective
 * that has an algorithm of that name when coll is TT_COLL_NUM.
 */
static tutti_result_t tt_algo_parse_entry(const char *text, char *entry,
                                          tt_coll_t coll, tt_algo_sel_t *sel)
{
    size_t lo = 0, hi = SIZE_MAX;
    char  *name = entry, *colon = strchr(entry, ':');
    int    c, found = 0;

    if (colon != NULL) {
        char *dash = strchr(entry, '-');

        *colon = '\0';
        name   = colon + 1;
        if (dash == NULL || dash > colon) {
            return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                                "TUTTI_ALGO '%s': size range '%s' is not "
                                "LO-HI (e.g. 0-64k or 64k-inf)", text, entry);
        }
        *dash = '\0';
        if (tt_parse_bytes(entry, &lo) != 0 ||
            tt_parse_bytes(dash + 1, &hi) != 0 || lo >= hi) {
            return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                                "TUTTI_ALGO '%s': bad size range '%s-%s'",
                                text, entry, dash + 1);
        }
    }
    for (c = 0; c < TT_COLL_NUM; c++) {
        const tt_algo_t *algo;

        if (coll != TT_COLL_NUM && c != (int)coll) {
            continue;
        }
        algo = tt_algo_find((tt_coll_t)c, name);
        if (algo != NULL) {
            TT_CHECK(tt_algo_add_rule(sel, text, (tt_coll_t)c, lo, hi, algo));
            found = 1;
        }
    }
    if (!found) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "TUTTI_ALGO '%s': no algorithm '%s'%s%s", text,
                            name, coll != TT_COLL_NUM ? " for " : "",
                            coll != TT_COLL_NUM ? tutti__coll_name(coll) : "");
    }
    return TUTTI_SUCCESS;
}

/*
 * TUTTI_ALGO grammar (also config.algo):
 *
 *   spec   := "auto" | clause { ";" clause }
 *   clause := [ coll ":" ] entry { "," entry }
 *   entry  := [ size "-" ( size | "inf" ) ":" ] algo
 *   size   := digits [ "k" | "m" | "g" ]         (bytes, powers of 1024)
 *
 * coll is a collective name (allreduce, allgather); without it the entry
 * applies to every collective that has an algorithm of that name. Sizes are
 * nccl-tests' size column (allgather: the whole output). Ranges are
 * [lo, hi); the first matching rule wins, sizes no rule covers use the
 * default choice. Examples:
 *   ring
 *   allreduce:ring;allgather:ring
 *   allreduce:0-64k:rd,64k-inf:ring
 */
tutti_result_t tutti__algo_parse(const char *text, tt_algo_sel_t *sel)
{
    char  buf[512];
    char *clause, *save_clause = NULL;

    memset(sel, 0, sizeof(*sel));
    if (text == NULL || text[0] == '\0' || strcasecmp(text, "auto") == 0) {
        return TUTTI_SUCCESS;
    }
    if (strlen(text) >= sizeof(buf)) {
        return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                            "TUTTI_ALGO: longer than %zu characters",
                            sizeof(buf) - 1);
    }
    snprintf(buf, sizeof(buf), "%s", text);
    for (clause = strtok_r(buf, ";", &save_clause); clause != NULL;
         clause = strtok_r(NULL, ";", &save_clause)) {
        tt_coll_t coll  = TT_COLL_NUM;
        char     *colon = strchr(clause, ':');
        char     *entry, *save_entry = NULL;
        int       c;

        if (colon != NULL) {
            for (c = 0; c < TT_COLL_NUM; c++) {
                size_t len = strlen(tt_coll_names[c]);
                if ((size_t)(colon - clause) == len &&
                    strncasecmp(clause, tt_coll_names[c], len) == 0) {
                    coll   = (tt_coll_t)c;
                    clause = colon + 1;
                    break;
                }
            }
            if (coll == TT_COLL_NUM && strchr(clause, '-') == NULL) {
                *colon = '\0';
                return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                                    "TUTTI_ALGO '%s': unknown collective "
                                    "'%s'", text, clause);
            }
        }
        for (entry = strtok_r(clause, ",", &save_entry); entry != NULL;
             entry = strtok_r(NULL, ",", &save_entry)) {
            TT_CHECK(tt_algo_parse_entry(text, entry, coll, sel));
        }
    }
    return TUTTI_SUCCESS;
}

static const tt_algo_t *tt_algo_default(const tt_coll_args_t *args)
{
    switch (args->coll) {
    case TT_COLL_ALLREDUCE:
        return &tutti__algo_ring_allreduce;
    case TT_COLL_ALLGATHER:
        return &tutti__algo_ring_allgather;
    default:
        return NULL;
    }
}

tutti_result_t tutti__algo_select(const tt_algo_sel_t *sel,
                                  const tt_coll_args_t *args,
                                  const tt_algo_t **algo_p)
{
    size_t           bytes = tutti__coll_bytes(args);
    const tt_algo_t *algo  = NULL;
    const char      *why   = "no reason given";
    int              i, forced = 0;

    for (i = 0; i < sel->nrules; i++) {
        const tt_algo_rule_t *rule = &sel->rules[i];
        if (rule->coll == args->coll && bytes >= rule->lo && bytes < rule->hi) {
            algo   = rule->algo;
            forced = 1;
            break;
        }
    }
    if (algo == NULL) {
        algo = tt_algo_default(args);
    }
    if (algo == NULL) {
        return tutti__error(TUTTI_ERR_INTERNAL, "no algorithm for %s",
                            tutti__coll_name(args->coll));
    }
    if (algo->supports(args, &why) != TUTTI_SUCCESS) {
        return tutti__error(TUTTI_ERR_UNSUPPORTED,
                            "%s algorithm '%s'%s cannot run %zu bytes on %d "
                            "ranks: %s", tutti__coll_name(args->coll),
                            algo->name, forced ? " (forced by TUTTI_ALGO)" : "",
                            bytes, args->nranks, why);
    }
    TT_TRACE(TT_SUB_TUNE, "%s %zu bytes on %d ranks: %s%s",
             tutti__coll_name(args->coll), bytes, args->nranks, algo->name,
             forced ? " (TUTTI_ALGO)" : "");
    *algo_p = algo;
    return TUTTI_SUCCESS;
}
