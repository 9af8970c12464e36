/* SPDX-License-Identifier: MIT */
/*
 * TLS: the OpenSSL server context and bufferevent_openssl sessions; see
 * tls.h. Renegotiation is off (a client could otherwise make the broker
 * redo handshakes at will), the server's cipher order wins, and idle
 * sessions give their buffers back, which matters with many connections.
 */
#include "broker/amqp/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/status.h"

/* TLS 1.2 without tls.ciphers: forward secrecy and an AEAD only (no CBC
 * suite, no SHA-1 MAC), strongest first; TLS 1.3 keeps OpenSSL's suites,
 * which are all AEAD. */
static const char default_ciphers[] = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                      "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
                                      "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";

/* Sessions resumed with verify_peer need an id context (any constant). */
static const unsigned char session_context[] = "warren";

struct wr_tls_s {
    SSL_CTX *ctx;
};

/* The reason of the most recent OpenSSL error ("PEM lib", "key values
 * mismatch"...), clearing the error queue. */
static const char *openssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *why = e ? ERR_reason_error_string(e) : NULL;

    ERR_clear_error();
    return why ? why : "unknown OpenSSL error";
}

/* Tells a missing or unreadable file apart from one OpenSSL cannot parse. */
static bool readable(const char *key, const char *file, char *err, size_t errlen)
{
    FILE *f = fopen(file, "r");

    if (!f) {
        snprintf(err, errlen, "%s: cannot read '%s': %s", key, file, strerror(errno));
        return false;
    }
    fclose(f);
    return true;
}

static bool load_files(SSL_CTX *ctx, const wr_tls_cfg_t *cfg, char *err, size_t errlen)
{
    STACK_OF(X509_NAME) * cas;

    if (!readable("tls.certfile", cfg->certfile, err, errlen))
        return false;
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->certfile) != 1) {
        snprintf(err, errlen, "tls.certfile: no PEM certificate chain in '%s': %s", cfg->certfile,
                 openssl_reason());
        return false;
    }
    if (!readable("tls.keyfile", cfg->keyfile, err, errlen))
        return false;
    /* OpenSSL also checks here that the key is the certificate's. */
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->keyfile, SSL_FILETYPE_PEM) != 1) {
        snprintf(err, errlen, "tls.keyfile: cannot use '%s' as the private key of '%s': %s", cfg->keyfile,
                 cfg->certfile, openssl_reason());
        return false;
    }
    if (!cfg->cacertfile)
        return true;
    if (!readable("tls.cacertfile", cfg->cacertfile, err, errlen))
        return false;
    cas = SSL_load_client_CA_file(cfg->cacertfile);
    if (SSL_CTX_load_verify_locations(ctx, cfg->cacertfile, NULL) != 1 || !cas) {
        sk_X509_NAME_pop_free(cas, X509_NAME_free);
        snprintf(err, errlen, "tls.cacertfile: no PEM CA certificates in '%s': %s", cfg->cacertfile,
                 openssl_reason());
        return false;
    }
    /* Tells clients which CAs their certificate should come from. */
    SSL_CTX_set_client_CA_list(ctx, cas);
    return true;
}

/* A server context for cfg, or with peer one for both ends of peer links
 * (each end verifies the other's certificate); NULL with err set. */
static SSL_CTX *tls_ctx_new(const wr_tls_cfg_t *cfg, bool peer, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(peer ? TLS_method() : TLS_server_method());
    const char *ciphers = cfg->ciphers ? cfg->ciphers : default_ciphers;
    int verify = SSL_VERIFY_NONE;

    if (!ctx) {
        snprintf(err, errlen, "tls: cannot create an OpenSSL context: %s", openssl_reason());
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version(ctx, cfg->min_version) != 1) {
        snprintf(err, errlen, "tls.min_version: refused by OpenSSL: %s", openssl_reason());
        goto err;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* libevent may hand a write back from another buffer address. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
        snprintf(err, errlen, "tls.ciphers: no usable cipher in '%s': %s", ciphers, openssl_reason());
        goto err;
    }
    if (!load_files(ctx, cfg, err, errlen))
        goto err;
    if (peer)
        verify = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    else if (cfg->verify_peer)
        verify = SSL_VERIFY_PEER | (cfg->fail_if_no_peer_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
    SSL_CTX_set_verify(ctx, verify, NULL);
    SSL_CTX_set_session_id_context(ctx, session_context, sizeof(session_context) - 1);
    return ctx;
err:
    SSL_CTX_free(ctx);
    return NULL;
}

static wr_tls_t *tls_new(const wr_tls_cfg_t *cfg, bool peer, char *err, size_t errlen)
{
    wr_tls_t *tls = calloc(1, sizeof(*tls));

    if (!tls) {
        snprintf(err, errlen, "tls: out of memory");
        return NULL;
    }
    tls->ctx = tls_ctx_new(cfg, peer, err, errlen);
    if (!tls->ctx) {
        free(tls);
        return NULL;
    }
    return tls;
}

wr_tls_t *wr_tls_new(const wr_tls_cfg_t *cfg, char *err, size_t errlen)
{
    return tls_new(cfg, false, err, errlen);
}

wr_tls_t *wr_tls_new_peer(const wr_tls_cfg_t *cfg, char *err, size_t errlen)
{
    return tls_new(cfg, true, err, errlen);
}

int wr_tls_reload(wr_tls_t *tls, const wr_tls_cfg_t *cfg, char *err, size_t errlen)
{
    SSL_CTX *ctx = tls_ctx_new(cfg, false, err, errlen);

    if (!ctx)
        return WR_EIO;
    /* Each running session holds its own reference to the old context. */
    SSL_CTX_free(tls->ctx);
    tls->ctx = ctx;
    return WR_OK;
}

void wr_tls_free(wr_tls_t *tls)
{
    if (!tls)
        return;
    SSL_CTX_free(tls->ctx);
    free(tls);
}

struct bufferevent *wr_tls_accept(wr_tls_t *tls, struct event_base *base, int fd)
{
    SSL *ssl = SSL_new(tls->ctx);
    struct bufferevent *bev;

    if (!ssl)
        return NULL;
    /* On failure libevent frees ssl (CLOSE_ON_FREE) but not the socket. */
    bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!bev)
        return NULL;
    /* A client that closes TCP without close_notify has still finished. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

struct bufferevent *wr_tls_connect(wr_tls_t *tls, struct event_base *base)
{
    SSL *ssl = SSL_new(tls->ctx);
    struct bufferevent *bev;

    if (!ssl)
        return NULL;
    bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                         BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (bev)
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

/* Appends one CN entry to out (after a "," when not first); false when it
 * holds a NUL octet or does not fit. */
static bool append_cn(X509_NAME_ENTRY *entry, char *out, size_t n, size_t *used)
{
    unsigned char *utf8 = NULL;
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
    size_t sep = *used ? 1 : 0;
    bool ok = len > 0 && !memchr(utf8, 0, (size_t)len) && *used + sep + (size_t)len < n;

    if (ok) {
        if (sep)
            out[(*used)++] = ',';
        memcpy(out + *used, utf8, (size_t)len);
        *used += (size_t)len;
        out[*used] = '\0';
    }
    OPENSSL_free(utf8);
    return ok;
}

wr_tls_peer_t wr_tls_peer_cn(struct bufferevent *bev, char *out, size_t n)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    X509 *cert = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
    X509_NAME *subject;
    size_t used = 0;
    int i = -1;

    if (!cert || SSL_get_verify_result(ssl) != X509_V_OK)
        return WR_TLS_PEER_NO_CERT;
    subject = X509_get_subject_name(cert);
    while ((i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0) {
        if (!append_cn(X509_NAME_get_entry(subject, i), out, n, &used))
            return WR_TLS_PEER_NO_NAME;
    }
    return used > 0 ? WR_TLS_PEER_OK : WR_TLS_PEER_NO_NAME;
}

void wr_tls_describe(struct bufferevent *bev, char *out, size_t n)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);

    snprintf(out, n, "%s %s", ssl ? SSL_get_version(ssl) : "?", ssl ? SSL_get_cipher_name(ssl) : "?");
}

static void tls_lower(char *s)
{
    for (; *s; s++)
        *s = (char)(*s >= 'A' && *s <= 'Z' ? *s - 'A' + 'a' : *s);
}

/* From the IANA name: TLS_<kx>_WITH_<cipher>_<hash>, or in TLS 1.3
 * TLS_<cipher>_<hash> (any key exchange). */
bool wr_tls_session(struct bufferevent *bev, wr_tls_session_t *out)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    const SSL_CIPHER *cipher = ssl ? SSL_get_current_cipher(ssl) : NULL;
    const char *name = cipher ? SSL_CIPHER_standard_name(cipher) : NULL;
    const char *with, *rest, *hash;

    if (!name || strncmp(name, "TLS_", 4) != 0)
        return false;
    snprintf(out->protocol, sizeof(out->protocol), "%s", SSL_get_version(ssl));
    with = strstr(name, "_WITH_");
    rest = with ? with + 6 : name + 4;
    hash = strrchr(rest, '_');
    if (with)
        snprintf(out->key_exchange, sizeof(out->key_exchange), "%.*s", (int)(with - name - 4), name + 4);
    else
        snprintf(out->key_exchange, sizeof(out->key_exchange), "any");
    snprintf(out->cipher, sizeof(out->cipher), "%.*s", hash ? (int)(hash - rest) : (int)strlen(rest), rest);
    snprintf(out->hash, sizeof(out->hash), "%s", hash ? hash + 1 : "");
    tls_lower(out->protocol);
    tls_lower(out->key_exchange);
    tls_lower(out->cipher);
    tls_lower(out->hash);
    return true;
}

bool wr_tls_error(struct bufferevent *bev, char *out, size_t n)
{
    unsigned long e = bufferevent_get_openssl_error(bev);

    /* libevent files a failed system call (a refused connect) as library 0: the socket's error tells. */
    if (!e || ERR_GET_LIB(e) == 0)
        return false;
    ERR_error_string_n(e, out, n);
    return true;
}
