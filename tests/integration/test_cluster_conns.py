# SPDX-License-Identifier: MIT
# Another node's connections and consumers in the management API
# (docs/CLUSTERING.md, "Membership"): GET and DELETE /api/connections/NAME on
# n1 of a connection on n2 go to n2 over the link (DELETE closes it with
# RabbitMQ's 320 text, or the X-Reason header's); /api/consumers and the
# overview's consumers count every node's consumers once; a node with 1,000
# connections has them all listed by the others. Every wait is a condition
# with a deadline. warren only.
import socket
from urllib.parse import quote

import amqp_raw as raw

import pika.exceptions as pex

from cluster import DEADLINE
from helpers import wait_for
from test_cluster_membership import change, leader


def conn_on(observer, node):
    """The name of the only connection observer lists on node, once it does."""
    def one():
        names = [c["name"] for c in observer.http().get("/api/connections").json if c["node"] == node.name]
        return names[0] if len(names) == 1 else None
    return wait_for(one, timeout=DEADLINE, what="%s to list a connection on %s" % (observer.name, node.name))


def closed_with(conn):
    """The connection.close the broker sent conn (code, text), waiting for it."""
    def closed():
        try:
            conn.process_data_events(0.05)
        except pex.ConnectionClosedByBroker as e:
            return (e.reply_code, e.reply_text)
        return None
    return wait_for(closed, timeout=DEADLINE, what="the connection to be closed")


def test_get_and_delete_another_nodes_connection(cluster):
    n1, n2, n3 = (cluster.nodes[n] for n in ("n1", "n2", "n3"))
    conn = n2.connect()
    name = conn_on(n1, n2)
    r = n1.http().get("/api/connections/" + quote(name, safe=""))
    assert r.status == 200, r
    assert (r.json["name"], r.json["node"], r.json["user"], r.json["vhost"]) == (name, "n2", "guest", "/")
    assert r.json == n2.http().get("/api/connections/" + quote(name, safe="")).json | {
        k: r.json[k] for k in ("recv_oct", "send_oct")}
    assert n1.http().get("/api/connections/" + quote("no such connection", safe="")).status == 404

    assert n3.http().delete("/api/connections/" + quote(name, safe="")).status == 204
    assert closed_with(conn) == (320, "CONNECTION_FORCED - Closed via management plugin")
    assert n1.http().get("/api/connections/" + quote(name, safe="")).status == 404

    conn = n3.connect()
    name = conn_on(n1, n3)
    r = n1.http().delete("/api/connections/" + quote(name, safe=""), headers={"X-Reason": "maintenance"})
    assert r.status == 204
    assert closed_with(conn) == (320, "CONNECTION_FORCED - maintenance")


def test_consumers_of_every_node(cluster):
    n1, n2, n3 = (cluster.nodes[n] for n in ("n1", "n2", "n3"))
    wait_for(lambda: leader(n1) is not None, timeout=DEADLINE, what="a leader")
    change(n1, lambda ch: ch.queue_declare("on-n1", durable=True))
    change(n1, lambda ch: ch.queue_declare("qq", durable=True, arguments={"x-queue-type": "quorum"}))
    c2, c3 = n2.connect(), n3.connect()
    c2.channel().basic_consume("on-n1", lambda *a: None, consumer_tag="tag-n2")
    c3.channel().basic_consume("qq", lambda *a: None, consumer_tag="tag-n3")
    c1 = n1.connect()
    c1.channel().basic_consume("on-n1", lambda *a: None, consumer_tag="tag-n1")
    want = [("on-n1", "tag-n1", "n1"), ("on-n1", "tag-n2", "n2"), ("qq", "tag-n3", "n3")]

    def consumers(node):
        c2.process_data_events(0)
        c3.process_data_events(0)
        return sorted((x["queue"]["name"], x["consumer_tag"], x["channel_details"]["node"])
                      for x in node.http().get("/api/consumers").json)
    for n in (n1, n2, n3):
        wait_for(lambda: consumers(n) == want, timeout=DEADLINE, what="%s to list the three consumers" % n.name)
        wait_for(lambda: n.http().get("/api/overview").json["object_totals"]["consumers"] == 3,
                 timeout=DEADLINE, what="%s's overview to count three consumers" % n.name)
    assert [x["consumer_tag"] for x in n1.http().get("/api/consumers/%2F").json] == ["tag-n1", "tag-n2", "tag-n3"]
    for c in (c1, c2, c3):
        c.close()


def test_a_thousand_connections_listed_elsewhere(cluster):
    """Each opened with its handshake and a channel.open pipelined, never read."""
    n1, n2 = cluster.nodes["n1"], cluster.nodes["n2"]
    hello = (b"AMQP\x00\x00\x09\x01" + raw.start_ok() + raw.tune_ok(2047, 131072, 0) + raw.connection_open("/")
             + raw.channel_open(1))
    socks = [socket.create_connection(("127.0.0.1", n2.amqp_port)) for _ in range(1000)]
    try:
        for s in socks:
            s.sendall(hello)

        def listed(path):
            return sum(1 for x in n1.http().get(path).json if x["node"] == "n2")
        wait_for(lambda: listed("/api/connections") == 1000, timeout=DEADLINE * 2,
                 what="n1 to list n2's 1,000 connections")
        assert listed("/api/channels") == 1000
        assert n1.http().get("/api/overview").json["object_totals"]["connections"] == 1000
    finally:
        for s in socks:
            s.close()
