# SPDX-License-Identifier: MIT
# The peer links of a cluster (docs/CLUSTERING.md) between real warrend
# processes on loopback: three nodes see each other in /api/nodes over one
# link per pair; a node with the wrong secret, and raw handshakes with a wrong
# secret, cluster name or node name, are refused and logged with the reason;
# kill -9 and SIGSTOP mark a node down on the others, and a restart or SIGCONT
# brings it back. Every wait is a condition with a deadline.
# warren only (skips with WARREN_BROKER).
import hashlib
import hmac
import os
import shutil
import re
import signal
import socket
import struct

import pytest

from cluster import DEADLINE, SECRET, Cluster
from conftest import Http
from helpers import wait_for

def crc32c(data):
    crc = 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xffffffff


def frame(ftype, payload, group=0):
    body = struct.pack(">BQ", ftype, group)
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", crc32c(body + payload)) + payload


def name(s):
    return bytes([len(s)]) + s.encode()


@pytest.fixture
def cluster(warrend_binary, tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.stop_all()


def all_up(c):
    for n in c.nodes:
        c.wait_running(n, {m: True for m in c.nodes if m != n})


def test_three_nodes_see_each_other(cluster):
    for n in cluster.nodes:
        cluster.start(n)
    all_up(cluster)
    n1 = cluster.nodes["n1"].http()
    assert n1.get("/api/cluster-name").json == {"name": "warren"}
    assert n1.put("/api/cluster-name", {"name": "x"}).status == 405
    overview = n1.get("/api/overview").json
    assert (overview["cluster_name"], overview["node"]) == ("warren", "n1")
    assert n1.get("/api/health/checks/protocol-listener/clustering").json == {"status": "ok",
                                                                              "protocol": "clustering"}
    n2 = n1.get("/api/nodes/n2").json
    assert (n2["name"], n2["type"], n2["running"]) == ("n2", "disc", True)
    assert n1.get("/api/nodes/n9").status == 404
    # One link per pair: the two ends each node reports are the same socket.
    links = {}
    for n in cluster.nodes.values():
        me = n.nodes()[n.name]
        assert me["running"] is True
        links[n.name] = {lk["name"]: lk for lk in me["cluster_links"]}
        assert sorted(links[n.name]) == sorted(m for m in cluster.nodes if m != n.name)
    for a in cluster.nodes:
        for b in cluster.nodes:
            if a < b:
                assert links[a][b]["sock_port"] == links[b][a]["peer_port"]
                assert links[a][b]["peer_port"] == links[b][a]["sock_port"]
    assert "cluster: peer n2 up" in cluster.nodes["n1"].log()


def test_one_node_cluster(cluster, tmp_path):
    solo = Cluster(tmp_path / "..", names=("solo",))
    try:
        node = solo.start("solo")
        assert node.running() == {}
        assert node.http().get("/api/cluster-name").json == {"name": "warren"}
    finally:
        solo.stop_all()


def test_raft_driver_lives_in_data_dir_raft(cluster, tmp_path):
    """The Raft driver opens its WAL in data_dir/raft with the links, and reopens it after a restart."""
    solo = Cluster(tmp_path / "..", names=("solo",))
    try:
        node = solo.start("solo")
        raft = os.path.join(node.broker.workdir, "data", "raft")
        assert sorted(os.listdir(raft)) == ["snap", "wal"]
        assert "raft: recovered 0 groups, 0 entries" in node.log()
        assert node.broker.stop() == 0, node.log()
        node = solo.start("solo")
        assert node.running() == {}
        assert node.log().count("raft: recovered 0 groups, 0 entries") == 2
    finally:
        solo.stop_all()


def test_node_with_wrong_secret_is_refused(cluster):
    cluster.start("n1")
    cluster.start("n2")
    cluster.start("n3", secret=b"another secret of at least 32 bytes!")
    cluster.wait_running("n1", {"n2": True, "n3": False})
    refusal = re.compile(r"cluster: refused the (incoming|outgoing) link (from|to) 127\.0\.0\.1:\d+ "
                         r"claiming to be n3: wrong secret \(the peer's proof did not verify\)")
    n1 = cluster.nodes["n1"]
    wait_for(lambda: refusal.search(n1.log()), timeout=DEADLINE, what="the refusal in n1's log")
    bad = re.compile(r"cluster: refused the (incoming|outgoing) link (from|to) 127\.0\.0\.1:\d+ "
                     r"claiming to be n[12]: wrong secret")
    wait_for(lambda: bad.search(cluster.nodes["n3"].log()), timeout=DEADLINE, what="the refusal in n3's log")
    assert cluster.nodes["n3"].running() == {"n1": False, "n2": False}
    cluster.wait_running("n2", {"n1": True, "n3": False})


# cluster/peer.h's WR_PEER_VERSION: 2 since the queue messages' PURGE carried a request id.
PEER_VERSION = 2


class RawPeer:
    """A hand-made peer on one link: HELLO, then PROOF with a chosen secret.
    Dials port, or takes an accepted socket (then it is the acceptor)."""

    def __init__(self, port=None, sock=None):
        self.sock = sock or socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.settimeout(10)
        self.dialer = sock is None
        self.nonce = os.urandom(32)

    def hello(self, cluster_name, node_name, version=PEER_VERSION):
        self.sock.sendall(frame(1, struct.pack(">H", version) + name(cluster_name) + name(node_name) + self.nonce))

    def read_frame(self):
        hdr = self.recv(17)
        n, ftype, group, crc = struct.unpack(">IBQI", hdr)
        payload = self.recv(n)
        assert crc == crc32c(hdr[4:13] + payload)
        return ftype, payload

    def recv(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            assert chunk, "connection closed after %r" % data
            data += chunk
        return data

    def closed(self):
        """Whether the other end closed the link (after any frames it sent)."""
        self.sock.settimeout(0.05)
        try:
            while True:
                chunk = self.sock.recv(4096)
                if not chunk:
                    return True
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(10)

    def proof(self, secret, cluster_name, me, them, their_nonce):
        dialer, acceptor = (me, them) if self.dialer else (them, me)
        nonces = self.nonce + their_nonce if self.dialer else their_nonce + self.nonce
        msg = (b"warren peer proof v1" + bytes([1 if self.dialer else 2]) + name(cluster_name) + nonces
               + name(dialer) + name(acceptor))
        self.sock.sendall(frame(2, hmac.new(secret, msg, hashlib.sha256).digest()))


@pytest.mark.parametrize("cluster_name,node_name,secret,version,reason", [
    # A node of another build: its queue messages would not decode here.
    ("warren", "n2", SECRET, PEER_VERSION - 1, "protocol version %d, expected %d" % (PEER_VERSION - 1, PEER_VERSION)),
    ("other", "n2", SECRET, PEER_VERSION, "wrong cluster name 'other' (this is 'warren')"),
    # A node the file does not list authenticates, but is no member: its Raft message is refused.
    ("warren", "n9", SECRET, PEER_VERSION, "node 'n9' is not a member of cluster 'warren'"),
    ("warren", "n1", SECRET, PEER_VERSION, "the peer claims this node's own name 'n1'"),
    ("warren", "n2", b"x" * 32, PEER_VERSION, "wrong secret (the peer's proof did not verify)"),
])
def test_raw_handshake_refusals(cluster, cluster_name, node_name, secret, version, reason):
    n1 = cluster.start("n1")
    peer = RawPeer(n1.peer_port)
    peer.hello(cluster_name, node_name, version)
    ftype, payload = peer.read_frame()
    if ftype == 1:  # n1's HELLO came first: answer with a proof
        theirs = payload[-32:]
        peer.proof(secret, cluster_name, node_name, "n1", theirs)
        ftype, payload = peer.read_frame()
        if ftype == 2 and node_name == "n9":
            peer.sock.sendall(frame(5, b""))
        while ftype in (2, 4):  # n1's proof, and its heartbeats on a pending link
            ftype, payload = peer.read_frame()
    assert (ftype, payload.decode()) == (3, reason)
    who = "" if reason.startswith(("protocol version", "wrong cluster", "the peer claims")) else \
        " claiming to be " + node_name
    line = "cluster: refused the incoming link from 127.0.0.1:%d%s: %s" % (
        peer.sock.getsockname()[1], who, reason)
    wait_for(lambda: line in n1.log(), timeout=DEADLINE, what="%r in the log" % line)


@pytest.mark.parametrize("ending", ["bad-crc", "refuse"])
def test_raw_handshake_with_the_secret_is_up(cluster, ending):
    n1 = cluster.start("n1")
    peer = RawPeer(n1.peer_port)
    peer.hello("warren", "n2")
    ftype, payload = peer.read_frame()
    assert ftype == 1
    peer.proof(SECRET, "warren", "n2", "n1", payload[-32:])
    assert peer.read_frame()[0] == 2
    cluster.wait_running("n1", {"n2": True, "n3": False})
    port = peer.sock.getsockname()[1]
    if ending == "bad-crc":
        # A frame with a bad CRC on an authenticated link: refused, and n2 is down.
        bad = bytearray(frame(4, b""))
        bad[-1] ^= 1
        peer.sock.sendall(bytes(bad))
        while True:
            ftype, payload = peer.read_frame()
            if ftype not in (4, 6):  # heartbeats and node reports go on
                break
        assert (ftype, payload) == (3, b"CRC mismatch in a frame")
        line = "cluster: refused the incoming link from 127.0.0.1:%d claiming to be n2: CRC mismatch in a frame" % port
    else:
        # The peer refuses the link it had: n1 logs its reason.
        peer.sock.sendall(frame(3, b"going away"))
        line = "cluster: the incoming link from 127.0.0.1:%d was refused by the peer: going away" % port
    cluster.wait_running("n1", {"n2": False, "n3": False})
    wait_for(lambda: line in n1.log(), timeout=DEADLINE, what="%r in the log" % line)
    assert "cluster: peer n2 down: link closed" in n1.log()


def test_kill9_marks_down_and_restart_reconnects(cluster):
    for n in cluster.nodes:
        cluster.start(n)
    all_up(cluster)
    n3 = cluster.nodes["n3"].broker
    n3.proc.kill()
    n3.proc.wait()
    cluster.wait_running("n1", {"n2": True, "n3": False})
    cluster.wait_running("n2", {"n1": True, "n3": False})
    assert "cluster: peer n3 down: " in cluster.nodes["n1"].log()
    cluster.start("n3")
    all_up(cluster)


def test_sigstop_marks_down_and_sigcont_brings_back(cluster):
    for n in cluster.nodes:
        cluster.start(n)
    all_up(cluster)
    n2 = cluster.nodes["n2"].broker
    n2.proc.send_signal(signal.SIGSTOP)
    try:
        cluster.wait_running("n1", {"n2": False, "n3": True})
        cluster.wait_running("n3", {"n1": True, "n2": False})
        assert "cluster: peer n2 down: no heartbeat for 2000 ms" in cluster.nodes["n1"].log()
    finally:
        n2.proc.send_signal(signal.SIGCONT)
    all_up(cluster)


def handshake(peer, me, them="n1"):
    """Completes peer's side of a handshake with node `them`."""
    peer.hello("warren", me)
    ftype, payload = peer.read_frame()
    assert ftype == 1
    peer.proof(SECRET, "warren", me, them, payload[-32:])
    assert peer.read_frame()[0] == 2


@pytest.mark.parametrize("raw_name,outgoing_first", [("n2", False), ("n2", True), ("n0", False), ("n0", True)])
def test_simultaneous_links_keep_the_lower_names_outgoing(warrend_binary, tmp_path, raw_name, outgoing_first):
    """n1 and a raw peer dial each other at once; whichever handshake ends
    first, n1 keeps the link the lower name dialled and closes the other."""
    c = Cluster(tmp_path, names=("n1", raw_name))
    listener = socket.create_server(("127.0.0.1", c.nodes[raw_name].peer_port))
    try:
        n1 = c.start("n1")
        dialled = RawPeer(sock=listener.accept()[0])  # n1's outgoing link, its handshake held
        incoming = RawPeer(n1.peer_port)              # the raw peer's own outgoing link
        first, second = (dialled, incoming) if outgoing_first else (incoming, dialled)
        handshake(first, raw_name)
        c.wait_running("n1", {raw_name: True})
        handshake(second, raw_name)
        kept, dropped = (dialled, incoming) if "n1" < raw_name else (incoming, dialled)
        wait_for(dropped.closed, timeout=DEADLINE, what="n1 to close the link the higher name dialled")
        assert not kept.closed()
        link = c.nodes["n1"].nodes()["n1"]["cluster_links"]
        assert [(lk["name"], lk["sock_port"]) for lk in link] == [(raw_name, kept.sock.getpeername()[1])]
    finally:
        listener.close()
        c.stop_all()


@pytest.mark.parametrize("mode", ["cut", "drop"])
def test_partition_through_proxies_then_heal(tmp_path, warrend_binary, mode):
    """Every peer link runs through a fault-injecting proxy: n1 cut off from
    n2 and n3 (links reset, or silently dropping every byte) is seen down by
    both and sees both down, while n2 and n3 still see each other; after the
    heal all links come back."""
    c = Cluster(tmp_path, proxies=True)
    try:
        c.start_all()
        c.wait_all_up()
        c.partition(["n1"], ["n2", "n3"], mode)
        c.wait_running("n1", {"n2": False, "n3": False})
        c.wait_running("n2", {"n1": False, "n3": True})
        c.wait_running("n3", {"n1": False, "n2": True})
        c.heal()
        c.wait_all_up()
        links = c.nodes["n2"].nodes()["n2"]["cluster_links"]
        assert sorted(link["name"] for link in links) == ["n1", "n3"]
    finally:
        c.stop_all()


def test_nodes_show_every_nodes_figures(cluster):
    """Each node reports its figures to its peers once a second: n1's
    /api/nodes shows n2's and n3's memory, descriptors, uptime and pid."""
    cluster.start_all()
    cluster.wait_all_up()
    n1 = cluster.nodes["n1"]
    for peer in ("n2", "n3"):
        pid = str(cluster.nodes[peer].broker.proc.pid)
        # The first report may predate the peer's own links to the others.
        wait_for(lambda: n1.nodes()[peer].get("os_pid") == pid and n1.nodes()[peer]["partitions"] == [],
                 timeout=DEADLINE, what="%s's report" % peer)
        node = n1.nodes()[peer]
        assert node["running"] is True
        assert node["mem_used"] > 0 and node["mem_limit"] > 0 and node["disk_free"] > 0
        assert 0 < node["fd_used"] < node["fd_total"]
        assert node["uptime"] > 0 and node["processors"] >= 1
        assert node["mem_alarm"] is False and node["disk_free_alarm"] is False
    assert n1.nodes()["n1"]["partitions"] == []


def test_memory_alarm_on_one_node_blocks_publishers_on_all(cluster):
    """A memory alarm on n2 blocks a publisher connected to n1, which is told
    connection.blocked; once n2 is gone its alarm goes with it and the
    publisher is told connection.unblocked (RabbitMQ's alarms are
    cluster-wide and a node's leave with it)."""
    cluster.start("n1")
    cluster.start("n2", config={"memory_high_watermark": {"absolute": 1}})
    cluster.wait_running("n1", {"n2": True, "n3": False})
    n1 = cluster.nodes["n1"]
    wait_for(lambda: n1.nodes()["n2"].get("mem_alarm") is True, timeout=DEADLINE, what="n2's alarm on n1")
    assert n1.nodes()["n1"]["mem_alarm"] is False
    assert "resource alarms on other nodes: memory raised, disk clear" in n1.log()
    pub = n1.connect()
    events = []
    pub.add_on_connection_blocked_callback(lambda c, f: events.append(("blocked", f.method.reason)))
    pub.add_on_connection_unblocked_callback(lambda c, f: events.append(("unblocked",)))
    ch = pub.channel()
    ch.basic_publish("amq.fanout", "", b"held")
    wait_for(lambda: events, conn=pub, what="connection.blocked")
    assert events == [("blocked", "low on memory")]
    cluster.stop("n2")
    wait_for(lambda: len(events) == 2, conn=pub, what="connection.unblocked")
    assert events[1] == ("unblocked",)
    pub.close()


def test_partition_seen_by_both_sides(tmp_path, warrend_binary):
    """n1 and n2 cut off from each other while n3 reaches both: each lists
    the other under "partitions" in /api/nodes (n3 vouches that the other is
    alive), n3 lists none; after the heal nobody does."""
    c = Cluster(tmp_path, proxies=True)
    try:
        c.start_all()
        c.wait_all_up()
        c.partition(["n1"], ["n2"])
        for me, other in (("n1", "n2"), ("n2", "n1")):
            node = c.nodes[me]
            wait_for(lambda: node.nodes()[me]["partitions"] == [other], timeout=DEADLINE,
                     what="%s to see the partition" % me)
        wait_for(lambda: c.nodes["n3"].nodes()["n1"].get("partitions") == ["n2"], timeout=DEADLINE,
                 what="n3 to show n1's partition")
        assert c.nodes["n3"].nodes()["n3"]["partitions"] == []
        c.heal()
        c.wait_all_up()
        for me in c.nodes:
            node = c.nodes[me]
            wait_for(lambda: node.nodes()[me]["partitions"] == [], timeout=DEADLINE, what="%s healed" % me)
    finally:
        c.stop_all()


@pytest.fixture(scope="module")
def peer_certs():
    """A CA and node certificates for both ends of a TLS link (serverAuth
    and clientAuth), and one from another CA."""
    from test_tls import Certs
    c = Certs()
    both = "extendedKeyUsage=serverAuth,clientAuth\n"
    c._leaf("node", "ca", "/CN=warren node", both)
    c._leaf("rogue-node", "rogue-ca", "/CN=warren node", both)
    yield c
    shutil.rmtree(c.dir, ignore_errors=True)


def tls_section(certs, cert="node"):
    return {"tls": {"certfile": certs.path(cert + ".pem"), "keyfile": certs.path(cert + ".key"),
                    "cacertfile": certs.path("ca.pem")}}


def test_peer_links_over_tls(cluster, peer_certs):
    """With cluster.tls every link runs over TLS, each end presenting its
    certificate: the nodes come up as usual, and a peer speaking plain
    TCP gets no HELLO back, only the end of the link."""
    for n in cluster.nodes:
        cluster.start(n, config=tls_section(peer_certs), tls=True)
    cluster.wait_all_up()
    assert "listening for peer links on 127.0.0.1 port %d (2 peers, TLS)" % cluster.nodes["n1"].peer_port \
        in cluster.nodes["n1"].log()
    got = b""
    with socket.create_connection(("127.0.0.1", cluster.nodes["n1"].peer_port), timeout=10) as s:
        s.sendall(frame(1, struct.pack(">H", PEER_VERSION) + name("warren") + name("n2") + b"\x00" * 32))
        try:
            while chunk := s.recv(4096):
                got += chunk
        except ConnectionResetError:
            pass
    assert got[:1] in (b"", b"\x15")  # nothing, or a TLS alert record: never a HELLO frame
    wait_for(lambda: "cluster: refused the incoming link from 127.0.0.1:" in cluster.nodes["n1"].log(),
             timeout=DEADLINE, what="the refusal in n1's log")


def test_peer_with_a_certificate_of_another_ca_is_refused(cluster, peer_certs):
    """n3's certificate chains to another CA: n1 and n2 refuse its links in
    the TLS handshake, logged with OpenSSL's reason, and never see it up."""
    cluster.start("n1", config=tls_section(peer_certs), tls=True)
    cluster.start("n2", config=tls_section(peer_certs), tls=True)
    rogue = tls_section(peer_certs, "rogue-node")
    rogue["tls"]["cacertfile"] = peer_certs.path("rogue-ca.pem")
    cluster.start("n3", config=rogue, tls=True)
    cluster.wait_running("n1", {"n2": True, "n3": False})
    # Each side refuses the other's certificate: as the server it hears the
    # client's alert, as the client it fails the verification itself.
    wait_for(lambda: re.search(r"cluster: refused the incoming link from 127.0.0.1:\d+: .*alert unknown ca",
                               cluster.nodes["n1"].log()), timeout=DEADLINE, what="the refusal in n1's log")
    wait_for(lambda: re.search(r"cluster: cannot link to n1 at 127.0.0.1:\d+: .*certificate verify failed",
                               cluster.nodes["n3"].log()), timeout=DEADLINE, what="the failure in n3's log")
    assert cluster.nodes["n3"].running() == {"n1": False, "n2": False}


def test_peers_by_host_name(cluster):
    """Each node lists its peers as "localhost": resolved at every dial,
    the links come up as with addresses."""
    for n in cluster.nodes:
        cluster.start(n, peer_host="localhost")
    cluster.wait_all_up()


def test_unresolvable_host_name_is_logged_and_retried(cluster):
    """n1 lists n2 under a name that does not resolve: n1 says so once and
    keeps retrying; n2, which lists n1 by address, links up anyway."""
    cluster.start("n1", peer_host="no-such-host.invalid")
    wait_for(lambda: re.search(r"cluster: cannot link to n2 at no-such-host.invalid:\d+: cannot resolve the host name: ",
                               cluster.nodes["n1"].log()), timeout=DEADLINE, what="n1's resolution failure")
    cluster.start("n2")
    cluster.wait_running("n1", {"n2": True, "n3": False})


def test_prometheus_names_the_node_and_the_cluster(cluster):
    """Each node's Prometheus endpoint says who it is the way RabbitMQ's
    dashboards select on it: rabbitmq_node as configured (n2) and
    rabbitmq_cluster the cluster's name, the same on every node."""
    cluster.start_all()
    for n, node in cluster.nodes.items():
        r = Http("127.0.0.1", node.prometheus_port).get("/metrics", auth=False)
        assert r.status == 200, r
        line = next(x for x in r.body.splitlines() if x.startswith("rabbitmq_identity_info{"))
        assert ('rabbitmq_node="%s",rabbitmq_cluster="warren",rabbitmq_cluster_permanent_id="warren"' % n) in line, line
