/*
 * Unit tests of the fleet key ring's schedule (src/lib/fleet/fleet_ring.c) against a real Redis
 * the test starts on a Unix socket of its own, with the fleet's clock moved by hand (the ring's
 * clock-offset test hook, and the same offset on each member's keyring clock).
 *
 * The rules under test: a new fleet gets its first key in a few polls; a next key encrypts only
 * once every live member holds it, or once the acknowledgement wait has run out (counted as
 * early); a member that stops polling stops counting after its liveness window; a rotation
 * request promotes before the period but still waits for the acknowledgements; and however many
 * members are due at once, the fleet moves one generation at a time.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <openssl/crypto.h>

#include <tlsresume/fleet.h>
#include <tlsresume/tickets.h>

#include "../../src/lib/fleet/fleet_int.h"

#define ROTATE_S TLSR_TICKET_MIN_ROTATE_S
#define LIFETIME_S 20u
#define ACK_WAIT_S 20u /* longer than the period, so that the period alone does not end it */
/* A member counts as live for 3 polls + 2 s after its last poll: the clock moves in smaller
 * steps, each seen by every member, or a jump would make every other member look dead. */
#define STEP_MS 1500
#define POLL_MS 100u
#define MAX_MEMBERS 3

static const char fleet_key[] = "tlsresume-fleet-key 1\n"
                                "INyWwodqiKD3eGGmk5UjPQbQydYxqh+8KsL5y6OPd54=\n";

/* The fleet's time is the wall clock plus this, for Redis's schedule and the keyrings alike. */
static int64_t offset_ms;

static uint64_t fake_clock(void *arg)
{
    (void)arg;
    return (uint64_t)time(NULL) + (uint64_t)(offset_ms / 1000);
}

struct member {
    struct tlsr_keyring *keyring;
    struct tlsr_fleet_ring *ring;
    /* The apply hook fails from this fleet generation on (UINT64_MAX: never), as a `keys sync`
     * whose target stopped taking keys: the member polls (live) but acknowledges no next key. */
    uint64_t refuse_from;
    bool is_used;
};

struct fixture {
    pid_t redis;
    char dir[64];
    char endpoint[128];
    char prefix[32];
    const char *endpoints[1];
    struct tlsr_fleet_secret *secret;
    struct ev_loop *loop;
    struct member m[MAX_MEMBERS];
};

static tlsr_status apply_hook(void *arg, struct tlsr_keyring *ring)
{
    (void)ring;
    const struct member *m = arg;
    struct tlsr_fleet_ring_stats st;
    tlsr_fleet_ring_get_stats(m->ring, &st);
    return st.generation < m->refuse_from ? TLSR_OK : TLSR_E_SYSTEM;
}

/* TLSR_TEST_VERBOSE=1 shows the rings' log lines, with the fleet's clock offset. */
static void log_line(void *arg, enum tlsr_log_level level, const char *component, const char *msg)
{
    (void)level;
    fprintf(stderr, "  [%s +%llds] %s %s\n", (const char *)arg, (long long)(offset_ms / 1000),
            component, msg);
}

static bool can_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) {
        return false;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    bool is_up = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return is_up;
}

static int group_setup(void **state)
{
    static struct fixture f;
    snprintf(f.dir, sizeof(f.dir), "/tmp/tlsr-ring-XXXXXX");
    if (mkdtemp(f.dir) == NULL) {
        fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    char sock[96];
    snprintf(sock, sizeof(sock), "%s/redis.sock", f.dir);
    f.redis = fork();
    if (f.redis == 0) {
        if (freopen("/dev/null", "w", stdout) == NULL) {
            _exit(126);
        }
        execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", sock, "--save", "",
               "--appendonly", "no", "--dir", f.dir, (char *)NULL);
        fprintf(stderr, "redis-server: %s (install it: scripts/deps.sh test)\n", strerror(errno));
        _exit(127);
    }
    for (int i = 0; i < 100 && !can_connect(sock); i++) {
        usleep(50 * 1000);
    }
    if (!can_connect(sock)) {
        fprintf(stderr, "redis-server did not come up on %s\n", sock);
        return -1;
    }
    snprintf(f.endpoint, sizeof(f.endpoint), "unix:%s", sock);
    if (tlsr_fleet_secret_parse("test.key", (const uint8_t *)fleet_key, strlen(fleet_key),
                                &f.secret) != TLSR_OK) {
        return -1;
    }
    f.loop = ev_loop_new(EVFLAG_AUTO);
    *state = &f;
    return 0;
}

static int group_teardown(void **state)
{
    struct fixture *f = *state;
    tlsr_fleet_secret_free(f->secret);
    ev_loop_destroy(f->loop);
    kill(f->redis, SIGTERM);
    (void)waitpid(f->redis, NULL, 0);
    char sock[96];
    snprintf(sock, sizeof(sock), "%s/redis.sock", f->dir);
    (void)unlink(sock);
    (void)rmdir(f->dir);
    return 0;
}

/* Each test is a fleet of its own: a fresh prefix, the clock back to now. */
static int setup(void **state)
{
    static unsigned n;
    struct fixture *f = *state;
    snprintf(f->prefix, sizeof(f->prefix), "t%u:", ++n);
    offset_ms = 0;
    return 0;
}

static void add_member_life(struct fixture *f, int i, uint32_t lifetime_s)
{
    struct member *m = &f->m[i];
    memset(m, 0, sizeof(*m));
    m->refuse_from = UINT64_MAX;
    m->is_used = true;
    assert_int_equal(tlsr_keyring_new(ROTATE_S, lifetime_s, &m->keyring), TLSR_OK);
    tlsr_keyring_set_clock(m->keyring, fake_clock, NULL);
    struct tlsr_fleet_opts o;
    tlsr_fleet_opts_init(&o);
    f->endpoints[0] = f->endpoint;
    o.endpoints = f->endpoints;
    o.n_endpoints = 1;
    o.prefix = f->prefix;
    o.secret = f->secret;
    static const char *const names[MAX_MEMBERS] = {"m0", "m1", "m2"};
    if (getenv("TLSR_TEST_VERBOSE") != NULL && strcmp(getenv("TLSR_TEST_VERBOSE"), "1") == 0) {
        o.log = log_line;
        o.log_arg = (void *)names[i];
    }
    struct tlsr_fleet_ring_opts ro;
    tlsr_fleet_ring_opts_init(&ro);
    ro.member = names[i];
    ro.poll_ms = POLL_MS;
    ro.ack_wait_s = ACK_WAIT_S;
    ro.apply = apply_hook;
    ro.apply_arg = m;
    assert_int_equal(tlsr_fleet_ring_new(f->loop, &o, &ro, m->keyring, &m->ring), TLSR_OK);
    tlsr__fleet_ring_set_clock_offset(m->ring, offset_ms);
}

static void add_member(struct fixture *f, int i)
{
    add_member_life(f, i, LIFETIME_S);
}

static void drop_member(struct fixture *f, int i)
{
    struct member *m = &f->m[i];
    if (!m->is_used) {
        return;
    }
    tlsr_fleet_ring_free(m->ring);
    tlsr_keyring_free(m->keyring);
    m->is_used = false;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < MAX_MEMBERS; i++) {
        drop_member(f, i);
    }
    return 0;
}

static void run_for(struct fixture *f, unsigned ms);

static uint64_t polls_of(const struct fixture *f, int i)
{
    struct tlsr_fleet_ring_stats st;
    tlsr_fleet_ring_get_stats(f->m[i].ring, &st);
    return st.polls;
}

/* Moves the fleet's clock by ms, for Redis's schedule and every member's keyring, in steps each
 * member has polled through twice (a poll in flight at a step still carries the old time). */
static void advance_in(struct fixture *f, int64_t ms, int64_t step_ms)
{
    while (ms > 0) {
        int64_t step = ms < step_ms ? ms : step_ms;
        ms -= step;
        offset_ms += step;
        uint64_t before[MAX_MEMBERS] = {0};
        for (int i = 0; i < MAX_MEMBERS; i++) {
            if (f->m[i].is_used) {
                tlsr__fleet_ring_set_clock_offset(f->m[i].ring, offset_ms);
                before[i] = polls_of(f, i);
            }
        }
        for (int i = 0; i < MAX_MEMBERS; i++) {
            for (int n = 0; n < 100 && f->m[i].is_used && polls_of(f, i) < before[i] + 2; n++) {
                run_for(f, 20);
            }
            assert_true(!f->m[i].is_used || polls_of(f, i) >= before[i] + 2);
        }
    }
}

static void advance(struct fixture *f, int64_t ms)
{
    advance_in(f, ms, STEP_MS);
}

static void on_deadline(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    *(bool *)t->data = true;
}

/* Runs the loop for ms of real time. */
static void run_for(struct fixture *f, unsigned ms)
{
    bool is_over = false;
    ev_timer t;
    ev_timer_init(&t, on_deadline, ms / 1000.0, 0);
    t.data = &is_over;
    ev_timer_start(f->loop, &t);
    while (!is_over) {
        ev_run(f->loop, EVRUN_ONCE);
    }
    ev_timer_stop(f->loop, &t);
}

static struct tlsr_fleet_ring_stats stats(const struct fixture *f, int i)
{
    struct tlsr_fleet_ring_stats st;
    tlsr_fleet_ring_get_stats(f->m[i].ring, &st);
    return st;
}

/* Runs the loop until member i sees generation gen (at most 5 s); returns what it saw. */
static uint64_t wait_generation(struct fixture *f, int i, uint64_t gen)
{
    for (int n = 0; n < 50 && stats(f, i).generation < gen; n++) {
        run_for(f, 100);
    }
    return stats(f, i).generation;
}

/* Runs until every live member has joined generation gen and the next key is made and held by
 * every applying member. */
static void settle(struct fixture *f, uint64_t gen)
{
    for (int i = 0; i < MAX_MEMBERS; i++) {
        if (f->m[i].is_used) {
            assert_int_equal(wait_generation(f, i, gen), gen);
        }
    }
    run_for(f, 4 * POLL_MS);
}

static uint64_t total(const struct fixture *f, bool is_early)
{
    uint64_t sum = 0;
    for (int i = 0; i < MAX_MEMBERS; i++) {
        if (f->m[i].is_used) {
            struct tlsr_fleet_ring_stats st = stats(f, i);
            sum += is_early ? st.promotions_early : st.promotions;
        }
    }
    return sum;
}

/* The encrypting key of a member's keyring is the fleet's: its generation is the fleet's. */
static uint64_t encrypting_generation(const struct fixture *f, int i)
{
    struct tlsr_keyring_stats ks;
    assert_int_equal(tlsr_keyring_get_stats(f->m[i].keyring, &ks), TLSR_OK);
    assert_true(ks.is_fleet);
    return ks.current_generation;
}

static void test_first_key(void **state)
{
    struct fixture *f = *state;
    add_member(f, 0);
    assert_int_equal(wait_generation(f, 0, 1), 1);
    struct tlsr_fleet_ring_stats st = stats(f, 0);
    assert_true(st.is_joined);
    assert_true(st.keys_created >= 1);
    assert_int_equal(st.promotions, 1);
    assert_int_equal(st.promotions_early, 0);
    assert_int_equal(encrypting_generation(f, 0), 1);
    /* Within the period nothing moves, however long the loop runs. */
    advance(f, (ROTATE_S - 5) * 1000);
    run_for(f, 6 * POLL_MS);
    assert_int_equal(stats(f, 0).generation, 1);
    /* Past it, the next key encrypts. */
    advance(f, 10 * 1000);
    assert_int_equal(wait_generation(f, 0, 2), 2);
    assert_int_equal(stats(f, 0).promotions_early, 0);
}

/* A live member that does not hold the next key holds the rotation back, within the wait. */
static void test_waits_for_every_ack(void **state)
{
    struct fixture *f = *state;
    add_member(f, 0);
    add_member(f, 1);
    f->m[1].refuse_from = 1; /* m1 takes key 1, then no next key */
    settle(f, 1);
    advance(f, (ROTATE_S + 1) * 1000);
    run_for(f, 8 * POLL_MS);
    assert_int_equal(stats(f, 0).generation, 1);
    assert_int_equal(stats(f, 0).members, 2);
    assert_int_equal(stats(f, 0).unacked, 1);
    assert_int_equal(total(f, false), 1);
    /* Once it holds the key, the fleet rotates, and nothing counts as early. */
    f->m[1].refuse_from = UINT64_MAX;
    assert_int_equal(wait_generation(f, 0, 2), 2);
    assert_int_equal(wait_generation(f, 1, 2), 2);
    assert_int_equal(total(f, false), 2);
    assert_int_equal(total(f, true), 0);
    assert_int_equal(encrypting_generation(f, 0), encrypting_generation(f, 1));
}

/* The wait for a member that never acknowledges is bounded: then the fleet rotates anyway. */
static void test_ack_wait_runs_out(void **state)
{
    struct fixture *f = *state;
    add_member(f, 0);
    add_member(f, 1);
    f->m[1].refuse_from = 1;
    settle(f, 1);
    /* The next key was made at the first promotion (about now): the wait counts from there. */
    advance(f, (ROTATE_S + 1) * 1000);
    run_for(f, 6 * POLL_MS);
    assert_int_equal(stats(f, 0).generation, 1);
    advance(f, (ACK_WAIT_S - ROTATE_S) * 1000ll);
    assert_int_equal(wait_generation(f, 0, 2), 2);
    assert_int_equal(total(f, true), 1);
}

/* A member that stops polling stops counting once its liveness window (3 polls + 2 s) ends. */
static void test_silent_member_drops_out(void **state)
{
    struct fixture *f = *state;
    add_member(f, 0);
    add_member(f, 1);
    f->m[1].refuse_from = 2;
    settle(f, 1);
    assert_int_equal(stats(f, 0).members, 2);
    /* Key 2 is held by both; m1 will not take key 3, made after key 2 is promoted. */
    advance(f, (ROTATE_S + 1) * 1000);
    assert_int_equal(wait_generation(f, 0, 2), 2);
    for (int n = 0; n < 20 && stats(f, 0).unacked != 1; n++) {
        run_for(f, POLL_MS);
    }
    assert_int_equal(stats(f, 0).unacked, 1);
    /* m1 is gone without a word; a rotation is asked at once. Within m1's window m0 waits. */
    drop_member(f, 1);
    tlsr_fleet_ring_rotate(f->m[0].ring);
    run_for(f, 8 * POLL_MS);
    assert_int_equal(stats(f, 0).generation, 2);
    /* Past it, m0 is alone and rotates at once, not after the acknowledgement wait. */
    advance(f, 3 * POLL_MS + 2000 + 1000);
    assert_int_equal(wait_generation(f, 0, 3), 3);
    assert_int_equal(stats(f, 0).members, 1);
    assert_int_equal(total(f, true), 0);
}

/* A rotation request promotes before the period ends, but only once every member holds the key. */
static void test_rotation_request(void **state)
{
    struct fixture *f = *state;
    add_member(f, 0);
    add_member(f, 1);
    f->m[1].refuse_from = 1;
    settle(f, 1);
    tlsr_fleet_ring_rotate(f->m[0].ring);
    run_for(f, 8 * POLL_MS);
    assert_int_equal(stats(f, 0).generation, 1);
    assert_true(stats(f, 1).is_rotation_asked); /* the request reached the fleet */
    f->m[1].refuse_from = UINT64_MAX;
    assert_int_equal(wait_generation(f, 1, 2), 2);
    run_for(f, 4 * POLL_MS);
    assert_false(stats(f, 0).is_rotation_asked); /* the promotion cleared it */
    assert_int_equal(total(f, true), 0);
    /* One request, one rotation. */
    run_for(f, 8 * POLL_MS);
    assert_int_equal(stats(f, 0).generation, 2);
}

/* Three members due at once: the fleet moves one generation, promoted by exactly one of them. */
static void test_one_generation_at_a_time(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 3; i++) {
        add_member(f, i);
    }
    settle(f, 1);
    assert_int_equal(total(f, false), 1);
    for (uint64_t gen = 2; gen <= 4; gen++) {
        advance(f, (ROTATE_S + 1) * 1000);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(wait_generation(f, i, gen), gen);
        }
        run_for(f, 6 * POLL_MS);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(stats(f, i).generation, gen);
            assert_int_equal(encrypting_generation(f, i), encrypting_generation(f, 0));
        }
        assert_int_equal(total(f, false), gen);
    }
    assert_int_equal(total(f, true), 0);
}

/* Sends one command to the test's Redis (FLUSHALL: Redis forgets everything). */
static void redis_do(const struct fixture *f, const char *cmd)
{
    redisContext *rc = redisConnectUnix(f->endpoint + strlen("unix:"));
    assert_non_null(rc);
    assert_int_equal(rc->err, 0);
    redisReply *r = redisCommand(rc, cmd);
    assert_non_null(r);
    assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    redisFree(rc);
}

/* Whether member `to` holds every fleet key member `from` holds (compared by full name). */
static bool holds_all_of(struct fixture *f, int to, int from, size_t *n_from)
{
    static struct tlsr_key_material m[TLSR_KEYRING_MAX_KEYS];
    size_t n = 0;
    bool has_next = false;
    assert_int_equal(
        tlsr_keyring_export(f->m[from].keyring, true, m, TLSR_KEYRING_MAX_KEYS, &n, &has_next),
        TLSR_OK);
    bool is_all = true;
    for (size_t i = 0; i < n; i++) {
        is_all &= tlsr_keyring_has_key(f->m[to].keyring, m[i].bytes);
    }
    *n_from = n;
    OPENSSL_cleanse(m, sizeof(m));
    return is_all;
}

/* Redis forgets the ring (FLUSHALL, as a restart without persistence or a failover to an empty
 * replica would): the members write their keys back and go on with the same sequence, rather
 * than start again at generation 1; a member that joins afterwards gets every live key, the
 * retired ones too (as imports). Before, the sequence restarted at 1 and the newcomer got only
 * the new keys. */
static void test_redis_forgets(void **state)
{
    struct fixture *f = *state;
    add_member(f, 0);
    add_member(f, 1);
    settle(f, 1);
    for (uint64_t gen = 2; gen <= 3; gen++) {
        advance(f, (ROTATE_S + 1) * 1000);
        assert_int_equal(wait_generation(f, 0, gen), gen);
        assert_int_equal(wait_generation(f, 1, gen), gen);
    }
    run_for(f, 4 * POLL_MS);
    redis_do(f, "FLUSHALL");
    run_for(f, 10 * POLL_MS);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(stats(f, i).generation, 3);
        assert_int_equal(encrypting_generation(f, i), 3);
    }
    /* The sequence goes on: the next rotation makes generation 4, on both. */
    advance(f, (ROTATE_S + 1) * 1000);
    assert_int_equal(wait_generation(f, 0, 4), 4);
    assert_int_equal(wait_generation(f, 1, 4), 4);
    add_member(f, 2);
    assert_int_equal(wait_generation(f, 2, 4), 4);
    run_for(f, 4 * POLL_MS);
    size_t n = 0;
    assert_true(holds_all_of(f, 2, 0, &n));
    assert_true(n >= 4); /* keys 1 to 3 retired, 4 encrypting (and 5 next) */
}

/* A member joining a fleet whose ring holds more than 64 keys (a 10 s rotation, a 12 min
 * lifetime: about 74 live keys) gets every one of them. Before, it read at most 64, and old
 * tickets resumed on the old members but not on it (unknown_key). */
static void test_joiner_reads_every_key(void **state)
{
    struct fixture *f = *state;
    add_member_life(f, 0, 720);
    assert_int_equal(wait_generation(f, 0, 1), 1);
    for (uint64_t gen = 2; gen <= 80; gen++) {
        advance_in(f, (ROTATE_S + 1) * 1000, (ROTATE_S + 1) * 1000);
        assert_int_equal(wait_generation(f, 0, gen), gen);
    }
    run_for(f, 3 * POLL_MS);
    add_member_life(f, 1, 720);
    assert_int_equal(wait_generation(f, 1, 80), 80);
    run_for(f, 3 * POLL_MS);
    size_t n = 0;
    assert_true(holds_all_of(f, 1, 0, &n));
    assert_true(n > 64);
}

/* A rotation request in Redis that was not made with the fleet key (anyone who can write to
 * Redis can set the key) is ignored; one made through the ring is obeyed. Before, any value
 * rotated the whole fleet. */
static void test_unsigned_request_ignored(void **state)
{
    struct fixture *f = *state;
    add_member(f, 0);
    assert_int_equal(wait_generation(f, 0, 1), 1);
    run_for(f, 4 * POLL_MS);
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "SET %sforce 1 PX 60000", f->prefix);
    redis_do(f, cmd);
    run_for(f, 8 * POLL_MS);
    assert_int_equal(stats(f, 0).generation, 1);
    assert_false(stats(f, 0).is_rotation_asked);
    tlsr_fleet_ring_rotate(f->m[0].ring);
    assert_int_equal(wait_generation(f, 0, 2), 2);
}

/* Rotations on demand, 40 in a row: once this server's ring has no room left they are refused
 * and counted, and the first key's tickets still open. Before, each one past the room wiped
 * the oldest decrypt-only key although its tickets were valid, on every server. */
static void test_rotations_on_demand_bounded(void **state)
{
    struct fixture *f = *state;
    add_member_life(f, 0, 60);
    assert_int_equal(wait_generation(f, 0, 1), 1);
    run_for(f, 4 * POLL_MS);
    uint8_t first[TLSR_TICKET_NAME_LEN];
    assert_int_equal(tlsr_keyring_current_name(f->m[0].keyring, first), TLSR_OK);
    struct tlsr_keyring_stats ks;
    assert_int_equal(tlsr_keyring_get_stats(f->m[0].keyring, &ks), TLSR_OK);
    uint64_t wiped_before = ks.keys_wiped; /* the local next key, dropped on joining */
    uint64_t gen = 1;
    for (int i = 0; i < 40 && stats(f, 0).rotations_refused == 0; i++) {
        tlsr_fleet_ring_rotate(f->m[0].ring);
        for (int n = 0;
             n < 30 && stats(f, 0).generation == gen && stats(f, 0).rotations_refused == 0; n++) {
            run_for(f, POLL_MS);
        }
        gen = stats(f, 0).generation;
        run_for(f, 3 * POLL_MS); /* the next key made and held */
    }
    assert_int_equal(tlsr_keyring_get_stats(f->m[0].keyring, &ks), TLSR_OK);
    assert_int_equal(stats(f, 0).rotations_refused, 1);
    assert_true(gen >= 9 && gen < 40);
    assert_int_equal(ks.keys_wiped, wiped_before);
    assert_true(tlsr_keyring_has_key(f->m[0].keyring, first));
    /* Refused, and no longer asked: the fleet stays where it is. */
    run_for(f, 8 * POLL_MS);
    assert_int_equal(stats(f, 0).generation, gen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waits_for_every_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_wait_runs_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_member_drops_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_generation_at_a_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_forgets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_joiner_reads_every_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsigned_request_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotations_on_demand_bounded, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
