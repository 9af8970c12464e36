/* SPDX-License-Identifier: MIT */
/*
 * The peer-link codec: the frames nodes exchange over their one link per
 * pair (docs/CLUSTERING.md), the handshake messages, the challenge-response
 * proof and the encoding of Raft messages. Pure: no I/O, no allocation
 * except where a prototype says so; the HMAC is the caller's (a function
 * pointer), so cluster/ needs no crypto library.
 */
#ifndef WR_CLUSTER_PEER_H
#define WR_CLUSTER_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/raft.h"
#include "core/buf.h"
#include "core/bytes.h"

/* Bumped on any incompatible change; a HELLO with another version is refused. */
#define WR_PEER_VERSION 2
/* Frame header: u32 payload length, u8 type, u64 group, u32 CRC32C. */
#define WR_PEER_HEADER_SIZE 17
#define WR_PEER_NONCE_SIZE  32
#define WR_PEER_MAC_SIZE    32 /* HMAC-SHA256 */
/* A handshake frame's payload can never be longer (two 255-byte names). */
#define WR_PEER_HANDSHAKE_MAX 1024
/* Bytes of an encoded Raft message before its entries, and per entry. */
#define WR_PEER_RAFT_FIXED 62
#define WR_PEER_ENTRY_HDR  21

typedef enum {
    WR_PEER_HELLO = 1,     /* version, cluster name, node name, nonce; both sides send it first */
    WR_PEER_PROOF = 2,     /* the HMAC of wr_peer_proof_input; the link is up once both verified */
    WR_PEER_REFUSE = 3,    /* a reason (text, up to 255 bytes) sent before closing a refused link */
    WR_PEER_HEARTBEAT = 4, /* empty; any frame resets the peer's missed-heartbeat count */
    WR_PEER_RAFT = 5,      /* a wr_raft_msg_t of the frame's group (wr_peer_raft_encode) */
    WR_PEER_APP = 6,       /* u8 kind, then a body the kind's owner decodes (wr_peer_app_put) */
} wr_peer_type_t;
#define WR_PEER_TYPE_MAX WR_PEER_APP

/* A decoded frame: payload borrows from the parsed bytes. */
typedef struct {
    uint8_t type;   /* wr_peer_type_t */
    uint64_t group; /* the Raft group (or later channel) it belongs to; 0 for the link's own frames */
    wr_bytes_t payload;
} wr_peer_frame_t;

/* A HELLO: names borrow from the frame when decoded. */
typedef struct {
    uint16_t version;
    wr_bytes_t cluster; /* 1..255 bytes */
    wr_bytes_t node;    /* 1..255 bytes */
    uint8_t nonce[WR_PEER_NONCE_SIZE];
} wr_peer_hello_t;

/* Which end of a link proves: the proofs differ, so neither can be reflected. */
typedef enum { WR_PEER_DIALER = 1, WR_PEER_ACCEPTOR = 2 } wr_peer_role_t;

/*
 * What both ends of one link know after the HELLOs: the proof of `role` is
 * MAC(secret, wr_peer_proof_input(...)). Names and nonces as exchanged.
 */
typedef struct {
    wr_bytes_t cluster;
    wr_bytes_t dialer, acceptor; /* node names */
    const uint8_t *dialer_nonce, *acceptor_nonce;
} wr_peer_auth_t;

/* Computes HMAC-SHA256(secret, msg[0..len)) into out; WR_OK or a negative status. */
typedef int (*wr_peer_mac_fn)(void *ctx, const uint8_t *msg, size_t len, uint8_t out[WR_PEER_MAC_SIZE]);

/*
 * Parses one frame from p[0..len): WR_OK with *f (borrowing from p) and
 * *used = its size; WR_AGAIN when p holds only part of it (*used = the whole
 * frame's size once the header is in, else WR_PEER_HEADER_SIZE); WR_ETOOBIG
 * when the declared payload exceeds max_payload; WR_EUNKNOWN for a type
 * outside wr_peer_type_t; WR_ESYNTAX when the CRC32C (over type, group and
 * payload) does not match. The last three are known from the header alone,
 * before the payload arrives.
 */
int wr_peer_frame_parse(const uint8_t *p, size_t len, size_t max_payload, wr_peer_frame_t *f, size_t *used);

/*
 * Starts a frame in b and returns where it starts, for wr_peer_frame_end
 * once the payload has been appended with wr_buf_put*.
 */
size_t wr_peer_frame_begin(wr_buf_t *b, uint8_t type, uint64_t group);
/* Fills in the length and CRC of the frame begun at `at`. False on out-of-memory in b. */
bool wr_peer_frame_end(wr_buf_t *b, size_t at);

/* Appends a whole frame. False on out-of-memory in b. */
bool wr_peer_frame_put(wr_buf_t *b, uint8_t type, uint64_t group, const void *payload, size_t len);

/* Appends a HELLO frame. False on out-of-memory, or a name empty or longer than 255 bytes. */
bool wr_peer_hello_put(wr_buf_t *b, const wr_peer_hello_t *h);
/* Decodes a HELLO payload (borrowing the names). WR_OK or WR_ESYNTAX. */
int wr_peer_hello_decode(wr_bytes_t payload, wr_peer_hello_t *h);

/* Appends a REFUSE frame with reason (cut at 255 bytes). False on out-of-memory. */
bool wr_peer_refuse_put(wr_buf_t *b, const char *reason);
/* A REFUSE payload is its reason: WR_OK, or WR_ESYNTAX when longer than 255 bytes. */
int wr_peer_refuse_decode(wr_bytes_t payload, wr_bytes_t *reason);

/* Computes the proof `role` sends, through mac. WR_OK, WR_ENOMEM or mac's error. */
int wr_peer_proof(const wr_peer_auth_t *a, wr_peer_role_t role, wr_peer_mac_fn mac, void *ctx,
                  uint8_t out[WR_PEER_MAC_SIZE]);
/*
 * Checks a PROOF payload from `role` in constant time. WR_OK; WR_ESYNTAX if
 * it is not WR_PEER_MAC_SIZE bytes; WR_ENOENT if it does not verify (another
 * secret); WR_ENOMEM or mac's error.
 */
int wr_peer_proof_check(const wr_peer_auth_t *a, wr_peer_role_t role, wr_peer_mac_fn mac, void *ctx,
                        wr_bytes_t payload);

/* Appends a RAFT frame for group carrying m and its entries. False on out-of-memory. */
bool wr_peer_raft_put(wr_buf_t *b, uint64_t group, const wr_raft_msg_t *m);
/*
 * Decodes a RAFT payload into *m. Entries (if any) go in a malloc'd array
 * stored in *entries (NULL when none; the caller frees it) whose data
 * borrows from payload, as does a SNAP message's chunk (m->data). WR_OK;
 * WR_EUNKNOWN for an unknown message or entry type; WR_ESYNTAX for a
 * truncated message, trailing bytes, unknown flags, entries on a message
 * other than APP and SNAP, or APP entry indexes that do not follow m->index
 * one by one; WR_ENOMEM. Nothing is allocated unless WR_OK.
 */
int wr_peer_raft_decode(wr_bytes_t payload, wr_raft_msg_t *m, wr_raft_entry_t **entries);

/*
 * Appends an APP frame for group: the kind, then the concatenation of
 * parts[0..n) (so a header and a message body need no copy beforehand).
 * False on out-of-memory.
 */
bool wr_peer_app_put(wr_buf_t *b, uint64_t group, uint8_t kind, const wr_bytes_t *parts, size_t n);
/* Splits an APP payload into its kind and body (borrowed). WR_OK, or WR_ESYNTAX when empty. */
int wr_peer_app_decode(wr_bytes_t payload, uint8_t *kind, wr_bytes_t *body);

#endif
