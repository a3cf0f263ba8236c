/*
 * The configuration table, the environment loader, the TUTTI_ALGO grammar,
 * and the README's environment table (which must list exactly the variables
 * of src/config.c with the same defaults and help text).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "algo/algo.h"
#include "config.h"

Test(config, defaults_parse)
{
    tt_config_t cfg;

    tutti__config_defaults(&cfg);
    cr_assert_eq(cfg.timeout_ms, TUTTI_DEFAULT_TIMEOUT_MS);
    cr_assert_eq(cfg.slice_size, 0);
    cr_assert_eq(cfg.shm_slot_size, 128 * 1024);
    cr_assert_str_eq(cfg.algo, "auto");
}

Test(config, user_then_environment)
{
    tutti_config_t user = TUTTI_CONFIG_INIT;
    tt_config_t    cfg;

    user.timeout_ms = 1234;
    user.algo       = "ring";
    cr_assert_eq(tutti__config_load(&user, &cfg), TUTTI_SUCCESS);
    cr_assert_eq(cfg.timeout_ms, 1234);
    cr_assert_str_eq(cfg.algo, "ring");
    setenv("TUTTI_TIMEOUT_MS", "99", 1);
    setenv("TUTTI_SLICE_SIZE", "1M", 1);
    cr_assert_eq(tutti__config_load(&user, &cfg), TUTTI_SUCCESS);
    cr_assert_eq(cfg.timeout_ms, 99);
    cr_assert_eq(cfg.slice_size, 1024 * 1024);
}

static void expect_bad(const char *var, const char *value)
{
    tt_config_t cfg;

    setenv(var, value, 1);
    cr_assert_eq(tutti__config_load(NULL, &cfg), TUTTI_ERR_INVALID_ARGUMENT,
                 "%s=%s accepted", var, value);
    cr_assert(strstr(tutti_last_error(), var + strlen("TUTTI_")) != NULL,
              "message '%s' does not name %s", tutti_last_error(), var);
    unsetenv(var);
}

Test(config, bad_values_name_the_variable)
{
    expect_bad("TUTTI_TIMEOUT_MS", "soon");
    expect_bad("TUTTI_TIMEOUT_MS", "-5");
    expect_bad("TUTTI_SLICE_SIZE", "12q");
    expect_bad("TUTTI_SLICE_SIZE", "-1");
    expect_bad("TUTTI_PIPELINE_DEPTH", "0");
    expect_bad("TUTTI_PIPELINE_DEPTH", "65");
    expect_bad("TUTTI_SHM_SLOT_SIZE", "1000");
    expect_bad("TUTTI_SHM_NSLOTS", "1");
}

Test(config, small_config_size_rejected)
{
    tutti_config_t user = TUTTI_CONFIG_INIT;
    tt_config_t    cfg;

    user.size = 4;
    cr_assert_eq(tutti__config_load(&user, &cfg),
                 TUTTI_ERR_INVALID_ARGUMENT);
}

Test(algo, grammar_accepts)
{
    tt_algo_sel_t sel;

    cr_assert_eq(tutti__algo_parse("auto", &sel), TUTTI_SUCCESS);
    cr_assert_eq(sel.nrules, 0);
    cr_assert_eq(tutti__algo_parse("ring", &sel), TUTTI_SUCCESS);
    cr_assert_eq(sel.nrules, 3); /* allreduce, allgather, reduce_scatter */
    cr_assert_eq(tutti__algo_parse("binomial", &sel), TUTTI_SUCCESS);
    cr_assert_eq(sel.nrules, 2); /* broadcast and reduce */
    cr_assert_eq(sel.rules[0].coll, TT_COLL_BROADCAST);
    cr_assert_eq(sel.rules[1].coll, TT_COLL_REDUCE);
    cr_assert_eq(tutti__algo_parse("allreduce:tree;allgather:bruck", &sel),
                 TUTTI_SUCCESS);
    cr_assert_eq(sel.nrules, 2);
    cr_assert_str_eq(sel.rules[0].algo->name, "tree");
    cr_assert_str_eq(sel.rules[1].algo->name, "bruck");
    cr_assert_eq(tutti__algo_parse("allreduce:0-16k:rd,16k-1m:rabenseifner,"
                                   "1m-inf:ring;reduce_scatter:rh;"
                                   "broadcast:chain;reduce:chain;"
                                   "alltoall:pairwise;barrier:dissemination;"
                                   "allgather:rd",
                                   &sel),
                 TUTTI_SUCCESS);
    cr_assert_eq(sel.nrules, 9);
    cr_assert_eq(tutti__algo_parse("allreduce:ring;allgather:ring", &sel),
                 TUTTI_SUCCESS);
    cr_assert_eq(sel.nrules, 2);
    cr_assert_eq(tutti__algo_parse("allreduce:0-64k:ring,64k-inf:ring", &sel),
                 TUTTI_SUCCESS);
    cr_assert_eq(sel.nrules, 2);
    cr_assert_eq(sel.rules[0].lo, 0);
    cr_assert_eq(sel.rules[0].hi, 65536);
    cr_assert_eq(sel.rules[1].hi, SIZE_MAX);
}

Test(algo, grammar_rejects)
{
    static const char *bad[] = {
        "nosuch", "allreduce:nosuch", "bogus:ring", "allreduce:64k-0:ring",
        "allreduce:1x-2:ring", "allreduce:0-64k", "allreduce:5:ring",
        "allreduce:", "allreduce:,",
        /* pairs that do not exist */
        "broadcast:ring", "allreduce:bruck", "barrier:ring",
        "alltoall:rd", "reduce_scatter:rd",
    };
    tt_algo_sel_t sel;
    size_t        i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(tutti__algo_parse(bad[i], &sel),
                     TUTTI_ERR_INVALID_ARGUMENT, "'%s' accepted", bad[i]);
        cr_assert(strstr(tutti_last_error(), "TUTTI_ALGO") != NULL, "%s",
                  tutti_last_error());
    }
}

Test(algo, select_by_size)
{
    tt_algo_sel_t    sel;
    const tt_algo_t *algo;
    tt_coll_args_t   a = {.coll = TT_COLL_ALLREDUCE, .count = 512,
                          .datatype = TUTTI_FLOAT32, .nranks = 4};

    cr_assert_eq(tutti__algo_parse("allreduce:0-4k:ring", &sel),
                 TUTTI_SUCCESS);
    cr_assert_eq(tutti__algo_select(&sel, &a, &algo), TUTTI_SUCCESS);
    cr_assert_str_eq(algo->name, "ring");
}

/* Every algorithm is reachable by name for its collective, and says
 * whether it runs on rank counts 1..64 (all of today's do). */
Test(algo, every_algorithm_by_name)
{
    const tt_algo_t *const *a;
    char                    spec[128];
    tt_algo_sel_t           sel;
    const tt_algo_t        *algo;
    int                     n;

    for (a = tutti__algos; *a != NULL; a++) {
        snprintf(spec, sizeof(spec), "%s:%s", tutti__coll_name((*a)->coll),
                 (*a)->name);
        cr_assert_eq(tutti__algo_parse(spec, &sel), TUTTI_SUCCESS, "%s",
                     spec);
        cr_assert_eq(sel.nrules, 1);
        cr_assert_eq(sel.rules[0].algo, *a, "%s", spec);
        cr_assert_not_null((*a)->desc);
        for (n = 1; n <= 64; n++) {
            tt_coll_args_t args = {
                .coll = (*a)->coll, .count = 1000, .nranks = n,
                .datatype = (*a)->coll == TT_COLL_BARRIER ? TUTTI_UINT8
                                                          : TUTTI_FLOAT32};
            cr_assert_eq(tutti__algo_select(&sel, &args, &algo),
                         TUTTI_SUCCESS, "%s on %d ranks: %s", spec, n,
                         tutti_last_error());
        }
    }
}

/* The default choice exists for every collective, is supported, and
 * follows the (provisional) thresholds documented in algo.c. */
static const char *default_algo(tt_coll_t coll, size_t count, int n)
{
    tt_algo_sel_t    sel = {0};
    const tt_algo_t *algo;
    tt_coll_args_t   a = {.coll = coll, .count = count, .nranks = n,
                          .datatype = coll == TT_COLL_BARRIER
                                          ? TUTTI_UINT8 : TUTTI_FLOAT32};

    cr_assert_eq(tutti__algo_select(&sel, &a, &algo), TUTTI_SUCCESS,
                 "%s count %zu on %d ranks: %s", tutti__coll_name(coll),
                 count, n, tutti_last_error());
    cr_assert_eq(algo->coll, coll);
    return algo->name;
}

Test(algo, default_choice)
{
    int c, n;

    for (c = 0; c < TT_COLL_NUM; c++) {
        for (n = 1; n <= 64; n++) {
            default_algo((tt_coll_t)c, 1, n);
            default_algo((tt_coll_t)c, 1 << 20, n);
        }
    }
    cr_assert_str_eq(default_algo(TT_COLL_ALLREDUCE, 256, 8), "rd");
    cr_assert_str_eq(default_algo(TT_COLL_ALLREDUCE, 16384, 8),
                     "rabenseifner");
    cr_assert_str_eq(default_algo(TT_COLL_ALLREDUCE, 16384, 32), "tree");
    cr_assert_str_eq(default_algo(TT_COLL_ALLREDUCE, 1 << 20, 8), "ring");
    cr_assert_str_eq(default_algo(TT_COLL_ALLREDUCE, 1 << 20, 2), "ring");
    cr_assert_str_eq(default_algo(TT_COLL_ALLREDUCE, 16384, 2), "ring");
    cr_assert_str_eq(default_algo(TT_COLL_ALLREDUCE, 16, 2), "rd");
    cr_assert_str_eq(default_algo(TT_COLL_ALLGATHER, 16, 8), "rd");
    cr_assert_str_eq(default_algo(TT_COLL_ALLGATHER, 16, 6), "bruck");
    cr_assert_str_eq(default_algo(TT_COLL_ALLGATHER, 1 << 16, 6), "ring");
    cr_assert_str_eq(default_algo(TT_COLL_REDUCE_SCATTER, 16, 6), "rh");
    cr_assert_str_eq(default_algo(TT_COLL_REDUCE_SCATTER, 1 << 16, 6),
                     "ring");
    cr_assert_str_eq(default_algo(TT_COLL_BROADCAST, 16, 6), "binomial");
    cr_assert_str_eq(default_algo(TT_COLL_BROADCAST, 1 << 16, 6), "chain");
    cr_assert_str_eq(default_algo(TT_COLL_REDUCE, 16, 6), "binomial");
    cr_assert_str_eq(default_algo(TT_COLL_REDUCE, 1 << 16, 6), "chain");
    cr_assert_str_eq(default_algo(TT_COLL_ALLTOALL, 16, 6), "pairwise");
    cr_assert_str_eq(default_algo(TT_COLL_BARRIER, 1, 6), "dissemination");
}

/* An override the algorithm cannot run is an error, not a fallback. */
Test(algo, unsupported_override_is_an_error)
{
    tt_algo_sel_t    sel;
    const tt_algo_t *algo;
    tt_coll_args_t   a = {.coll = TT_COLL_BARRIER, .count = 1, .nranks = 4,
                          .datatype = TUTTI_FLOAT32};

    cr_assert_eq(tutti__algo_parse("barrier:dissemination", &sel),
                 TUTTI_SUCCESS);
    cr_assert_eq(tutti__algo_select(&sel, &a, &algo), TUTTI_ERR_UNSUPPORTED);
    cr_assert(strstr(tutti_last_error(), "dissemination") != NULL, "%s",
              tutti_last_error());
}

/* Every row of the README's table is "| `TUTTI_X` | `default` | help |". */
Test(docs, readme_env_table_matches_config_table)
{
    char              path[1024], line[2048];
    FILE             *f;
    const tt_param_t *p;
    int               in_table = 0, rows = 0, nparams = 0;

    snprintf(path, sizeof(path), "%s/README.md", TUTTI_SOURCE_ROOT);
    f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    for (p = tutti__params; p->name != NULL; p++) {
        nparams++;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char name[64], dflt[64], help[1024];

        if (strstr(line, "<!-- env-table") != NULL) {
            in_table = 1;
            continue;
        }
        if (strstr(line, "<!-- /env-table") != NULL) {
            break;
        }
        if (!in_table || strncmp(line, "| `TUTTI_", 9) != 0) {
            continue;
        }
        dflt[0] = '\0';
        if (sscanf(line, "| `TUTTI_%63[^`]` | `%63[^`]` | %1023[^|]|", name,
                   dflt, help) != 3 &&
            sscanf(line, "| `TUTTI_%63[^`]` | | %1023[^|]|", name, help) !=
                2) {
            cr_assert_fail("README row not understood: %s", line);
        }
        help[strcspn(help, "\n")] = '\0';
        while (strlen(help) > 0 && help[strlen(help) - 1] == ' ') {
            help[strlen(help) - 1] = '\0';
        }
        for (p = tutti__params; p->name != NULL; p++) {
            if (strcmp(p->name, name) == 0) {
                break;
            }
        }
        cr_assert_not_null(p->name, "README lists TUTTI_%s, which "
                           "src/config.c does not have", name);
        cr_assert_str_eq(dflt, p->dflt, "TUTTI_%s default", name);
        cr_assert_str_eq(help, p->help, "TUTTI_%s help text", name);
        rows++;
    }
    fclose(f);
    cr_assert_eq(rows, nparams, "README lists %d variables, src/config.c "
                 "has %d", rows, nparams);
}

/* The README's example is examples/allreduce.c verbatim (which the coll
 * suite compiles and runs), so the README cannot drift from working code. */
Test(docs, readme_example_is_the_tested_program)
{
    char   path[1024], *readme, *example, *start, *end;
    FILE  *f;
    long   n;

    snprintf(path, sizeof(path), "%s/README.md", TUTTI_SOURCE_ROOT);
    f = fopen(path, "r");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    n      = ftell(f);
    readme = calloc((size_t)n + 1, 1);
    rewind(f);
    cr_assert_eq(fread(readme, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    snprintf(path, sizeof(path), "%s/examples/allreduce.c",
             TUTTI_SOURCE_ROOT);
    f = fopen(path, "r");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    n       = ftell(f);
    example = calloc((size_t)n + 1, 1);
    rewind(f);
    cr_assert_eq(fread(example, 1, (size_t)n, f), (size_t)n);
    fclose(f);

    start = strstr(readme, "## Example");
    cr_assert_not_null(start);
    start = strstr(start, "```c\n");
    cr_assert_not_null(start, "no ```c block under ## Example");
    start += strlen("```c\n");
    end = strstr(start, "```\n");
    cr_assert_not_null(end);
    cr_assert_eq((size_t)(end - start), strlen(example),
                 "README example and examples/allreduce.c differ in length");
    cr_assert(strncmp(start, example, strlen(example)) == 0,
              "README example differs from examples/allreduce.c");
    free(readme);
    free(example);
}
