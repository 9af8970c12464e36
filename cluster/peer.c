/* SPDX-License-Identifier: MIT */
/*
 * The peer-link codec (peer.h). Every read goes through the bounded cursor
 * (core/cursor.h), every size check is written as `n <= end - pos`, and
 * counts are bounded by the bytes that could hold them before anything is
 * allocated. All integers big-endian.
 */
#include "cluster/peer.h"

#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"
#include "core/cursor.h"
#include "core/status.h"

#define MAX_NAME           255
#define RAFT_FLAG_REJECT   0x01
#define RAFT_FLAG_TRANSFER 0x02
#define RAFT_FLAG_LAST     0x04 /* SNAP: the chunk ends the snapshot */
#define PROOF_LABEL        "warren peer proof v1"

/* A u8 length and 1..255 bytes. */
static bool rd_name(wr_cursor_t *r, wr_bytes_t *out)
{
    return wr_rd_shortstr(r, out) && out->len > 0;
}

static uint64_t get_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* The CRC covers the type, the group and the payload. */
static uint32_t frame_crc(const uint8_t *hdr, const uint8_t *payload, size_t len)
{
    return wr_crc32c_update(wr_crc32c_update(0, hdr + 4, 9), payload, len);
}

int wr_peer_frame_parse(const uint8_t *p, size_t len, size_t max_payload, wr_peer_frame_t *f, size_t *used)
{
    uint64_t n;

    *used = WR_PEER_HEADER_SIZE;
    if (len < WR_PEER_HEADER_SIZE)
        return WR_AGAIN;
    n = get_be(p, 4);
    if (n > max_payload)
        return WR_ETOOBIG;
    if (p[4] == 0 || p[4] > WR_PEER_TYPE_MAX)
        return WR_EUNKNOWN;
    *used = WR_PEER_HEADER_SIZE + n;
    if (n > len - WR_PEER_HEADER_SIZE)
        return WR_AGAIN;
    if (frame_crc(p, p + WR_PEER_HEADER_SIZE, n) != (uint32_t)get_be(p + 13, 4))
        return WR_ESYNTAX;
    f->type = p[4];
    f->group = get_be(p + 5, 8);
    f->payload = (wr_bytes_t){p + WR_PEER_HEADER_SIZE, n};
    return WR_OK;
}

size_t wr_peer_frame_begin(wr_buf_t *b, uint8_t type, uint64_t group)
{
    size_t at = b->len;

    wr_buf_put_u32(b, 0);
    wr_buf_put_u8(b, type);
    wr_buf_put_u64(b, group);
    wr_buf_put_u32(b, 0);
    return at;
}

bool wr_peer_frame_end(wr_buf_t *b, size_t at)
{
    const uint8_t *hdr;
    size_t n;

    if (!wr_buf_ok(b) || b->len - at - WR_PEER_HEADER_SIZE > UINT32_MAX)
        return false;
    hdr = b->data + at;
    n = b->len - at - WR_PEER_HEADER_SIZE;
    wr_buf_patch_u32(b, at, (uint32_t)n);
    wr_buf_patch_u32(b, at + 13, frame_crc(hdr, hdr + WR_PEER_HEADER_SIZE, n));
    return true;
}

bool wr_peer_frame_put(wr_buf_t *b, uint8_t type, uint64_t group, const void *payload, size_t len)
{
    size_t at = wr_peer_frame_begin(b, type, group);

    wr_buf_put(b, payload, len);
    return wr_peer_frame_end(b, at);
}

static bool name_ok(wr_bytes_t s)
{
    return s.len >= 1 && s.len <= MAX_NAME;
}

static void put_name(wr_buf_t *b, wr_bytes_t s)
{
    wr_buf_put_u8(b, (uint8_t)s.len);
    wr_buf_put(b, s.data, s.len);
}

bool wr_peer_hello_put(wr_buf_t *b, const wr_peer_hello_t *h)
{
    size_t at;

    if (!name_ok(h->cluster) || !name_ok(h->node))
        return false;
    at = wr_peer_frame_begin(b, WR_PEER_HELLO, 0);
    wr_buf_put_u16(b, h->version);
    put_name(b, h->cluster);
    put_name(b, h->node);
    wr_buf_put(b, h->nonce, WR_PEER_NONCE_SIZE);
    return wr_peer_frame_end(b, at);
}

int wr_peer_hello_decode(wr_bytes_t payload, wr_peer_hello_t *h)
{
    wr_cursor_t r = wr_cursor(payload);
    wr_bytes_t nonce;

    if (!wr_rd_u16(&r, &h->version) || !rd_name(&r, &h->cluster) || !rd_name(&r, &h->node) ||
        !wr_rd_bytes(&r, WR_PEER_NONCE_SIZE, &nonce) || wr_cursor_left(&r) != 0)
        return WR_ESYNTAX;
    memcpy(h->nonce, nonce.data, WR_PEER_NONCE_SIZE);
    return WR_OK;
}

bool wr_peer_refuse_put(wr_buf_t *b, const char *reason)
{
    size_t n = strlen(reason);

    return wr_peer_frame_put(b, WR_PEER_REFUSE, 0, reason, n > MAX_NAME ? MAX_NAME : n);
}

int wr_peer_refuse_decode(wr_bytes_t payload, wr_bytes_t *reason)
{
    if (payload.len > MAX_NAME)
        return WR_ESYNTAX;
    *reason = payload;
    return WR_OK;
}

bool wr_peer_app_put(wr_buf_t *b, uint64_t group, uint8_t kind, const wr_bytes_t *parts, size_t n)
{
    size_t at = wr_peer_frame_begin(b, WR_PEER_APP, group);

    wr_buf_put_u8(b, kind);
    for (size_t i = 0; i < n; i++)
        wr_buf_put(b, parts[i].data, parts[i].len);
    return wr_peer_frame_end(b, at);
}

int wr_peer_app_decode(wr_bytes_t payload, uint8_t *kind, wr_bytes_t *body)
{
    if (payload.len == 0)
        return WR_ESYNTAX;
    *kind = payload.data[0];
    *body = (wr_bytes_t){payload.data + 1, payload.len - 1};
    return WR_OK;
}

/* The label, the prover's role, the cluster name, both nonces, both names. */
static void proof_input(wr_buf_t *b, const wr_peer_auth_t *a, wr_peer_role_t role)
{
    wr_buf_put(b, PROOF_LABEL, sizeof(PROOF_LABEL) - 1);
    wr_buf_put_u8(b, (uint8_t)role);
    put_name(b, a->cluster);
    wr_buf_put(b, a->dialer_nonce, WR_PEER_NONCE_SIZE);
    wr_buf_put(b, a->acceptor_nonce, WR_PEER_NONCE_SIZE);
    put_name(b, a->dialer);
    put_name(b, a->acceptor);
}

int wr_peer_proof(const wr_peer_auth_t *a, wr_peer_role_t role, wr_peer_mac_fn mac, void *ctx,
                  uint8_t out[WR_PEER_MAC_SIZE])
{
    wr_buf_t b = WR_BUF_INIT;
    int rc = WR_ENOMEM;

    proof_input(&b, a, role);
    if (wr_buf_ok(&b))
        rc = mac(ctx, b.data, b.len, out);
    wr_buf_free(&b);
    return rc;
}

int wr_peer_proof_check(const wr_peer_auth_t *a, wr_peer_role_t role, wr_peer_mac_fn mac, void *ctx,
                        wr_bytes_t payload)
{
    uint8_t want[WR_PEER_MAC_SIZE];
    uint8_t diff = 0;
    int rc;

    if (payload.len != WR_PEER_MAC_SIZE)
        return WR_ESYNTAX;
    if ((rc = wr_peer_proof(a, role, mac, ctx, want)) != WR_OK)
        return rc;
    for (size_t i = 0; i < WR_PEER_MAC_SIZE; i++)
        diff |= want[i] ^ payload.data[i];
    return diff == 0 ? WR_OK : WR_ENOENT;
}

bool wr_peer_raft_put(wr_buf_t *b, uint64_t group, const wr_raft_msg_t *m)
{
    size_t at;

    if (m->n_entries > UINT32_MAX)
        return false;
    at = wr_peer_frame_begin(b, WR_PEER_RAFT, group);
    wr_buf_put_u8(b, m->type);
    wr_buf_put_u8(b, (uint8_t)((m->reject ? RAFT_FLAG_REJECT : 0) | (m->transfer ? RAFT_FLAG_TRANSFER : 0) |
                               (m->type == WR_RAFT_MSG_SNAP && m->last ? RAFT_FLAG_LAST : 0)));
    wr_buf_put_u32(b, m->from);
    wr_buf_put_u32(b, m->to);
    wr_buf_put_u64(b, m->term);
    wr_buf_put_u64(b, m->index);
    wr_buf_put_u64(b, m->log_term);
    wr_buf_put_u64(b, m->commit);
    wr_buf_put_u64(b, m->hint_index);
    wr_buf_put_u64(b, m->hint_term);
    wr_buf_put_u32(b, (uint32_t)m->n_entries);
    for (size_t i = 0; i < m->n_entries; i++) {
        const wr_raft_entry_t *e = &m->entries[i];

        wr_buf_put_u64(b, e->term);
        wr_buf_put_u64(b, e->index);
        wr_buf_put_u8(b, e->type);
        wr_buf_put_u32(b, e->len);
        wr_buf_put(b, e->data, e->len);
    }
    if (m->type == WR_RAFT_MSG_SNAP || m->type == WR_RAFT_MSG_SNAP_RESP)
        wr_buf_put_u64(b, m->offset);
    if (m->type == WR_RAFT_MSG_SNAP) {
        wr_buf_put_u32(b, m->crc);
        wr_buf_put_u32(b, m->total_crc);
        wr_buf_put_u32(b, m->len);
        wr_buf_put(b, m->data, m->len);
    }
    return wr_peer_frame_end(b, at);
}

/* The fixed part of a Raft message; *n the number of entries that follow. */
static int raft_fixed(wr_cursor_t *r, wr_raft_msg_t *m, uint32_t *n)
{
    uint8_t flags;

    memset(m, 0, sizeof(*m));
    if (!wr_rd_u8(r, &m->type) || !wr_rd_u8(r, &flags) || !wr_rd_u32(r, &m->from) || !wr_rd_u32(r, &m->to) ||
        !wr_rd_u64(r, &m->term) || !wr_rd_u64(r, &m->index) || !wr_rd_u64(r, &m->log_term) ||
        !wr_rd_u64(r, &m->commit) || !wr_rd_u64(r, &m->hint_index) || !wr_rd_u64(r, &m->hint_term) ||
        !wr_rd_u32(r, n))
        return WR_ESYNTAX;
    if (m->type < WR_RAFT_MSG_APP || m->type > WR_RAFT_MSG_SNAP_RESP)
        return WR_EUNKNOWN;
    if (flags & ~(RAFT_FLAG_REJECT | RAFT_FLAG_TRANSFER | (m->type == WR_RAFT_MSG_SNAP ? RAFT_FLAG_LAST : 0)))
        return WR_ESYNTAX;
    m->reject = flags & RAFT_FLAG_REJECT;
    m->transfer = flags & RAFT_FLAG_TRANSFER;
    m->last = flags & RAFT_FLAG_LAST;
    /* Entries travel in APP, and in SNAP the snapshot's membership. Each
     * takes at least its header: bounds the allocation by the input. */
    if (*n > 0 && ((m->type != WR_RAFT_MSG_APP && m->type != WR_RAFT_MSG_SNAP) ||
                   *n > wr_cursor_left(r) / WR_PEER_ENTRY_HDR))
        return WR_ESYNTAX;
    return WR_OK;
}

/* What follows the entries of SNAP (offset, CRCs, the chunk) and SNAP_RESP
 * (offset). The chunk borrows from the payload. */
static int raft_snap_tail(wr_cursor_t *r, wr_raft_msg_t *m)
{
    wr_bytes_t chunk = {NULL, 0};

    if (m->type != WR_RAFT_MSG_SNAP && m->type != WR_RAFT_MSG_SNAP_RESP)
        return WR_OK;
    if (!wr_rd_u64(r, &m->offset))
        return WR_ESYNTAX;
    if (m->type == WR_RAFT_MSG_SNAP && (!wr_rd_u32(r, &m->crc) || !wr_rd_u32(r, &m->total_crc) ||
                                        !wr_rd_u32(r, &m->len) || !wr_rd_bytes(r, m->len, &chunk)))
        return WR_ESYNTAX;
    m->data = chunk.data;
    return WR_OK;
}

static int raft_entry(wr_cursor_t *r, const wr_raft_msg_t *m, size_t i, wr_raft_entry_t *e)
{
    wr_bytes_t data;

    if (!wr_rd_u64(r, &e->term) || !wr_rd_u64(r, &e->index) || !wr_rd_u8(r, &e->type) ||
        !wr_rd_u32(r, &e->len) || !wr_rd_bytes(r, e->len, &data))
        return WR_ESYNTAX;
    if (e->type > WR_RAFT_ENTRY_CONFIG)
        return WR_EUNKNOWN;
    if (m->type == WR_RAFT_MSG_APP && e->index != m->index + 1 + i)
        return WR_ESYNTAX;
    /* Received entries are only read (raft.h); the array type is shared with the log's. */
    e->data = (uint8_t *)(uintptr_t)data.data;
    return WR_OK;
}

int wr_peer_raft_decode(wr_bytes_t payload, wr_raft_msg_t *m, wr_raft_entry_t **entries)
{
    wr_cursor_t r = wr_cursor(payload);
    wr_raft_entry_t *e = NULL;
    uint32_t n;
    int rc;

    *entries = NULL;
    if ((rc = raft_fixed(&r, m, &n)) != WR_OK)
        return rc;
    if (n > 0 && !(e = calloc(n, sizeof(*e))))
        return WR_ENOMEM;
    for (size_t i = 0; i < n && rc == WR_OK; i++)
        rc = raft_entry(&r, m, i, &e[i]);
    if (rc == WR_OK)
        rc = raft_snap_tail(&r, m);
    if (rc == WR_OK && wr_cursor_left(&r) != 0)
        rc = WR_ESYNTAX;
    if (rc != WR_OK) {
        free(e);
        return rc;
    }
    m->entries = e;
    m->n_entries = n;
    *entries = e;
    return WR_OK;
}
