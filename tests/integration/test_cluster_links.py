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
import re
import signal
import socket
import struct

import pytest

from cluster import DEADLINE, SECRET, Cluster
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
    assert n1.get("/api/nodes/n2").json == {"name": "n2", "type": "disc", "running": True}
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


class RawPeer:
    """A hand-made peer on one link: HELLO, then PROOF with a chosen secret.
    Dials port, or takes an accepted socket (then it is the acceptor)."""

    def __init__(self, port=None, sock=None):
        self.sock = sock or socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.settimeout(10)
        self.dialer = sock is None
        self.nonce = os.urandom(32)

    def hello(self, cluster_name, node_name):
        self.sock.sendall(frame(1, struct.pack(">H", 1) + name(cluster_name) + name(node_name) + self.nonce))

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


@pytest.mark.parametrize("cluster_name,node_name,secret,reason", [
    ("other", "n2", SECRET, "wrong cluster name 'other' (this is 'warren')"),
    ("warren", "n9", SECRET, "unknown node name 'n9'"),
    ("warren", "n1", SECRET, "the peer claims this node's own name 'n1'"),
    ("warren", "n2", b"x" * 32, "wrong secret (the peer's proof did not verify)"),
])
def test_raw_handshake_refusals(cluster, cluster_name, node_name, secret, reason):
    n1 = cluster.start("n1")
    peer = RawPeer(n1.peer_port)
    peer.hello(cluster_name, node_name)
    ftype, payload = peer.read_frame()
    if ftype == 1:  # n1's HELLO came first: answer with a proof
        theirs = payload[-32:]
        peer.proof(secret, cluster_name, node_name, "n1", theirs)
        ftype, payload = peer.read_frame()
        if ftype == 2:
            ftype, payload = peer.read_frame()
    assert (ftype, payload.decode()) == (3, reason)
    who = "" if reason.startswith(("wrong cluster", "unknown", "the peer claims")) else " claiming to be n2"
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
            if ftype != 4:
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
