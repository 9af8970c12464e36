/* SPDX-License-Identifier: MIT */
/*
 * TLS through OpenSSL and libevent's bufferevent_openssl: one context built
 * from the "tls" configuration (certificate chain, key, CA bundle, peer
 * verification, minimum version, ciphers), rebuilt from the same files on
 * SIGHUP; server-side bufferevents over accepted sockets, and what the rest
 * of the broker needs to know about a session (the peer certificate's name,
 * the negotiated version, errors). Everything OpenSSL-specific stays in
 * this file, so the client connections and, later, the cluster links share
 * it.
 */
#ifndef WR_BROKER_TLS_H
#define WR_BROKER_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "broker/config/config.h"

struct bufferevent;
struct event_base;
typedef struct wr_tls_s wr_tls_t;

/*
 * A server context for cfg. NULL on failure, with err naming the
 * configuration key and the file or value at fault, e.g.
 * "tls.keyfile: cannot read '/etc/warren/key.pem': No such file or directory".
 */
wr_tls_t *wr_tls_new(const wr_tls_cfg_t *cfg, char *err, size_t errlen);
void wr_tls_free(wr_tls_t *tls); /* NULL is a no-op */
/*
 * A context for both ends of the cluster's peer links, from the same files:
 * each end presents its certificate and requires one from the other that
 * chains to cacertfile (tls.verify and fail_if_no_peer_cert do not apply;
 * no host name is checked: a peer proves its node name with the cluster
 * secret). NULL on failure with err set as wr_tls_new does.
 */
wr_tls_t *wr_tls_new_peer(const wr_tls_cfg_t *cfg, char *err, size_t errlen);
/*
 * A bufferevent for the client side of a TLS session over a socket it will
 * make when bufferevent_socket_connect is called on it (a peer context).
 * Callbacks deferred as for wr_tls_accept. NULL on ENOMEM.
 */
struct bufferevent *wr_tls_connect(wr_tls_t *tls, struct event_base *base);
/*
 * Reads cfg's files again into a fresh context for the sessions accepted
 * from now on (certificate rotation); sessions already running keep the old
 * one until they end. WR_OK, or WR_EIO with err set as wr_tls_new does and
 * tls unchanged.
 */
int wr_tls_reload(wr_tls_t *tls, const wr_tls_cfg_t *cfg, char *err, size_t errlen);

/*
 * A bufferevent running the server side of a TLS session on the accepted,
 * non-blocking socket fd, which it owns from then on (closed when it is
 * freed). Its callbacks are deferred to the loop: OpenSSL may fail inside a
 * write, and the connection must not be closed under its caller. NULL on
 * ENOMEM, leaving fd open.
 */
struct bufferevent *wr_tls_accept(wr_tls_t *tls, struct event_base *base, int fd);

typedef enum {
    WR_TLS_PEER_OK,      /* out holds the name */
    WR_TLS_PEER_NO_CERT, /* the client presented no (verified) certificate */
    WR_TLS_PEER_NO_NAME, /* the certificate has no usable common name */
} wr_tls_peer_t;

/*
 * The subject common name of bev's verified client certificate, as
 * RabbitMQ's ssl_cert_login_from = common_name takes it (several CNs joined
 * with ","), NUL-terminated into out. A CN with a NUL octet or longer than
 * out counts as no usable name.
 */
wr_tls_peer_t wr_tls_peer_cn(struct bufferevent *bev, char *out, size_t n);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384", for the log. */
void wr_tls_describe(struct bufferevent *bev, char *out, size_t n);

/* A session as RabbitMQ's management API names it (Erlang's ssl names):
 * protocol "tlsv1.3", key_exchange "ecdhe_rsa" ("any" in TLS 1.3), cipher
 * "aes_256_gcm", hash "sha384". */
typedef struct {
    char protocol[16];
    char key_exchange[32];
    char cipher[48];
    char hash[16];
} wr_tls_session_t;

/* Fills out for bev's session; false (out untouched) before the handshake. */
bool wr_tls_session(struct bufferevent *bev, wr_tls_session_t *out);

/* The first OpenSSL error bev recorded, as text; false when there is none
 * (the failure was the socket's). */
bool wr_tls_error(struct bufferevent *bev, char *out, size_t n);

#endif
