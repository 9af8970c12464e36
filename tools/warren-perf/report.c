/* SPDX-License-Identifier: MIT */
/*
 * Formats a wr_result_t. Latencies are kept in nanoseconds and shown in
 * microseconds; memory is kept in KiB as /proc reports it.
 */
#include "report.h"

#include <inttypes.h>
#include <jansson.h>

#include "core/status.h"

static double rate(uint64_t n, double secs)
{
    return secs > 0 ? (double)n / secs : 0.0;
}

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

/* ---- text -------------------------------------------------------------- */

static void text_rate(FILE *f, const char *what, uint64_t n, double secs)
{
    fprintf(f, "%-14s %12" PRIu64 " msgs in %8.2f s  %12.0f msg/s\n", what, n, secs, rate(n, secs));
}

static void text_latency(FILE *f, const char *what, const wr_hist_t *h)
{
    if (wr_hist_count(h) == 0)
        return;
    fprintf(f,
            "%-14s p50 %.1f us  p95 %.1f us  p99 %.1f us  p99.9 %.1f us  max %.1f us  mean %.1f us  "
            "(%" PRIu64 " samples)\n",
            what, us(wr_hist_percentile(h, 50)), us(wr_hist_percentile(h, 95)), us(wr_hist_percentile(h, 99)),
            us(wr_hist_percentile(h, 99.9)), us(wr_hist_max(h)), wr_hist_mean(h) / 1000.0, wr_hist_count(h));
}

static double mib(uint64_t kib)
{
    return (double)kib / 1024.0;
}

/* µs of broker CPU per counted message; 0 when none was counted. */
static double per_msg_us(uint64_t ns, uint64_t msgs)
{
    return msgs ? (double)ns / 1000.0 / (double)msgs : 0.0;
}

void wr_report_text(FILE *f, const wr_opts_t *o, const wr_result_t *res)
{
    if (o->idle_conns > 0) {
        fprintf(f, "idle connections: %" PRIu32 " opened, one channel each\n", res->idle_conns);
        if (res->have_rss)
            fprintf(f, "broker RSS      %.1f MiB before, %.1f MiB after: %.1f KiB per connection\n",
                    mib(res->idle_rss_before_kib), mib(res->idle_rss_after_kib),
                    ((double)res->idle_rss_after_kib - (double)res->idle_rss_before_kib) / res->idle_conns);
        return;
    }
    fprintf(f,
            "warren-perf: %" PRIu32 " producer(s), %" PRIu32 " consumer(s), %zu-byte bodies, %" PRIu32
            " queue(s)%s%s\n",
            o->producers, o->consumers, o->body_size, o->nqueues, o->persistent ? ", persistent" : "",
            res->interrupted ? " (interrupted)" : "");
    text_rate(f, "published", res->published, res->publish_secs);
    if (o->confirm)
        text_rate(f, "confirmed", res->confirmed, res->confirm_secs);
    if (res->nacked)
        fprintf(f, "%-14s %12" PRIu64 " msgs\n", "nacked", res->nacked);
    if (o->consumers)
        text_rate(f, "consumed", res->consumed, res->consume_secs);
    text_latency(f, "latency", res->latency);
    text_latency(f, "confirm lat.", res->confirm_latency);
    if (res->blocked)
        fprintf(f, "%-14s %12" PRIu32 " times (connection.blocked)\n", "blocked", res->blocked);
    if (res->have_rss)
        fprintf(f, "broker RSS     start %.1f MiB, peak %.1f MiB, end %.1f MiB (VmHWM %.1f MiB)\n",
                mib(res->rss_start_kib), mib(res->rss_peak_kib), mib(res->rss_end_kib), mib(res->hwm_kib));
    if (res->have_cpu)
        fprintf(f, "broker CPU     user %.2f s, system %.2f s: %.2f + %.2f us per message (%" PRIu64 ")\n",
                (double)res->cpu_user_ns / 1e9, (double)res->cpu_sys_ns / 1e9,
                per_msg_us(res->cpu_user_ns, res->cpu_messages),
                per_msg_us(res->cpu_sys_ns, res->cpu_messages), res->cpu_messages);
}

/* ---- JSON -------------------------------------------------------------- */

/* json_object_set_new ignores a NULL value's failure; collect it instead. */
static void put(json_t *obj, const char *key, json_t *val, bool *ok)
{
    if (!val || json_object_set_new(obj, key, val) != 0)
        *ok = false;
}

static json_t *json_latency(const wr_hist_t *h)
{
    bool ok = true;
    if (wr_hist_count(h) == 0)
        return json_null();
    json_t *l = json_object();
    if (!l)
        return NULL;
    put(l, "count", json_integer((json_int_t)wr_hist_count(h)), &ok);
    put(l, "min", json_real(us(wr_hist_min(h))), &ok);
    put(l, "mean", json_real(wr_hist_mean(h) / 1000.0), &ok);
    put(l, "p50", json_real(us(wr_hist_percentile(h, 50))), &ok);
    put(l, "p95", json_real(us(wr_hist_percentile(h, 95))), &ok);
    put(l, "p99", json_real(us(wr_hist_percentile(h, 99))), &ok);
    put(l, "p99_9", json_real(us(wr_hist_percentile(h, 99.9))), &ok);
    put(l, "max", json_real(us(wr_hist_max(h))), &ok);
    if (!ok) {
        json_decref(l);
        return NULL;
    }
    return l;
}

static json_t *json_scenario(const wr_opts_t *o, bool *ok)
{
    json_t *s = json_object();
    if (!s)
        return NULL;
    put(s, "producers", json_integer(o->producers), ok);
    put(s, "consumers", json_integer(o->consumers), ok);
    put(s, "body_size", json_integer((json_int_t)o->body_size), ok);
    put(s, "queues", json_integer(o->nqueues), ok);
    put(s, "exchange", json_string(o->exchange), ok);
    put(s, "type", json_string(o->type), ok);
    put(s, "bindings", json_integer(o->bindings), ok);
    put(s, "persistent", json_boolean(o->persistent), ok);
    put(s, "confirm", json_integer(o->confirm), ok);
    put(s, "prefetch", json_integer(o->prefetch), ok);
    put(s, "autoack", json_boolean(o->autoack), ok);
    put(s, "multi_ack_every", json_integer(o->multi_ack), ok);
    put(s, "rate", json_real(o->rate), ok);
    put(s, "count", json_integer((json_int_t)o->count), ok);
    put(s, "seconds", json_real(o->seconds), ok);
    put(s, "no_consume_during", json_boolean(o->no_consume_during), ok);
    put(s, "unbatched", json_boolean(o->unbatched), ok);
    return s;
}

int wr_report_json(FILE *f, const wr_opts_t *o, const wr_result_t *res)
{
    bool ok = true;
    json_t *j = json_object();
    if (!j)
        return WR_ENOMEM;
    put(j, "host", json_string(o->host), &ok);
    put(j, "port", json_integer(o->port), &ok);
    put(j, "scenario", json_scenario(o, &ok), &ok);
    put(j, "interrupted", json_boolean(res->interrupted), &ok);
    put(j, "published", json_integer((json_int_t)res->published), &ok);
    put(j, "publish_seconds", json_real(res->publish_secs), &ok);
    put(j, "published_rate", json_real(rate(res->published, res->publish_secs)), &ok);
    put(j, "confirmed", json_integer((json_int_t)res->confirmed), &ok);
    put(j, "confirm_seconds", json_real(res->confirm_secs), &ok);
    put(j, "confirmed_rate", json_real(rate(res->confirmed, res->confirm_secs)), &ok);
    put(j, "nacked", json_integer((json_int_t)res->nacked), &ok);
    put(j, "consumed", json_integer((json_int_t)res->consumed), &ok);
    put(j, "consume_seconds", json_real(res->consume_secs), &ok);
    put(j, "consumed_rate", json_real(rate(res->consumed, res->consume_secs)), &ok);
    put(j, "blocked", json_integer(res->blocked), &ok);
    put(j, "latency_us", json_latency(res->latency), &ok);
    put(j, "confirm_latency_us", json_latency(res->confirm_latency), &ok);
    if (res->have_rss) {
        json_t *m = json_object();
        put(j, "broker_rss_kib", m, &ok);
        if (m) {
            put(m, "start", json_integer((json_int_t)res->rss_start_kib), &ok);
            put(m, "peak", json_integer((json_int_t)res->rss_peak_kib), &ok);
            put(m, "end", json_integer((json_int_t)res->rss_end_kib), &ok);
            put(m, "hwm", json_integer((json_int_t)res->hwm_kib), &ok);
        }
    }
    if (res->have_cpu) {
        json_t *m = json_object();
        put(j, "broker_cpu", m, &ok);
        if (m) {
            put(m, "user_s", json_real((double)res->cpu_user_ns / 1e9), &ok);
            put(m, "system_s", json_real((double)res->cpu_sys_ns / 1e9), &ok);
            put(m, "messages", json_integer((json_int_t)res->cpu_messages), &ok);
            put(m, "user_us_per_msg", json_real(per_msg_us(res->cpu_user_ns, res->cpu_messages)), &ok);
            put(m, "system_us_per_msg", json_real(per_msg_us(res->cpu_sys_ns, res->cpu_messages)), &ok);
            put(m, "us_per_msg", json_real(per_msg_us(res->cpu_user_ns + res->cpu_sys_ns, res->cpu_messages)),
                &ok);
        }
    }
    if (o->idle_conns > 0) {
        json_t *m = json_object();
        put(j, "idle_connections", m, &ok);
        if (m) {
            put(m, "count", json_integer(res->idle_conns), &ok);
            if (res->have_rss) {
                double per = ((double)res->idle_rss_after_kib - (double)res->idle_rss_before_kib) * 1024.0 /
                             res->idle_conns;
                put(m, "rss_before_kib", json_integer((json_int_t)res->idle_rss_before_kib), &ok);
                put(m, "rss_after_kib", json_integer((json_int_t)res->idle_rss_after_kib), &ok);
                put(m, "per_connection_bytes", json_real(per), &ok);
            }
        }
    }
    int rc = WR_ENOMEM;
    if (ok)
        rc = json_dumpf(j, f, JSON_COMPACT | JSON_REAL_PRECISION(9)) == 0 && fputc('\n', f) != EOF ? WR_OK
                                                                                                   : WR_EIO;
    json_decref(j);
    return rc;
}
