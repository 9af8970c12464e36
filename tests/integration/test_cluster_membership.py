# SPDX-License-Identifier: MIT
# Cluster membership after formation (docs/CLUSTERING.md, "Membership") on
# real warrend processes: n1-n3 form the cluster, n4 (listed everywhere with
# "seed": false) starts outside it and joins through n1 with warrenctl,
# catching up on the definitions made before; n3 is killed and forgotten,
# the other three go on changing definitions, and n3 started again is told it
# was removed, exits 1 and then refuses to start at all; n4 leaves. Every
# refusal's exit status and message is asserted. Every wait is a condition
# with a deadline. warren only.
import subprocess

import pytest

from cluster import DEADLINE, Cluster, attempt
from helpers import wait_for
from test_warrenctl import clean_env, warrenctl_path

REMOVED = ("this node was removed from cluster 'warren'; it will not start as its member again: to join it "
           "afresh, empty %s, mark this node \"seed\": false and run 'warrenctl cluster join NODE' "
           "(docs/CLUSTERING.md, Membership)")


def section(c, node):
    """The node's cluster section, n4 listed as a node that joins later."""
    s = c.section(node)
    for entry in s["nodes"]:
        if entry["name"] == "n4":
            entry["seed"] = False
    return s


def start(c, name):
    return c.start(name, config={"cluster": section(c, c.nodes[name])})


@pytest.fixture
def ctl(tmp_path):
    path = warrenctl_path()
    if not path:
        pytest.skip("warrenctl not built (set WARRENCTL or WARREND)")
    home = tmp_path / "home"
    home.mkdir()

    def run(node, *args):
        argv = [path, "--host", "127.0.0.1", "--port", str(node.mgmt_port)] + list(args)
        p = subprocess.run(argv, capture_output=True, timeout=60, env=clean_env(home))
        return p.returncode, p.stdout.decode(), p.stderr.decode()
    return run


@pytest.fixture
def cluster(warrend_binary, tmp_path):
    c = Cluster(tmp_path, names=("n1", "n2", "n3", "n4"))
    for n in ("n1", "n2", "n3"):
        start(c, n)
    for n in ("n1", "n2", "n3"):
        want = {m: m != "n4" for m in c.nodes if m != n}
        c.wait_running(n, want)
    yield c
    c.stop_all()


def change(node, fn):
    """fn(channel) on node, again while no leader is elected yet (541)."""
    def done():
        e = attempt(node, fn)
        assert e is None or e.reply_code == 541, e
        return e is None
    wait_for(done, timeout=DEADLINE, what="a change on %s to commit" % node.name)


def members(node):
    r = node.http().get("/api/cluster/members")
    assert r.status == 200, r
    return {m["name"]: (m["voter"], m["running"]) for m in r.json["members"]}


def leader(node):
    return node.http().get("/api/cluster/members").json["leader"]


def wait_exit(node):
    wait_for(lambda: node.broker.proc.poll() is not None, timeout=DEADLINE, what="%s to exit" % node.name)
    node.broker.stopped = True
    node.broker.exit_status = node.broker.proc.returncode
    return node.broker.proc.returncode


def test_join_forget_removed_leave(cluster, ctl):
    n1, n2, n3, n4 = (cluster.nodes[n] for n in ("n1", "n2", "n3", "n4"))
    wait_for(lambda: leader(n1) is not None, timeout=DEADLINE, what="a leader")
    def before(ch):
        ch.queue_declare("before", durable=True)
        ch.basic_publish("", "before", b"made before n4 joined")
    change(n1, before)

    rc, out, err = ctl(n1, "cluster", "status")
    assert rc == 0, err
    assert out.startswith("cluster warren: node n1 is a member; leader n"), out
    assert members(n1) == {"n1": (True, True), "n2": (True, True), "n3": (True, True)}
    # Refusals, before n4 runs: a running node, an unknown one, a non-member.
    assert ctl(n1, "cluster", "forget", "n2") == (
        1, "", "warrenctl: DELETE /api/cluster/members/n2: 409 running: node 'n2' is running: stop it first, "
        "or make it leave (POST /api/cluster/leave on it)\n")
    assert ctl(n1, "cluster", "forget", "n9") == (
        1, "", "warrenctl: DELETE /api/cluster/members/n9: 404 not_found: unknown node 'n9': it is not one of "
        "cluster.nodes\n")
    assert ctl(n1, "cluster", "forget", "n4") == (
        1, "", "warrenctl: DELETE /api/cluster/members/n4: 404 not_member: node 'n4' is not a member of "
        "cluster 'warren'\n")
    assert ctl(n1, "cluster", "forget", "n1") == (
        1, "", "warrenctl: DELETE /api/cluster/members/n1: 400 bad_request: node 'n1' is this node: use "
        "POST /api/cluster/leave\n")
    assert ctl(n1, "cluster", "join", "n2") == (
        1, "", "warrenctl: POST /api/cluster/join: 409 already_member: node 'n1' is already a member of "
        "cluster 'warren'\n")

    # n4 starts outside the cluster and joins through n1.
    start(cluster, "n4")
    rc, out, err = ctl(n4, "cluster", "status")
    assert rc == 0 and out.startswith("cluster warren: node n4 is not a member; leader unknown\n"), (out, err)
    assert ctl(n4, "cluster", "join", "n9") == (
        1, "", "warrenctl: POST /api/cluster/join: 404 not_found: unknown node 'n9': it is not one of "
        "cluster.nodes\n")
    assert ctl(n4, "cluster", "join", "n4") == (
        1, "", "warrenctl: POST /api/cluster/join: 400 bad_request: a node joins through another node, not "
        "itself\n")
    wait_for(lambda: n4.running() == {"n1": True, "n2": True, "n3": True}, timeout=DEADLINE, what="n4's links")
    assert ctl(n4, "cluster", "join", "n1") == (0, "joined the cluster through n1\n", "")
    assert members(n4) == {m: (True, True) for m in ("n1", "n2", "n3", "n4")}
    assert ctl(n4, "cluster", "join", "n2")[0:2] == (1, "")
    # It caught up: the queue declared before it joined is served through it.
    conn = n4.connect()
    ch = conn.channel()
    ok = ch.queue_declare("before", passive=True)
    assert ok.method.message_count in (0, 1)
    wait_for(lambda: ch.basic_get("before", auto_ack=True)[2] == b"made before n4 joined", timeout=DEADLINE,
             what="n4 to get the message of a queue declared before it joined")
    conn.close()

    # n3 dies for good and is forgotten from n1; the other three go on.
    cluster.kill("n3")
    wait_for(lambda: not n1.running()["n3"], timeout=DEADLINE, what="n1 to see n3 down")
    # n3 may have led: the others elect one of them first.
    wait_for(lambda: leader(n1) in ("n1", "n2", "n4"), timeout=DEADLINE, what="a leader other than n3")
    assert ctl(n1, "cluster", "forget", "n3") == (0, "forgot n3\n", "")
    assert members(n2) == {m: (True, True) for m in ("n1", "n2", "n4")}
    for node, x in ((n1, "x1"), (n2, "x2"), (n4, "x4")):
        change(node, lambda ch: ch.exchange_declare(x, "fanout"))
    # Started again, n3 is told it was removed: it records it and exits 1...
    try:
        start(cluster, "n3")
    except RuntimeError:
        pass
    assert wait_exit(n3) == 1, n3.log()
    assert "this node was removed from cluster 'warren' (" in n3.log()
    # ...and from then on refuses to start at all.
    with pytest.raises(RuntimeError, match="exited with status 1"):
        start(cluster, "n3")
    raft_dir = n3.broker.config["data_dir"] + "/raft"
    assert ("[error] " + REMOVED % raft_dir) in n3.log(), n3.log()
    assert members(n1) == {m: (True, True) for m in ("n1", "n2", "n4")}

    # n4 leaves: it stops (status 0), the others go on as two.
    assert ctl(n4, "cluster", "leave") == (0, "left the cluster; the node stops\n", "")
    assert wait_exit(n4) == 0, n4.log()
    assert "this node left cluster 'warren'; it stops and will not start as its member again" in n4.log()
    wait_for(lambda: set(members(n1)) == {"n1", "n2"}, timeout=DEADLINE, what="n4 gone from n1's members")
    change(n2, lambda ch: ch.exchange_declare("after-leave", "fanout"))

    # Without a majority a change is refused, not left hanging.
    cluster.kill("n2")
    wait_for(lambda: not n1.running()["n2"], timeout=DEADLINE, what="n1 to see n2 down")
    # (While n1 still leads, the change would commit on n1 alone: a removal
    # is in force once appended, and n1 is a majority of the rest.)
    wait_for(lambda: leader(n1) is None, timeout=DEADLINE, what="n1 to know no leader")
    assert ctl(n1, "cluster", "forget", "n2") == (
        1, "", "warrenctl: DELETE /api/cluster/members/n2: 503 no_quorum: cluster 'warren' has no leader: a "
        "majority of its members must be running, and one elected\n")


@pytest.fixture
def three(warrend_binary, tmp_path):
    c = Cluster(tmp_path)
    c.start_all()
    c.wait_all_up()
    yield c
    c.stop_all()


def test_listings_cluster_wide(three):
    n1, n2, n3 = (three.nodes[n] for n in ("n1", "n2", "n3"))
    conns = [n.connect() for n in (n1, n2, n3)]
    chans = [c.channel() for c in conns]
    change(n2, lambda ch: ch.queue_declare("on-n2", durable=True))
    chans[1].basic_publish("", "on-n2", b"one")
    chans[1].basic_publish("", "on-n2", b"two")

    def nodes_of(node, path):
        r = node.http().get(path)
        assert r.status == 200, r
        return sorted(item["node"] for item in r.json)
    # Every node lists every node's connections and channels with their node
    # (the peers' as their last report, within a second).
    for n in (n1, n2, n3):
        wait_for(lambda: nodes_of(n, "/api/connections") == ["n1", "n2", "n3"], timeout=DEADLINE,
                 what="%s to list the connections of all three nodes" % n.name)
        wait_for(lambda: nodes_of(n, "/api/channels") == ["n1", "n2", "n3"], timeout=DEADLINE,
                 what="%s to list the channels of all three nodes" % n.name)
    # A queue is listed everywhere with its home.
    wait_for(lambda: n1.http().get("/api/queues/%2F/on-n2").json.get("node") == "n2", timeout=DEADLINE,
             what="n1 to list on-n2 with its home n2")

    def overview_ok():
        o = n1.http().get("/api/overview").json
        ports = sorted(l["port"] for l in o["listeners"] if l["protocol"] == "amqp")
        return (o["object_totals"]["connections"] == 3 and o["object_totals"]["channels"] == 3 and
                o["queue_totals"]["messages"] == 2 and ports == sorted(n.amqp_port for n in (n1, n2, n3)) and
                sorted({l["node"] for l in o["listeners"]}) == ["n1", "n2", "n3"])
    wait_for(overview_ok, timeout=DEADLINE, what="n1's overview to count the whole cluster")
    for c in conns:
        c.close()
    wait_for(lambda: n1.http().get("/api/connections").json == [], timeout=DEADLINE,
             what="the closed connections to leave n1's list")


def test_warrenctl_cluster_usage_and_single_node(warrend_binary, mgmt_broker, tmp_path):
    """Usage errors exit 2 before any request; a node without a cluster
    section answers 400; the help lists the four commands."""
    path = warrenctl_path()
    if not path:
        pytest.skip("warrenctl not built (set WARRENCTL or WARREND)")
    home = tmp_path / "home"
    home.mkdir()
    api = mgmt_broker.mgmt

    def run(*args):
        p = subprocess.run([path, "--host", api.host, "--port", str(api.port)] + list(args),
                           capture_output=True, timeout=30, env=clean_env(home))
        return p.returncode, p.stdout.decode(), p.stderr.decode()
    assert run("cluster", "join") == (2, "", "warrenctl: missing arguments (see warrenctl cluster "
                                             "join --help)\n")
    assert run("cluster", "forget", "a", "b")[0] == 2
    assert run("cluster", "leave", "n1")[0] == 2
    assert run("cluster") == (2, "", "warrenctl: 'cluster' needs one of:\n"
                                     "  warrenctl cluster status \n  warrenctl cluster join NODE\n"
                                     "  warrenctl cluster leave \n  warrenctl cluster forget NODE\n")
    assert run("cluster", "status") == (
        1, "", "warrenctl: GET /api/cluster/members: 400 bad_request: this node is not clustered (no cluster "
        "section)\n")
    rc, out, _ = run("cluster", "join", "--help")
    assert rc == 0 and out.startswith("usage: warrenctl [OPTIONS] cluster join NODE\n"), out
    rc, out, _ = run("--help")
    assert rc == 0 and all("  cluster %s" % w in out for w in ("status", "join", "leave", "forget")), out
