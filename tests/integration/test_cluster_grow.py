# SPDX-License-Identifier: MIT
# Growing a cluster with a node that no member's file lists
# (docs/CLUSTERING.md, "Membership"): n1-n3 list only each other; n4's file
# lists n1-n4 and it joins through n1. The members learn n4's name from its
# links (they never dial it), serve it a classic and a quorum queue declared
# before it joined, and after the metadata leader is killed n4 still sees
# definition changes. Every wait is a condition with a deadline. warren only.
import pika
import pytest

from cluster import DEADLINE, Cluster, attempt
from helpers import wait_for
from test_cluster_membership import change, ctl, leader, members  # noqa: F401 (ctl is a fixture)

QQ = {"x-queue-type": "quorum"}


def section(c, name):
    """n1-n3 list each other only; n4 lists all four, itself as a joiner."""
    s = c.section(c.nodes[name])
    if name != "n4":
        s["nodes"] = [e for e in s["nodes"] if e["name"] != "n4"]
    for e in s["nodes"]:
        if e["name"] == "n4":
            e["seed"] = False
    return s


@pytest.fixture
def grown(warrend_binary, tmp_path, ctl):  # noqa: F811
    c = Cluster(tmp_path, names=("n1", "n2", "n3", "n4"))
    for n in ("n1", "n2", "n3"):
        c.start(n, config={"cluster": section(c, n)})
    for n in ("n1", "n2", "n3"):
        c.wait_running(n, {m: True for m in ("n1", "n2", "n3") if m != n})
    yield c
    c.stop_all()


def get_body(node, queue):
    conn = node.connect()
    try:
        return conn.channel().basic_get(queue, auto_ack=True)[2]
    finally:
        conn.close()


def consume_one(node, queue):
    """The first message a consumer on node receives (basic.get through a
    non-member's proxy of a quorum queue answers empty: a known gap)."""
    conn = node.connect()
    got = []
    try:
        ch = conn.channel()
        ch.basic_consume(queue, lambda chx, m, p, body: got.append(body), auto_ack=True)
        wait_for(lambda: conn.process_data_events(0.05) or got, DEADLINE, "a message from %s" % queue)
        return got[0]
    finally:
        conn.close()


def test_join_a_node_no_member_lists(grown, ctl):  # noqa: F811
    n1, n2, n3, n4 = (grown.nodes[n] for n in ("n1", "n2", "n3", "n4"))
    wait_for(lambda: leader(n1) is not None, timeout=DEADLINE, what="a leader")

    def before(ch):
        ch.queue_declare("classic-before", durable=True)
        ch.queue_declare("quorum-before", durable=True, arguments=QQ)
        ch.basic_publish("", "classic-before", b"classic, before n4", pika.BasicProperties(delivery_mode=2))
        ch.confirm_delivery()
        ch.basic_publish("", "quorum-before", b"quorum, before n4", pika.BasicProperties(delivery_mode=2))
    change(n1, before)

    grown.start("n4", config={"cluster": section(grown, "n4")})
    # n4 dials the three; they hold its links pending (not a member) until its JOIN.
    wait_for(lambda: n4.running() == {"n1": True, "n2": True, "n3": True}, timeout=DEADLINE, what="n4's links")
    assert "n4" not in n1.running()
    assert ctl(n4, "cluster", "join", "n1") == (0, "joined the cluster through n1\n", "")
    assert "cluster: node n4, which cluster.nodes does not list, links in as a joiner" in n1.log()

    # Every node lists n4 as a running voter: n2 and n3 admitted its links once it was a member.
    for n in (n1, n2, n3, n4):
        wait_for(lambda: members(n).get("n4") == (True, True), timeout=DEADLINE,
                 what="%s to list n4 as a running voter" % n.name)
        rc, out, err = ctl(n, "cluster", "status")
        rows = [line.split() for line in out.splitlines()[2:]]
        assert rc == 0 and ["n4", "true", "true", "true" if n is n4 else "false"] in rows, (out, err)
    for n in (n2, n3):
        assert "cluster: node n4, which cluster.nodes does not list, links in as a member" in n.log(), n.log()
    wait_for(lambda: n1.nodes()["n4"].get("running") is True and "mem_used" in n1.nodes()["n4"],
             timeout=DEADLINE, what="n1 to show n4's report in /api/nodes")

    # Queues declared before it joined are served on n4.
    wait_for(lambda: get_body(n4, "classic-before") == b"classic, before n4", timeout=DEADLINE,
             what="n4 to get the classic queue's message")
    assert consume_one(n4, "quorum-before") == b"quorum, before n4"

    # The metadata leader dies; n4 still sees definitions changed elsewhere.
    old = leader(n4)
    assert old in ("n1", "n2", "n3"), old
    grown.kill(old)
    rest = [n for n in (n1, n2, n3) if n.name != old]
    wait_for(lambda: leader(n4) not in (None, old), timeout=DEADLINE, what="a new leader")
    change(rest[0], lambda ch: ch.exchange_declare("after-" + old, "fanout"))
    wait_for(lambda: attempt(n4, lambda ch: ch.exchange_declare("after-" + old, passive=True)) is None,
             timeout=DEADLINE, what="n4 to know the exchange declared on %s" % rest[0].name)
    for n in rest + [n4]:
        assert members(n)["n4"] == (True, True)
