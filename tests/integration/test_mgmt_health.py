# SPDX-License-Identifier: MIT
# Probes and small resources of the management API with RabbitMQ 3.10's
# shapes and statuses (checked against scripts/rabbitmq with its management
# plugin): aliveness test, health checks, extensions, auth, cluster-name,
# feature-flags, parameters; and what identifies a connection in
# /api/connections (client_properties, user_provided_name, auth_mechanism,
# recv_oct/send_oct, ssl and its fields).
import json

import pika
import pytest

import amqp_raw
from conftest import quote
from helpers import wait_for

NOT_FOUND = {"error": "Object Not Found", "reason": "Not Found"}


@pytest.fixture
def api(mgmt_broker):
    return mgmt_broker.mgmt


def test_aliveness_test(mgmt_broker, api):
    """Declares aliveness-test in the vhost, publishes and gets a message;
    the queue stays, empty, as in RabbitMQ."""
    for _ in range(2):
        r = api.get("/api/aliveness-test/%2F")
        assert (r.status, r.json) == (200, {"status": "ok"})
    q = api.get("/api/queues/%2F/aliveness-test").json
    assert (q["name"], q["durable"], q["messages_ready"] if "messages_ready" in q else 0) == (
        "aliveness-test", False, 0)
    r = api.get("/api/aliveness-test/nosuch")
    assert (r.status, r.json) == (404, NOT_FOUND)
    assert api.put("/api/aliveness-test/%2F", {}).status == 405


@pytest.mark.parametrize("path,body", [
    ("/api/health/checks/virtual-hosts", {"status": "ok"}),
    ("/api/health/checks/node-is-quorum-critical", {"status": "ok", "reason": "single node cluster"}),
    ("/api/health/checks/node-is-mirror-sync-critical", {"status": "ok", "reason": "single node cluster"}),
])
def test_health_checks_ok(api, path, body):
    r = api.get(path)
    assert (r.status, r.json) == (200, body)
    r = api.post(path, {})
    assert (r.status, r.headers.get("allow")) == (405, "GET")


def test_port_listener(mgmt_broker, api):
    r = api.get("/api/health/checks/port-listener/%d" % mgmt_broker.port)
    assert (r.status, r.json) == (200, {"status": "ok", "port": mgmt_broker.port})
    r = api.get("/api/health/checks/port-listener/%d" % api.port)
    assert (r.status, r.json) == (200, {"status": "ok", "port": api.port})
    free = next(p for p in range(1024, 2048) if p not in (mgmt_broker.port, api.port, mgmt_broker.prom.port))
    r = api.get("/api/health/checks/port-listener/%d" % free)
    assert (r.status, r.json) == (503, {"status": "failed", "reason": "No active listener", "missing": free,
                                        "ports": [mgmt_broker.port, api.port, mgmt_broker.prom.port]})
    for bad in ("abc", "70000", "-1", "12x"):
        r = api.get("/api/health/checks/port-listener/" + bad)
        assert (r.status, r.json) == (400, {"error": "bad_request", "reason": "Invalid port"})


def test_protocol_listener(api):
    """RabbitMQ 3.10's answers: the protocol as named after its aliases
    (amqp091 is amqp, amqps is amqp/ssl), and on a miss the protocols that
    do have a listener."""
    for asked, name in (("amqp", "amqp"), ("amqp091", "amqp"), ("amqp0-9-1", "amqp"), ("http", "http"),
                        ("prometheus", "http/prometheus")):
        r = api.get("/api/health/checks/protocol-listener/" + asked)
        assert (r.status, r.json) == (200, {"status": "ok", "protocol": name})
    for asked, name in (("stomp", "stomp"), ("amqps", "amqp/ssl"), ("clustering", "clustering")):
        r = api.get("/api/health/checks/protocol-listener/" + asked)
        assert (r.status, r.json) == (503, {"status": "failed", "reason": "No active listener", "missing": name,
                                            "protocols": ["amqp", "http", "http/prometheus"]})


def test_alarm_checks_still_answer(api):
    assert api.get("/api/health/checks/alarms").json == {"status": "ok"}
    assert api.get("/api/health/checks/nosuch").status == 404


def test_node_resources(mgmt_broker, api):
    node = api.get("/api/overview").json["node"]
    assert (api.get("/api/cluster-name").status, api.get("/api/cluster-name").json) == (200, {"name": node})
    assert api.get("/api/extensions").json == []
    assert api.get("/api/feature-flags").json == []
    assert api.get("/api/auth").json == {"enable_uaa": False, "uaa_client_id": "", "uaa_location": ""}
    assert api.delete("/api/cluster-name").status == 405


def test_parameters(api):
    for path in ("/api/parameters", "/api/parameters/shovel", "/api/parameters/shovel/%2F"):
        r = api.get(path)
        assert (r.status, r.json) == (200, []), path
    for path in ("/api/parameters/shovel/nosuch", "/api/parameters/shovel/%2F/x"):
        r = api.get(path)
        assert (r.status, r.json) == (404, NOT_FOUND), path


def test_connection_identity(mgmt_broker, api):
    """Java/Go/bunny's connection_name shows as user_provided_name; the
    client's properties, the mechanism and the octet counts are listed."""
    props = {"connection_name": "billing-worker-1", "product": "warren-tests"}
    c = pika.BlockingConnection(mgmt_broker.params(client_properties=props))
    try:
        local = c._impl._transport._sock.getsockname()
        name = "%s:%d -> %s:%d" % (local[0], local[1], mgmt_broker.host, mgmt_broker.port)
        conn = wait_for(lambda: (lambda r: r.json if r.status == 200 else None)(
            api.get("/api/connections/" + quote(name))), what="the connection to be listed")
        assert conn["user_provided_name"] == "billing-worker-1"
        assert conn["client_properties"]["connection_name"] == "billing-worker-1"
        assert conn["client_properties"]["product"] == "warren-tests"
        assert conn["client_properties"]["capabilities"]["publisher_confirms"] is True
        assert conn["auth_mechanism"] == "PLAIN"
        # At least the protocol header and start-ok in, connection.start out.
        assert conn["recv_oct"] > 8 + len(json.dumps(props)) and conn["send_oct"] > 300
        assert {k: conn[k] for k in ("ssl", "ssl_protocol", "ssl_key_exchange", "ssl_cipher", "ssl_hash",
                                     "peer_cert_subject", "peer_cert_issuer", "peer_cert_validity")} == {
            "ssl": False, "ssl_protocol": None, "ssl_key_exchange": None, "ssl_cipher": None,
            "ssl_hash": None, "peer_cert_subject": None, "peer_cert_issuer": None, "peer_cert_validity": None}
        before = conn["recv_oct"]
        c.channel().queue_declare("", exclusive=True)
        after = api.get("/api/connections/" + quote(name)).json
        assert after["recv_oct"] > before
    finally:
        c.close()
    c = mgmt_broker.connect()
    try:
        conns = wait_for(lambda: api.get("/api/connections").json, what="a connection")
        assert all("user_provided_name" not in x for x in conns)
    finally:
        c.close()


class CountingConnection(amqp_raw.RawConnection):
    """A raw client that counts every octet it sends and receives."""

    def __init__(self, host, port):
        super().__init__(host, port)
        self.sent = self.received = 0

    def send(self, data):
        self.sent += len(data)
        super().send(data)

    def _fill(self, deadline):
        before = len(self.buf)
        super()._fill(deadline)
        self.received += len(self.buf) - before


def test_octet_counts_are_exact(mgmt_broker, api):
    """recv_oct and send_oct are the octets on the wire both ways: after a
    handshake, a declare, a publish and a get whose replies the client has
    read, they equal what the client sent and received."""
    with CountingConnection(mgmt_broker.host, mgmt_broker.port) as c:
        c.handshake()
        c.open_channel(1)
        c.send(amqp_raw.queue_declare(1, "octets", exclusive=True))
        c.expect(amqp_raw.QUEUE_DECLARE_OK, channel=1)
        body = b"x" * 5000
        c.send(amqp_raw.basic_publish(1, "", "octets") + amqp_raw.header_frame(1, len(body))
               + amqp_raw.body_frame(1, body))
        c.send(amqp_raw.basic_get(1, "octets"))
        c.expect(amqp_raw.BASIC_GET_OK, channel=1)
        c.read_frame()  # the content header
        assert c.read_frame().payload == body
        local = c.sock.getsockname()
        name = "%s:%d -> %s:%d" % (local[0], local[1], mgmt_broker.host, mgmt_broker.port)
        conn = api.get("/api/connections/" + quote(name)).json
        assert (conn["recv_oct"], conn["send_oct"]) == (c.sent, c.received)
