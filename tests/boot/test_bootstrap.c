/*
 * Bootstrap tests: SHA-256 and HMAC-SHA256 against the FIPS 180-4 examples
 * and RFC 4231, the id's text form, and multi-process rendezvous. A
 * multi-process test starts a root in the Criterion worker, forks one
 * process per rank (each rank returns its verdict as its exit status and
 * says why on stderr) and checks every exit status. Every child arms
 * alarm() and every wait is bounded, so a hang fails instead of blocking.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bootstrap.h"
#include "bootstrap_net.h"
#include "config.h"
#include "internal.h"
#include "sha256.h"

#define MAX_PROCS 32

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

static void to_hex(const uint8_t *d, size_t n, char *out)
{
    size_t i;

    for (i = 0; i < n; i++) {
        sprintf(out + 2 * i, "%02x", d[i]);
    }
    out[2 * n] = '\0';
}

static int64_t now_ms(void)
{
    return (int64_t)(tutti__now_ns() / 1000000ull);
}

static tt_config_t test_cfg(int timeout_ms)
{
    tt_config_t cfg;

    tutti__config_defaults(&cfg);
    cfg.timeout_ms = timeout_ms;
    /* Hermetic: every test but one stays on loopback. */
    snprintf(cfg.socket_ifname, sizeof(cfg.socket_ifname), "lo");
    return cfg;
}

static void start_root(int timeout_ms, tutti_unique_id_t *id)
{
    tt_config_t cfg = test_cfg(timeout_ms);

    cr_assert_eq(tutti__boot_root_start(&cfg, id), TUTTI_SUCCESS, "%s",
                 tutti_last_error());
}

/* A rank process: idx among nprocs; returns its exit status (0 = pass). */
typedef int (*proc_fn)(int idx, int nprocs, const tutti_unique_id_t *id);

/* Forks nprocs processes running fn and waits (bounded) for all of them;
 * status[i] is the exit code, or 128 + signal. */
static void run_procs(int nprocs, const tutti_unique_id_t *id, proc_fn fn,
                      int wait_ms, int *status)
{
    pid_t   pids[MAX_PROCS];
    int     i, left = nprocs;
    int64_t deadline = now_ms() + wait_ms;

    cr_assert(nprocs <= MAX_PROCS);
    for (i = 0; i < nprocs; i++) {
        pids[i] = fork();
        cr_assert(pids[i] >= 0, "fork: %s", strerror(errno));
        if (pids[i] == 0) {
            alarm((unsigned)(wait_ms / 1000 + 5)); /* orphans die too */
            _exit(fn(i, nprocs, id));
        }
        status[i] = -1;
    }
    while (left > 0) {
        for (i = 0; i < nprocs; i++) {
            int st;

            if (status[i] != -1 || waitpid(pids[i], &st, WNOHANG) <= 0) {
                continue;
            }
            status[i] = WIFEXITED(st) ? WEXITSTATUS(st)
                                      : 128 + WTERMSIG(st);
            left--;
        }
        if (left > 0 && now_ms() > deadline) {
            for (i = 0; i < nprocs; i++) {
                if (status[i] == -1) {
                    kill(pids[i], SIGKILL);
                    waitpid(pids[i], NULL, 0);
                    status[i] = 255;
                }
            }
            cr_expect_fail("%d of %d processes still running after %d ms",
                           left, nprocs, wait_ms);
            left = 0;
        }
        if (left > 0) {
            poll(NULL, 0, 2);
        }
    }
}

static void expect_all_pass(int nprocs, const int *status)
{
    int i;

    for (i = 0; i < nprocs; i++) {
        cr_expect_eq(status[i], 0, "process %d exited with %d", i,
                     status[i]);
    }
}

#define CHILD_CHECK(_cond, _code, ...)                                       \
    do {                                                                     \
        if (!(_cond)) {                                                      \
            fprintf(stderr, "test child %d: ", (int)getpid());               \
            fprintf(stderr, __VA_ARGS__);                                    \
            fprintf(stderr, " [last error: %s]\n", tutti_last_error());      \
            return (_code);                                                  \
        }                                                                    \
    } while (0)

/* The watchdog callback of a child: remembers which peers failed. */
static atomic_ullong g_failed_mask;
static atomic_int    g_fail_calls;
static atomic_int    g_fail_bad;
static char          g_fail_why[256];

static void on_fail(void *arg, int peer, tutti_result_t code, const char *why)
{
    unsigned long long bit = 1ull << peer;

    (void)arg;
    if (code != TUTTI_ERR_REMOTE || why == NULL ||
        (atomic_fetch_or(&g_failed_mask, bit) & bit)) {
        atomic_fetch_add(&g_fail_bad, 1); /* wrong code, or twice */
    }
    if (atomic_fetch_add(&g_fail_calls, 1) == 0) {
        snprintf(g_fail_why, sizeof(g_fail_why), "%s", why);
    }
}

/* Waits until the callback has reported every peer in mask. */
static int wait_failed(unsigned long long mask, int ms)
{
    int64_t deadline = now_ms() + ms;

    while ((atomic_load(&g_failed_mask) & mask) != mask) {
        if (now_ms() > deadline) {
            return 0;
        }
        poll(NULL, 0, 1);
    }
    return 1;
}

static uint8_t pattern(int rank, size_t j, int round)
{
    return (uint8_t)(rank * 31 + (int)j * 7 + round);
}

/* Allgather of len bytes; every rank's block checked. 0 when right. */
static int check_allgather(tt_boot_t *b, int rank, int nranks, size_t len,
                           int round)
{
    uint8_t *mine = malloc(len + 1);
    uint8_t *all  = malloc((size_t)nranks * len + 1);
    int      r, bad = 0;
    size_t   j;

    for (j = 0; j < len; j++) {
        mine[j] = pattern(rank, j, round);
    }
    if (tutti__boot_allgather(b, mine, all, len) != TUTTI_SUCCESS) {
        bad = 1;
    }
    for (r = 0; r < nranks && !bad; r++) {
        for (j = 0; j < len; j++) {
            if (all[(size_t)r * len + j] != pattern(r, j, round)) {
                fprintf(stderr, "rank %d: allgather of %zu: byte %zu of "
                        "rank %d wrong\n", rank, len, j, r);
                bad = 1;
                break;
            }
        }
    }
    free(mine);
    free(all);
    return bad;
}

/* ------------------------------------------------------------------ */
/* SHA-256, HMAC                                                      */
/* ------------------------------------------------------------------ */

static void expect_sha(const void *msg, size_t len, const char *want)
{
    uint8_t d[TT_SHA256_DIGEST_LEN];
    char    got[2 * TT_SHA256_DIGEST_LEN + 1];

    tutti__sha256(msg, len, d);
    to_hex(d, sizeof(d), got);
    cr_expect_str_eq(got, want, "sha256 of %zu bytes", len);
}

Test(sha256, fips_180_examples)
{
    char *million = malloc(1000000);

    expect_sha("", 0,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect_sha("abc", 3,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect_sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    expect_sha("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
               "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu", 112,
        "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
    memset(million, 'a', 1000000);
    expect_sha(million, 1000000,
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(million);
}

Test(sha256, incremental_equals_one_shot)
{
    uint8_t     buf[1000], one[32], inc[32];
    tt_sha256_t s;
    size_t      i, off = 0, step = 1;

    for (i = 0; i < sizeof(buf); i++) {
        buf[i] = (uint8_t)(i * 13 + 5);
    }
    tutti__sha256(buf, sizeof(buf), one);
    /* Odd chunk sizes cross every block boundary differently. */
    tutti__sha256_init(&s);
    while (off < sizeof(buf)) {
        size_t n = TT_MIN(step, sizeof(buf) - off);

        tutti__sha256_update(&s, buf + off, n);
        off += n;
        step = step * 3 % 97 + 1;
    }
    tutti__sha256_final(&s, inc);
    cr_expect(memcmp(one, inc, sizeof(one)) == 0);
}

/* RFC 4231 test cases 1-7; keys and data given by a byte and a length
 * where the RFC repeats one byte. */
Test(hmac_sha256, rfc_4231)
{
    static const struct {
        const char *key, *data;     /* NULL: fill from kbyte / dbyte */
        uint8_t     kbyte, dbyte;
        size_t      klen, dlen, tag_len;
        const char *tag;
    } tc[] = {
        {NULL, "Hi There", 0x0b, 0, 20, 8, 32,
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {"Jefe", "what do ya want for nothing?", 0, 0, 4, 28, 32,
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {NULL, NULL, 0xaa, 0xdd, 20, 50, 32,
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e"
         "\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19", NULL, 0, 0xcd,
         25, 50, 32,
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        /* case 5 checks the first 128 bits only */
        {NULL, "Test With Truncation", 0x0c, 0, 20, 20, 16,
         "a3b6167473100ee06e0c796c2955552b"},
        {NULL, "Test Using Larger Than Block-Size Key - Hash Key First", 0xaa,
         0, 131, 54, 32,
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
        {NULL, "This is a test using a larger than block-size key and a "
               "larger than block-size data. The key needs to be hashed "
               "before being used by the HMAC algorithm.", 0xaa, 0, 131, 152,
         32,
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
    };
    uint8_t key[131], data[152], mac[32];
    char    got[65];
    size_t  i;

    for (i = 0; i < TT_ARRAY_SIZE(tc); i++) {
        if (tc[i].key != NULL) {
            memcpy(key, tc[i].key, tc[i].klen);
        } else {
            memset(key, tc[i].kbyte, tc[i].klen);
        }
        if (tc[i].data != NULL) {
            memcpy(data, tc[i].data, tc[i].dlen);
        } else {
            memset(data, tc[i].dbyte, tc[i].dlen);
        }
        tutti__hmac_sha256(key, tc[i].klen, data, tc[i].dlen, mac);
        to_hex(mac, tc[i].tag_len, got);
        cr_expect_str_eq(got, tc[i].tag, "RFC 4231 case %zu", i + 1);
    }
}

Test(hmac_sha256, ct_equal)
{
    uint8_t a[32], b[32];

    memset(a, 7, sizeof(a));
    memcpy(b, a, sizeof(b));
    cr_expect(tutti__ct_equal(a, b, sizeof(a)) && tutti__ct_equal(a, b, 0));
    b[31] ^= 1;
    cr_expect(!tutti__ct_equal(a, b, sizeof(a)), "last byte");
    b[31] ^= 1;
    b[0] ^= 0x80;
    cr_expect(!tutti__ct_equal(a, b, sizeof(a)), "first byte");
}

/* ------------------------------------------------------------------ */
/* The id                                                             */
/* ------------------------------------------------------------------ */

Test(boot_id, text_round_trip, .timeout = 10)
{
    tutti_unique_id_t id, back;
    char              text[TUTTI_UNIQUE_ID_TEXT_LEN], upper[sizeof(text)];
    size_t            i;

    start_root(300, &id);
    cr_assert_eq(tutti__boot_id_to_text(&id, text, sizeof(text)),
                 TUTTI_SUCCESS);
    cr_assert_eq(strlen(text), 256);
    for (i = 0; i < 256; i++) {
        cr_assert(strchr("0123456789abcdef", text[i]) != NULL,
                  "character %zu is '%c'", i, text[i]);
    }
    cr_assert_eq(tutti__boot_id_from_text(text, &back), TUTTI_SUCCESS, "%s",
                 tutti_last_error());
    cr_expect(memcmp(&id, &back, sizeof(id)) == 0);
    cr_expect_eq(tutti__boot_job_id(&id), tutti__boot_job_id(&back));

    /* Upper-case hex is accepted too. */
    for (i = 0; i <= 256; i++) {
        upper[i] = (text[i] >= 'a' && text[i] <= 'f') ? text[i] - 32
                                                     : text[i];
    }
    cr_expect_eq(tutti__boot_id_from_text(upper, &back), TUTTI_SUCCESS);
    cr_expect(memcmp(&id, &back, sizeof(id)) == 0);

    /* Two ids differ in their secret and job id. */
    start_root(300, &back);
    cr_expect(memcmp(id.internal + 32, back.internal + 32, 40) != 0);
}

static void expect_bad_text(const char *text, const char *needle)
{
    tutti_unique_id_t id;

    memset(&id, 0x5a, sizeof(id));
    cr_expect_eq(tutti__boot_id_from_text(text, &id),
                 TUTTI_ERR_INVALID_ARGUMENT, "accepted: %.40s...", text);
    cr_expect(strstr(tutti_last_error(), needle) != NULL,
              "error '%s' lacks '%s'", tutti_last_error(), needle);
    cr_expect_eq((unsigned char)id.internal[0], 0x5a,
                 "output written on failure");
}

Test(boot_id, malformed_text_rejected, .timeout = 10)
{
    /* One character changed: where, to what, and what the error says. */
    static const struct {
        int         pos;
        char        ch;
        const char *needle;
    } flip[] = {
        {100, 'g', "position 100"},
        {7, ' ', "non-hex"},
        {0, '0', "not a tutti id"},  /* magic, byte 0 is 0x54 */
        {8, '7', "version"},         /* bytes 4-5 are 0x0001 */
        {17, '9', "address family"}, /* bytes 8-9 are 0x0004 */
        {250, '1', "reserved"},      /* padding */
    };
    tutti_unique_id_t id;
    char              good[TUTTI_UNIQUE_ID_TEXT_LEN], bad[300];
    size_t            i;

    start_root(300, &id);
    tutti__boot_id_to_text(&id, good, sizeof(good));

    cr_expect_eq(tutti__boot_id_from_text(NULL, &id),
                 TUTTI_ERR_INVALID_ARGUMENT);
    cr_expect_eq(tutti__boot_id_from_text(good, NULL),
                 TUTTI_ERR_INVALID_ARGUMENT);
    expect_bad_text("", "0 characters");
    snprintf(bad, sizeof(bad), "%.255s", good);
    expect_bad_text(bad, "255 characters");
    snprintf(bad, sizeof(bad), "%s0", good);
    expect_bad_text(bad, "more than 256");
    for (i = 0; i < TT_ARRAY_SIZE(flip); i++) {
        snprintf(bad, sizeof(bad), "%s", good);
        bad[flip[i].pos] = flip[i].ch;
        expect_bad_text(bad, flip[i].needle);
    }

    cr_expect_eq(tutti__boot_id_to_text(&id, good, 256),
                 TUTTI_ERR_INVALID_ARGUMENT);
    cr_expect_eq(tutti__boot_id_to_text(NULL, good, sizeof(good)),
                 TUTTI_ERR_INVALID_ARGUMENT);
}

Test(boot_id, interface_choice, .timeout = 10)
{
    tutti_unique_id_t id;
    tt_boot_id_t      bid;
    tt_config_t       cfg = test_cfg(200);

    /* By name: loopback. */
    cr_assert_eq(tutti__boot_root_start(&cfg, &id), TUTTI_SUCCESS);
    cr_assert_eq(tutti__boot_id_decode(&id, &bid), TUTTI_SUCCESS);
    cr_expect_eq(bid.root.family, TT_BOOT_AF_INET);
    cr_expect(bid.root.addr[0] == 127 && bid.root.port != 0);

    /* Default: some IPv4 interface that is up. */
    cfg.socket_ifname[0] = '\0';
    cr_expect_eq(tutti__boot_root_start(&cfg, &id), TUTTI_SUCCESS);

    /* Excluding loopback never falls back to it. */
    snprintf(cfg.socket_ifname, sizeof(cfg.socket_ifname), "^lo");
    if (tutti__boot_root_start(&cfg, &id) == TUTTI_SUCCESS) {
        cr_assert_eq(tutti__boot_id_decode(&id, &bid), TUTTI_SUCCESS);
        cr_expect(bid.root.addr[0] != 127);
    }

    /* An unknown name is an error that names it. */
    snprintf(cfg.socket_ifname, sizeof(cfg.socket_ifname), "nosuchif0");
    cr_expect_eq(tutti__boot_root_start(&cfg, &id),
                 TUTTI_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(tutti_last_error(), "nosuchif0") != NULL, "%s",
              tutti_last_error());
}

/* ------------------------------------------------------------------ */
/* Rendezvous                                                         */
/* ------------------------------------------------------------------ */

static int proc_basic(int rank, int nranks, const tutti_unique_id_t *id)
{
    static const size_t sizes[] = {1, 13, 4096, 0, TT_BOOT_MSG_MAX / 2 + 1,
                                   TT_BOOT_MSG_MAX};
    tt_config_t cfg = test_cfg(10000);
    tt_boot_t  *b;
    size_t      i;

    CHILD_CHECK(tutti__boot_init(id, rank, nranks, &cfg, 10000, &b) ==
                    TUTTI_SUCCESS, 1, "init");
    for (i = 0; i < TT_ARRAY_SIZE(sizes); i++) {
        CHILD_CHECK(check_allgather(b, rank, nranks, sizes[i], (int)i) == 0,
                    2, "allgather of %zu", sizes[i]);
    }
    CHILD_CHECK(tutti__boot_barrier(b) == TUTTI_SUCCESS, 3, "barrier");

    /* The collectives keep working once the watchdog reports. */
    CHILD_CHECK(tutti__boot_watch(b, on_fail, NULL) == TUTTI_SUCCESS, 4,
                "watch");
    CHILD_CHECK(check_allgather(b, rank, nranks, 100, 77) == 0, 5,
                "allgather after watch");
    CHILD_CHECK(tutti__boot_barrier(b) == TUTTI_SUCCESS, 6, "barrier");
    CHILD_CHECK(atomic_load(&g_fail_calls) == 0, 7, "callback fired: %s",
                g_fail_why);
    tutti__boot_fini(b);
    return 0;
}

static void rendezvous(int nranks, int wait_ms)
{
    tutti_unique_id_t id;
    int               status[MAX_PROCS];

    start_root(10000, &id);
    run_procs(nranks, &id, proc_basic, wait_ms, status);
    expect_all_pass(nranks, status);
}

Test(boot, rendezvous_1, .timeout = 20)
{
    rendezvous(1, 15000);
}

Test(boot, rendezvous_2, .timeout = 20)
{
    rendezvous(2, 15000);
}

Test(boot, rendezvous_5, .timeout = 20)
{
    rendezvous(5, 15000);
}

Test(boot, rendezvous_16, .timeout = 30)
{
    rendezvous(16, 25000);
}

/* One rank in this very process, and the argument checks. */
Test(boot, single_rank_in_process_and_bad_arguments, .timeout = 10)
{
    static const int  bad[][2] = {{0, 0}, {0, TT_BOOT_MAX_RANKS + 1},
                                  {-1, 2}, {2, 2}}; /* {rank, nranks} */
    tutti_unique_id_t id;
    tt_config_t       cfg = test_cfg(5000);
    tt_boot_t        *b   = NULL;
    uint8_t           buf[8], out[8];
    size_t            i;

    start_root(5000, &id);
    cr_expect_eq(tutti__boot_init(NULL, 0, 1, &cfg, 1000, &b),
                 TUTTI_ERR_INVALID_ARGUMENT);
    for (i = 0; i < TT_ARRAY_SIZE(bad); i++) {
        cr_expect_eq(tutti__boot_init(&id, bad[i][0], bad[i][1], &cfg, 1000,
                                      &b), TUTTI_ERR_INVALID_ARGUMENT);
    }
    cr_expect(strstr(tutti_last_error(), "rank 2") != NULL);

    cr_assert_eq(tutti__boot_init(&id, 0, 1, &cfg, 5000, &b), TUTTI_SUCCESS,
                 "%s", tutti_last_error());
    memset(buf, 9, sizeof(buf));
    cr_expect_eq(tutti__boot_allgather(b, buf, out, sizeof(buf)),
                 TUTTI_SUCCESS);
    cr_expect(memcmp(buf, out, sizeof(buf)) == 0);
    cr_expect_eq(tutti__boot_allgather(b, buf, out, TT_BOOT_MSG_MAX + 1),
                 TUTTI_ERR_INVALID_ARGUMENT);
    cr_expect_eq(tutti__boot_allgather(b, NULL, out, 4),
                 TUTTI_ERR_INVALID_ARGUMENT);
    cr_expect_eq(tutti__boot_barrier(b), TUTTI_SUCCESS);
    cr_expect_eq(tutti__boot_watch(b, on_fail, NULL), TUTTI_SUCCESS);
    cr_expect_eq(tutti__boot_watch(b, on_fail, NULL),
                 TUTTI_ERR_INVALID_USAGE);
    tutti__boot_abort_notify(b);
    tutti__boot_fini(b);
    tutti__boot_fini(NULL);
}

/* ------------------------------------------------------------------ */
/* Init failures                                                      */
/* ------------------------------------------------------------------ */

#define SHORT_MS 1500

/* Ranks 0 and 1 of 3; rank 2 never comes. The ranks wait longer than the
 * root, whose verdict (naming the missing rank) must reach them. */
static int proc_missing(int rank, int nprocs, const tutti_unique_id_t *id)
{
    tt_config_t    cfg = test_cfg(3 * SHORT_MS);
    tt_boot_t     *b   = NULL;
    int64_t        t0  = now_ms(), dt;
    tutti_result_t res;

    (void)nprocs;
    res = tutti__boot_init(id, rank, 3, &cfg, 3 * SHORT_MS, &b);
    dt  = now_ms() - t0;
    CHILD_CHECK(res == TUTTI_ERR_TIMEOUT, 1, "init returned %s",
                tutti_result_name(res));
    CHILD_CHECK(dt < SHORT_MS + 1000, 2, "timed out after %lld ms",
                (long long)dt);
    CHILD_CHECK(strstr(tutti_last_error(), "rank 2 of 3 never arrived") !=
                    NULL, 3, "message does not name rank 2");
    return 0;
}

Test(boot, init_times_out_when_a_rank_never_arrives, .timeout = 15)
{
    tutti_unique_id_t id;
    int               status[2];

    start_root(SHORT_MS, &id);
    run_procs(2, &id, proc_missing, 10000, status);
    expect_all_pass(2, status);
}

Test(boot, init_times_out_without_a_root, .timeout = 15)
{
    tutti_unique_id_t id;
    tt_config_t       cfg = test_cfg(500);
    tt_boot_t        *b   = NULL;
    int64_t           t0, dt;

    /* The root gives up after 100 ms and closes its socket: connections
     * are then refused, and retried until the rank's own deadline. */
    start_root(100, &id);
    poll(NULL, 0, 400);
    t0 = now_ms();
    cr_expect_eq(tutti__boot_init(&id, 1, 2, &cfg, 500, &b),
                 TUTTI_ERR_TIMEOUT);
    dt = now_ms() - t0;
    cr_expect(dt >= 450 && dt < 2000, "took %lld ms", (long long)dt);
    cr_expect(strstr(tutti_last_error(),
                     "rank 1 waited 500 ms for the root at 127.0.0.1:") !=
                  NULL, "%s", tutti_last_error());
    cr_expect_null(b);
}

/* What each process claims in a bad rendezvous, and the word the
 * rejected one's error must contain (set by the parent before fork). */
static const int (*g_claim)[2]; /* {rank, nranks} per process */
static const char *g_needle;

/* Exit status: 1 TIMEOUT, 2 INVALID_USAGE naming g_needle, 3 other. The
 * ranks outwait the root, whose verdict then decides (otherwise a rank that
 * gives up first dooms the others at once, with TUTTI_ERR_REMOTE). */
static int proc_claim(int idx, int nprocs, const tutti_unique_id_t *id)
{
    tt_config_t    cfg = test_cfg(3 * SHORT_MS);
    tt_boot_t     *b   = NULL;
    tutti_result_t res;

    (void)nprocs;
    res = tutti__boot_init(id, g_claim[idx][0], g_claim[idx][1], &cfg,
                           3 * SHORT_MS, &b);
    fprintf(stderr, "outcome %s: %s\n", tutti_result_name(res),
            tutti_last_error());
    if (res == TUTTI_ERR_INVALID_USAGE) {
        return strstr(tutti_last_error(), g_needle) != NULL ? 2 : 3;
    }
    return res == TUTTI_ERR_TIMEOUT ? 1 : 3;
}

/* The first to arrive sets the job's shape; the one that contradicts it
 * is rejected at once, the others time out waiting for the missing. */
static void run_claims(int nprocs, const int (*claim)[2], const char *needle,
                       int timeouts, int rejected)
{
    tutti_unique_id_t id;
    int               status[MAX_PROCS], i, t = 0, r = 0;

    g_claim  = claim;
    g_needle = needle;
    start_root(SHORT_MS, &id);
    run_procs(nprocs, &id, proc_claim, 10000, status);
    for (i = 0; i < nprocs; i++) {
        t += status[i] == 1;
        r += status[i] == 2;
    }
    cr_expect(t == timeouts && r == rejected,
              "%d timed out, %d rejected (want %d, %d)", t, r, timeouts,
              rejected);
}

Test(boot, duplicate_rank_rejected, .timeout = 15)
{
    static const int claim[][2] = {{0, 3}, {1, 3}, {1, 3}};

    run_claims(3, claim, "duplicate", 2, 1);
}

Test(boot, mismatched_nranks_rejected, .timeout = 15)
{
    static const int claim[][2] = {{0, 2}, {1, 3}};

    run_claims(2, claim, "nranks", 1, 1);
}

/* ------------------------------------------------------------------ */
/* Authentication                                                     */
/* ------------------------------------------------------------------ */

/* Connects to the root of id, blocking, with a receive timeout. */
static int raw_connect(const tutti_unique_id_t *id)
{
    tt_boot_id_t            bid;
    struct sockaddr_storage ss;
    socklen_t               len;
    struct timeval          tv = {.tv_sec = 3};
    int                     fd;

    cr_assert_eq(tutti__boot_id_decode(id, &bid), TUTTI_SUCCESS);
    len = tutti__boot_addr_to_sockaddr(&bid.root, &ss);
    fd  = socket(ss.ss_family, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&ss, len), 0, "%s",
                 strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* The server must close on us: EOF or reset, not a timeout. */
static void expect_closed_by_root(int fd)
{
    char    buf[64];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);

    cr_expect(n == 0 || (n < 0 && errno == ECONNRESET),
              "recv returned %zd (%s)", n, n < 0 ? strerror(errno) : "");
    close(fd);
}

/* Process 0: the real id with its secret altered; must be refused. */
static int proc_wrong_secret(int idx, int nprocs, const tutti_unique_id_t *id)
{
    tutti_unique_id_t forged = *id;
    tt_config_t       cfg    = test_cfg(3000);
    tt_boot_t        *b      = NULL;
    tutti_result_t    res;

    (void)idx;
    (void)nprocs;
    forged.internal[40] ^= 0x01; /* inside the secret */
    res = tutti__boot_init(&forged, 0, 3, &cfg, 3000, &b);
    CHILD_CHECK(res == TUTTI_ERR_REMOTE, 1, "forged id gave %s",
                tutti_result_name(res));
    CHILD_CHECK(strstr(tutti_last_error(), "rejected our authentication") !=
                    NULL, 2, "unexpected message");
    return 0;
}

Test(boot, wrong_secret_rejected_real_ranks_succeed, .timeout = 20)
{
    tutti_unique_id_t id;
    uint8_t           srv[TT_BOOT_SRV_HELLO_LEN], cli[TT_BOOT_CLI_HELLO_LEN];
    int               status[3], fd, saved_err, logfd;
    char              logname[] = "/tmp/tutti-boot-test-XXXXXX", log[8192];
    ssize_t           n;

    start_root(10000, &id);

    /* Capture the root's WARN lines. */
    logfd = mkstemp(logname);
    cr_assert(logfd >= 0);
    unlink(logname);
    saved_err = dup(2);
    dup2(logfd, 2);

    /* A client that knows the protocol but not the secret. */
    fd = raw_connect(&id);
    cr_expect_eq(recv(fd, srv, sizeof(srv), MSG_WAITALL),
                 (ssize_t)sizeof(srv));
    cr_expect_eq(tt_get32(srv), TT_BOOT_MAGIC);
    memset(cli, 0, sizeof(cli));
    memcpy(cli, srv, 8); /* magic and version */
    cr_expect_eq(send(fd, cli, sizeof(cli), MSG_NOSIGNAL),
                 (ssize_t)sizeof(cli));
    expect_closed_by_root(fd);

    /* Garbage instead of a handshake. */
    fd = raw_connect(&id);
    cr_expect_eq(recv(fd, srv, sizeof(srv), MSG_WAITALL),
                 (ssize_t)sizeof(srv));
    memset(cli, 'x', sizeof(cli));
    cr_expect_eq(send(fd, cli, sizeof(cli), MSG_NOSIGNAL),
                 (ssize_t)sizeof(cli));
    expect_closed_by_root(fd);

    dup2(saved_err, 2);
    close(saved_err);
    n = pread(logfd, log, sizeof(log) - 1, 0);
    close(logfd);
    log[n > 0 ? n : 0] = '\0';
    cr_expect(strstr(log, "rejected connection from 127.0.0.1:") != NULL &&
                  strstr(log, "bad authentication") != NULL,
              "root log: %s", log);
    cr_expect(strstr(log, "bad protocol magic") != NULL, "root log: %s", log);

    /* The real client code with a forged secret. */
    run_procs(1, &id, proc_wrong_secret, 10000, status);
    expect_all_pass(1, status);

    /* The root still serves the real ranks. */
    run_procs(3, &id, proc_basic, 15000, status);
    expect_all_pass(3, status);
}

/* ------------------------------------------------------------------ */
/* Collectives: errors                                                */
/* ------------------------------------------------------------------ */

/* Rank 2 passes 8 bytes, the others 16: every rank must fail. */
static int proc_len_mismatch(int rank, int nranks, const tutti_unique_id_t *id)
{
    tt_config_t    cfg = test_cfg(10000);
    tt_boot_t     *b;
    uint8_t        mine[16] = {0}, all[3 * 16];
    tutti_result_t res;

    CHILD_CHECK(tutti__boot_init(id, rank, nranks, &cfg, 10000, &b) ==
                    TUTTI_SUCCESS, 1, "init");
    res = tutti__boot_allgather(b, mine, all, rank == 2 ? 8 : 16);
    CHILD_CHECK(res == TUTTI_ERR_INVALID_USAGE, 2, "allgather gave %s",
                tutti_result_name(res));
    CHILD_CHECK(strstr(tutti_last_error(), "rank 2 passed 8 bytes") != NULL,
                3, "message");
    /* The bootstrap is still usable afterwards. */
    CHILD_CHECK(check_allgather(b, rank, nranks, 5, 1) == 0, 4, "allgather");
    tutti__boot_fini(b);
    return 0;
}

Test(boot, allgather_length_mismatch, .timeout = 15)
{
    tutti_unique_id_t id;
    int               status[3];

    start_root(10000, &id);
    run_procs(3, &id, proc_len_mismatch, 10000, status);
    expect_all_pass(3, status);
}

/* ------------------------------------------------------------------ */
/* The watchdog                                                       */
/* ------------------------------------------------------------------ */

static int g_victim; /* set by the parent before fork */

/* Rank g_victim exits without fini; the others must hear of it. */
static int proc_death(int rank, int nranks, const tutti_unique_id_t *id)
{
    tt_config_t    cfg = test_cfg(10000);
    tt_boot_t     *b;
    int64_t        t0;
    tutti_result_t res;

    CHILD_CHECK(tutti__boot_init(id, rank, nranks, &cfg, 10000, &b) ==
                    TUTTI_SUCCESS, 1, "init");
    CHILD_CHECK(tutti__boot_watch(b, on_fail, NULL) == TUTTI_SUCCESS, 2,
                "watch");
    CHILD_CHECK(tutti__boot_barrier(b) == TUTTI_SUCCESS, 3, "barrier");
    if (rank == g_victim) {
        _exit(0); /* a crash, as far as the others can tell */
    }
    CHILD_CHECK(wait_failed(1ull << g_victim, 5000), 4,
                "no callback for rank %d", g_victim);
    CHILD_CHECK(atomic_load(&g_failed_mask) == 1ull << g_victim &&
                    atomic_load(&g_fail_bad) == 0, 5,
                "callbacks: mask %llx, bad %d",
                (unsigned long long)atomic_load(&g_failed_mask),
                atomic_load(&g_fail_bad));
    CHILD_CHECK(strstr(g_fail_why, "died") != NULL, 6, "why: %s",
                g_fail_why);
    /* A collective that needs the dead rank fails fast, not at timeout. */
    t0  = now_ms();
    res = tutti__boot_barrier(b);
    CHILD_CHECK(res == TUTTI_ERR_REMOTE && now_ms() - t0 < 5000, 7,
                "barrier after the death gave %s after %lld ms",
                tutti_result_name(res), (long long)(now_ms() - t0));
    tutti__boot_fini(b);
    return 0;
}

/* Runs nprocs ranks of fn, in which rank `victim` fails. */
static void run_victim(int nprocs, int victim, proc_fn fn)
{
    tutti_unique_id_t id;
    int               status[MAX_PROCS];

    g_victim = victim;
    start_root(10000, &id);
    run_procs(nprocs, &id, fn, 15000, status);
    expect_all_pass(nprocs, status);
}

Test(boot, watchdog_reports_a_dead_rank, .timeout = 20)
{
    run_victim(4, 2, proc_death);
}

Test(boot, watchdog_reports_a_dead_rank_0, .timeout = 20)
{
    run_victim(3, 0, proc_death);
}

/* Rank g_victim aborts; the others hear of it and the bootstrap still
 * works (the aborted rank's connection is up). */
static int proc_abort(int rank, int nranks, const tutti_unique_id_t *id)
{
    tt_config_t cfg = test_cfg(10000);
    tt_boot_t  *b;

    CHILD_CHECK(tutti__boot_init(id, rank, nranks, &cfg, 10000, &b) ==
                    TUTTI_SUCCESS, 1, "init");
    CHILD_CHECK(tutti__boot_watch(b, on_fail, NULL) == TUTTI_SUCCESS, 2,
                "watch");
    CHILD_CHECK(tutti__boot_barrier(b) == TUTTI_SUCCESS, 3, "barrier");
    if (rank == g_victim) {
        tutti__boot_abort_notify(b);
        tutti__boot_abort_notify(b); /* idempotent */
    } else {
        CHILD_CHECK(wait_failed(1ull << g_victim, 5000), 4,
                    "no callback for rank %d", g_victim);
        CHILD_CHECK(strstr(g_fail_why, "aborted") != NULL, 5, "why: %s",
                    g_fail_why);
    }
    CHILD_CHECK(tutti__boot_barrier(b) == TUTTI_SUCCESS, 6, "barrier");
    CHILD_CHECK(atomic_load(&g_failed_mask) ==
                        (rank == g_victim ? 0 : 1ull << g_victim) &&
                    atomic_load(&g_fail_bad) == 0, 7, "callbacks: mask %llx",
                (unsigned long long)atomic_load(&g_failed_mask));
    tutti__boot_fini(b);
    return 0;
}

Test(boot, abort_notify_reaches_the_others, .timeout = 20)
{
    run_victim(4, 3, proc_abort);
}

Test(boot, abort_notify_from_rank_0, .timeout = 20)
{
    run_victim(3, 0, proc_abort);
}

static void *abort_later(void *arg)
{
    poll(NULL, 0, 5);
    tutti__boot_abort_notify(arg);
    return NULL;
}

/* Rank 1 aborts from a second thread while its main thread is in the
 * middle of allgathers: frames must not interleave. */
static int proc_abort_concurrent(int rank, int nranks,
                                 const tutti_unique_id_t *id)
{
    tt_config_t cfg = test_cfg(10000);
    tt_boot_t  *b;
    pthread_t   t;
    int         i;

    CHILD_CHECK(tutti__boot_init(id, rank, nranks, &cfg, 10000, &b) ==
                    TUTTI_SUCCESS, 1, "init");
    CHILD_CHECK(tutti__boot_watch(b, on_fail, NULL) == TUTTI_SUCCESS, 2,
                "watch");
    if (rank == 1) {
        pthread_create(&t, NULL, abort_later, b);
    }
    for (i = 0; i < 40; i++) {
        CHILD_CHECK(check_allgather(b, rank, nranks, 3000, i) == 0, 3,
                    "allgather %d", i);
    }
    if (rank == 1) {
        pthread_join(t, NULL);
    } else {
        CHILD_CHECK(wait_failed(1ull << 1, 5000), 4, "no callback");
    }
    CHILD_CHECK(tutti__boot_barrier(b) == TUTTI_SUCCESS, 5, "barrier");
    tutti__boot_fini(b);
    return 0;
}

Test(boot, abort_notify_during_collectives, .timeout = 20)
{
    tutti_unique_id_t id;
    int               status[4];

    start_root(10000, &id);
    run_procs(4, &id, proc_abort_concurrent, 15000, status);
    expect_all_pass(4, status);
}

/* Ranks leave one after the other (rank 0 first); those still there must
 * take the goodbyes for what they are. */
static int proc_fini(int rank, int nranks, const tutti_unique_id_t *id)
{
    tt_config_t cfg = test_cfg(10000);
    tt_boot_t  *b;

    CHILD_CHECK(tutti__boot_init(id, rank, nranks, &cfg, 10000, &b) ==
                    TUTTI_SUCCESS, 1, "init");
    CHILD_CHECK(tutti__boot_watch(b, on_fail, NULL) == TUTTI_SUCCESS, 2,
                "watch");
    CHILD_CHECK(tutti__boot_barrier(b) == TUTTI_SUCCESS, 3, "barrier");
    poll(NULL, 0, 40 * rank);
    CHILD_CHECK(atomic_load(&g_fail_calls) == 0, 4, "callback: %s",
                g_fail_why);
    tutti__boot_fini(b);
    return 0;
}

Test(boot, fini_of_every_rank_reports_nothing, .timeout = 20)
{
    tutti_unique_id_t id;
    int               status[5];

    start_root(10000, &id);
    run_procs(5, &id, proc_fini, 15000, status);
    expect_all_pass(5, status);
}
