/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the peer-link codec (cluster/peer.c), what a peer's
 * socket feeds the node: the input is a stream of frames, parsed one after
 * the other as the link does. Each frame that parses is decoded by its type,
 * and whatever decodes must re-encode to exactly the bytes it came from.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/cluster/reports.h"
#include "cluster/peer.h"
#include "core/status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PAYLOAD 65536

static void same_bytes(const wr_buf_t *b, const uint8_t *frame, size_t len)
{
    if (!wr_buf_ok(b) || b->len != len || memcmp(b->data, frame, len) != 0)
        abort();
}

static void check_raft(const wr_peer_frame_t *f, const uint8_t *frame, size_t len)
{
    wr_buf_t b = WR_BUF_INIT;
    wr_raft_entry_t *ents;
    wr_raft_msg_t m;
    int rc = wr_peer_raft_decode(f->payload, &m, &ents);

    if (rc != WR_OK) {
        if ((rc != WR_ESYNTAX && rc != WR_EUNKNOWN && rc != WR_ENOMEM) || ents != NULL)
            abort();
        return;
    }
    if (!wr_peer_raft_put(&b, f->group, &m))
        abort();
    same_bytes(&b, frame, len);
    free(ents);
    wr_buf_free(&b);
}

static void check_hello(const wr_peer_frame_t *f, const uint8_t *frame, size_t len)
{
    wr_buf_t b = WR_BUF_INIT;
    wr_peer_hello_t h;

    if (wr_peer_hello_decode(f->payload, &h) != WR_OK)
        return;
    /* HELLO always travels on group 0: re-encoding one on another group differs. */
    if (!wr_peer_hello_put(&b, &h))
        abort();
    if (f->group == 0)
        same_bytes(&b, frame, len);
    wr_buf_free(&b);
}

/* An APP frame that decodes re-encodes to the same bytes. */
static void check_app(const wr_peer_frame_t *f, const uint8_t *frame, size_t len)
{
    wr_buf_t b = WR_BUF_INIT;
    wr_bytes_t body;
    uint8_t kind;

    wr_report_t rep;

    if (wr_peer_app_decode(f->payload, &kind, &body) != WR_OK)
        return;
    if (wr_peer_app_put(&b, f->group, kind, &body, 1))
        same_bytes(&b, frame, len);
    /* A node report that decodes re-encodes to the same body. */
    if (kind == WR_REPORT_KIND && wr_report_decode(body, &rep) == WR_OK) {
        wr_buf_reset(&b);
        wr_report_put(&b, &rep);
        if (b.len != body.len || memcmp(b.data, body.data, body.len) != 0)
            abort();
    }
    wr_buf_free(&b);
}

static void check_frame(const wr_peer_frame_t *f, const uint8_t *frame, size_t len)
{
    wr_bytes_t reason;

    if (f->type == WR_PEER_RAFT)
        check_raft(f, frame, len);
    else if (f->type == WR_PEER_HELLO)
        check_hello(f, frame, len);
    else if (f->type == WR_PEER_APP)
        check_app(f, frame, len);
    else if (f->type == WR_PEER_REFUSE && wr_peer_refuse_decode(f->payload, &reason) == WR_OK &&
             reason.len != f->payload.len)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t at = 0, used;
    wr_peer_frame_t f;
    int rc;

    while ((rc = wr_peer_frame_parse(data + at, size - at, MAX_PAYLOAD, &f, &used)) == WR_OK) {
        if (used > size - at || f.payload.data != data + at + WR_PEER_HEADER_SIZE)
            abort();
        check_frame(&f, data + at, used);
        at += used;
    }
    if (rc != WR_AGAIN && rc != WR_ESYNTAX && rc != WR_ETOOBIG && rc != WR_EUNKNOWN)
        abort();
    if (rc == WR_AGAIN && used <= size - at)
        abort();
    return 0;
}
