# SPDX-License-Identifier: MIT
# A real Prometheus (Debian's package) scrapes warren's /metrics every second,
# and every PromQL expression of RabbitMQ's published RabbitMQ-Overview
# dashboard (rabbitmq_overview_dashboard.py) must return data through
# Prometheus's HTTP query API, as it would in Grafana.
import json
import os
import shutil
import subprocess
import urllib.parse

import pika
import pytest

from conftest import Http
from helpers import free_port, wait_for
from rabbitmq_overview_dashboard import DASHBOARD_EXPRESSIONS

PROMETHEUS = "/usr/bin/prometheus"
NAMESPACE = "warren-test"  # what a Kubernetes scrape would add as a target label
RATE_INTERVAL = "10s"      # Grafana's $__rate_interval at a 1 s scrape interval
RANGE = "1m"               # $__range


@pytest.fixture(scope="module")
def prometheus(mgmt_broker, tmp_path_factory):
    """Prometheus scraping mgmt_broker's Prometheus port every second, with
    the target label namespace; an Http on its API port."""
    if not os.access(PROMETHEUS, os.X_OK):
        pytest.skip("needs Debian's prometheus (scripts/deps --test)")
    if mgmt_broker.prom is None:
        pytest.skip("external broker without WARREN_PROMETHEUS")
    d = tmp_path_factory.mktemp("prometheus")
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "scrape_configs": [{"job_name": "rabbitmq", "scrape_interval": "1s",
                                  "static_configs": [{
                                      "targets": ["%s:%d" % (mgmt_broker.prom.host, mgmt_broker.prom.port)],
                                      "labels": {"namespace": NAMESPACE}}]}]}
    (d / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    port = free_port()
    log = open(d / "prometheus.log", "w")
    proc = subprocess.Popen([PROMETHEUS, "--config.file=%s" % (d / "prometheus.yml"),
                             "--storage.tsdb.path=%s" % (d / "data"),
                             "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    api = Http("127.0.0.1", port)

    def ready():
        try:
            return api.get("/-/ready", auth=False).status == 200
        except OSError:
            return proc.poll() is not None
    try:
        wait_for(ready, timeout=30, what="prometheus to be ready")
        assert proc.poll() is None, (d / "prometheus.log").read_text()
        yield api
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
        shutil.rmtree(d, ignore_errors=True)


def query(api, expr):
    r = api.get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}), auth=False)
    body = r.json
    assert r.status == 200 and body["status"] == "success", (expr, r)
    return body["data"]["result"]


def traffic(broker):
    """One of everything the dashboard plots: confirmed publishes, routed and
    unroutable (returned and dropped), deliveries with manual and automatic
    ack, gets of both kinds and an empty one, a redelivery, queue and
    channel churn. Leaves a publisher and a consumer connected."""
    c = broker.connect()
    ch = c.channel()
    ch.confirm_delivery()
    q = ch.queue_declare("prom-traffic", auto_delete=False).method.queue
    for size in (10, 500, 5000, 50000):
        ch.basic_publish("", q, b"x" * size)
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish("", "prom-nowhere", b"returned", mandatory=True)
    ch.basic_publish("", "prom-nowhere", b"dropped")
    m, _, _ = ch.basic_get(q, auto_ack=False)
    ch.basic_reject(m.delivery_tag, requeue=True)
    m, _, _ = ch.basic_get(q, auto_ack=False)
    ch.basic_ack(m.delivery_tag)
    ch.basic_get(q, auto_ack=True)
    ch.basic_get("prom-traffic", auto_ack=True)
    ch.basic_get("prom-traffic", auto_ack=True)  # empty by now
    ch2 = c.channel()
    ch2.basic_publish("", q, b"for the consumer")
    ch.basic_consume(q, lambda chan, mth, props, body: chan.basic_ack(mth.delivery_tag))
    ch2.queue_declare("", exclusive=True)
    tmp = ch2.queue_declare("prom-tmp").method.queue
    ch2.queue_delete(tmp)
    auto = broker.connect()
    ach = auto.channel()
    ach.basic_consume(q, lambda *a: None, auto_ack=True)
    ch2.basic_publish("", q, b"auto")
    c.process_data_events(0.2)
    auto.process_data_events(0.2)
    return c, auto


def test_overview_dashboard_has_data(mgmt_broker, prometheus):
    conns = traffic(mgmt_broker)
    try:
        # Enough scrapes after the traffic for rate() over RATE_INTERVAL.
        wait_for(lambda: query(prometheus, 'count_over_time(rabbitmq_identity_info[%s]) >= 4' % RATE_INTERVAL),
                 timeout=30, what="four scrapes by prometheus")
        cluster = query(prometheus, "rabbitmq_identity_info")[0]["metric"]["rabbitmq_cluster"]
        empty = []
        for expr in DASHBOARD_EXPRESSIONS:
            e = (expr.replace("$rabbitmq_cluster", cluster).replace("$namespace", NAMESPACE)
                 .replace("$endpoint", "aggregated").replace("$__rate_interval", RATE_INTERVAL)
                 .replace("$__range", RANGE))
            if not query(prometheus, e):
                empty.append(e)
        assert empty == [], "%d of %d expressions return no data" % (len(empty), len(DASHBOARD_EXPRESSIONS))
    finally:
        for c in conns:
            c.close()
