/* SPDX-License-Identifier: MIT */
/*
 * The connection class on channel 0, a connection's state machine up to
 * connection.open and the client's connection.close: the protocol header,
 * start/start-ok with SASL and the credential check, tune/tune-ok negotiation
 * and open. Socket, framing, output and closing are in conn.c.
 */
#include "broker/amqp/conn_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "broker/auth/auth.h"
#include "broker/base/log.h"
#include "broker/amqp/sasl.h"
#include "broker/base/version.h"
#include "broker/amqp/tls.h"
#include "broker/vhost/vhost.h"
#include "core/status.h"
#include "protocol/constants.h"
#include "protocol/frame.h"
#include "protocol/table.h"

/* "AMQP" 1 1 0 9: AMQP 0-9, which RabbitMQ serves as 0-9-1. */
static const uint8_t amqp_0_9_header[8] = {'A', 'M', 'Q', 'P', 1, 1, 0, 9};

static void conn_send_start(wr_conn_t *c)
{
    wr_method_t m = {.id = WR_CONNECTION_START};
    wr_buf_t props = WR_BUF_INIT;
    char host[128] = "localhost";
    char cluster[160], platform[64];
    size_t mark, caps;

    gethostname(host, sizeof(host) - 1);
    snprintf(cluster, sizeof(cluster), "warren@%s", host);
    snprintf(platform, sizeof(platform), "C11, libevent %s", event_get_version());
    /* Keys in RabbitMQ's (sorted) order; capabilities as it advertises them. */
    mark = wr_table_begin(&props);
    wr_table_put_key(&props, "capabilities");
    wr_buf_put_u8(&props, 'F');
    caps = wr_table_begin(&props);
    wr_table_put_bool(&props, "publisher_confirms", true);
    wr_table_put_bool(&props, "exchange_exchange_bindings", true);
    wr_table_put_bool(&props, "basic.nack", true);
    wr_table_put_bool(&props, "consumer_cancel_notify", true);
    wr_table_put_bool(&props, "connection.blocked", true);
    wr_table_put_bool(&props, "consumer_priorities", true);
    wr_table_put_bool(&props, "authentication_failure_close", true);
    wr_table_put_bool(&props, "per_consumer_qos", true);
    wr_table_put_bool(&props, "direct_reply_to", true);
    wr_table_end(&props, caps);
    wr_table_put_str(&props, "cluster_name", cluster);
    wr_table_put_str(&props, "copyright", "Copyright (c) the warren authors");
    wr_table_put_str(&props, "information", "Licensed under the MIT License");
    wr_table_put_str(&props, "platform", platform);
    wr_table_put_str(&props, "product", "warren");
    wr_table_put_str(&props, "version", WR_VERSION);
    wr_table_end(&props, mark);
    if (!wr_buf_ok(&props)) {
        wr_buf_free(&props);
        wr_conn_out_of_memory(c);
        return;
    }
    m.u.connection_start.version_major = 0;
    m.u.connection_start.version_minor = 9;
    m.u.connection_start.server_properties = (wr_bytes_t){props.data + mark + 4, props.len - mark - 4};
    m.u.connection_start.mechanisms = wr_bytes_str(wr_sasl_mechanisms(c->tls));
    m.u.connection_start.locales = WR_BYTES_LIT("en_US");
    wr_conn_put_method(c, 0, &m);
    wr_buf_free(&props);
}

/* Consumes the 8-octet protocol header once it is all in. */
bool wr_conn_read_header(wr_conn_t *c, struct evbuffer *in)
{
    uint8_t h[8];
    char shown[64];

    if (evbuffer_get_length(in) < sizeof(h))
        return false;
    evbuffer_remove(in, h, sizeof(h));
    c->in_consumed += sizeof(h);
    if (memcmp(h, wr_protocol_header, sizeof(h)) == 0 || memcmp(h, amqp_0_9_header, sizeof(h)) == 0) {
        c->state = WR_CONN_AWAIT_START_OK;
        conn_send_start(c);
        return true;
    }
    /* The spec's answer to a version we do not speak: our header, then close. */
    if (memcmp(h, "AMQP", 4) == 0)
        wr_conn_set_reason(c, "unsupported protocol version %u-%u-%u-%u", h[4], h[5], h[6], h[7]);
    else {
        wr_conn_format_octets(shown, sizeof(shown), (wr_bytes_t){h, sizeof(h)}, true);
        wr_conn_set_reason(c, "client did not start with the AMQP protocol header: %s", shown);
    }
    wr_log_warn("connection %s: %s", c->name, c->reason);
    c->state = WR_CONN_CLOSED;
    c->out_queued += sizeof(wr_protocol_header);
    if (evbuffer_add(wr_conn_output(c), wr_protocol_header, sizeof(wr_protocol_header)) != 0) {
        wr_conn_out_of_memory(c);
        return true;
    }
    wr_conn_close_when_flushed(c);
    return true;
}

static void conn_auth_fail(wr_conn_t *c, const char *mechanism, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A refused login. The log says why; the client only learns which mechanism
 * failed, as RabbitMQ does, and only if it asked to be told. */
static void conn_auth_fail(wr_conn_t *c, const char *mechanism, const char *fmt, ...)
{
    char why[300], reason[400];
    wr_amqp_error_t err;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    snprintf(reason, sizeof(reason), "%s login refused: %s", mechanism, why);
    wr_amqp_error_set(
        &err, WR_AMQP_ACCESS_REFUSED, 0,
        "Login was refused using authentication mechanism %s. For details see the broker logfile.",
        mechanism);
    wr_conn_refuse(c, reason, wr_conn_client_has(c, "authentication_failure_close") ? &err : NULL);
}

/*
 * The user a start-ok response authenticates, or NULL once the login has
 * been refused. Refusals are logged with the user name and, through the
 * connection name, the peer address; the password never is.
 */
static const wr_user_cfg_t *conn_authenticate(wr_conn_t *c, wr_sasl_mech_t mech, wr_bytes_t response)
{
    const wr_config_t *cfg = c->env->cfg;
    const char *name = wr_sasl_mech_name(mech);
    const wr_user_cfg_t *u;
    wr_bytes_t user, password;
    char cn[256];
    int rc;

    if (mech == WR_SASL_EXTERNAL) {
        /* As rabbit_auth_mechanism_ssl: the response is ignored. */
        switch (wr_tls_peer_cn(c->bev, cn, sizeof(cn))) {
        case WR_TLS_PEER_NO_CERT:
            conn_auth_fail(c, name, "connection peer presented no TLS (x.509) certificate");
            return NULL;
        case WR_TLS_PEER_NO_NAME:
            conn_auth_fail(c, name, "no name found");
            return NULL;
        case WR_TLS_PEER_OK:
            break;
        }
        u = wr_users_find(&cfg->auth, cn, strlen(cn));
        if (!u)
            conn_auth_fail(c, name, "user '%s' - invalid credentials", cn);
        return u;
    }
    if (mech == WR_SASL_PLAIN)
        rc = wr_sasl_plain_parse(response, &user, &password);
    else
        rc = wr_sasl_amqplain_parse(response, &user, &password);
    /* The response holds the password: texts describe it, never echo it. */
    if (rc == WR_ENOENT)
        wr_conn_fail_fmt(c, 0, WR_AMQP_SYNTAX_ERROR, WR_CONNECTION_START_OK, false,
                         "AMQPLAIN auth info is missing LOGIN or PASSWORD field");
    else if (rc == WR_EUNKNOWN)
        wr_conn_fail_fmt(c, 0, WR_AMQP_SYNTAX_ERROR, WR_CONNECTION_START_OK, false,
                         "AMQPLAIN auth info uses unsupported type for LOGIN or PASSWORD field");
    else if (rc != WR_OK)
        wr_conn_fail_fmt(c, 0, WR_AMQP_SYNTAX_ERROR, WR_CONNECTION_START_OK, false, "%s response invalid",
                         name);
    if (rc != WR_OK)
        return NULL;
    if (password.len == 0) {
        conn_auth_fail(c, name, "user '%.*s' attempted to log in with a blank password, which is prohibited",
                       (int)user.len, (const char *)user.data);
        return NULL;
    }
    u = wr_auth_check(&cfg->auth, user, password);
    if (!u)
        conn_auth_fail(c, name, "user '%.*s' - invalid credentials", (int)user.len, (const char *)user.data);
    return u;
}

static void conn_start_ok(wr_conn_t *c, const wr_connection_start_ok_t *m)
{
    const wr_config_t *cfg = c->env->cfg;
    wr_method_t tune = {.id = WR_CONNECTION_TUNE};
    wr_sasl_mech_t mech = wr_sasl_mech_parse(m->mechanism);
    const wr_user_cfg_t *u;
    wr_value_t caps;

    if (!wr_conn_check_table(c, m->client_properties, 0, WR_CONNECTION_START_OK, "connection.start-ok"))
        return;
    if (m->client_properties.len > 0) {
        c->client_props = malloc(m->client_properties.len);
        if (!c->client_props) {
            wr_conn_out_of_memory(c);
            return;
        }
        memcpy(c->client_props, m->client_properties.data, m->client_properties.len);
        c->client_props_len = m->client_properties.len;
    }
    if (wr_table_get(m->client_properties, "capabilities", &caps) && caps.type == 'F' && caps.v.s.len > 0) {
        c->caps = malloc(caps.v.s.len);
        if (!c->caps) {
            wr_conn_out_of_memory(c);
            return;
        }
        memcpy(c->caps, caps.v.s.data, caps.v.s.len);
        c->caps_len = caps.v.s.len;
    }
    if (mech == WR_SASL_UNKNOWN) {
        wr_conn_fail_fmt(c, 0, WR_AMQP_COMMAND_INVALID, WR_CONNECTION_START_OK, false,
                         "unknown authentication mechanism '%.*s'", (int)m->mechanism.len,
                         (const char *)m->mechanism.data);
        return;
    }
    if (!wr_sasl_offered(mech, c->tls)) {
        wr_conn_fail_fmt(c, 0, WR_AMQP_COMMAND_INVALID, WR_CONNECTION_START_OK, false,
                         "invalid authentication mechanism '%s'", wr_sasl_mech_name(mech));
        return;
    }
    u = conn_authenticate(c, mech, m->response);
    if (!u)
        return;
    if (wr_auth_loopback_only(&cfg->auth, u->name) && !c->peer_loopback) {
        conn_auth_fail(c, wr_sasl_mech_name(mech), "user '%s' can only connect via localhost", u->name);
        return;
    }
    c->mechanism = wr_sasl_mech_name(mech);
    c->user = strdup(u->name);
    if (!c->user) {
        wr_conn_out_of_memory(c);
        return;
    }
    c->state = WR_CONN_AWAIT_TUNE_OK;
    tune.u.connection_tune.channel_max = cfg->channel_max;
    tune.u.connection_tune.frame_max = cfg->frame_max;
    tune.u.connection_tune.heartbeat = cfg->heartbeat;
    wr_conn_put_method(c, 0, &tune);
}

/* RabbitMQ's validate_negotiated_integer_value: 0 ("no limit") is above any
 * server limit, so it is refused like a value that is too high. */
static bool conn_negotiate(wr_conn_t *c, const char *field, uint32_t min, uint32_t server, uint32_t client)
{
    wr_amqp_error_t err;
    char why[200];

    if (client != 0 && client < min)
        snprintf(why, sizeof(why), "negotiated %s = %u is lower than the minimum allowed value (%u)", field,
                 client, min);
    else if (client == 0 || client > server)
        snprintf(why, sizeof(why), "negotiated %s = %u%s is higher than the maximum allowed value (%u)",
                 field, client, client == 0 && strcmp(field, "channel_max") == 0 ? " (no limit)" : "",
                 server);
    else
        return true;
    wr_amqp_error_set(&err, WR_AMQP_NOT_ALLOWED, WR_CONNECTION_TUNE, "%s", why);
    wr_conn_refuse(c, why, &err);
    return false;
}

static void conn_tune_ok(wr_conn_t *c, const wr_connection_tune_ok_t *m)
{
    const wr_config_t *cfg = c->env->cfg;
    size_t high;

    if (!conn_negotiate(c, "frame_max", WR_FRAME_MIN_SIZE, cfg->frame_max, m->frame_max) ||
        !conn_negotiate(c, "channel_max", 1, cfg->channel_max, m->channel_max))
        return;
    c->frame_max = m->frame_max;
    c->channel_max = m->channel_max;
    c->heartbeat = m->heartbeat;
    /* A whole frame must fit under the read watermark or reading stalls. */
    high = (size_t)c->frame_max + WR_FRAME_OVERHEAD;
    bufferevent_setwatermark(c->bev, EV_READ, 0, high > WR_CONN_READ_HIGH_WM ? high : WR_CONN_READ_HIGH_WM);
    if (c->heartbeat > 0) {
        struct timeval tv = {c->heartbeat / 2, (c->heartbeat % 2) * 500000};

        event_add(c->heartbeat_ev, &tv);
    }
    c->state = WR_CONN_AWAIT_OPEN;
}

/* In RabbitMQ's order (rabbit_reader): the vhost, its connection limit, the
 * user's connection limit, then the user's access to the vhost. */
static void conn_open(wr_conn_t *c, const wr_connection_open_t *m)
{
    wr_vhost_t *vh = wr_map_get(c->env->vhosts, m->virtual_host);
    wr_method_t ok = {.id = WR_CONNECTION_OPEN_OK};
    int len = (int)m->virtual_host.len;
    const char *name = (const char *)m->virtual_host.data;
    char line[300];
    int64_t limit = 0;
    int rc;

    if (!vh) {
        wr_conn_fail_fmt(c, 0, WR_AMQP_NOT_ALLOWED, WR_CONNECTION_OPEN, false, "vhost %.*s not found", len,
                         name);
        return;
    }
    if (c->env->vhost_conn_check &&
        c->env->vhost_conn_check(c->env->ud, wr_vhost_name(vh), &limit) != WR_OK) {
        wr_conn_fail_fmt(c, 0, WR_AMQP_NOT_ALLOWED, WR_CONNECTION_OPEN, false,
                         "access to vhost '%s' refused for user '%s': connection limit (%lld) is reached",
                         wr_vhost_name(vh), c->user, (long long)limit);
        return;
    }
    rc = c->env->user_add(c->env->ud, c->user, &limit);
    if (rc == WR_ETOOBIG) {
        wr_conn_fail_fmt(c, 0, WR_AMQP_NOT_ALLOWED, WR_CONNECTION_OPEN, false,
                         "connection refused for user '%s': user connection limit (%lld) is reached", c->user,
                         (long long)limit);
        return;
    }
    if (rc != WR_OK) {
        wr_conn_out_of_memory(c);
        return;
    }
    c->user_counted = true;
    c->who.perm = wr_users_permission(&c->env->cfg->auth, c->user, name, m->virtual_host.len);
    if (!c->who.perm) {
        wr_conn_fail_fmt(c, 0, WR_AMQP_NOT_ALLOWED, WR_CONNECTION_OPEN, false,
                         "access to vhost '%.*s' refused for user '%s'", len, name, c->user);
        return;
    }
    c->vhost = vh;
    c->who.vhost = wr_vhost_name(vh);
    c->who.user = c->user;
    c->state = WR_CONN_OPEN;
    wr_counters_add(c->env->counters, WR_CNT_CONNECTIONS_OPENED, 1);
    event_del(c->deadline); /* the handshake is done */
    wr_conn_put_method(c, 0, &ok);
    snprintf(line, sizeof(line), "connection %s: user '%s' authenticated and granted access to vhost '%s'",
             c->name, c->user, wr_vhost_name(vh));
    wr_conn_sanitize(line);
    wr_log_info("%s", line);
}

/* connection.close from the client: free its channels, then close-ok; the
 * client closes the socket (wr_conn_await_peer_close). */
static void conn_client_close(wr_conn_t *c, const wr_connection_close_t *m)
{
    wr_method_t ok = {.id = WR_CONNECTION_CLOSE_OK};

    wr_conn_set_reason(c, "client sent connection.close: %u '%.*s'", m->reply_code, (int)m->reply_text.len,
                       (const char *)m->reply_text.data);
    /* CLOSED first, so a channel speaking while it is freed is not heard
     * after the close-ok. */
    c->state = WR_CONN_CLOSED;
    wr_conn_teardown(c);
    wr_conn_put_method(c, 0, &ok);
    wr_conn_await_peer_close(c);
}

/* connection.update-secret (RabbitMQ 3.8+). RabbitMQ asks each auth backend
 * to update its state; its internal backend's state cannot expire, so the
 * new secret is accepted without a check and the user stays the same. Our
 * users are all that backend's, so the answer is always update-secret-ok. */
static void conn_update_secret(wr_conn_t *c)
{
    wr_method_t ok = {.id = WR_CONNECTION_UPDATE_SECRET_OK};
    char line[300];

    wr_conn_put_method(c, 0, &ok);
    snprintf(line, sizeof(line), "connection %s of user '%s': user-provided secret updated", c->name,
             c->user);
    wr_conn_sanitize(line);
    wr_log_info("%s", line);
}

static void conn_unexpected_method(wr_conn_t *c, uint32_t id)
{
    wr_conn_fail_fmt(c, 0, WR_AMQP_CHANNEL_ERROR, id, false, "unexpected method in connection state %s",
                     wr_conn_state_name(c->state));
}

void wr_conn_handle_channel0(wr_conn_t *c, const wr_frame_t *f)
{
    wr_method_t m;

    if (f->type != WR_FRAME_METHOD) {
        wr_conn_unexpected_frame(c, f);
        return;
    }
    if (!wr_conn_decode(c, f, &m))
        return;
    switch (c->state) {
    case WR_CONN_AWAIT_START_OK:
        if (m.id == WR_CONNECTION_START_OK) {
            conn_start_ok(c, &m.u.connection_start_ok);
            return;
        }
        break;
    case WR_CONN_AWAIT_TUNE_OK:
        if (m.id == WR_CONNECTION_TUNE_OK) {
            conn_tune_ok(c, &m.u.connection_tune_ok);
            return;
        }
        break;
    case WR_CONN_AWAIT_OPEN:
        if (m.id == WR_CONNECTION_OPEN) {
            conn_open(c, &m.u.connection_open);
            return;
        }
        break;
    case WR_CONN_OPEN:
        if (m.id == WR_CONNECTION_CLOSE) {
            conn_client_close(c, &m.u.connection_close);
            return;
        }
        if (m.id == WR_CONNECTION_UPDATE_SECRET) {
            conn_update_secret(c);
            return;
        }
        break;
    case WR_CONN_AWAIT_HEADER:
    case WR_CONN_CLOSING:
    case WR_CONN_CLOSED:
    case WR_CONN_DEAD:
        return;
    }
    conn_unexpected_method(c, m.id);
}
