# SPDX-License-Identifier: MIT
# Cluster-wide definitions (docs/CLUSTERING.md, "Definitions") on a real
# three-node cluster of warrend processes on loopback: what one node declares
# every node knows (passive declares, the management API); an inequivalent
# redeclaration on another node gets RabbitMQ's 406; with one node killed the
# other two still change definitions and the node catches up when restarted
# (its durable queue with its messages too); with two killed, a change on the
# survivor fails with 541 in bounded time while routing goes on, and all
# converge once they are back; a node partitioned from the others by the
# fault-injecting proxies refuses changes while the majority goes on, and
# converges after the heal. Every wait is a condition with a deadline.
# warren only.
import time

import pika
import pytest

from cluster import DEADLINE, Cluster, attempt
from helpers import wait_for

# A change waits at most WR_META_TIMEOUT_MS (5 s) for its commit.
CHANGE_TIMEOUT = 5.0


def change(node, fn, timeout=DEADLINE):
    """fn(channel) on node, again while no leader is elected yet (541)."""
    def done():
        e = attempt(node, fn)
        assert e is None or e.reply_code == 541, e
        return e is None
    wait_for(done, timeout=timeout, what="a change on %s to commit" % node.name)


def knows_exchange(node, name):
    return attempt(node, lambda ch: ch.exchange_declare(name, passive=True)) is None


def knows_queue(node, name):
    return attempt(node, lambda ch: ch.queue_declare(name, passive=True)) is None


def wait_known(nodes, exchanges=(), queues=()):
    for n in nodes:
        for x in exchanges:
            wait_for(lambda: knows_exchange(n, x), what="%s to know exchange %s" % (n.name, x))
        for q in queues:
            wait_for(lambda: knows_queue(n, q), what="%s to know queue %s" % (n.name, q))


def topology(ch):
    ch.exchange_declare("x", "topic", durable=True)
    ch.queue_declare("q", durable=True)
    ch.queue_bind("q", "x", "a.#")


def test_definitions_seen_on_every_node(cluster):
    n1, n2, n3 = (cluster.nodes[n] for n in ("n1", "n2", "n3"))
    change(n1, topology)
    wait_known([n1, n2, n3], exchanges=["x"], queues=["q"])
    for n in (n2, n3):
        r = n.http().get("/api/exchanges/%2F/x")
        assert r.status == 200 and r.json["type"] == "topic", r
    # A change made on another node is seen everywhere too.
    change(n2, lambda ch: ch.exchange_declare("y", "fanout"))
    wait_known([n1, n2, n3], exchanges=["y"])
    # The binding was made once, on the queue's home: routing on n1 reaches q.
    conn = n1.connect()
    ch = conn.channel()
    ch.basic_publish("x", "a.b", b"hello")
    wait_for(lambda: ch.queue_declare("q", passive=True).method.message_count == 1, what="q to hold it")
    conn.close()
    # Deleting on n3 deletes everywhere.
    change(n3, lambda ch: ch.exchange_delete("y"))
    for n in (n1, n2, n3):
        wait_for(lambda: not knows_exchange(n, "y"), what="%s to forget y" % n.name)


def test_pipelined_declare_then_bind(cluster):
    """Frames right behind a declare (nowait: nothing waits for the reply)
    wait for it: the bind finds the queue, the publish the binding."""
    n2 = cluster.nodes["n2"]
    change(n2, lambda ch: ch.exchange_declare("px", "direct"))
    conn = n2.connect()
    ch = conn.channel()
    ch._impl.queue_declare("pq", callback=None)
    ch._impl.queue_bind("pq", "px", "k", callback=None)
    ch.basic_publish("px", "k", b"m")
    assert ch.queue_declare("pq", passive=True).method.message_count == 1
    conn.close()


def test_api_nodes_shows_the_metadata_group(cluster):
    n1 = cluster.nodes["n1"]
    change(n1, lambda ch: ch.exchange_declare("s", "direct"))

    def stores():
        return {n.name: n.nodes()[n.name]["metadata_store"] for n in cluster.nodes.values()}

    def agreed():
        st = stores()
        leaders = {s["leader"] for s in st.values()}
        applied = {s["applied"] for s in st.values()}
        return len(leaders) == 1 and None not in leaders and len(applied) == 1 and st
    st = wait_for(agreed, what="every node to agree on the leader and what is applied")
    roles = sorted(s["role"] for s in st.values())
    assert roles == ["follower", "follower", "leader"], st
    leader = st["n1"]["leader"]
    assert st[leader]["role"] == "leader"
    for s in st.values():
        assert sorted(s["members"]) == ["n1", "n2", "n3"]
        assert s["term"] >= 1 and s["commit"] >= s["applied"] >= 1


def test_auto_delete_on_the_home_deletes_everywhere(cluster):
    n1, n2 = cluster.nodes["n1"], cluster.nodes["n2"]
    conn = n1.connect()
    ch = conn.channel()
    wait_for(lambda: attempt(n1, lambda c: c.queue_declare("ad", auto_delete=True)) is None,
             what="ad to be declared")
    wait_known([n2], queues=["ad"])
    tag = ch.basic_consume("ad", lambda *a: None)
    ch.basic_cancel(tag)
    wait_for(lambda: not knows_queue(n2, "ad"), what="n2 to forget the auto-deleted queue")
    assert not knows_queue(n1, "ad")
    # A consumer still there when the node stops: its queue goes as the
    # connection is closed at shutdown, and the node exits cleanly.
    change(n1, lambda c: c.queue_declare("ad2", auto_delete=True))
    ch.basic_consume("ad2", lambda *a: None)
    cluster.stop("n1")


def http_change(node, method, path, body=None, timeout=DEADLINE):
    """A management API write, again while no leader is elected yet (503)."""
    def done():
        r = node.http().request(method, path, body=body)
        assert r.status != 503 or r.json["error"] == "timeout", r
        return r if r.status != 503 else None
    return wait_for(done, timeout=timeout, what="%s %s on %s to commit" % (method, path, node.name))


def test_management_api_writes_go_through_the_group(cluster):
    n1, n2, n3 = (cluster.nodes[n] for n in ("n1", "n2", "n3"))
    assert http_change(n2, "PUT", "/api/exchanges/%2F/hx", {"type": "fanout", "durable": True}).status == 201
    assert http_change(n3, "PUT", "/api/queues/%2F/hq", {"durable": True}).status == 201
    wait_known([n1, n2, n3], exchanges=["hx"], queues=["hq"])
    r = http_change(n1, "POST", "/api/bindings/%2F/e/hx/q/hq", {"routing_key": "k"})
    assert r.status == 201 and r.headers["location"] == "hq/k", r
    r = n1.http().post("/api/bindings/%2F/e/nope/q/hq", {"routing_key": "k"})
    assert r.status == 404 and r.json["reason"] == "no exchange 'nope' in vhost '/'", r
    # The binding was made on hq's home (n3): routing there reaches it.
    conn = n3.connect()
    ch = conn.channel()
    ch.basic_publish("hx", "", b"via-api")
    wait_for(lambda: ch.queue_declare("hq", passive=True).method.message_count == 1, what="hq to hold it")
    conn.close()
    assert http_change(n2, "DELETE", "/api/exchanges/%2F/hx").status == 204
    for n in (n1, n2, n3):
        wait_for(lambda: not knows_exchange(n, "hx"), what="%s to forget hx" % n.name)


def test_inequivalent_redeclare_on_another_node(cluster):
    n1, n2, n3 = (cluster.nodes[n] for n in ("n1", "n2", "n3"))
    change(n1, lambda ch: (ch.exchange_declare("ex", "direct"), ch.queue_declare("iq", durable=True)))
    wait_known([n2, n3], exchanges=["ex"], queues=["iq"])
    e = attempt(n2, lambda ch: ch.exchange_declare("ex", "fanout"))
    assert (e.reply_code, e.reply_text) == (
        406, "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'ex' in vhost '/': "
             "received 'fanout' but current is 'direct'")
    e = attempt(n3, lambda ch: ch.queue_declare("iq", durable=True, arguments={"x-max-length": 5}))
    assert (e.reply_code, e.reply_text) == (
        406, "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'iq' in vhost '/': "
             "received the value '5' of type 'signedint' but current is none")
    # An equivalent redeclaration elsewhere is fine.
    assert attempt(n3, lambda ch: ch.queue_declare("iq", durable=True)) is None


def publish_confirmed(node, exchange, key, body):
    conn = node.connect()
    ch = conn.channel()
    ch.confirm_delivery()
    ch.basic_publish(exchange, key, body, pika.BasicProperties(delivery_mode=2), mandatory=True)
    conn.close()


def get_one(node, queue):
    conn = node.connect()
    try:
        m, _, body = conn.channel().basic_get(queue, auto_ack=True)
        return body if m is not None else None
    finally:
        conn.close()


def test_one_node_down_then_catches_up(cluster):
    n1, n2, n3 = (cluster.nodes[n] for n in ("n1", "n2", "n3"))
    # n3 is the home of a durable queue holding a persistent message.
    change(n3, lambda ch: ch.queue_declare("home3", durable=True))
    publish_confirmed(n3, "", "home3", b"kept")
    wait_known([n1], queues=["home3"])
    cluster.kill("n3")
    change(n1, lambda ch: ch.exchange_declare("while-down", "direct", durable=True), timeout=CHANGE_TIMEOUT * 3)
    change(n2, lambda ch: ch.exchange_declare("while-down-2", "fanout"), timeout=CHANGE_TIMEOUT * 3)
    cluster.start("n3")
    cluster.wait_all_up()
    wait_known([n3], exchanges=["while-down", "while-down-2"], queues=["home3"])
    assert get_one(n3, "home3") == b"kept"


def test_majority_down(cluster):
    n1 = cluster.nodes["n1"]
    change(n1, topology)
    wait_known([cluster.nodes["n2"], cluster.nodes["n3"]], exchanges=["x"])
    cluster.kill("n2")
    cluster.kill("n3")
    start = time.monotonic()
    e = attempt(n1, lambda ch: ch.exchange_declare("z", "direct"))
    took = time.monotonic() - start
    assert e is not None and (e.reply_code, e.reply_text) == (
        541, "INTERNAL_ERROR - failed to declare exchange 'z' in vhost '/' because the operation timed out"), e
    assert took < CHANGE_TIMEOUT + 3, took
    e = attempt(n1, lambda ch: ch.queue_declare("zq", durable=True))
    assert e.reply_code == 541 and e.reply_text == (
        "INTERNAL_ERROR - Could not declare queue 'zq' in vhost '/' on node 'n1' because the metadata store "
        "operation timed out"), e
    r = n1.http().put("/api/exchanges/%2F/hz", {"type": "direct"})
    assert (r.status, r.json) == (503, {"error": "timeout", "reason": "failed to declare exchange 'hz' in vhost "
                                                                     "'/' because the operation timed out"}), r
    assert n1.alive()
    assert not knows_exchange(n1, "z")
    # Routing of what is known goes on.
    publish_confirmed(n1, "x", "a.z", b"routed")
    assert get_one(n1, "q") == b"routed"
    cluster.start("n2")
    cluster.start("n3")
    cluster.wait_all_up()
    change(n1, lambda ch: ch.exchange_declare("z", "direct"))
    wait_known(cluster.nodes.values(), exchanges=["x", "z"], queues=["q"])


@pytest.mark.parametrize("mode", ["cut", "drop"])
def test_partition_minority_refuses_changes_then_converges(tmp_path, warrend_binary, mode):
    """n1 cut off from n2 and n3 by the fault-injecting proxies on its peer
    links (reset, or silently dropping every byte) while its clients stay
    connected to it: a change on n1 fails with 541 and changes nothing, the
    majority side keeps changing definitions, routing on n1 goes on; after
    the heal every node converges on the majority's definitions."""
    c = Cluster(tmp_path, proxies=True)
    try:
        c.start_all()
        c.wait_all_up()
        n1, n2, n3 = (c.nodes[n] for n in ("n1", "n2", "n3"))
        change(n1, topology)  # q's home is n1
        wait_known([n1, n2, n3], exchanges=["x"], queues=["q"])
        c.partition(["n1"], ["n2", "n3"], mode)
        c.wait_running("n1", {"n2": False, "n3": False})
        # The majority may need a new leader if n1 led: retried while 541.
        change(n2, lambda ch: ch.exchange_declare("during", "fanout", durable=True))
        e = attempt(n1, lambda ch: ch.exchange_declare("minority", "direct"))
        assert e is not None and (e.reply_code, e.reply_text) == (
            541, "INTERNAL_ERROR - failed to declare exchange 'minority' in vhost '/' because the operation "
                 "timed out"), e
        assert not knows_exchange(n1, "during")
        publish_confirmed(n1, "x", "a.b", b"in the minority")
        c.heal()
        c.wait_all_up()
        wait_known([n1, n2, n3], exchanges=["x", "during"], queues=["q"])
        for n in (n1, n2, n3):
            assert not knows_exchange(n, "minority")
        assert get_one(n1, "q") == b"in the minority"
    finally:
        c.stop_all()
