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
    &tutti__algo_tree_allreduce,
    &tutti__algo_rd_allreduce,
    &tutti__algo_rabenseifner_allreduce,
    &tutti__algo_ring_allgather,
    &tutti__algo_rd_allgather,
    &tutti__algo_bruck_allgather,
    &tutti__algo_ring_reduce_scatter,
    &tutti__algo_rh_reduce_scatter,
    &tutti__algo_binomial_broadcast,
    &tutti__algo_chain_broadcast,
    &tutti__algo_binomial_reduce,
    &tutti__algo_chain_reduce,
    &tutti__algo_pairwise_alltoall,
    &tutti__algo_dissemination_barrier,
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
 * coll is a collective name (allreduce, allgather, reduce_scatter,
 * broadcast, reduce, alltoall, barrier); without it the entry
 * applies to every collective that has an algorithm of that name. Sizes are
 * nccl-tests' size column (allgather: the whole output). Ranges are
 * [lo, hi); the first matching rule wins, sizes no rule covers use the
 * default choice. Examples:
 *   ring
 *   allreduce:ring;allgather:ring
 *   allreduce:0-64k:rd,64k-inf:ring
 *   allreduce:tree;allgather:bruck;broadcast:0-64k:binomial,64k-inf:chain
 * Algorithms per collective (algo.c's table): allreduce ring, tree, rd,
 * rabenseifner; allgather ring, rd, bruck; reduce_scatter ring, rh;
 * broadcast and reduce binomial, chain; alltoall pairwise; barrier
 * dissemination.
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
        if (strspn(clause, " ,") == strlen(clause)) {
            return tutti__error(TUTTI_ERR_INVALID_ARGUMENT,
                                "TUTTI_ALGO '%s': a clause names no "
                                "algorithm", text);
        }
        for (entry = strtok_r(clause, ",", &save_entry); entry != NULL;
             entry = strtok_r(NULL, ",", &save_entry)) {
            TT_CHECK(tt_algo_parse_entry(text, entry, coll, sel));
        }
    }
    return TUTTI_SUCCESS;
}

/*
 * The default choice until the topology-aware tuner exists. The thresholds
 * (bytes as tutti__coll_bytes counts them) are provisional guesses from
 * the algorithms' alpha-beta costs, to be replaced by tutti-bench numbers:
 *   allreduce        < 16 KiB rd; < 1 MiB rabenseifner, or tree from 16
 *                    ranks (depth log2 n, pipelined); else ring
 *   allgather        < 64 KiB rd on a power of two, else bruck; else ring
 *   reduce_scatter   < 64 KiB rh; else ring
 *   broadcast/reduce < 64 KiB binomial; else chain
 *   alltoall         pairwise; barrier: dissemination
 * On two ranks the other choices are the same single exchange as the
 * ring/chain, which is taken (but allreduce below 16 KiB: rd sends one
 * message where the ring sends two).
 */
#define TT_DEFAULT_SMALL (16 * 1024)
#define TT_DEFAULT_MID   (64 * 1024)
#define TT_DEFAULT_LARGE (1024 * 1024)

static const tt_algo_t *tt_algo_default(const tt_coll_args_t *args)
{
    size_t bytes = tutti__coll_bytes(args);
    int    n = args->nranks, pow2 = (n & (n - 1)) == 0;

    switch (args->coll) {
    case TT_COLL_ALLREDUCE:
        if (bytes < TT_DEFAULT_SMALL) {
            return &tutti__algo_rd_allreduce;
        }
        if (n <= 2 || bytes >= TT_DEFAULT_LARGE) {
            return &tutti__algo_ring_allreduce;
        }
        return n >= 16 ? &tutti__algo_tree_allreduce
                       : &tutti__algo_rabenseifner_allreduce;
    case TT_COLL_ALLGATHER:
        if (n <= 2 || bytes >= TT_DEFAULT_MID) {
            return &tutti__algo_ring_allgather;
        }
        return pow2 ? &tutti__algo_rd_allgather : &tutti__algo_bruck_allgather;
    case TT_COLL_REDUCE_SCATTER:
        return n <= 2 || bytes >= TT_DEFAULT_MID
                   ? &tutti__algo_ring_reduce_scatter
                   : &tutti__algo_rh_reduce_scatter;
    case TT_COLL_BROADCAST:
        return n <= 2 || bytes >= TT_DEFAULT_MID
                   ? &tutti__algo_chain_broadcast
                   : &tutti__algo_binomial_broadcast;
    case TT_COLL_REDUCE:
        return n <= 2 || bytes >= TT_DEFAULT_MID ? &tutti__algo_chain_reduce
                                                 : &tutti__algo_binomial_reduce;
    case TT_COLL_ALLTOALL:
        return &tutti__algo_pairwise_alltoall;
    case TT_COLL_BARRIER:
        return &tutti__algo_dissemination_barrier;
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
    /* INFO (issue 4): the choice is what a user tuning TUTTI_ALGO needs */
    TT_INFO(TT_SUB_TUNE, "%s %zu bytes on %d ranks: %s%s",
            tutti__coll_name(args->coll), bytes, args->nranks, algo->name,
            forced ? " (TUTTI_ALGO)" : " (default)");
    *algo_p = algo;
    return TUTTI_SUCCESS;
}
