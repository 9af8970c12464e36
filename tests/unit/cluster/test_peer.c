/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for cluster/peer.c: round trips of every frame and Raft message
 * type, and each class of malformed input with the status it must give
 * (truncated, bad CRC, oversized length, unknown type, trailing bytes).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/peer.h"
#include "core/status.h"
#include "tests/unit/runner.h"

#define MAX_PAYLOAD 4096

/* A keyed stand-in for HMAC-SHA256: deterministic, depends on every byte. */
static int toy_mac(void *ctx, const uint8_t *msg, size_t len, uint8_t out[WR_PEER_MAC_SIZE])
{
    const char *key = ctx;
    uint32_t h = 2166136261u;

    if (!key)
        return WR_EIO;
    for (size_t i = 0; key[i]; i++)
        h = (h ^ (uint8_t)key[i]) * 16777619u;
    for (size_t i = 0; i < WR_PEER_MAC_SIZE; i++) {
        for (size_t j = 0; j < len; j++)
            h = (h ^ msg[j]) * 16777619u;
        out[i] = (uint8_t)(h >> 24);
    }
    return WR_OK;
}

static wr_peer_frame_t parse_one(const wr_buf_t *b)
{
    wr_peer_frame_t f;
    size_t used;

    ck_assert_int_eq(wr_peer_frame_parse(b->data, b->len, MAX_PAYLOAD, &f, &used), WR_OK);
    ck_assert_uint_eq(used, b->len);
    return f;
}

START_TEST(frame_round_trip)
{
    wr_buf_t b = WR_BUF_INIT;
    wr_peer_frame_t f;

    ck_assert(wr_peer_frame_put(&b, WR_PEER_HEARTBEAT, 0x0102030405060708ull, NULL, 0));
    ck_assert_uint_eq(b.len, WR_PEER_HEADER_SIZE);
    f = parse_one(&b);
    ck_assert_uint_eq(f.type, WR_PEER_HEARTBEAT);
    ck_assert_uint_eq(f.group, 0x0102030405060708ull);
    ck_assert_uint_eq(f.payload.len, 0);
    wr_buf_reset(&b);
    ck_assert(wr_peer_frame_put(&b, WR_PEER_REFUSE, 7, "why", 3));
    f = parse_one(&b);
    ck_assert(wr_bytes_eq_str(f.payload, "why"));
    wr_buf_free(&b);
}
END_TEST

/* Every prefix is WR_AGAIN, and *used says how much is needed once known. */
START_TEST(frame_truncated)
{
    wr_buf_t b = WR_BUF_INIT;
    wr_peer_frame_t f;
    size_t used;

    ck_assert(wr_peer_frame_put(&b, WR_PEER_REFUSE, 1, "abcdef", 6));
    for (size_t n = 0; n < b.len; n++) {
        ck_assert_int_eq(wr_peer_frame_parse(b.data, n, MAX_PAYLOAD, &f, &used), WR_AGAIN);
        ck_assert_uint_eq(used, n < WR_PEER_HEADER_SIZE ? WR_PEER_HEADER_SIZE : b.len);
    }
    wr_buf_free(&b);
}
END_TEST

/* A flipped bit in the type, the group or the payload fails the CRC. */
START_TEST(frame_bad_crc)
{
    static const size_t at[] = {5, 12, 13, 16, WR_PEER_HEADER_SIZE, WR_PEER_HEADER_SIZE + 2};
    wr_buf_t b = WR_BUF_INIT;
    wr_peer_frame_t f;
    size_t used;

    ck_assert(wr_peer_frame_put(&b, WR_PEER_REFUSE, 9, "xyz", 3));
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        b.data[at[i]] ^= 0x10;
        ck_assert_int_eq(wr_peer_frame_parse(b.data, b.len, MAX_PAYLOAD, &f, &used), WR_ESYNTAX);
        b.data[at[i]] ^= 0x10;
    }
    ck_assert_int_eq(wr_peer_frame_parse(b.data, b.len, MAX_PAYLOAD, &f, &used), WR_OK);
    wr_buf_free(&b);
}
END_TEST

/* Oversized and unknown-type frames are refused from the header alone. */
START_TEST(frame_oversized_and_unknown)
{
    uint8_t hdr[WR_PEER_HEADER_SIZE] = {0xff, 0xff, 0xff, 0xff, WR_PEER_RAFT};
    wr_peer_frame_t f;
    size_t used;

    ck_assert_int_eq(wr_peer_frame_parse(hdr, sizeof(hdr), MAX_PAYLOAD, &f, &used), WR_ETOOBIG);
    hdr[0] = hdr[1] = 0;
    hdr[2] = (MAX_PAYLOAD + 1) >> 8;
    hdr[3] = (MAX_PAYLOAD + 1) & 0xff;
    ck_assert_int_eq(wr_peer_frame_parse(hdr, sizeof(hdr), MAX_PAYLOAD, &f, &used), WR_ETOOBIG);
    hdr[2] = hdr[3] = 0;
    hdr[4] = 0;
    ck_assert_int_eq(wr_peer_frame_parse(hdr, sizeof(hdr), MAX_PAYLOAD, &f, &used), WR_EUNKNOWN);
    hdr[4] = WR_PEER_TYPE_MAX + 1;
    ck_assert_int_eq(wr_peer_frame_parse(hdr, sizeof(hdr), MAX_PAYLOAD, &f, &used), WR_EUNKNOWN);
}
END_TEST

static wr_peer_hello_t hello(void)
{
    wr_peer_hello_t h = {WR_PEER_VERSION, WR_BYTES_LIT("warren"), WR_BYTES_LIT("n1"), {0}};

    for (size_t i = 0; i < WR_PEER_NONCE_SIZE; i++)
        h.nonce[i] = (uint8_t)(i * 7 + 1);
    return h;
}

START_TEST(hello_round_trip)
{
    wr_peer_hello_t h = hello(), d;
    wr_buf_t b = WR_BUF_INIT;
    wr_peer_frame_t f;

    ck_assert(wr_peer_hello_put(&b, &h));
    f = parse_one(&b);
    ck_assert_uint_eq(f.type, WR_PEER_HELLO);
    ck_assert_int_eq(wr_peer_hello_decode(f.payload, &d), WR_OK);
    ck_assert_uint_eq(d.version, WR_PEER_VERSION);
    ck_assert(wr_bytes_eq_str(d.cluster, "warren") && wr_bytes_eq_str(d.node, "n1"));
    ck_assert_mem_eq(d.nonce, h.nonce, WR_PEER_NONCE_SIZE);
    wr_buf_free(&b);
}
END_TEST

START_TEST(hello_malformed)
{
    wr_peer_hello_t h = hello(), d;
    wr_buf_t b = WR_BUF_INIT;
    wr_bytes_t p;
    uint8_t extra[200];

    ck_assert(wr_peer_hello_put(&b, &h));
    p = (wr_bytes_t){b.data + WR_PEER_HEADER_SIZE, b.len - WR_PEER_HEADER_SIZE};
    for (size_t n = 0; n < p.len; n++)
        ck_assert_int_eq(wr_peer_hello_decode((wr_bytes_t){p.data, n}, &d), WR_ESYNTAX);
    memcpy(extra, p.data, p.len);
    extra[p.len] = 0;
    ck_assert_int_eq(wr_peer_hello_decode((wr_bytes_t){extra, p.len + 1}, &d), WR_ESYNTAX);
    extra[2] = 0; /* an empty cluster name */
    ck_assert_int_eq(wr_peer_hello_decode((wr_bytes_t){extra, p.len}, &d), WR_ESYNTAX);
    h.node = (wr_bytes_t){NULL, 0};
    ck_assert(!wr_peer_hello_put(&b, &h));
    wr_buf_free(&b);
}
END_TEST

START_TEST(refuse_round_trip)
{
    char longer[400];
    wr_buf_t b = WR_BUF_INIT;
    wr_bytes_t reason;
    wr_peer_frame_t f;

    ck_assert(wr_peer_refuse_put(&b, "wrong secret"));
    f = parse_one(&b);
    ck_assert_int_eq(wr_peer_refuse_decode(f.payload, &reason), WR_OK);
    ck_assert(wr_bytes_eq_str(reason, "wrong secret"));
    memset(longer, 'x', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    wr_buf_reset(&b);
    ck_assert(wr_peer_refuse_put(&b, longer));
    f = parse_one(&b);
    ck_assert_uint_eq(f.payload.len, 255);
    ck_assert_int_eq(wr_peer_refuse_decode((wr_bytes_t){(const uint8_t *)longer, 256}, &reason), WR_ESYNTAX);
    wr_buf_free(&b);
}
END_TEST

/* An APP frame is its kind then its parts, concatenated; an empty payload has no kind. */
START_TEST(app_round_trip)
{
    wr_bytes_t parts[3] = {WR_BYTES_LIT("head"), {NULL, 0}, WR_BYTES_LIT("body")}, body;
    wr_buf_t b = WR_BUF_INIT;
    wr_peer_frame_t f;
    uint8_t kind;

    ck_assert(wr_peer_app_put(&b, 42, 17, parts, 3));
    f = parse_one(&b);
    ck_assert_uint_eq(f.type, WR_PEER_APP);
    ck_assert_uint_eq(f.group, 42);
    ck_assert_int_eq(wr_peer_app_decode(f.payload, &kind, &body), WR_OK);
    ck_assert_uint_eq(kind, 17);
    ck_assert(wr_bytes_eq_str(body, "headbody"));
    wr_buf_reset(&b);
    ck_assert(wr_peer_app_put(&b, 0, 3, NULL, 0));
    f = parse_one(&b);
    ck_assert_int_eq(wr_peer_app_decode(f.payload, &kind, &body), WR_OK);
    ck_assert_uint_eq(kind, 3);
    ck_assert_uint_eq(body.len, 0);
    ck_assert_int_eq(wr_peer_app_decode((wr_bytes_t){NULL, 0}, &kind, &body), WR_ESYNTAX);
    wr_buf_free(&b);
}
END_TEST

static const uint8_t nonce_a[WR_PEER_NONCE_SIZE] = {1, 2, 3};
static const uint8_t nonce_b[WR_PEER_NONCE_SIZE] = {4, 5, 6};

static wr_peer_auth_t auth(void)
{
    return (wr_peer_auth_t){WR_BYTES_LIT("warren"), WR_BYTES_LIT("n1"), WR_BYTES_LIT("n2"), nonce_a, nonce_b};
}

START_TEST(proof_verifies_with_the_same_secret_only)
{
    wr_peer_auth_t a = auth();
    uint8_t mac[WR_PEER_MAC_SIZE];
    wr_bytes_t p = {mac, sizeof(mac)};

    ck_assert_int_eq(wr_peer_proof(&a, WR_PEER_DIALER, toy_mac, "secret", mac), WR_OK);
    ck_assert_int_eq(wr_peer_proof_check(&a, WR_PEER_DIALER, toy_mac, "secret", p), WR_OK);
    ck_assert_int_eq(wr_peer_proof_check(&a, WR_PEER_DIALER, toy_mac, "other", p), WR_ENOENT);
    /* Not reflectable: the acceptor's proof differs from the dialer's. */
    ck_assert_int_eq(wr_peer_proof_check(&a, WR_PEER_ACCEPTOR, toy_mac, "secret", p), WR_ENOENT);
    a.dialer_nonce = nonce_b; /* another nonce, another proof */
    ck_assert_int_eq(wr_peer_proof_check(&a, WR_PEER_DIALER, toy_mac, "secret", p), WR_ENOENT);
    a = auth();
    a.acceptor = WR_BYTES_LIT("n3");
    ck_assert_int_eq(wr_peer_proof_check(&a, WR_PEER_DIALER, toy_mac, "secret", p), WR_ENOENT);
    a = auth();
    ck_assert_int_eq(wr_peer_proof_check(&a, WR_PEER_DIALER, toy_mac, "secret", (wr_bytes_t){mac, 31}),
                     WR_ESYNTAX);
    ck_assert_int_eq(wr_peer_proof_check(&a, WR_PEER_DIALER, toy_mac, NULL, p), WR_EIO);
}
END_TEST

static wr_raft_msg_t raft_msg(uint8_t type)
{
    return (wr_raft_msg_t){.type = type,
                           .reject = type % 2 == 0,
                           .transfer = type == WR_RAFT_MSG_VOTE,
                           .from = 1,
                           .to = 0xfffffffe,
                           .term = 1ull << 40,
                           .index = 17,
                           .log_term = 3,
                           .commit = 15,
                           .hint_index = 12,
                           .hint_term = 2};
}

static void assert_same(const wr_raft_msg_t *a, const wr_raft_msg_t *b)
{
    ck_assert_uint_eq(a->type, b->type);
    ck_assert(a->reject == b->reject && a->transfer == b->transfer);
    ck_assert_uint_eq(a->from, b->from);
    ck_assert_uint_eq(a->to, b->to);
    ck_assert_uint_eq(a->term, b->term);
    ck_assert_uint_eq(a->index, b->index);
    ck_assert_uint_eq(a->log_term, b->log_term);
    ck_assert_uint_eq(a->commit, b->commit);
    ck_assert_uint_eq(a->hint_index, b->hint_index);
    ck_assert_uint_eq(a->hint_term, b->hint_term);
    ck_assert_uint_eq(a->offset, b->offset);
    ck_assert(a->last == b->last);
    ck_assert_uint_eq(a->crc, b->crc);
    ck_assert_uint_eq(a->total_crc, b->total_crc);
    ck_assert_uint_eq(a->len, b->len);
    if (a->len)
        ck_assert_mem_eq(a->data, b->data, a->len);
    ck_assert_uint_eq(a->n_entries, b->n_entries);
    for (size_t i = 0; i < a->n_entries; i++) {
        ck_assert_uint_eq(a->entries[i].term, b->entries[i].term);
        ck_assert_uint_eq(a->entries[i].index, b->entries[i].index);
        ck_assert_uint_eq(a->entries[i].type, b->entries[i].type);
        ck_assert_uint_eq(a->entries[i].len, b->entries[i].len);
        if (a->entries[i].len)
            ck_assert_mem_eq(a->entries[i].data, b->entries[i].data, a->entries[i].len);
    }
}

static uint8_t payload_a[] = "enqueue";
static uint8_t payload_c[] = {0, 1, 0, 0, 0, 2, 1};

static wr_raft_msg_t app_with_entries(wr_raft_entry_t e[3])
{
    wr_raft_msg_t m = raft_msg(WR_RAFT_MSG_APP);

    e[0] = (wr_raft_entry_t){3, 18, payload_a, sizeof(payload_a) - 1, WR_RAFT_ENTRY_NORMAL};
    e[1] = (wr_raft_entry_t){4, 19, NULL, 0, WR_RAFT_ENTRY_NOOP};
    e[2] = (wr_raft_entry_t){4, 20, payload_c, sizeof(payload_c), WR_RAFT_ENTRY_CONFIG};
    m.entries = e;
    m.n_entries = 3;
    return m;
}

/* Encodes m into b and returns the RAFT frame's payload. */
static wr_bytes_t raft_payload(wr_buf_t *b, const wr_raft_msg_t *m)
{
    wr_peer_frame_t f;

    wr_buf_reset(b);
    ck_assert(wr_peer_raft_put(b, 42, m));
    f = parse_one(b);
    ck_assert_uint_eq(f.type, WR_PEER_RAFT);
    ck_assert_uint_eq(f.group, 42);
    return f.payload;
}

/* A snapshot chunk as the driver sends it: the membership as entries[0]. */
static wr_raft_msg_t snap_chunk(wr_raft_entry_t *conf)
{
    static const uint8_t chunk[] = "state bytes";
    wr_raft_msg_t m = raft_msg(WR_RAFT_MSG_SNAP);

    *conf = (wr_raft_entry_t){3, 17, payload_c, sizeof(payload_c), WR_RAFT_ENTRY_CONFIG};
    m.entries = conf;
    m.n_entries = 1;
    m.offset = 1u << 20;
    m.data = chunk;
    m.len = sizeof(chunk) - 1;
    m.crc = 0xdeadbeef;
    m.total_crc = 0x01020304;
    m.last = true;
    return m;
}

START_TEST(raft_round_trip_every_type)
{
    wr_buf_t b = WR_BUF_INIT;
    wr_raft_entry_t *ents;
    wr_raft_msg_t m = raft_msg((uint8_t)_i), d;
    wr_bytes_t p;

    if (m.type == WR_RAFT_MSG_SNAP_RESP)
        m.offset = 4096;
    p = raft_payload(&b, &m);
    ck_assert_uint_eq(p.len, WR_PEER_RAFT_FIXED + (m.type == WR_RAFT_MSG_SNAP_RESP ? 8
                                                   : m.type == WR_RAFT_MSG_SNAP    ? 20
                                                                                   : 0));
    ck_assert_int_eq(wr_peer_raft_decode(p, &d, &ents), WR_OK);
    ck_assert_ptr_null(ents);
    assert_same(&m, &d);
    wr_buf_free(&b);
}
END_TEST

START_TEST(raft_round_trip_entries)
{
    wr_raft_entry_t e[3], *ents;
    wr_raft_msg_t m = app_with_entries(e), d;
    wr_buf_t b = WR_BUF_INIT;
    wr_bytes_t p = raft_payload(&b, &m);

    ck_assert_int_eq(wr_peer_raft_decode(p, &d, &ents), WR_OK);
    ck_assert_ptr_eq(ents, d.entries);
    assert_same(&m, &d);
    /* The entries borrow from the payload. */
    ck_assert(d.entries[0].data >= p.data && d.entries[0].data < p.data + p.len);
    free(ents);
    wr_buf_free(&b);
}
END_TEST

START_TEST(raft_round_trip_snapshot_chunk)
{
    wr_raft_entry_t conf, *ents;
    wr_raft_msg_t m = snap_chunk(&conf), d;
    wr_buf_t b = WR_BUF_INIT;
    wr_bytes_t p = raft_payload(&b, &m);

    ck_assert_int_eq(wr_peer_raft_decode(p, &d, &ents), WR_OK);
    assert_same(&m, &d);
    /* The chunk borrows from the payload too. */
    ck_assert(d.data >= p.data && d.data + d.len <= p.data + p.len);
    for (size_t n = 0; n < p.len; n++) {
        free(ents);
        ck_assert_int_eq(wr_peer_raft_decode((wr_bytes_t){p.data, n}, &d, &ents), WR_ESYNTAX);
        ck_assert_ptr_null(ents);
    }
    wr_buf_free(&b);
}
END_TEST

START_TEST(raft_truncated_and_trailing)
{
    wr_raft_entry_t e[3], *ents;
    wr_raft_msg_t m = app_with_entries(e), d;
    wr_buf_t b = WR_BUF_INIT;
    wr_bytes_t p = raft_payload(&b, &m);
    uint8_t *copy = malloc(p.len + 1);

    for (size_t n = 0; n < p.len; n++) {
        ck_assert_int_eq(wr_peer_raft_decode((wr_bytes_t){p.data, n}, &d, &ents), WR_ESYNTAX);
        ck_assert_ptr_null(ents);
    }
    memcpy(copy, p.data, p.len);
    copy[p.len] = 0;
    ck_assert_int_eq(wr_peer_raft_decode((wr_bytes_t){copy, p.len + 1}, &d, &ents), WR_ESYNTAX);
    ck_assert_ptr_null(ents);
    free(copy);
    wr_buf_free(&b);
}
END_TEST

/* Patches byte `at` of an encoded message and decodes it. */
static int decode_patched(const wr_raft_msg_t *m, size_t at, uint8_t v)
{
    wr_buf_t b = WR_BUF_INIT;
    wr_bytes_t p = raft_payload(&b, m);
    wr_raft_entry_t *ents;
    wr_raft_msg_t d;
    int rc;

    ((uint8_t *)p.data)[at] = v;
    rc = wr_peer_raft_decode(p, &d, &ents);
    ck_assert(rc == WR_OK || ents == NULL);
    free(ents);
    wr_buf_free(&b);
    return rc;
}

START_TEST(raft_malformed)
{
    wr_raft_entry_t e[3];
    wr_raft_msg_t m = app_with_entries(e), hb = raft_msg(WR_RAFT_MSG_HEARTBEAT);
    size_t entry0 = WR_PEER_RAFT_FIXED;

    ck_assert_int_eq(decode_patched(&hb, 0, 0), WR_EUNKNOWN);
    ck_assert_int_eq(decode_patched(&hb, 0, WR_RAFT_MSG_SNAP_RESP + 1), WR_EUNKNOWN);
    ck_assert_int_eq(decode_patched(&hb, 1, 0x04), WR_ESYNTAX); /* "last" is a SNAP flag only */
    ck_assert_int_eq(decode_patched(&hb, 1, 0x08), WR_ESYNTAX); /* an unknown flag */
    /* A count of entries that the bytes cannot hold: refused before allocating. */
    ck_assert_int_eq(decode_patched(&hb, WR_PEER_RAFT_FIXED - 4, 0xff), WR_ESYNTAX);
    ck_assert_int_eq(decode_patched(&m, WR_PEER_RAFT_FIXED - 4, 0xff), WR_ESYNTAX);
    ck_assert_int_eq(decode_patched(&m, entry0 + 16, WR_RAFT_ENTRY_CONFIG + 1), WR_EUNKNOWN);
    ck_assert_int_eq(decode_patched(&m, entry0 + 15, 19), WR_ESYNTAX);   /* an index out of sequence */
    ck_assert_int_eq(decode_patched(&m, entry0 + 17, 0x80), WR_ESYNTAX); /* an entry longer than the rest */
    m.type = WR_RAFT_MSG_APP_RESP;                                       /* entries only travel in APP */
    ck_assert_int_eq(decode_patched(&m, 0, WR_RAFT_MSG_APP_RESP), WR_ESYNTAX);
}
END_TEST

static Suite *peer_suite(void)
{
    Suite *s = suite_create("cluster-peer");
    TCase *tc = tcase_create("codec");

    tcase_add_test(tc, frame_round_trip);
    tcase_add_test(tc, frame_truncated);
    tcase_add_test(tc, frame_bad_crc);
    tcase_add_test(tc, frame_oversized_and_unknown);
    tcase_add_test(tc, hello_round_trip);
    tcase_add_test(tc, hello_malformed);
    tcase_add_test(tc, refuse_round_trip);
    tcase_add_test(tc, app_round_trip);
    tcase_add_test(tc, proof_verifies_with_the_same_secret_only);
    tcase_add_loop_test(tc, raft_round_trip_every_type, WR_RAFT_MSG_APP, WR_RAFT_MSG_SNAP_RESP + 1);
    tcase_add_test(tc, raft_round_trip_entries);
    tcase_add_test(tc, raft_round_trip_snapshot_chunk);
    tcase_add_test(tc, raft_truncated_and_trailing);
    tcase_add_test(tc, raft_malformed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wr_test_run(peer_suite());
}
