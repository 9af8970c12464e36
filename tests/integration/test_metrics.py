# SPDX-License-Identifier: MIT
# The Prometheus endpoint: GET /metrics (queue families summed) and
# /metrics/per-object (one sample per queue, connection and channel) in the
# text exposition format 0.0.4, checked by a strict parser written here from
# the format's specification, and values that follow messages through a queue (depth,
# consumers, counters, the publish/deliver rates that expose consumer lag).
import math
import re
import urllib.parse

import pytest

from conftest import Http
from helpers import Collector, wait_for

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class ExpositionError(AssertionError):
    pass


def parse_value(s):
    if s in ("NaN", "+Inf", "-Inf", "Inf"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", s):
        raise ExpositionError("bad sample value %r" % s)
    return float(s)


def parse_labels(text, i, lineno):
    """Parses {a="x",b="y"} starting at text[i] == '{'; returns (labels, next index)."""
    labels = {}
    i += 1
    while True:
        if text[i] == "}":
            return labels, i + 1
        m = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*").match(text, i)
        if not m:
            raise ExpositionError("line %d: bad label name at %r" % (lineno, text[i:]))
        name = m.group(0)
        i = m.end()
        if text[i:i + 2] != '="':
            raise ExpositionError("line %d: expected =\" after label %s" % (lineno, name))
        i += 2
        value = []
        while text[i] != '"':
            if text[i] == "\\":
                esc = text[i + 1]
                if esc not in ('\\', '"', 'n'):
                    raise ExpositionError("line %d: bad escape \\%s" % (lineno, esc))
                value.append("\n" if esc == "n" else esc)
                i += 2
            elif text[i] == "\n":
                raise ExpositionError("line %d: raw newline in label value" % lineno)
            else:
                value.append(text[i])
                i += 1
        i += 1
        if name in labels:
            raise ExpositionError("line %d: label %s twice" % (lineno, name))
        labels[name] = "".join(value)
        if text[i] == ",":
            i += 1
        elif text[i] != "}":
            raise ExpositionError("line %d: expected , or } after a label" % lineno)


def parse(text):
    """Strict parse of the 0.0.4 text format. Returns {family: {"type", "help",
    "samples": {(name, frozenset(labels)): value}}}; raises ExpositionError."""
    if not text.endswith("\n"):
        raise ExpositionError("the exposition must end with a newline")
    families = {}
    current = None
    closed = set()
    for lineno, line in enumerate(text[:-1].split("\n"), 1):
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME.match(name):
                    raise ExpositionError("line %d: bad metric name %r" % (lineno, name))
                fam = families.setdefault(name, {"type": None, "help": None, "samples": {}})
                if name in closed:
                    raise ExpositionError("line %d: %s after its samples" % (lineno, name))
                if parts[1] == "TYPE":
                    if fam["type"] is not None or fam["samples"]:
                        raise ExpositionError("line %d: second TYPE or TYPE after samples for %s" % (lineno, name))
                    if len(parts) != 4 or parts[3] not in TYPES:
                        raise ExpositionError("line %d: bad TYPE line %r" % (lineno, line))
                    fam["type"] = parts[3]
                else:
                    if fam["help"] is not None:
                        raise ExpositionError("line %d: second HELP for %s" % (lineno, name))
                    fam["help"] = parts[3] if len(parts) == 4 else ""
                if current is not None and current != name:
                    closed.add(current)
                current = name
            continue
        m = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*").match(line)
        if not m:
            raise ExpositionError("line %d: no metric name in %r" % (lineno, line))
        name, i = m.group(0), m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = parse_labels(line + "\n", i, lineno)
        rest = line[i:]
        if not rest.startswith(" "):
            raise ExpositionError("line %d: expected a space before the value" % lineno)
        fields = rest.strip(" ").split(" ")
        if len(fields) not in (1, 2):
            raise ExpositionError("line %d: trailing text %r" % (lineno, rest))
        value = parse_value(fields[0])
        if len(fields) == 2 and not re.fullmatch(r"-?\d+", fields[1]):
            raise ExpositionError("line %d: bad timestamp %r" % (lineno, fields[1]))
        fam_name = name
        # A histogram's samples are NAME_bucket (with le), NAME_sum, NAME_count.
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[:-len(suffix)]
            if name.endswith(suffix) and families.get(base, {}).get("type") == "histogram":
                fam_name = base
        if fam_name not in families:
            raise ExpositionError("line %d: sample of %s without TYPE" % (lineno, name))
        if fam_name in closed or (current is not None and current != fam_name):
            raise ExpositionError("line %d: samples of %s are not contiguous" % (lineno, name))
        current = fam_name
        key = (name, frozenset(labels.items()))
        fam = families[fam_name]
        if key in fam["samples"]:
            raise ExpositionError("line %d: duplicate series %s%r" % (lineno, name, labels))
        fam["samples"][key] = value
    return families


def test_parser_rejects_malformed():
    for bad in ["x 1",                                   # no newline at the end
                "# TYPE x gauge\nx{a=\"b\" 1\n",         # unterminated labels
                "# TYPE x gauge\nx{a=\"\\t\"} 1\n",      # bad escape
                "# TYPE x gauge\nx 1\nx 2\n",            # duplicate series
                "# TYPE x gauge\n# TYPE y gauge\ny 1\nx 1\n",  # not contiguous
                "# TYPE x gaugey\nx 1\n",                # unknown type
                "y 1\n",                                 # no TYPE
                "# TYPE x gauge\nx one\n"]:              # bad value
        with pytest.raises(ExpositionError):
            parse(bad)
    fams = parse('# HELP x a "help" \\\\ text\n# TYPE x counter\nx{q="a\\"b\\\\c\\nd"} 1.5e3 123\n')
    assert fams["x"]["samples"][("x", frozenset({("q", 'a"b\\c\nd')}))] == 1500.0


@pytest.fixture
def prom(mgmt_broker):
    if mgmt_broker.external:
        pytest.skip("warren's metric names; RabbitMQ's Prometheus plugin names its own")
    return mgmt_broker.prom


def scrape(prom, path="/metrics/per-object"):
    r = prom.get(path, auth=False)
    assert r.status == 200, r
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(r.body)


def value(fams, name, **labels):
    fam = fams.get(name)
    if fam is None:
        return None
    return fam["samples"].get((name, frozenset(labels.items())))


@pytest.mark.parametrize("path", ["/metrics", "/metrics/per-object"])
def test_exposition_is_valid_and_named_by_convention(prom, path):
    fams = scrape(prom, path)
    for name, fam in fams.items():
        # RabbitMQ's names (rabbitmq_prometheus) and warren's own.
        assert name.startswith(("warren_", "rabbitmq_")), name
        assert fam["type"] and fam["help"], name
        assert (fam["type"] == "counter") == name.endswith("_total"), name
    for name in ["warren_connections", "warren_channels", "warren_process_resident_memory_bytes",
                 "warren_messages_published_total", "warren_messages_delivered_total",
                 "warren_messages_acked_total", "warren_messages_redelivered_total",
                 "warren_queue_messages_ready", "warren_queue_messages_unacked", "warren_queue_consumers",
                 "warren_queue_publish_rate", "warren_queue_deliver_rate", "warren_queue_messages",
                 "warren_memory_used_bytes", "warren_memory_high_watermark_bytes", "warren_disk_free_bytes",
                 "warren_disk_free_limit_bytes", "warren_alarm_active", "warren_connections_blocked",
                 "warren_storage_pending_bytes", "warren_storage_flow", "warren_storage_flow_started_total"]:
        assert name in fams, name
    assert value(fams, "warren_process_resident_memory_bytes") > 1024 * 1024
    # The defaults: 40% of RAM, 50 MB of disk, no alarm, nothing held.
    assert value(fams, "warren_memory_high_watermark_bytes") > value(fams, "warren_memory_used_bytes") > 0
    assert value(fams, "warren_disk_free_limit_bytes") == 50000000
    assert value(fams, "warren_alarm_active", resource="memory") == 0
    assert value(fams, "warren_alarm_active", resource="disk") == 0
    assert value(fams, "warren_connections_blocked") == 0 and value(fams, "warren_storage_flow") == 0
    assert value(fams, "warren_build_info", version="0.1.0") == 1


def test_other_paths_and_methods(prom):
    assert prom.get("/", auth=False).status == 404
    assert prom.get("/metrics/extra", auth=False).status == 404
    assert prom.get("/metrics/per-object/x", auth=False).status == 404
    r = prom.post("/metrics", {}, auth=False)
    assert r.status == 405


def test_values_follow_messages(prom, mgmt_broker, name):
    c = mgmt_broker.connect()
    ch = c.channel()
    q = name("q")
    ch.queue_declare(q)
    before = scrape(prom)
    published0 = value(before, "warren_messages_published_total")
    assert value(before, "warren_queue_messages_ready", vhost="/", queue=q) == 0
    assert value(before, "warren_connections") >= 1 and value(before, "warren_channels") >= 1
    for i in range(6):
        ch.basic_publish("", q, b"m")
    wait_for(lambda: value(scrape(prom), "warren_queue_messages_ready", vhost="/", queue=q) == 6,
             what="6 ready")
    f = scrape(prom)
    assert value(f, "warren_queue_messages_published_total", vhost="/", queue=q) == 6
    assert value(f, "warren_messages_published_total") >= published0 + 6
    ch.basic_qos(prefetch_count=4)
    got = Collector()
    ch.basic_consume(q, got)
    got.wait(c, 4)
    f = scrape(prom)
    assert (value(f, "warren_queue_messages_ready", vhost="/", queue=q),
            value(f, "warren_queue_messages_unacked", vhost="/", queue=q),
            value(f, "warren_queue_messages", vhost="/", queue=q),
            value(f, "warren_queue_consumers", vhost="/", queue=q)) == (2, 4, 6, 1)
    ch.basic_nack(got.deliveries[0][0].delivery_tag, requeue=True)
    for m, _, _ in got.deliveries[1:4]:
        ch.basic_ack(m.delivery_tag)
    got.wait(c, 7)
    for m, _, _ in got.deliveries[4:]:
        ch.basic_ack(m.delivery_tag)
    c.process_data_events(0)

    def settled():
        f = scrape(prom)
        return value(f, "warren_queue_messages", vhost="/", queue=q) == 0 and f
    f = wait_for(settled, what="an empty queue", conn=c)
    assert value(f, "warren_queue_messages_delivered_total", vhost="/", queue=q) == 7
    assert value(f, "warren_queue_messages_acked_total", vhost="/", queue=q) == 6
    assert value(f, "warren_queue_messages_redelivered_total", vhost="/", queue=q) == 1
    ch.queue_delete(q)
    c.close()
    f = scrape(prom)
    assert value(f, "warren_queue_messages_ready", vhost="/", queue=q) is None


def test_consumer_lag_is_visible(prom, mgmt_broker, name):
    """No consumer: the publish rate is positive, the deliver rate zero and
    the depth grows."""
    c = mgmt_broker.connect()
    ch = c.channel()
    q = name("lag")
    ch.queue_declare(q)
    depths = []

    def lagging():
        for i in range(20):
            ch.basic_publish("", q, b"m")
        f = scrape(prom)
        depths.append(value(f, "warren_queue_messages", vhost="/", queue=q))
        return (value(f, "warren_queue_publish_rate", vhost="/", queue=q) > 0 and
                value(f, "warren_queue_deliver_rate", vhost="/", queue=q) == 0)
    wait_for(lagging, what="publish rate > 0 with deliver rate 0")
    assert depths == sorted(depths) and depths[-1] > 0

    got = Collector(ack=True)
    ch.basic_consume(q, got)

    def draining():
        c.process_data_events(0.01)
        f = scrape(prom)
        return value(f, "warren_queue_deliver_rate", vhost="/", queue=q) > 0
    wait_for(draining, what="a positive deliver rate once a consumer drains the queue", conn=c)
    ch.queue_delete(q)
    c.close()


def test_label_values_are_escaped(prom, mgmt_broker):
    c = mgmt_broker.connect()
    ch = c.channel()
    # (No newline: brokers strip CR and LF from queue names, and pika then
    # never matches declare-ok to its request.)
    q = 'we"ird\\name q'
    ch.queue_declare(q, exclusive=True)
    f = scrape(prom)
    assert value(f, "warren_queue_messages_ready", vhost="/", queue=q) == 0
    c.close()
    assert math.isfinite(value(f, "warren_process_resident_memory_bytes"))


def test_default_endpoint_is_aggregated(prom, mgmt_broker, name):
    """/metrics sums each queue family over every queue, as
    rabbitmq_prometheus does without return_per_object_metrics: one
    unlabelled sample per family, whatever the number of queues."""
    c = mgmt_broker.connect()
    ch = c.channel()
    qs = [name("agg1"), name("agg2")]
    for q in qs:
        ch.queue_declare(q)
        for i in range(3):
            ch.basic_publish("", q, b"m")

    def summed():
        f = scrape(prom, "/metrics")
        per = scrape(prom)
        total = sum(v for (n, _), v in per["warren_queue_messages_ready"]["samples"].items())
        return value(f, "warren_queue_messages_ready") == total and total >= 6 and f
    f = wait_for(summed, what="the sum of the per-object samples")
    for fam in ("warren_queue_messages_ready", "warren_queue_messages_published_total",
                "warren_queue_consumers", "warren_queue_publish_rate"):
        assert list(f[fam]["samples"]) == [(fam, frozenset())], fam
    for q in qs:
        ch.queue_delete(q)
    c.close()


def test_per_object_with_many_queues(warren):
    """10,000 queues: the per-object reply spans many chunks and still
    parses, with every queue in every family exactly once."""
    b = warren()
    n = 10000
    qs = [{"name": "many-%05d" % i, "vhost": "/", "durable": False, "auto_delete": False,
           "arguments": {}} for i in range(n)]
    assert b.mgmt.post("/api/definitions", {"queues": qs}).status == 204
    prom = Http("127.0.0.1", b.config["prometheus"]["port"])
    f = scrape(prom)
    for fam in ("warren_queue_messages_ready", "warren_queue_deliver_rate"):
        names = sorted(dict(labels)["queue"] for (_, labels) in f[fam]["samples"])
        assert names == ["many-%05d" % i for i in range(n)], fam
    assert value(scrape(prom, "/metrics"), "warren_queue_messages_ready") == 0


# --- RabbitMQ's names (rabbitmq_prometheus) -------------------------------

def identity(fams):
    (key, v), = fams["rabbitmq_identity_info"]["samples"].items()
    return dict(key[1]), v


@pytest.mark.parametrize("path,endpoint", [("/metrics", "aggregated"), ("/metrics/per-object", "per-object"),
                                           ("/metrics/detailed", "detailed")])
def test_rabbitmq_identity(mgmt_broker, prom, path, endpoint):
    fams = scrape(prom, path)
    labels, v = identity(fams)
    node = mgmt_broker.mgmt.get("/api/overview").json["node"]
    assert (labels, v) == ({"rabbitmq_node": node, "rabbitmq_cluster": node,
                            "rabbitmq_cluster_permanent_id": node, "rabbitmq_endpoint": endpoint}, 1)
    assert fams["rabbitmq_identity_info"]["type"] == "untyped"
    assert fams["rabbitmq_build_info"]["type"] == "untyped"


def test_rabbitmq_queue_and_global_series(mgmt_broker, prom, name):
    c = mgmt_broker.connect()
    try:
        ch = c.channel()
        ch.confirm_delivery()
        q = name("rq")
        ch.queue_declare(q, exclusive=True)
        ch.basic_publish("", q, b"a" * 150)
        ch.basic_publish("", q, b"b")
        m, _, _ = ch.basic_get(q, auto_ack=False)
        before = scrape(prom, "/metrics")
        fams = scrape(prom)
        assert value(fams, "rabbitmq_queue_messages_ready", vhost="/", queue=q) == 1
        assert value(fams, "rabbitmq_queue_messages_unacked", vhost="/", queue=q) == 1
        assert value(fams, "rabbitmq_queue_get_ack_total", vhost="/", queue=q) == 1
        assert fams["rabbitmq_queue_messages_ready"]["type"] == "gauge"
        assert value(before, "rabbitmq_global_publishers", protocol="amqp091") >= 1
        assert value(before, "rabbitmq_global_messages_received_confirm_total", protocol="amqp091") >= 2
        assert value(before, "rabbitmq_global_messages_confirmed_total", protocol="amqp091") >= 2
        assert value(before, "rabbitmq_channels") >= 1 and value(before, "rabbitmq_connections") >= 1
        assert before["rabbitmq_message_size_bytes"]["type"] == "histogram"
        sizes = before["rabbitmq_message_size_bytes"]["samples"]
        assert sizes[("rabbitmq_message_size_bytes_bucket",
                      frozenset({"protocol": "amqp091", "le": "100.0"}.items()))] >= 1
        ch.basic_get(q, auto_ack=True)
        ch.basic_get(q, auto_ack=True)
        after = scrape(prom, "/metrics")
        assert (value(after, "rabbitmq_global_messages_get_empty_total", protocol="amqp091",
                      queue_type="rabbit_classic_queue") ==
                value(before, "rabbitmq_global_messages_get_empty_total", protocol="amqp091",
                      queue_type="rabbit_classic_queue") + 1)
        opened = value(after, "rabbitmq_channels_opened_total")
        c.channel().close()
        assert value(scrape(prom, "/metrics"), "rabbitmq_channels_opened_total") == opened + 1
    finally:
        c.close()


def test_rabbitmq_detailed(mgmt_broker, prom, name):
    """Only the families asked for, rabbitmq_detailed_*, of the vhosts named."""
    c = mgmt_broker.connect()
    try:
        ch = c.channel()
        q = name("dq")
        ch.queue_declare(q, exclusive=True)
        fams = scrape(prom, "/metrics/detailed?family=queue_coarse_metrics&vhost=%2F")
        assert sorted(fams) == ["rabbitmq_build_info", "rabbitmq_detailed_queue_messages",
                                "rabbitmq_detailed_queue_messages_ready",
                                "rabbitmq_detailed_queue_messages_unacked", "rabbitmq_identity_info"]
        assert value(fams, "rabbitmq_detailed_queue_messages_ready", vhost="/", queue=q) == 0
        fams = scrape(prom, "/metrics/detailed?family=queue_consumer_count&vhost=nosuch")
        assert fams["rabbitmq_detailed_queue_consumers"]["samples"] == {}
        fams = scrape(prom, "/metrics/detailed?family=connection_churn_metrics")
        assert value(fams, "rabbitmq_detailed_connections_opened_total") >= 1
        assert "rabbitmq_detailed_queue_messages_ready" not in fams
    finally:
        c.close()


def test_rabbitmq_connection_and_channel_series(mgmt_broker, prom, name):
    """/metrics/per-object's rabbitmq_connection_* and rabbitmq_channel_*,
    one sample per open connection and channel, labelled channel= with the
    management API's names; /metrics has none of them."""
    c = mgmt_broker.connect()
    try:
        ch = c.channel()
        ch.basic_qos(prefetch_count=5, global_qos=True)
        q = name("objq")
        ch.queue_declare(q, exclusive=True)
        for body in (b"x", b"y", b"z"):
            ch.basic_publish("", q, body * 10)
        got = []
        ch.basic_consume(q, lambda c_, m, p, b: got.append(m.delivery_tag))
        ch.basic_consume(q, lambda c_, m, p, b: got.append(m.delivery_tag))
        wait_for(lambda: len(got) == 3, conn=c, what="3 deliveries")
        local = c._impl._transport._sock.getsockname()
        cname = "%s:%d -> %s:%d" % (local[0], local[1], mgmt_broker.host, mgmt_broker.port)
        chname = "%s (%d)" % (cname, ch.channel_number)
        fams = scrape(prom)
        for fam in ("rabbitmq_connection_incoming_bytes_total", "rabbitmq_connection_outgoing_bytes_total"):
            assert fams[fam]["type"] == "counter"
            assert value(fams, fam, channel=cname) > 100
        assert value(fams, "rabbitmq_connection_channels", channel=cname) == 1
        assert value(fams, "rabbitmq_channel_consumers", channel=chname) == 2
        assert value(fams, "rabbitmq_channel_messages_unacked", channel=chname) == 3
        assert value(fams, "rabbitmq_channel_prefetch", channel=chname) == 5
        # The same octets as the management API's connection.
        api = mgmt_broker.mgmt.get("/api/connections/%s" % urllib.parse.quote(cname, safe="")).json
        fams = scrape(prom)
        assert value(fams, "rabbitmq_connection_outgoing_bytes_total", channel=cname) == api["send_oct"]
        assert "rabbitmq_channel_consumers" not in scrape(prom, "/metrics")
    finally:
        c.close()
    wait_for(lambda: value(scrape(prom), "rabbitmq_connection_channels", channel=cname) is None,
             what="the closed connection's series to go")
    assert value(scrape(prom), "rabbitmq_channel_consumers", channel=chname) is None
