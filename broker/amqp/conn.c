/* SPDX-License-Identifier: MIT */
/*
 * One client connection: the socket behind a bufferevent, frame splitting
 * with a per-callback cap, output, throttling, heartbeats, channel slots and
 * close; the connection class on channel 0 is in conn_handshake.c. Errors map
 * to the codes and texts RabbitMQ 3.10 uses (rabbit_reader.erl), including
 * its habit of closing silently, 3 s later, on handshake errors.
 */
#include "broker/amqp/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>
#include <event2/util.h>

#include "broker/node/alarm.h"
#include "broker/auth/auth.h"
#include "broker/amqp/channel.h"
#include "broker/amqp/conn_internal.h"
#include "broker/base/log.h"
#include "broker/base/loop.h"
#include "broker/amqp/tls.h"
#include "broker/vhost/vhost.h"
#include "core/clock.h"
#include "core/status.h"
#include "protocol/constants.h"
#include "core/cursor.h"
#include "protocol/frame.h"
#include "protocol/props.h"
#include "protocol/table.h"

/* Octets per read of a plain-TCP socket. As libevent's 4 KiB, it bounds
 * what one publisher's read adds per loop pass: 16 KiB reads took publishes
 * in faster than a consumer on the same loop was served, and the queue
 * backlog (paged to disk) made everything slower (docs/PERFORMANCE.md). */
#define READ_MAX 4096
/* Frames handled per read callback before yielding to other connections. */
#define FRAMES_PER_CALLBACK 256
/* How long we wait for connection.close-ok or for output to drain. */
#define CLOSE_TIMEOUT_SEC 3
/* RabbitMQ's SILENT_CLOSE_DELAY: a client that failed the handshake or broke
 * framing waits this long for its socket to close (anti-DoS). */
#define SILENT_CLOSE_DELAY_SEC 3
/* RabbitMQ's CLOSING_TIMEOUT: after close-ok the client has this long (or
 * its heartbeat interval, when shorter) to close the socket. */
#define PEER_CLOSE_TIMEOUT_SEC 30
/* Output above HIGH makes the connection unwritable for deliveries; once it
 * drains to LOW, channels are told to resume. */
#define WRITE_HIGH_WM (1024 * 1024)
#define WRITE_LOW_WM  (256 * 1024)
/* Above this much queued output an open connection's input waits until the
 * client has read it down to WRITE_LOW_WM: replies to pipelined methods
 * (declare-ok, get-ok...) cannot pile up without bound. Four times the
 * delivery watermark, so deliveries alone rarely stop a client's acks. */
#define READ_STOP_WM (4 * WRITE_HIGH_WM)
/* The longest a connection read after the consumers (conn_set_behind) goes
 * unread while the loop is saturated: then it is read like any other. */
#define BEHIND_WAIT_MS 20
/* Output corking (see conn_queued): an open connection's output is written
 * once this much is queued, when the loop has nothing more urgent to do, or
 * after CORK_USEC at the latest, as libevent's coarse clock counts it (it
 * advances once a jiffy, so up to 4 ms later at HZ=250; docs/PERFORMANCE.md,
 * "The load generator's millisecond"). */
#define CORK_BYTES (64 * 1024)
#define CORK_USEC  200
/* A straddler buffer grown beyond this for a large frame is not kept. */
#define STRADDLER_KEEP (16 * 1024)
/* Channel slots: a lazily allocated directory of pages of 256 slots, so any
 * channel number is one indexed load away and unused ranges cost nothing. */
#define CHANNEL_PAGE_BITS 8
#define CHANNEL_PAGE_SIZE (1u << CHANNEL_PAGE_BITS)
#define CHANNEL_PAGES     (65536u / CHANNEL_PAGE_SIZE)
/* Heartbeat ticks come every interval/2; four silent ticks are two intervals. */
#define HEARTBEAT_MISSED_TICKS 4
/* A connection held by flow shows as "flow" this long after (rabbit_reader). */
#define FLOW_STATE_MS 5000
/* The alarms a client is told about in connection.blocked; flow is not. */
#define RESOURCE_ALARMS (WR_ALARM_MEMORY | WR_ALARM_DISK)

static void conn_process(wr_conn_t *c);
static void conn_uncork(wr_conn_t *c);

/* --- small helpers ------------------------------------------------------ */

const char *wr_conn_state_name(wr_conn_state_t s)
{
    /* RabbitMQ's names, as its error texts show them. */
    switch (s) {
    case WR_CONN_AWAIT_HEADER:
    case WR_CONN_AWAIT_START_OK:
        return "starting";
    case WR_CONN_AWAIT_TUNE_OK:
        return "tuning";
    case WR_CONN_AWAIT_OPEN:
        return "opening";
    case WR_CONN_OPEN:
        return "running";
    case WR_CONN_CLOSING:
        return "closing";
    case WR_CONN_CLOSED:
    case WR_CONN_DEAD:
        break;
    }
    return "closed";
}

/* Client-supplied bytes go into log lines: no control characters. */
void wr_conn_sanitize(char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
    }
}

/*
 * A binary as Erlang prints it, which is how RabbitMQ's texts show payloads:
 * <<"abc">> when every octet is printable ASCII and `strings`, else
 * <<0,20,0>>. Truncated to fit n.
 */
void wr_conn_format_octets(char *out, size_t n, wr_bytes_t b, bool strings)
{
    bool printable = strings && b.len > 0;
    size_t used;

    for (size_t i = 0; i < b.len && printable; i++)
        printable = b.data[i] >= 0x20 && b.data[i] < 0x7f;
    used = (size_t)snprintf(out, n, printable ? "<<\"" : "<<");
    for (size_t i = 0; i < b.len && used < n; i++) {
        uint8_t x = b.data[i];

        if (printable)
            used += (size_t)snprintf(out + used, n - used, x == '"' || x == '\\' ? "\\%c" : "%c", x);
        else
            used += (size_t)snprintf(out + used, n - used, i ? ",%u" : "%u", x);
    }
    if (used < n)
        snprintf(out + used, n - used, printable ? "\">>" : ">>");
}

/* The first cause of a close is the one the last log line reports. */
void wr_conn_set_reason(wr_conn_t *c, const char *fmt, ...)
{
    va_list ap;

    if (c->reason[0])
        return;
    va_start(ap, fmt);
    vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
    va_end(ap);
    wr_conn_sanitize(c->reason);
}

struct evbuffer *wr_conn_output(const wr_conn_t *c)
{
    return bufferevent_get_output(c->bev);
}

static void conn_arm_deadline(wr_conn_t *c, int seconds)
{
    struct timeval tv = {seconds, 0};

    event_add(c->deadline, &tv);
}

/* --- socket ------------------------------------------------------------- */

/*
 * Everything specific to the transport lives here: a TCP socket with Nagle
 * off (as RabbitMQ's default nodelay), plain or wrapped in TLS by tls.c; the
 * rest of the file only sees a bufferevent.
 */
static struct bufferevent *conn_transport_new(struct event_base *base, int fd, wr_tls_t *tls)
{
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (tls)
        return wr_tls_accept(tls, base, fd);
    return bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
}

/* "1.2.3.4:5" or "[::1]:5". */
static void format_addr(char *out, size_t n, const struct sockaddr *sa)
{
    char host[INET6_ADDRSTRLEN] = "?";

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(out, n, "%s:%u", host, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(out, n, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        snprintf(out, n, "?");
    }
}

static void conn_set_name(wr_conn_t *c, int fd, const struct sockaddr *peer)
{
    struct sockaddr_storage local;
    socklen_t len = sizeof(local);
    char p[64], l[64] = "?";

    format_addr(p, sizeof(p), peer);
    if (getsockname(fd, (struct sockaddr *)&local, &len) == 0)
        format_addr(l, sizeof(l), (struct sockaddr *)&local);
    snprintf(c->name, sizeof(c->name), "%s -> %s", p, l);
}

/* --- closing -------------------------------------------------------------- */

static void conn_free_channels(wr_conn_t *c)
{
    if (!c->pages)
        return;
    for (size_t p = 0; p < CHANNEL_PAGES; p++) {
        if (!c->pages[p])
            continue;
        for (size_t i = 0; i < CHANNEL_PAGE_SIZE; i++) {
            wr_channel_free(c->pages[p][i]);
            c->pages[p][i] = NULL;
        }
    }
    wr_counters_add(c->env->counters, WR_CNT_CHANNELS_CLOSED, c->nchannels);
    c->nchannels = 0;
}

/* Channels first (they requeue and cancel), then the vhost drops the
 * connection's exclusive queues. Runs once, never from inside a channel. */
void wr_conn_teardown(wr_conn_t *c)
{
    if (c->torn_down)
        return;
    c->torn_down = true;
    c->teardown_pending = false;
    if (c->parked && c->park_cancel != NULL)
        c->park_cancel(c->park_ud);
    c->parked = false;
    conn_free_channels(c);
    if (c->vhost) {
        wr_vhost_conn_closed(c->vhost, c->id);
        wr_counters_add(c->env->counters, WR_CNT_CONNECTIONS_CLOSED, 1);
    }
    if (c->user_counted)
        c->env->user_remove(c->env->ud, c->user);
    c->user_counted = false;
}

/* The end: tear down, log, and hand the connection to the server's reaper
 * (which closes the socket). Only called from this file's own callbacks. */
static void conn_close_now(wr_conn_t *c, const char *reason)
{
    if (c->state == WR_CONN_DEAD)
        return;
    if (reason)
        wr_conn_set_reason(c, "%s", reason);
    c->state = WR_CONN_DEAD;
    wr_conn_teardown(c);
    event_del(c->deadline);
    event_del(c->heartbeat_ev);
    event_del(c->resume);
    event_del(c->uncork_idle);
    event_del(c->uncork_late);
    if (c->rd)
        event_del(c->rd);
    if (c->promote)
        event_del(c->promote);
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    wr_log_info("connection closed: %s (%s)", c->name, c->reason);
    c->env->done(c->env->ud, c);
}

/* Close once everything queued has been written (bounded by the close
 * timeout for a peer that stops reading). */
void wr_conn_close_when_flushed(wr_conn_t *c)
{
    conn_uncork(c);
    c->close_when_flushed = true;
    /* Write low-watermark 0: the write callback fires when output is empty. */
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    conn_arm_deadline(c, evbuffer_get_length(wr_conn_output(c)) == 0 ? 0 : CLOSE_TIMEOUT_SEC);
}

void wr_conn_await_peer_close(wr_conn_t *c)
{
    int bound =
        c->heartbeat > 0 && c->heartbeat < PEER_CLOSE_TIMEOUT_SEC ? c->heartbeat : PEER_CLOSE_TIMEOUT_SEC;

    conn_uncork(c);
    c->await_peer_close = true;
    event_del(c->heartbeat_ev);
    conn_arm_deadline(c, bound);
}

/* Stop everything now but close on the next loop pass: for failures found
 * where the caller (maybe a channel) is still on the stack. */
static void conn_close_soon(wr_conn_t *c, const char *reason)
{
    if (c->state == WR_CONN_DEAD)
        return;
    wr_conn_set_reason(c, "%s", reason);
    c->state = WR_CONN_CLOSED;
    conn_arm_deadline(c, 0);
}

void wr_conn_out_of_memory(wr_conn_t *c)
{
    wr_log_error("connection %s: out of memory", c->name);
    conn_close_soon(c, "out of memory");
}

/* --- output ------------------------------------------------------------- */

static void conn_uncork(wr_conn_t *c)
{
    if (!c->corked)
        return;
    c->corked = false;
    event_del(c->uncork_idle);
    event_del(c->uncork_late);
    if (!c->topo_held)
        bufferevent_enable(c->bev, EV_WRITE);
}

/*
 * Output was queued. An open connection's output (over plain TCP) is corked: one write per
 * delivery batch woke the client, and that wake-up was the single largest
 * cost of a delivery (a loop iteration under load carries only a few
 * messages). It is written once CORK_BYTES are queued, or when the loop
 * runs out of work (uncork_idle has the lowest priority, so it runs only in
 * an iteration with nothing else to do: an idle broker adds no latency),
 * or CORK_USEC later, so a busy loop cannot starve a quiet connection.
 */
static void conn_queued(wr_conn_t *c)
{
    static const struct timeval late = {0, CORK_USEC};
    size_t len = evbuffer_get_length(wr_conn_output(c));

    c->sent_since_tick = true;
    if (len >= WRITE_HIGH_WM)
        c->output_full = true;
    if (!c->corked)
        return;
    if (len >= CORK_BYTES) {
        conn_uncork(c);
    } else if (!event_pending(c->uncork_late, EV_TIMEOUT, NULL)) {
        event_active(c->uncork_idle, 0, 0);
        event_add(c->uncork_late, &late);
    }
}

/*
 * The cork comes off in a callback of its own, off every caller's stack, so
 * an open plain-TCP connection writes its output right here: enabling
 * EV_WRITE instead cost two epoll_ctl calls (add, then remove once empty)
 * and a loop pass per flush. Only what the socket does not take waits for
 * EV_WRITE (and a failed write is reported by the bufferevent's own). While
 * corked, less than CORK_BYTES is queued, so no watermark is crossed.
 */
static void on_uncork(evutil_socket_t fd, short what, void *arg)
{
    wr_conn_t *c = arg;
    struct evbuffer *out = wr_conn_output(c);

    if (c->tls || c->topo_held || c->state != WR_CONN_OPEN || !c->corked) {
        conn_uncork(c);
        return;
    }
    event_del(c->uncork_idle);
    event_del(c->uncork_late);
    /* The socket bufferevent keeps its output's front frozen but for its own writes. */
    evbuffer_unfreeze(out, 1);
    if (evbuffer_get_length(out) > 0)
        evbuffer_write(out, bufferevent_getfd(c->bev));
    evbuffer_freeze(out, 1);
    if (evbuffer_get_length(out) > 0)
        conn_uncork(c);
}

/* Appends the scratch buffer to the output. */
static void conn_flush_scratch(wr_conn_t *c)
{
    if (!wr_buf_ok(&c->scratch) || evbuffer_add(wr_conn_output(c), c->scratch.data, c->scratch.len) != 0) {
        wr_conn_out_of_memory(c);
        return;
    }
    c->out_queued += c->scratch.len;
    conn_queued(c);
}

/* Queues a method whatever the state (close and close-ok use this). */
void wr_conn_put_method(wr_conn_t *c, uint16_t channel, const wr_method_t *m)
{
    wr_buf_reset(&c->scratch);
    wr_frame_put_method(&c->scratch, channel, m);
    conn_flush_scratch(c);
}

/* After connection.close nothing but connection-class replies may follow;
 * channels that still talk are silently ignored. */
static bool conn_may_send(const wr_conn_t *c, uint16_t channel)
{
    if (c->state == WR_CONN_CLOSED || c->state == WR_CONN_DEAD)
        return false;
    return c->state != WR_CONN_CLOSING || channel == 0;
}

void wr_conn_send_method(wr_conn_t *c, uint16_t channel, const wr_method_t *m)
{
    if (conn_may_send(c, channel))
        wr_conn_put_method(c, channel, m);
}

/* Bodies up to this size are copied into the output, larger ones referenced. */
#define BODY_COPY_MAX 4096

static void body_released(const void *data, size_t len, void *msg)
{
    wr_message_unref(msg);
}

void wr_conn_send_content(wr_conn_t *c, uint16_t channel, const wr_method_t *m, wr_message_t *msg)
{
    struct evbuffer *out = wr_conn_output(c);
    size_t chunk = c->frame_max - WR_FRAME_OVERHEAD;
    uint64_t off = 0;

    if (!conn_may_send(c, channel))
        return;
    /* Method and content header, then per body frame: its header from the
     * scratch buffer, the body bytes by reference, the frame-end octet. A
     * body that fits one small frame is copied instead: a reference costs an
     * evbuffer chain allocation and a message reference per delivery, more
     * than copying BODY_COPY_MAX bytes. */
    wr_buf_reset(&c->scratch);
    wr_frame_put_method(&c->scratch, channel, m);
    wr_frame_put_raw(&c->scratch, WR_FRAME_HEADER, channel, msg->header);
    if (msg->body_size <= BODY_COPY_MAX && msg->body_size <= chunk) {
        if (msg->body_size > 0) {
            wr_frame_put_header(&c->scratch, WR_FRAME_BODY, channel, (uint32_t)msg->body_size);
            wr_buf_put(&c->scratch, msg->body, (size_t)msg->body_size);
            wr_buf_put_u8(&c->scratch, WR_FRAME_END);
        }
        conn_flush_scratch(c);
        return;
    }
    while (off < msg->body_size) {
        size_t n = msg->body_size - off < chunk ? (size_t)(msg->body_size - off) : chunk;

        wr_frame_put_header(&c->scratch, WR_FRAME_BODY, channel, (uint32_t)n);
        if (!wr_buf_ok(&c->scratch) || evbuffer_add(out, c->scratch.data, c->scratch.len) != 0)
            goto oom;
        wr_message_ref(msg);
        if (evbuffer_add_reference(out, msg->body + off, n, body_released, msg) != 0) {
            wr_message_unref(msg);
            goto oom;
        }
        c->out_queued += c->scratch.len + n;
        off += n;
        wr_buf_reset(&c->scratch);
        wr_buf_put_u8(&c->scratch, WR_FRAME_END);
    }
    conn_flush_scratch(c);
    return;
oom:
    wr_conn_out_of_memory(c);
}

/* --- throttling ----------------------------------------------------------- */

static uint64_t mono_ms(void)
{
    return wr_mono_ns() / 1000000;
}

/*
 * Tells the client what changed in the alarms holding it, once each way
 * (rabbit_reader's maybe_send_blocked_or_unblocked): connection.blocked with
 * RabbitMQ's reason text ("low on memory", "low on disk", "low on memory &
 * disk") when an alarm holds it, connection.unblocked when none does any
 * more. Flow is never announced. Only to clients with the capability.
 */
static void conn_signal_blocked(wr_conn_t *c)
{
    unsigned alarms = c->held_by & RESOURCE_ALARMS;
    wr_method_t m = {.id = WR_CONNECTION_BLOCKED};

    if (alarms && !c->blocked_sent) {
        c->blocked_sent = true;
        if (!wr_conn_client_has(c, "connection.blocked"))
            return;
        m.u.connection_blocked.reason = wr_bytes_str(alarms == RESOURCE_ALARMS   ? "low on memory & disk"
                                                     : alarms == WR_ALARM_MEMORY ? "low on memory"
                                                                                 : "low on disk");
        wr_conn_put_method(c, 0, &m);
    } else if (!alarms && c->blocked_sent) {
        c->blocked_sent = false;
        if (!wr_conn_client_has(c, "connection.blocked"))
            return;
        m.id = WR_CONNECTION_UNBLOCKED;
        wr_conn_put_method(c, 0, &m);
    }
}

/* Starts or stops reading the socket: c's own read event over plain TCP,
 * the bufferevent's over TLS. */
static void conn_reads(wr_conn_t *c, bool on)
{
    if (c->rd && on)
        event_add(c->rd, NULL);
    else if (c->rd)
        event_del(c->rd);
    else if (on)
        bufferevent_enable(c->bev, EV_READ);
    else
        bufferevent_disable(c->bev, EV_READ);
}

/* Starts reading unless an alarm or flow, unread output, a cluster-wide
 * change or a full input holds the reads. */
static void conn_reads_unless_held(wr_conn_t *c)
{
    if (!c->blocked && !c->output_held && !c->parked && !c->read_full)
        conn_reads(c, true);
}

/* Reads resume unless something else still holds them; the input already
 * buffered is handled on the next pass. */
static void conn_reads_resume(wr_conn_t *c)
{
    conn_reads_unless_held(c);
    event_active(c->resume, EV_READ, 0);
}

void wr_conn_park(wr_conn_t *c, void (*cancel)(void *ud), void *ud)
{
    c->parked = true;
    c->park_cancel = cancel;
    c->park_ud = ud;
    conn_reads(c, false);
}

void wr_conn_unpark(wr_conn_t *c)
{
    c->parked = false;
    c->park_cancel = NULL;
    if (c->state != WR_CONN_DEAD)
        conn_reads_resume(c);
}

static void conn_unblock(wr_conn_t *c)
{
    if (!c->blocked)
        return;
    c->blocked = false;
    conn_reads_resume(c);
}

/*
 * TCP backpressure for replies: while an open connection's output is above
 * READ_STOP_WM it reads nothing more (heartbeats included, so the heartbeat
 * monitor stops counting silence); on_write resumes it at WRITE_LOW_WM.
 * True while it is held.
 */
static bool conn_output_holds(wr_conn_t *c)
{
    if (c->state != WR_CONN_OPEN || evbuffer_get_length(wr_conn_output(c)) < READ_STOP_WM)
        return false;
    if (!c->output_held) {
        c->output_held = true;
        conn_reads(c, false);
    }
    return true;
}

/*
 * A content header or body frame was handled (rabbit_reader's
 * publish_received): if anything holds publishers now, reading stops here,
 * before the body or its next frame (bodies started on many channels before
 * an alarm would otherwise keep coming), and the heartbeat monitor stops
 * counting silence (on_heartbeat) because the client's frames, heartbeats
 * included, wait unread in the socket.
 */
static void conn_publish_received(wr_conn_t *c)
{
    wr_alarms_t *a = c->env->alarms;
    unsigned reasons = a ? wr_alarm_reasons(a) : 0;

    if (reasons == 0)
        return;
    c->held_by = reasons;
    if (reasons & WR_ALARM_FLOW)
        c->flow_at = mono_ms();
    if (!c->blocked) {
        c->blocked = true;
        conn_reads(c, false);
    }
    conn_signal_blocked(c);
}

void wr_conn_throttle(wr_conn_t *c)
{
    wr_alarms_t *a = c->env->alarms;

    /* A running connection finds out at its next publish. */
    if (!c->blocked || c->state != WR_CONN_OPEN)
        return;
    c->held_by = a ? wr_alarm_reasons(a) : 0;
    if (c->held_by & WR_ALARM_FLOW)
        c->flow_at = mono_ms();
    conn_signal_blocked(c);
    if (c->held_by == 0)
        conn_unblock(c);
}

/* --- errors --------------------------------------------------------------- */

/* Queues connection.close carrying err. */
static void put_close(wr_conn_t *c, const wr_amqp_error_t *err)
{
    wr_method_t m = {.id = WR_CONNECTION_CLOSE};

    m.u.connection_close.reply_code = err->code;
    m.u.connection_close.reply_text = wr_bytes_str(err->text);
    m.u.connection_close.class_id = err->class_id;
    m.u.connection_close.method_id = err->method_id;
    wr_conn_put_method(c, 0, &m);
}

/* Handshake failure before connection.open: RabbitMQ logs it and closes the
 * socket SILENT_CLOSE_DELAY later, sending connection.close only in the
 * cases where `close` is given (failed login with authentication_failure_close,
 * failed tune negotiation). */
void wr_conn_refuse(wr_conn_t *c, const char *reason, const wr_amqp_error_t *close)
{
    char line[300];

    snprintf(line, sizeof(line), "%s", reason);
    wr_conn_sanitize(line);
    wr_log_error("connection %s (state: %s): %s", c->name, wr_conn_state_name(c->state), line);
    wr_conn_set_reason(c, "%s", line);
    if (close)
        put_close(c, close);
    /* After a close we sent, the client's close-ok ends it at once, as in
     * RabbitMQ; a silent refusal just waits out the delay. */
    c->state = close ? WR_CONN_CLOSING : WR_CONN_CLOSED;
    conn_arm_deadline(c, SILENT_CLOSE_DELAY_SEC);
}

/*
 * A hard error. Before connection.open it is a silent refusal; afterwards
 * connection.close carries it and we wait for close-ok, or, when framing is
 * lost (`lost_sync`: the stream can no longer be split into frames), discard
 * all input and close after the delay, as RabbitMQ's fatal_frame_error.
 * Channels are freed on the next loop pass: a channel may be calling us.
 */
static void conn_error(wr_conn_t *c, uint16_t channel, const wr_amqp_error_t *err, bool lost_sync)
{
    char line[300];

    switch (c->state) {
    case WR_CONN_AWAIT_HEADER:
    case WR_CONN_AWAIT_START_OK:
    case WR_CONN_AWAIT_TUNE_OK:
        wr_conn_refuse(c, err->text, NULL);
        return;
    case WR_CONN_AWAIT_OPEN:
    case WR_CONN_OPEN:
        break;
    case WR_CONN_CLOSING:
    case WR_CONN_CLOSED:
    case WR_CONN_DEAD:
        return;
    }
    snprintf(line, sizeof(line), "%s", err->text);
    wr_conn_sanitize(line);
    if (err->code == WR_AMQP_CONNECTION_FORCED)
        wr_log_info("connection %s: closing: %s", c->name, line);
    else
        wr_log_error("connection %s (vhost: '%s', user: '%s', state: %s), channel %u: %s", c->name,
                     c->vhost ? wr_vhost_name(c->vhost) : "none", c->user ? c->user : "none",
                     wr_conn_state_name(c->state), channel, line);
    wr_conn_set_reason(c, "%s", line);
    put_close(c, err);
    c->state = lost_sync ? WR_CONN_CLOSED : WR_CONN_CLOSING;
    conn_arm_deadline(c, lost_sync ? SILENT_CLOSE_DELAY_SEC : CLOSE_TIMEOUT_SEC);
    c->teardown_pending = true;
    /* A held client must still be heard answering close-ok. */
    c->output_held = false;
    c->blocked = false;
    conn_reads_resume(c);
}

void wr_conn_fail(wr_conn_t *c, const wr_amqp_error_t *err)
{
    conn_error(c, 0, err, false);
}

void wr_conn_fail_fmt(wr_conn_t *c, uint16_t channel, uint16_t code, uint32_t method, bool lost_sync,
                      const char *fmt, ...)
{
    wr_amqp_error_t err;
    char text[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    wr_amqp_error_set(&err, code, method, "%s", text);
    conn_error(c, channel, &err, lost_sync);
}

/* RabbitMQ's unexpected_frame: "type 2, all octets = <<...>>" (first 16). */
void wr_conn_unexpected_frame(wr_conn_t *c, const wr_frame_t *f)
{
    wr_bytes_t shown = f->payload;
    char octets[128];

    if (shown.len > 16)
        shown.len = 16;
    wr_conn_format_octets(octets, sizeof(octets), shown, true);
    wr_conn_fail_fmt(c, f->channel, WR_AMQP_UNEXPECTED_FRAME, 0, false, "type %u, %s octets = %s", f->type,
                     f->payload.len > 16 ? "first 16" : "all", octets);
}

/* A frame wr_frame_parse refused; hdr holds its 7 header octets. */
static void conn_frame_error(wr_conn_t *c, int rc, const uint8_t *hdr, uint8_t end_octet)
{
    wr_cursor_t cur = wr_cursor((wr_bytes_t){hdr, WR_FRAME_HEADER_SIZE});
    uint8_t type = 0;
    uint16_t channel = 0;
    uint32_t size = 0;

    wr_rd_u8(&cur, &type);
    wr_rd_u16(&cur, &channel);
    wr_rd_u32(&cur, &size);
    if (rc == WR_ETOOBIG)
        wr_conn_fail_fmt(c, channel, WR_AMQP_FRAME_ERROR, 0, true,
                         "frame of type %u on channel %u is too large: payload of %u octets, frame_max is %u",
                         type, channel, size, c->frame_max);
    else if (rc == WR_EUNKNOWN)
        wr_conn_fail_fmt(c, channel, WR_AMQP_FRAME_ERROR, 0, true, "unknown frame type %u on channel %u",
                         type, channel);
    else
        wr_conn_fail_fmt(
            c, channel, WR_AMQP_FRAME_ERROR, 0, true,
            "frame of type %u on channel %u ends with 0x%02x instead of the frame-end octet 0x%02x", type,
            channel, end_octet, WR_FRAME_END);
}

/* Class and method ids of a method frame of at least 4 octets. */
static uint32_t peek_method_id(const wr_frame_t *f)
{
    wr_cursor_t cur = wr_cursor(f->payload);
    uint16_t cls = 0, mth = 0;

    wr_rd_u16(&cur, &cls);
    wr_rd_u16(&cur, &mth);
    return (uint32_t)cls << 16 | mth;
}

/* Decodes a method frame; on failure reports it as RabbitMQ does and returns
 * false. */
bool wr_conn_decode(wr_conn_t *c, const wr_frame_t *f, wr_method_t *m)
{
    uint32_t id = peek_method_id(f);
    char octets[256];
    int rc = wr_method_decode(f->payload, m);

    if (rc == WR_OK)
        return true;
    if (rc == WR_EUNKNOWN) {
        wr_conn_fail_fmt(c, f->channel, WR_AMQP_NOT_IMPLEMENTED, id, false,
                         "unknown method (class %u, method %u)", WR_METHOD_CLASS(id), WR_METHOD_INDEX(id));
        return false;
    }
    /* These carry credentials, and the text reaches the log. */
    if (id == WR_CONNECTION_START_OK || id == WR_CONNECTION_SECURE_OK || id == WR_CONNECTION_UPDATE_SECRET)
        snprintf(octets, sizeof(octets), "%s (octets not shown: they may hold a secret)", wr_method_name(id));
    else
        wr_conn_format_octets(octets, sizeof(octets), (wr_bytes_t){f->payload.data + 4, f->payload.len - 4},
                              false);
    wr_conn_fail_fmt(c, f->channel, WR_AMQP_FRAME_ERROR, id, false, "cannot decode %s", octets);
    return false;
}

/* --- frame dispatch --------------------------------------------------------- */

/* After our connection.close: only close-ok (done) and close (answered)
 * count; everything else is dropped, as the spec asks. */
static void conn_closing_frame(wr_conn_t *c, const wr_frame_t *f)
{
    wr_method_t m;

    if (f->channel != 0 || f->type != WR_FRAME_METHOD || wr_method_decode(f->payload, &m) != WR_OK)
        return;
    if (m.id == WR_CONNECTION_CLOSE_OK) {
        conn_close_now(c, NULL);
    } else if (m.id == WR_CONNECTION_CLOSE) {
        wr_method_t ok = {.id = WR_CONNECTION_CLOSE_OK};

        wr_conn_put_method(c, 0, &ok);
        c->state = WR_CONN_CLOSED;
        wr_conn_close_when_flushed(c);
    }
}

/* The slot for a channel number; with `create`, allocates its page. NULL when
 * absent (or on ENOMEM with create). */
static wr_channel_t **conn_slot(wr_conn_t *c, uint16_t channel, bool create)
{
    size_t p = channel >> CHANNEL_PAGE_BITS;

    if (!c->pages) {
        if (!create)
            return NULL;
        c->pages = calloc(CHANNEL_PAGES, sizeof(*c->pages));
        if (!c->pages)
            return NULL;
    }
    if (!c->pages[p]) {
        if (!create)
            return NULL;
        c->pages[p] = calloc(CHANNEL_PAGE_SIZE, sizeof(**c->pages));
        if (!c->pages[p])
            return NULL;
    }
    return &c->pages[p][channel & (CHANNEL_PAGE_SIZE - 1)];
}

/* A frame for a channel that is not open: only channel.open may come, and
 * RabbitMQ checks the channel count before anything else. */
static void conn_unopened_channel(wr_conn_t *c, const wr_frame_t *f)
{
    wr_channel_t **slot;
    wr_method_t m;
    int64_t limit;

    if (c->nchannels >= c->channel_max) {
        wr_conn_fail_fmt(c, f->channel, WR_AMQP_NOT_ALLOWED, 0, false,
                         "number of channels opened (%u) has reached the negotiated channel_max (%u)",
                         c->nchannels, c->channel_max);
        return;
    }
    if (c->env->channel_check && c->env->channel_check(c->env->ud, c->user, &limit) != WR_OK) {
        wr_conn_fail_fmt(c, f->channel, WR_AMQP_NOT_ALLOWED, 0, false,
                         "number of channels opened for user '%s' has reached the maximum allowed user limit "
                         "of (%lld)",
                         c->user, (long long)limit);
        return;
    }
    if (f->type != WR_FRAME_METHOD) {
        wr_conn_fail_fmt(c, f->channel, WR_AMQP_UNEXPECTED_FRAME, 0, false,
                         "expected method frame, got non method frame instead");
        return;
    }
    if (!wr_conn_decode(c, f, &m))
        return;
    if (m.id != WR_CHANNEL_OPEN) {
        wr_conn_fail_fmt(c, f->channel, WR_AMQP_CHANNEL_ERROR, m.id, false, "expected 'channel.open'");
        return;
    }
    slot = conn_slot(c, f->channel, true);
    if (slot)
        *slot = wr_channel_open(c, f->channel);
    if (!slot || !*slot) {
        wr_conn_out_of_memory(c);
        return;
    }
    c->nchannels++;
    wr_counters_add(c->env->counters, WR_CNT_CHANNELS_OPENED, 1);
}

/*
 * limits.max_table_size and max_table_depth for one field table a client
 * sent; a table over them is refused like a malformed one (501 FRAME_ERROR).
 */
bool wr_conn_check_table(wr_conn_t *c, wr_bytes_t table, uint16_t channel, uint32_t method, const char *where)
{
    const wr_config_t *cfg = c->env->cfg;

    if (table.len > cfg->max_table_size) {
        wr_conn_fail_fmt(c, channel, WR_AMQP_FRAME_ERROR, method, false,
                         "field table of %zu octets in %s is larger than limits.max_table_size (%u)",
                         table.len, where, cfg->max_table_size);
        return false;
    }
    if (wr_table_validate(table, (int)cfg->max_table_depth) == WR_EDEPTH) {
        wr_conn_fail_fmt(c, channel, WR_AMQP_FRAME_ERROR, method, false,
                         "field table in %s is nested deeper than limits.max_table_depth (%u)", where,
                         cfg->max_table_depth);
        return false;
    }
    return true;
}

/* Where a channel method keeps its field table; NULL for methods without
 * one. Only m->id is read, so a method not yet decoded can be asked. */
static const wr_bytes_t *method_table(const wr_method_t *m)
{
    switch (m->id) {
    case WR_EXCHANGE_DECLARE:
        return &m->u.exchange_declare.arguments;
    case WR_EXCHANGE_BIND:
        return &m->u.exchange_bind.arguments;
    case WR_EXCHANGE_UNBIND:
        return &m->u.exchange_unbind.arguments;
    case WR_QUEUE_DECLARE:
        return &m->u.queue_declare.arguments;
    case WR_QUEUE_BIND:
        return &m->u.queue_bind.arguments;
    case WR_QUEUE_UNBIND:
        return &m->u.queue_unbind.arguments;
    case WR_BASIC_CONSUME:
        return &m->u.basic_consume.arguments;
    default:
        return NULL;
    }
}

/*
 * The table limits for what a channel is about to receive: the arguments of
 * the methods that have them, and a content header's headers, found by
 * skipping the two properties before them (no full decode on the publish
 * path). Frames that do not parse are left to the channel, which reports
 * them as RabbitMQ does.
 */
static bool conn_frame_tables_ok(wr_conn_t *c, const wr_frame_t *f)
{
    wr_cursor_t cur = wr_cursor(f->payload);
    wr_bytes_t skip, headers;
    uint16_t flags = 0;
    wr_method_t m;

    if (f->type == WR_FRAME_HEADER) {
        /* class, weight and body size come before the property flags */
        if (!wr_rd_bytes(&cur, 12, &skip) || !wr_rd_u16(&cur, &flags) || !(flags & WR_PROP_HEADERS))
            return true;
        if (((flags & WR_PROP_CONTENT_TYPE) && !wr_rd_shortstr(&cur, &skip)) ||
            ((flags & WR_PROP_CONTENT_ENCODING) && !wr_rd_shortstr(&cur, &skip)) ||
            !wr_rd_longstr(&cur, &headers))
            return true;
        return wr_conn_check_table(c, headers, f->channel, 0, "a content header");
    }
    if (f->type != WR_FRAME_METHOD)
        return true;
    m.id = peek_method_id(f);
    if (!method_table(&m) || wr_method_decode(f->payload, &m) != WR_OK)
        return true;
    return wr_conn_check_table(c, *method_table(&m), f->channel, m.id, wr_method_name(m.id));
}

static void conn_channel_frame(wr_conn_t *c, const wr_frame_t *f)
{
    wr_channel_t **slot;

    if (c->state != WR_CONN_OPEN || f->type == WR_FRAME_HEARTBEAT) {
        wr_conn_unexpected_frame(c, f);
        return;
    }
    slot = conn_slot(c, f->channel, false);
    if (!slot || !*slot) {
        conn_unopened_channel(c, f);
        return;
    }
    if (f->type == WR_FRAME_METHOD && peek_method_id(f) == WR_CHANNEL_OPEN) {
        wr_conn_fail_fmt(c, f->channel, WR_AMQP_CHANNEL_ERROR, WR_CHANNEL_OPEN, false,
                         "second 'channel.open' seen");
        return;
    }
    if (!conn_frame_tables_ok(c, f))
        return;
    if (wr_channel_handle_frame(*slot, f) == WR_CHANNEL_DONE) {
        wr_channel_free(*slot);
        *slot = NULL;
        c->nchannels--;
        wr_counters_add(c->env->counters, WR_CNT_CHANNELS_CLOSED, 1);
    }
    if ((f->type == WR_FRAME_HEADER || f->type == WR_FRAME_BODY) && c->state == WR_CONN_OPEN)
        conn_publish_received(c);
}

static void conn_dispatch(wr_conn_t *c, const wr_frame_t *f)
{
    if (c->state == WR_CONN_CLOSING) {
        conn_closing_frame(c, f);
        return;
    }
    /* Frames RabbitMQ's analyze_frame cannot even classify. */
    if (f->type == WR_FRAME_HEARTBEAT && f->payload.len != 0) {
        wr_conn_fail_fmt(c, f->channel, WR_AMQP_FRAME_ERROR, 0, false,
                         "heartbeat frame on channel %u has a payload of %zu octets", f->channel,
                         f->payload.len);
        return;
    }
    if (f->type == WR_FRAME_METHOD && f->payload.len < 4) {
        wr_conn_fail_fmt(c, f->channel, WR_AMQP_FRAME_ERROR, 0, false,
                         "method frame on channel %u is too short for class and method ids (%zu octets)",
                         f->channel, f->payload.len);
        return;
    }
    if (f->channel == 0) {
        if (f->type != WR_FRAME_HEARTBEAT) /* always welcome on channel 0 */
            wr_conn_handle_channel0(c, f);
        return;
    }
    conn_channel_frame(c, f);
}

/*
 * The first `total` bytes of `in`, contiguous. A frame split over two input
 * chains is copied into the connection's straddler buffer: evbuffer_pullup
 * would allocate a chain for it and free it again at the drain (a malloc
 * and free per frame of 1 KiB messages, which straddle a 4 KiB read's end
 * every few frames). Valid until the frame is drained.
 */
static const uint8_t *conn_frame_bytes(wr_conn_t *c, struct evbuffer *in, size_t total)
{
    if (evbuffer_get_contiguous_space(in) >= total)
        return evbuffer_pullup(in, (ev_ssize_t)total);
    wr_buf_reset(&c->straddler);
    if (!wr_buf_reserve(&c->straddler, total) ||
        evbuffer_copyout(in, c->straddler.data, total) != (ev_ssize_t)total)
        return NULL;
    return c->straddler.data;
}

/* The input's high watermark: conn_handshake.c raises it to fit frame_max. */
static size_t conn_read_high(const wr_conn_t *c)
{
    size_t high = WR_CONN_READ_HIGH_WM;

    bufferevent_getwatermark(c->bev, EV_READ, NULL, &high);
    return high;
}

/*
 * Reads what the socket has, at most room octets and READ_MAX, with one
 * read() into the end of the input buffer. libevent's evbuffer_read (2.1)
 * asks FIONREAD first, a second syscall per read, only to size the same
 * 4 KiB read. Returns read()'s result; -1 with ENOMEM when the buffer
 * cannot grow.
 */
static ssize_t conn_read_socket(wr_conn_t *c, struct evbuffer *in, size_t room)
{
    struct evbuffer_iovec v;
    size_t want = room < READ_MAX ? room : READ_MAX;
    ssize_t n = -1;

    /* The socket bufferevent keeps its input's end frozen but for its own reads. */
    evbuffer_unfreeze(in, 0);
    errno = ENOMEM;
    if (evbuffer_reserve_space(in, (ev_ssize_t)want, &v, 1) == 1) {
        n = read(bufferevent_getfd(c->bev), v.iov_base, want);
        v.iov_len = n > 0 ? (size_t)n : 0;
        evbuffer_commit_space(in, &v, 1);
    }
    evbuffer_freeze(in, 0);
    return n;
}

/* Handles one complete frame from `in`; false when none is complete. */
static bool conn_read_frame(wr_conn_t *c, struct evbuffer *in)
{
    uint8_t hdr[WR_FRAME_HEADER_SIZE];
    size_t avail = evbuffer_get_length(in), need, total;
    /* RabbitMQ lets a payload reach frame_max (a common client off-by-8). */
    uint32_t limit = c->frame_max + WR_FRAME_OVERHEAD;
    const uint8_t *data;
    wr_frame_t f;
    int rc;

    if (avail < sizeof(hdr))
        return false;
    evbuffer_copyout(in, hdr, sizeof(hdr));
    /* The header alone is never a whole frame: this checks type and size
     * before a single payload octet is buffered. */
    rc = wr_frame_parse(hdr, sizeof(hdr), limit, &f, &need);
    if (rc == WR_AGAIN) {
        if (avail < need)
            return false;
        total = need;
        data = conn_frame_bytes(c, in, total);
        if (!data) {
            wr_conn_out_of_memory(c);
            return true;
        }
        rc = wr_frame_parse(data, total, limit, &f, &need);
        if (rc != WR_OK) {
            conn_frame_error(c, rc, hdr, data[total - 1]);
            return true;
        }
        conn_dispatch(c, &f);
        evbuffer_drain(in, total);
        c->in_consumed += total;
        if (c->straddler.cap > STRADDLER_KEEP)
            wr_buf_free(&c->straddler);
        return true;
    }
    conn_frame_error(c, rc, hdr, 0);
    return true;
}

/* Handles buffered input: the protocol header, then up to
 * FRAMES_PER_CALLBACK frames; the rest waits for the resume event so one
 * busy client cannot starve the others. */
static void conn_process_frames(wr_conn_t *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    int budget = FRAMES_PER_CALLBACK;

    for (;;) {
        if (c->state == WR_CONN_DEAD)
            return;
        if (c->state == WR_CONN_CLOSED) {
            c->in_consumed += evbuffer_get_length(in);
            evbuffer_drain(in, evbuffer_get_length(in));
            break;
        }
        if (c->state == WR_CONN_AWAIT_HEADER) {
            if (!wr_conn_read_header(c, in))
                break;
            continue;
        }
        /* Held by an alarm, flow, unread output or a cluster-wide change: the
         * rest waits, EOF included. */
        if (c->blocked || c->parked || conn_output_holds(c))
            return;
        if (budget == 0) {
            event_active(c->resume, EV_READ, 0);
            return;
        }
        if (!conn_read_frame(c, in))
            break;
        budget--;
    }
    /* A half-closed peer may still be owed queued output (close-ok). */
    if (c->peer_eof && c->await_peer_close)
        conn_close_now(c, NULL);
    else if (c->peer_eof && !c->close_when_flushed)
        conn_close_now(c, "client unexpectedly closed TCP connection");
}

static void on_topology_durable(void *ud)
{
    wr_conn_t *c = ud;

    c->topo_held = false;
    if (!c->corked && c->state != WR_CONN_DEAD)
        bufferevent_enable(c->bev, EV_WRITE);
}

/*
 * Handles buffered input (conn_process_frames). When its frames changed the
 * durable topology (declared a durable queue, bound one...), the replies
 * (declare-ok...) and everything queued after them are held until the
 * topology journal has those changes on disk: a crash after declare-ok
 * keeps the queue. A pipelined batch of declares waits for one fsync.
 */
static void conn_process(wr_conn_t *c)
{
    wr_durable_t *d = c->env->durable;
    uint64_t before = wr_durable_topology_seq(d);

    conn_process_frames(c);
    if (c->read_full && c->state != WR_CONN_DEAD &&
        evbuffer_get_length(bufferevent_get_input(c->bev)) < conn_read_high(c)) {
        c->read_full = false;
        conn_reads_unless_held(c);
    }
    if (c->state != WR_CONN_DEAD && wr_durable_topology_seq(d) != before &&
        wr_durable_topology_wait(d, &c->topo_wait, wr_durable_topology_seq(d))) {
        c->topo_held = true;
        bufferevent_disable(c->bev, EV_WRITE);
    }
}

/* Publishes counted as feeding queues whose consumers are behind, in c's vhost. */
static uint64_t conn_behind_count(const wr_conn_t *c)
{
    return c->vhost ? wr_vhost_sched(c->vhost)->behind : 0;
}

/*
 * The event that reads c's socket: rd over plain TCP; over TLS the
 * bufferevent's own, whose callback decrypts into the input and schedules
 * on_read. libevent 2.1's bufferevent_priority_set would also move the
 * bufferevent's write event and deferred callbacks, and sets the latter's
 * priority even while it waits in the loop's active queue (which corrupts
 * that queue), so only the read event's priority is set, as for rd.
 * bufferevent_openssl gives it the default priority again when the
 * handshake ends (set_open_callbacks), before anything can be published.
 */
static struct event *conn_read_event(wr_conn_t *c)
{
    return c->rd ? c->rd : &c->bev->ev_read;
}

/* Sets the read event's priority. One waiting in the loop's queue of active
 * events cannot change there: it is taken out and put back, at the price of
 * two epoll_ctl. */
static void conn_read_priority(wr_conn_t *c, int priority)
{
    struct event *rd = conn_read_event(c);

    if (event_priority_set(rd, priority) != 0) {
        event_del(rd);
        event_priority_set(rd, priority);
        event_add(rd, NULL); /* active, so it was added; no read timeout is set */
    }
}

/* Not read for BEHIND_WAIT_MS while behind (the loop was too busy to reach
 * it): back to the default priority. */
static void on_promote(evutil_socket_t fd, short what, void *arg)
{
    wr_conn_t *c = arg;

    conn_read_priority(c, WR_PRIO_DEFAULT);
    c->behind = false;
}

/* After a read: the read event's priority for the next one (see `behind`). */
static void conn_set_behind(wr_conn_t *c, bool behind)
{
    struct timeval wait = {0, BEHIND_WAIT_MS * 1000};

    if (behind && c->state != WR_CONN_DEAD) {
        if (!c->promote && !(c->promote = evtimer_new(c->env->base, on_promote, c)))
            return; /* stays at the default priority */
        if (!c->behind)
            conn_read_priority(c, WR_PRIO_BEHIND);
        c->behind = true;
        c->flow_at = mono_ms();         /* the management API shows it in flow, as RabbitMQ's credit does */
        evtimer_add(c->promote, &wait); /* the wait counts from its last read */
    } else if (c->behind) {
        /* Over TLS the read event is usually active again here (data
         * arrived before on_read, a deferred callback, ran), and taking it
         * out and back on every read that publishes nothing behind (one
         * that ends inside a frame, say) would cost two epoll_ctl each
         * time. So it stays behind until a read finds it idle, or until
         * `promote`, armed by the last read that was behind. */
        if (event_priority_set(conn_read_event(c), WR_PRIO_DEFAULT) != 0)
            return;
        event_del(c->promote);
        c->behind = false;
    }
}

/* --- callbacks ------------------------------------------------------------ */

/* New input, read by on_readable or, over TLS, by the bufferevent. */
static void on_read(struct bufferevent *bev, void *arg)
{
    wr_conn_t *c = arg;
    uint64_t behind = conn_behind_count(c);

    c->recv_since_tick = true;
    conn_process(c);
    conn_set_behind(c, conn_behind_count(c) != behind);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    wr_conn_t *c = arg;

    if (c->teardown_pending)
        wr_conn_teardown(c);
    conn_process(c);
}

static void conn_notify_writable(wr_conn_t *c)
{
    if (!c->pages)
        return;
    for (size_t p = 0; p < CHANNEL_PAGES && c->state == WR_CONN_OPEN; p++) {
        if (!c->pages[p])
            continue;
        for (size_t i = 0; i < CHANNEL_PAGE_SIZE && c->state == WR_CONN_OPEN; i++) {
            if (c->pages[p][i])
                wr_channel_writable(c->pages[p][i]);
        }
    }
}

static void on_write(struct bufferevent *bev, void *arg)
{
    wr_conn_t *c = arg;
    size_t left = evbuffer_get_length(bufferevent_get_output(bev));

    if (c->close_when_flushed) {
        if (left == 0)
            conn_close_now(c, NULL);
        return;
    }
    if (c->output_full && left <= WRITE_LOW_WM) {
        c->output_full = false;
        conn_notify_writable(c);
    }
    if (c->output_held && left <= WRITE_LOW_WM) {
        c->output_held = false;
        conn_reads_resume(c);
    }
    /* Not over TLS: bufferevent_openssl must stay free to write what the
     * TLS layer itself needs to send. */
    if (left == 0 && c->state == WR_CONN_OPEN && !c->corked && !c->tls) {
        c->corked = true;
        bufferevent_disable(bev, EV_WRITE);
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    wr_conn_t *c = arg;
    char why[300], detail[256];

    if (what & BEV_EVENT_EOF) {
        /* Frames that arrived before the EOF are still handled. */
        c->peer_eof = true;
        conn_process(c);
    } else if (what & BEV_EVENT_ERROR) {
        if (c->tls && wr_tls_error(bev, detail, sizeof(detail))) {
            /* A failed handshake (wrong CA, old protocol version) is worth a warning. */
            snprintf(why, sizeof(why), "TLS error: %s", detail);
            wr_log_warn("connection %s: %s", c->name, why);
        } else {
            snprintf(why, sizeof(why), "socket error: %s",
                     evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        }
        conn_close_now(c, why);
    } else if ((what & BEV_EVENT_CONNECTED) && c->tls) {
        wr_tls_describe(bev, detail, sizeof(detail));
        wr_log_info("connection %s: TLS handshake done: %s", c->name, detail);
    }
}

/*
 * Plain TCP: the socket is readable. Reads up to the input's high watermark
 * (conn_read_socket), then handles it as the bufferevent's callbacks would;
 * at the watermark, reading pauses until conn_process has drained below it.
 */
static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    wr_conn_t *c = arg;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t high = conn_read_high(c), len = evbuffer_get_length(in);
    ssize_t n;

    if (len >= high) {
        c->read_full = true;
        event_del(c->rd);
        return;
    }
    n = conn_read_socket(c, in, high - len);
    if (n > 0) {
        on_read(c->bev, c);
    } else if (n == 0) {
        event_del(c->rd); /* an EOF stays readable */
        on_event(c->bev, BEV_EVENT_READING | BEV_EVENT_EOF, c);
    } else if (errno == ENOMEM) {
        event_del(c->rd);
        wr_conn_out_of_memory(c);
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        on_event(c->bev, BEV_EVENT_READING | BEV_EVENT_ERROR, c);
    }
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    wr_conn_t *c = arg;

    if (c->state < WR_CONN_OPEN) {
        wr_log_warn("connection %s: handshake timeout (state: %s)", c->name, wr_conn_state_name(c->state));
        conn_close_now(c, "handshake timeout");
        return;
    }
    conn_close_now(c, c->await_peer_close ? NULL : "no connection.close-ok in time");
}

/* Every interval/2 (rabbit_heartbeat): send a heartbeat if nothing else was
 * sent since the last tick; drop the peer after two intervals of silence. */
static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    wr_conn_t *c = arg;
    char why[96];

    /* While held the client's heartbeats wait unread: silence is ours. */
    c->idle_ticks = c->recv_since_tick || c->blocked || c->output_held ? 0 : c->idle_ticks + 1;
    c->recv_since_tick = false;
    if (c->idle_ticks >= HEARTBEAT_MISSED_TICKS) {
        snprintf(why, sizeof(why), "missed heartbeats from client, timeout: %us", c->heartbeat);
        wr_log_warn("connection %s: %s", c->name, why);
        conn_close_now(c, why);
        return;
    }
    if (!c->sent_since_tick && conn_may_send(c, 0)) {
        wr_buf_reset(&c->scratch);
        wr_frame_put_heartbeat(&c->scratch);
        conn_flush_scratch(c);
    }
    c->sent_since_tick = false;
}

/* --- lifecycle ------------------------------------------------------------ */

wr_conn_t *wr_conn_new(const wr_conn_env_t *env, int fd, const struct sockaddr *peer, uint64_t id,
                       wr_tls_t *tls)
{
    struct event_base *base = env->base;
    uint32_t ms = env->cfg->handshake_timeout;
    /* RabbitMQ's handshake_timeout: connection.open (and, here, the TLS
     * handshake before it) must be done by then. */
    struct timeval handshake = {ms / 1000, (ms % 1000) * 1000};
    wr_conn_t *c = calloc(1, sizeof(*c));

    if (!c) {
        evutil_closesocket(fd);
        return NULL;
    }
    wr_list_init(&c->link);
    wr_list_init(&c->topo_wait.link);
    c->topo_wait.fn = on_topology_durable;
    c->topo_wait.ud = c;
    c->env = env;
    c->id = id;
    c->state = WR_CONN_AWAIT_HEADER;
    c->frame_max = WR_FRAME_MIN_SIZE;
    c->peer_loopback = wr_auth_is_loopback(peer);
    c->tls = tls != NULL;
    c->connected_at = (int64_t)time(NULL) * 1000;
    conn_set_name(c, fd, peer);
    c->bev = conn_transport_new(base, fd, tls);
    if (!c->bev) {
        evutil_closesocket(fd);
        goto err;
    }
    c->resume = event_new(base, -1, 0, on_resume, c);
    c->deadline = evtimer_new(base, on_deadline, c);
    c->heartbeat_ev = event_new(base, -1, EV_PERSIST, on_heartbeat, c);
    c->uncork_idle = event_new(base, -1, 0, on_uncork, c);
    c->uncork_late = evtimer_new(base, on_uncork, c);
    if (!tls)
        c->rd = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, c);
    if (!c->resume || !c->deadline || !c->heartbeat_ev || !c->uncork_idle || !c->uncork_late ||
        (!tls && !c->rd) || event_priority_set(c->uncork_idle, WR_PRIO_IDLE) != 0)
        goto err;
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, WR_CONN_READ_HIGH_WM);
    bufferevent_setwatermark(c->bev, EV_WRITE, WRITE_LOW_WM, 0);
    /* libevent moves at most 16 KiB per read or write callback by default,
     * so a batch of deliveries took several loop iterations and syscalls. */
    if (bufferevent_set_max_single_read(c->bev, WR_CONN_READ_HIGH_WM) != 0 ||
        bufferevent_set_max_single_write(c->bev, WRITE_LOW_WM) != 0)
        goto err;
    /* Over plain TCP the bufferevent only writes; c->rd reads. */
    if (bufferevent_enable(c->bev, c->rd ? EV_WRITE : EV_READ | EV_WRITE) != 0 ||
        (c->rd && event_add(c->rd, NULL) != 0) || event_add(c->deadline, &handshake) != 0)
        goto err;
    wr_log_info("connection accepted: %s", c->name);
    return c;
err:
    wr_log_error("connection %s: out of memory", c->name);
    c->state = WR_CONN_DEAD;
    wr_conn_free(c);
    return NULL;
}

void wr_conn_free(wr_conn_t *c)
{
    if (!c)
        return;
    /* Still open at broker exit: the shutdown deadline passed first. */
    if (c->state != WR_CONN_DEAD)
        wr_log_info("connection closed: %s (%s)", c->name, c->reason[0] ? c->reason : "broker stopped");
    wr_conn_teardown(c);
    wr_durable_topology_unwait(&c->topo_wait);
    if (c->pages) {
        for (size_t p = 0; p < CHANNEL_PAGES; p++)
            free(c->pages[p]);
        free(c->pages);
    }
    if (c->resume)
        event_free(c->resume);
    if (c->deadline)
        event_free(c->deadline);
    if (c->heartbeat_ev)
        event_free(c->heartbeat_ev);
    if (c->uncork_idle)
        event_free(c->uncork_idle);
    if (c->uncork_late)
        event_free(c->uncork_late);
    if (c->rd)
        event_free(c->rd);
    if (c->promote)
        event_free(c->promote);
    if (c->bev)
        bufferevent_free(c->bev);
    wr_buf_free(&c->scratch);
    wr_buf_free(&c->straddler);
    free(c->user);
    free(c->caps);
    free(c->client_props);
    free(c);
}

void wr_conn_shutdown(wr_conn_t *c)
{
    wr_amqp_error_t err;

    switch (c->state) {
    case WR_CONN_OPEN:
        wr_amqp_error_set(&err, WR_AMQP_CONNECTION_FORCED, 0,
                          "broker forced connection closure with reason 'shutdown'");
        conn_error(c, 0, &err, false);
        return;
    case WR_CONN_AWAIT_HEADER:
    case WR_CONN_AWAIT_START_OK:
    case WR_CONN_AWAIT_TUNE_OK:
    case WR_CONN_AWAIT_OPEN:
        conn_close_now(c, "broker shutdown");
        return;
    case WR_CONN_CLOSED:
        /* Waiting for a client to close after close-ok must not hold the
         * broker's stop: the close-ok is written, then the socket closed. */
        if (c->await_peer_close && !c->close_when_flushed)
            wr_conn_close_when_flushed(c);
        return;
    case WR_CONN_CLOSING:
    case WR_CONN_DEAD:
        return;
    }
}

wr_list_t *wr_conn_link(wr_conn_t *c)
{
    return &c->link;
}

wr_conn_t *wr_conn_from_link(wr_list_t *link)
{
    return wr_list_entry(link, wr_conn_t, link);
}

/* --- accessors ------------------------------------------------------------ */

bool wr_conn_writable(const wr_conn_t *c)
{
    return c->state == WR_CONN_OPEN && evbuffer_get_length(wr_conn_output(c)) < WRITE_HIGH_WM;
}

const wr_conn_env_t *wr_conn_env(const wr_conn_t *c)
{
    return c->env;
}

wr_vhost_t *wr_conn_vhost(const wr_conn_t *c)
{
    return c->vhost;
}

const wr_access_who_t *wr_conn_who(const wr_conn_t *c)
{
    return &c->who;
}

const char *wr_conn_user(const wr_conn_t *c)
{
    return c->user ? c->user : "";
}

uint64_t wr_conn_id(const wr_conn_t *c)
{
    return c->id;
}

const char *wr_conn_name(const wr_conn_t *c)
{
    return c->name;
}

bool wr_conn_client_has(const wr_conn_t *c, const char *capability)
{
    wr_value_t v;

    return wr_table_get((wr_bytes_t){c->caps, c->caps_len}, capability, &v) && v.type == 't' && v.v.b;
}

/* rabbit_reader's info item `state`: blocked or flow while held, "flow" for
 * a while after flow held it or it was read behind a queue's consumers,
 * "blocking" while an alarm is raised but the connection has not published
 * since. */
static const char *conn_state_label(const wr_conn_t *c)
{
    wr_alarms_t *a = c->env->alarms;

    if (c->state != WR_CONN_OPEN)
        return wr_conn_state_name(c->state);
    if (c->blocked)
        return c->held_by & RESOURCE_ALARMS ? "blocked" : "flow";
    if (c->flow_at != 0 && mono_ms() - c->flow_at < FLOW_STATE_MS)
        return "flow";
    if (a && wr_alarm_blocking(a))
        return "blocking";
    return "running";
}

void wr_conn_info(const wr_conn_t *c, wr_conn_info_t *out)
{
    out->open = c->state == WR_CONN_OPEN;
    out->state = conn_state_label(c);
    out->blocked = c->blocked;
    out->channel_max = c->channel_max;
    out->heartbeat = c->heartbeat;
    out->frame_max = c->frame_max;
    out->channels = c->nchannels;
    out->connected_at = c->connected_at;
    out->auth_mechanism = c->mechanism;
    out->client_properties = (wr_bytes_t){c->client_props, c->client_props_len};
    out->recv_oct = c->in_consumed + evbuffer_get_length(bufferevent_get_input(c->bev));
    out->send_oct = c->out_queued - evbuffer_get_length(wr_conn_output(c));
    out->ssl = c->tls;
}

bool wr_conn_tls_session(const wr_conn_t *c, wr_tls_session_t *out)
{
    return c->tls && wr_tls_session(c->bev, out);
}

void wr_conn_foreach_channel(const wr_conn_t *c, void (*fn)(void *ud, const wr_channel_t *ch), void *ud)
{
    if (!c->pages)
        return;
    for (size_t p = 0; p < CHANNEL_PAGES; p++) {
        if (!c->pages[p])
            continue;
        for (size_t i = 0; i < CHANNEL_PAGE_SIZE; i++) {
            if (c->pages[p][i])
                fn(ud, c->pages[p][i]);
        }
    }
}
