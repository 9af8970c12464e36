# SPDX-License-Identifier: MIT
# Operating quorum queues (docs/QUORUM.md, "Operating quorum queues") on a
# real 4-node cluster: quorum queues get 3 members, so one node is not a
# member. Each member's status, leadership handed by hand, members added and
# removed (the group's Raft membership and the record every node reads),
# grown and shrunk per node, leaders rebalanced, and a consumer on a node
# that is not a member surviving the loss of the member it went through;
# the refusals with RabbitMQ's status codes and reasons; warrenctl's
# commands for all of it. Every wait is a condition with a deadline.
# warren only.
import os
import subprocess

import pytest

from cluster import DEADLINE, attempt
from conftest import running_cluster
from helpers import wait_for
from test_cluster_quorum import declare, drain, publish_confirmed, queue_info
from test_warrenctl import clean_env, warrenctl_path

NODES = ("n1", "n2", "n3", "n4")
LONG = 3 * DEADLINE


@pytest.fixture
def cluster4(warrend_binary, tmp_path):
    yield from running_cluster(tmp_path, names=NODES)


def api(cluster, node="n1"):
    return cluster.nodes[node].http()


def status(cluster, queue, node="n1"):
    r = api(cluster, node).get("/api/queues/quorum/%2F/" + queue + "/status")
    assert r.status == 200, r
    return {row["Node Name"]: row for row in r.json}


def wait_leader(cluster, queue, want, observer="n1"):
    def led():
        info = queue_info(cluster.nodes[observer], queue)
        return info is not None and info.get("leader") == want
    wait_for(led, LONG, "the leader of %s to be %s" % (queue, want))


def error(r, status, err, reason):
    assert (r.status, r.json) == (status, {"error": err, "reason": reason}), r


def ctl(cluster, node, *args):
    path = warrenctl_path()
    if not path or not os.path.exists(path):
        pytest.skip("warrenctl not built (set WARRENCTL or WARREND)")
    home = cluster.tmp / "ctl-home"
    home.mkdir(exist_ok=True)
    p = subprocess.run([path, "--host", "127.0.0.1", "--port", str(cluster.nodes[node].mgmt_port)] + list(args),
                       capture_output=True, timeout=60, env=clean_env(home))
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def busy(r):
    """A 503 saying the metadata group did not commit in time (an election under load): the change
    may still happen, and every change here is idempotent, so it is asked again."""
    j = r.json if r.status == 503 else None
    return isinstance(j, dict) and "timeout" in (j.get("error"), j.get("reason"))


def settled(call):
    """call()'s reply once it is not busy(), asked again until then (within the deadline)."""
    out = []
    wait_for(lambda: out.append(call()) or not busy(out[-1]), LONG, "a committed answer")
    return out[-1]


def ctl_settled(cluster, node, *args):
    """ctl() as settled() asks the API."""
    out = []

    def answered():
        out.append(ctl(cluster, node, *args))
        return not (out[-1][0] == 1 and ": 503 " in out[-1][2] and "timeout" in out[-1][2])
    wait_for(answered, LONG, "a committed answer")
    return out[-1]


# ---------------------------------------------------------------- status and leadership


def test_status_lists_every_member_with_its_figures(cluster4):
    declare(cluster4, "n1", "qs")
    wait_leader(cluster4, "qs", "n1")
    publish_confirmed(cluster4.nodes["n1"], "qs", [b"a", b"b"])
    rows = status(cluster4, "qs")
    assert sorted(rows) == ["n1", "n2", "n3"]
    me = rows["n1"]
    assert (me["Raft State"], me["Membership"]) == ("leader", "voter")
    assert me["Commit Index"] >= 3 and me["Last Applied"] <= me["Commit Index"] <= me["Last Log Index"]
    assert me["Elections"] >= 0 and me["Lag"] == 0 and me["Match Index"] == me["Last Log Index"]
    for n in ("n2", "n3"):
        row = rows[n]
        assert (row["Raft State"], row["Membership"]) == ("follower", "voter"), row
        assert row["Last Log Index"] == "" and isinstance(row["Lag"], int) and row["Lag"] >= 0, row
    follower = status(cluster4, "qs", "n2")["n2"]
    assert follower["Raft State"] == "follower" and follower["Match Index"] == ""


def test_status_refusals(cluster4):
    error(api(cluster4).get("/api/queues/quorum/%2F/nope/status"), 404, "Object Not Found", "Not Found")
    wait_for(lambda: attempt(cluster4.nodes["n1"], lambda ch: ch.queue_declare("classic", durable=True)) is None,
             DEADLINE, "the classic queue's declare to commit")
    error(api(cluster4).get("/api/queues/quorum/%2F/classic/status"), 503, "service_unavailable",
          "classic_queue_not_supported")


def test_transfer_moves_the_leader_and_it_stays(cluster4):
    declare(cluster4, "n1", "qt")
    wait_leader(cluster4, "qt", "n1")
    r = settled(lambda: api(cluster4, "n4").post("/api/queues/quorum/%2F/qt/leader/transfer", {"node": "n3"}))
    assert r.status == 204, r
    wait_leader(cluster4, "qt", "n3")
    assert queue_info(cluster4.nodes["n4"], "qt")["members"][0] == "n3"
    assert status(cluster4, "qt", "n3")["n3"]["Raft State"] == "leader"
    bodies = [b"t%d" % i for i in range(20)]
    publish_confirmed(cluster4.nodes["n2"], "qt", bodies)
    assert drain(cluster4.nodes["n1"], "qt", 20) == bodies


def test_members_in_the_records_order_on_every_node(cluster4):
    """After a transfer the record lists n3 first: members and non-member
    (n4) alike list the members in that order (members used to follow their
    Raft configuration's)."""
    declare(cluster4, "n1", "qo")
    wait_leader(cluster4, "qo", "n1")
    r = settled(lambda: api(cluster4, "n2").post("/api/queues/quorum/%2F/qo/leader/transfer", {"node": "n3"}))
    assert r.status == 204, r
    lists = {}

    def alike():
        lists.update({n: (queue_info(cluster4.nodes[n], "qo") or {}).get("members") for n in NODES})
        return len({repr(v) for v in lists.values()}) == 1 and lists["n4"][0] == "n3"
    wait_for(alike, LONG, "every node to list the members in the record's order")
    assert sorted(lists["n1"]) == ["n1", "n2", "n3"], lists


def test_transfer_refusals(cluster4):
    declare(cluster4, "n1", "qr")
    path = "/api/queues/quorum/%2F/qr/leader/transfer"
    error(api(cluster4).post(path, {"node": "n4"}), 400, "bad_request",
          "node 'n4' is not a member of quorum queue 'qr' in vhost '/'")
    error(api(cluster4).post(path, {}), 400, "bad_request", "[{key_missing,node}]")
    error(api(cluster4).post("/api/queues/quorum/%2F/nope/leader/transfer", {"node": "n2"}), 404,
          "Object Not Found", "Not Found")
    assert api(cluster4).get(path).status == 405
    cluster4.kill("n3")
    cluster4.wait_running("n1", {"n2": True, "n3": False, "n4": True})
    error(api(cluster4).post(path, {"node": "n3"}), 503, "service_unavailable", "node_not_running")


def test_warrenctl_quorum_status_and_transfer(cluster4):
    declare(cluster4, "n1", "qc")
    wait_leader(cluster4, "qc", "n1")
    rc, out, err = ctl_settled(cluster4, "n1", "queues", "transfer_leadership", "qc", "n2")
    assert (rc, out, err) == (0, "leadership of qc goes to n2\n", ""), (rc, out, err)
    wait_leader(cluster4, "qc", "n2")
    rc, out, err = ctl(cluster4, "n2", "queues", "quorum_status", "qc")
    assert rc == 0 and err == "", (rc, out, err)
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["node", "state", "membership"], out
    states = {ln.split()[0]: ln.split()[1] for ln in lines[2:]}
    assert states == {"n1": "follower", "n2": "leader", "n3": "follower"}, out
    rc, out, err = ctl_settled(cluster4, "n1", "queues", "transfer_leadership", "qc", "n4")
    assert (rc, out) == (1, ""), (rc, out, err)
    assert err == ("warrenctl: POST /api/queues/quorum/%2F/qc/leader/transfer: 400 bad_request: node 'n4' is "
                   "not a member of quorum queue 'qc' in vhost '/'\n")


# ---------------------------------------------------------------- adding and removing members


def members_everywhere(cluster, queue, want):
    """Every running node lists exactly these members of queue (in any order)."""
    def agreed():
        return all(queue_info(n, queue) is not None and sorted(queue_info(n, queue)["members"]) == want
                   for n in cluster.nodes.values() if n.alive())
    wait_for(agreed, LONG, "every node to list %s as the members of %s" % (want, queue))


def group_files(cluster, node):
    """The files of the quorum queues' Raft groups in the node's data directory (the metadata group is 1)."""
    snap = os.path.join(cluster.nodes[node].broker.config["data_dir"], "raft", "snap")
    return sorted(os.path.join(d, f) for d in os.listdir(snap) if d != "1"
                  for f in os.listdir(os.path.join(snap, d)))


def test_added_member_holds_every_confirmed_message(cluster4):
    declare(cluster4, "n1", "qa")
    first = [b"a%d" % i for i in range(300)]
    publish_confirmed(cluster4.nodes["n2"], "qa", first)
    assert group_files(cluster4, "n4") == []
    r = settled(lambda: api(cluster4, "n3").post("/api/queues/quorum/%2F/qa/replicas/add", {"node": "n4"}))
    assert r.status == 204, r
    rows = status(cluster4, "qa", "n4")
    assert rows["n4"]["Membership"] == "voter" and rows["n4"]["Last Applied"] >= 300, rows
    members_everywhere(cluster4, "qa", ["n1", "n2", "n3", "n4"])
    assert group_files(cluster4, "n4") != []
    second = [b"b%d" % i for i in range(50)]
    publish_confirmed(cluster4.nodes["n4"], "qa", second)
    # n1 leaves the group; then n1 and n2, two of the old members, are killed.
    r = settled(lambda: api(cluster4, "n3").delete("/api/queues/quorum/%2F/qa/replicas/delete",
                                                   body={"node": "n1"}))
    assert r.status == 204, r
    members_everywhere(cluster4, "qa", ["n2", "n3", "n4"])
    cluster4.kill("n1")
    cluster4.kill("n2")
    assert drain(cluster4.nodes["n4"], "qa", 350) == first + second


def test_deleted_member_drops_its_copy_and_the_queue_goes_on(cluster4):
    declare(cluster4, "n1", "qd")
    publish_confirmed(cluster4.nodes["n1"], "qd", [b"x%d" % i for i in range(10)])
    assert group_files(cluster4, "n1") != []
    r = settled(lambda: api(cluster4, "n4").delete("/api/queues/quorum/%2F/qd/replicas/delete",
                                                   body={"node": "n1"}))
    assert r.status == 204, r
    members_everywhere(cluster4, "qd", ["n2", "n3"])
    wait_for(lambda: group_files(cluster4, "n1") == [], DEADLINE, "n1 to delete its copy of qd's group")
    assert sorted(status(cluster4, "qd", "n2")) == ["n2", "n3"]
    more = [b"y%d" % i for i in range(10)]
    publish_confirmed(cluster4.nodes["n1"], "qd", more)
    assert drain(cluster4.nodes["n1"], "qd", 20) == [b"x%d" % i for i in range(10)] + more


def test_member_refusals_as_rabbitmq(cluster4):
    declare(cluster4, "n1", "qm")
    declare(cluster4, "n1", "q1", {"x-quorum-initial-group-size": 1})
    add, delete = "/api/queues/quorum/%2F/{}/replicas/add", "/api/queues/quorum/%2F/{}/replicas/delete"
    error(api(cluster4).post(add.format("qm"), {"node": "n9"}), 503, "service_unavailable", "node_not_running")
    error(api(cluster4).post(add.format("qm"), {}), 400, "bad_request", "[{key_missing,node}]")
    error(api(cluster4).post(add.format("nope"), {"node": "n4"}), 404, "Object Not Found", "Not Found")
    error(api(cluster4).delete(delete.format("q1"), body={"node": "n1"}), 503, "service_unavailable", "last_node")
    # RabbitMQ's add_member and delete_member are idempotent.
    assert settled(lambda: api(cluster4).post(add.format("qm"), {"node": "n2"})).status == 204
    assert settled(lambda: api(cluster4).delete(delete.format("qm"), body={"node": "n4"})).status == 204
    members_everywhere(cluster4, "qm", ["n1", "n2", "n3"])
    assert api(cluster4).get(add.format("qm")).status == 405
    cluster4.kill("n4")
    cluster4.wait_running("n1", {"n2": True, "n3": True, "n4": False})
    error(api(cluster4).post(add.format("qm"), {"node": "n4"}), 503, "service_unavailable", "node_not_running")


def test_warrenctl_add_and_delete_member(cluster4):
    declare(cluster4, "n1", "qw")
    assert ctl_settled(cluster4, "n2", "queues", "add_member", "qw", "n4") == (0, "n4 is a member of qw\n", "")
    members_everywhere(cluster4, "qw", ["n1", "n2", "n3", "n4"])
    assert ctl_settled(cluster4, "n2", "queues", "delete_member", "qw", "n2") == \
        (0, "n2 is no longer a member of qw\n", "")
    members_everywhere(cluster4, "qw", ["n1", "n3", "n4"])
    rc, out, err = ctl_settled(cluster4, "n1", "queues", "add_member", "nope", "n4")
    assert (rc, out, err) == (1, "", "warrenctl: POST /api/queues/quorum/%2F/nope/replicas/add: 404 Object Not "
                                     "Found: Not Found\n")


# ---------------------------------------------------------------- many queues at once


def leaders(cluster, queues, observer="n1"):
    return {q: queue_info(cluster.nodes[observer], q).get("leader") for q in queues}


def test_grow_even_then_all_and_shrink(cluster4):
    declare(cluster4, "n1", "g1")
    declare(cluster4, "n1", "g2")
    declare(cluster4, "n1", "g3", {"x-quorum-initial-group-size": 2})
    declare(cluster4, "n2", "solo", {"x-quorum-initial-group-size": 1})
    grow = "/api/queues/quorum/replicas/on/n4/grow"
    body = {"vhost_pattern": "^/$", "queue_pattern": "^g", "strategy": "even"}
    assert settled(lambda: api(cluster4).post(grow, body)).status == 204
    # Answered once n1 applied the record changes: its status lists the records' members.
    assert [sorted(status(cluster4, q)) for q in ("g1", "g2", "g3")] == \
        [["n1", "n2", "n3"], ["n1", "n2", "n3"], ["n1", "n2", "n4"]]
    members_everywhere(cluster4, "g3", ["n1", "n2", "n4"])
    assert settled(lambda: api(cluster4).post(grow, dict(body, strategy="all"))).status == 204
    for q in ("g1", "g2"):
        members_everywhere(cluster4, q, ["n1", "n2", "n3", "n4"])
    members_everywhere(cluster4, "solo", ["n2"])
    wait_for(lambda: status(cluster4, "g1", "n4")["n4"]["Membership"] == "voter", LONG, "n4 to vote in g1")
    r = settled(lambda: api(cluster4, "n3").delete("/api/queues/quorum/replicas/on/n2/shrink"))
    assert r.status == 202, r
    for q, want in (("g1", ["n1", "n3", "n4"]), ("g2", ["n1", "n3", "n4"]), ("g3", ["n1", "n4"]),
                    ("solo", ["n2"])):
        members_everywhere(cluster4, q, want)
    publish_confirmed(cluster4.nodes["n2"], "g3", [b"after"])
    assert drain(cluster4.nodes["n4"], "g3", 1) == [b"after"]


def test_grow_and_shrink_refusals(cluster4):
    grow = "/api/queues/quorum/replicas/on/{}/grow"
    body = {"vhost_pattern": ".*", "queue_pattern": ".*", "strategy": "all"}
    error(api(cluster4).post(grow.format("n9"), body), 404, "Object Not Found", "Not Found")
    error(api(cluster4).post(grow.format("n4"), {"vhost_pattern": ".*", "queue_pattern": ".*"}), 400,
          "bad_request", "[{key_missing,strategy}]")
    error(api(cluster4).post(grow.format("n4"), dict(body, strategy="some")), 400, "bad_request",
          "strategy must be all or even, not 'some'")
    error(api(cluster4).post(grow.format("n4"), dict(body, queue_pattern="(")), 400, "bad_request",
          "invalid regular expression '('")
    error(api(cluster4).delete("/api/queues/quorum/replicas/on/n9/shrink"), 404, "Object Not Found", "Not Found")
    assert api(cluster4).get(grow.format("n4")).status == 405


def test_rebalance_spreads_leaders(cluster4):
    queues = ["r%d" % i for i in range(4)]
    for q in queues:
        declare(cluster4, "n1", q)
    wait_for(lambda: set(leaders(cluster4, queues).values()) == {"n1"}, LONG, "n1 to lead every queue")
    r = settled(lambda: api(cluster4, "n2").post("/api/rebalance/queues", {}))
    assert r.status == 204, r

    def spread():
        placed = list(leaders(cluster4, queues).values())
        return None not in placed and max(placed.count(n) for n in placed) <= 2 and len(set(placed)) == 3
    wait_for(spread, LONG, "the leaders to spread over n1, n2 and n3")
    assert api(cluster4).get("/api/rebalance/queues").status == 405


def test_warrenctl_grow_shrink_rebalance(cluster4):
    declare(cluster4, "n1", "w1")
    assert ctl_settled(cluster4, "n1", "queues", "grow", "n4", "all", "--queue-pattern", "^w") == \
        (0, "quorum queues grow onto n4\n", "")
    members_everywhere(cluster4, "w1", ["n1", "n2", "n3", "n4"])
    assert ctl_settled(cluster4, "n1", "queues", "shrink", "n3") == (0, "quorum queues shrink off n3\n", "")
    members_everywhere(cluster4, "w1", ["n1", "n2", "n4"])
    assert ctl_settled(cluster4, "n1", "queues", "rebalance") == (0, "quorum queue leaders rebalanced\n", "")
    rc, out, err = ctl_settled(cluster4, "n1", "queues", "grow", "n4", "odd")
    assert (rc, out) == (2, "") and "the strategy is all or even, not 'odd'" in err, (rc, out, err)


# ---------------------------------------------------------------- clients on a node that is not a member


def test_consumer_on_a_non_member_survives_the_loss_of_its_member(cluster4):
    declare(cluster4, "n1", "qp")
    wait_leader(cluster4, "qp", "n1")
    wait_for(lambda: queue_info(cluster4.nodes["n4"], "qp"), DEADLINE, "n4 to list qp")
    assert queue_info(cluster4.nodes["n4"], "qp")["node"] == "n1"
    conn = cluster4.nodes["n4"].connect()
    got, cancelled = [], []
    try:
        ch = conn.channel()
        ch.basic_qos(prefetch_count=20)
        ch.add_on_cancel_callback(cancelled.append)

        def on(chx, method, props, body):
            if body not in got:
                got.append(body)
            chx.basic_ack(method.delivery_tag)
        ch.basic_consume("qp", on)
        first = [b"p%d" % i for i in range(50)]
        publish_confirmed(cluster4.nodes["n2"], "qp", first)
        wait_for(lambda: len(got) >= 50, LONG, "the first 50 on n4", conn=conn)
        cluster4.kill("n1")
        second = [b"q%d" % i for i in range(50)]
        publish_confirmed(cluster4.nodes["n2"], "qp", second)
        wait_for(lambda: len(got) >= 100, LONG, "the next 50 on n4 after n1 died", conn=conn)
        assert got == first + second
        assert cancelled == []
        publish_confirmed(cluster4.nodes["n4"], "qp", [b"via n4"])
        wait_for(lambda: b"via n4" in got, LONG, "a message published on n4", conn=conn)
    finally:
        conn.close()


def test_consumer_survives_its_node_joining_and_leaving_the_group(cluster4):
    """A consumer on n4 stays subscribed (no basic.cancel) while n4 becomes a
    member (add) and stops being one (delete), as RabbitMQ's consumers do,
    with one delivery unacknowledged across each change (acknowledged after
    it): every confirmed message arrives, a second copy only as a
    redelivery."""
    declare(cluster4, "n1", "qj")
    wait_for(lambda: queue_info(cluster4.nodes["n4"], "qj"), DEADLINE, "n4 to list qj")
    conn = cluster4.nodes["n4"].connect()
    got, cancelled, dups, held = [], [], [], []
    try:
        ch = conn.channel()
        ch.basic_qos(prefetch_count=5)
        ch.add_on_cancel_callback(cancelled.append)

        def on(chx, method, props, body):
            if body in got and not method.redelivered:
                dups.append(body)
            if body not in got:
                got.append(body)
            if body.endswith(b"-hold") and not method.redelivered:
                held.append(method.delivery_tag)
            else:
                chx.basic_ack(method.delivery_tag)
        ch.basic_consume("qj", on)
        sent = []

        def arrived(what):
            wait_for(lambda: cancelled or len(got) >= len(sent), LONG, "every message " + what, conn=conn)
            assert cancelled == [], "the consumer was cancelled " + what
        for step, change in enumerate([None, "add", "delete"]):
            if change == "add":
                r = settled(lambda: api(cluster4, "n3").post("/api/queues/quorum/%2F/qj/replicas/add",
                                                             {"node": "n4"}))
                assert r.status == 204, r
                members_everywhere(cluster4, "qj", ["n1", "n2", "n3", "n4"])
            elif change == "delete":
                r = settled(lambda: api(cluster4, "n2").delete("/api/queues/quorum/%2F/qj/replicas/delete",
                                                               body={"node": "n4"}))
                assert r.status == 204, r
                members_everywhere(cluster4, "qj", ["n1", "n2", "n3"])
            for tag in held:
                ch.basic_ack(tag)
            held.clear()
            batch = [b"j%d-%d" % (step, i) for i in range(20)] + [b"j%d-hold" % step]
            publish_confirmed(cluster4.nodes["n2"], "qj", batch)
            sent += batch
            arrived("after %s" % change)
        assert sorted(got) == sorted(sent) and dups == []
        r = ch.queue_declare("qj", passive=True)
        assert r.method.consumer_count == 1
        for tag in held:
            ch.basic_ack(tag)

        last = []

        def all_settled():
            conn.process_data_events(0)
            info = queue_info(cluster4.nodes["n1"], "qj") or {}
            last[:] = [(info.get("messages_ready"), info.get("messages_unacknowledged"))]
            return last[0] == (0, 0)
        # The delivery n4 held as a member comes back (DOWN from the leader), is redelivered and acked.
        try:
            wait_for(all_settled, LONG, "nothing left in qj, nothing held by n4's old member")
        except AssertionError:
            raise AssertionError("(ready, unacked) stays %r" % last)
    finally:
        conn.close()
