# SPDX-License-Identifier: MIT
# Quorum queues under faults on a real 3-node warren cluster (cluster.py):
# the leader's node killed again and again, the leader partitioned from its
# followers, a follower stopped past the election timeout, every node killed
# at once, a bit flipped in a member's Raft log, a leader left without a
# majority. Publishers with confirms and
# a manual-ack consumer run throughout (quorum_clients.py) and every test
# ends with a full drain: no confirmed message lost, none that was never
# published, each publisher's order kept on first deliveries. Every wait is a
# condition with a deadline. WARREN_QUORUM_CYCLES sets case a's cycles
# (scripts/soak-quorum). warren only.
import glob
import os
import struct

import pytest

from cluster import Cluster
from helpers import wait_for
from quorum_clients import DEADLINE, Consumer, Publisher, Target, drain_and_check, holds_for, stop_cluster, wait_progress

QUEUE = "qf"
CYCLES = int(os.environ.get("WARREN_QUORUM_CYCLES", "20"))
BATCH = 15  # messages each publisher sends per step
UNDER_WAY = 2  # confirmed of a step's batch before a kill: the rest is in flight


@pytest.fixture
def make_cluster(warrend_binary, tmp_path, request):
    if os.environ.get("WARREN_CLUSTER_BROKERS"):
        pytest.skip("warren only: kills, pauses and partitions its own nodes")
    made = []

    def make(proxies=False):
        c = Cluster(tmp_path, proxies=proxies)
        made.append(c)
        c.start_all()
        c.wait_all_up()
        Target.from_cluster(c).declare(QUEUE)
        # warren hands a new queue's leadership to its first member (n1, the
        # declaring node) shortly after the declare: start from there, not
        # in the middle of the hand-over.
        wait_for(lambda: leader(c) == "n1", DEADLINE, "the leadership of %s on n1" % QUEUE)
        return c
    yield make
    for c in made:
        for n in c.nodes.values():
            if n.broker is not None:
                lines = [x for x in n.log().splitlines() if "connection" not in x]
                print("---- %s log, connections left out (last 40 lines) ----\n%s" % (n.name, "\n".join(lines[-40:])))
            if n.alive():
                try:
                    print("---- %s GET /api/queues/%%2F/%s: %s" % (n.name, QUEUE, n.http().get("/api/queues/%2F/" + QUEUE).body))
                except OSError as e:
                    print("---- %s: no API answer: %r" % (n.name, e))
        for n in c.nodes.values():
            if n.alive():
                c.resume(n.name)
        c.heal()
        stop_cluster(c)


class Clients:
    """Two publishers and a consumer on the cluster's nodes."""

    def __init__(self, cluster, pub_nodes=(0, 1), cons_node=2):
        self.cluster = cluster
        self.pubs = [Publisher(self.ports, at, QUEUE, pid) for pid, at in enumerate(pub_nodes)]
        self.cons = Consumer(self.ports, cons_node, QUEUE)
        for t in self.pubs + [self.cons]:
            t.start()

    def ports(self):
        return [n.amqp_port for n in self.cluster.nodes.values()]

    def grant(self, n=BATCH):
        for p in self.pubs:
            p.grant(n)

    def step(self, n=BATCH, timeout=DEADLINE):
        """Grants n more to each publisher and waits until they are confirmed
        and the consumer got as many more."""
        self.grant(n)
        wait_progress(self.pubs, self.cons, n, timeout)

    def drain(self):
        live = [n for n in self.cluster.nodes.values() if n.alive()]
        ch = live[0].connect().channel()
        distinct, total = drain_and_check(self.pubs, self.cons,
                                          lambda: ch.queue_declare(QUEUE, passive=True).method.message_count)
        assert distinct == sum(p.confirmed for p in self.pubs)
        return distinct, total

    def stop(self):
        for t in self.pubs + [self.cons]:
            t.stopping.set()


def leader(cluster, exclude=()):
    """The queue's leader as the leader itself reports it (GET /api/queues on
    it), among live nodes not in exclude; waits for one."""
    def find():
        for n in cluster.nodes.values():
            if n.name in exclude or not n.alive():
                continue
            try:
                r = n.http().get("/api/queues/%2F/" + QUEUE)
            except OSError:
                continue
            if r.status == 200 and r.json.get("leader") == n.name:
                return n.name
        return None
    return wait_for(find, DEADLINE, "a leader of %s outside %s" % (QUEUE, sorted(exclude)))


def online(cluster, observer, member):
    r = cluster.nodes[observer].http().get("/api/queues/%2F/" + QUEUE)
    return r.status == 200 and member in r.json.get("online", [])


def repaired(cluster, lead, member):
    """member's replica of the queue has applied what the leader had committed
    (it was repaired from the leader: the metadata group first, which names
    the queue, then the queue's own group)."""
    lr = cluster.nodes[lead].http().get("/api/queues/%2F/" + QUEUE)
    mr = cluster.nodes[member].http().get("/api/queues/%2F/" + QUEUE)
    return lr.status == 200 and mr.status == 200 and "raft" in mr.json and \
        mr.json["raft"]["last_applied"] >= lr.json["raft"]["commit_index"]


def test_a_leader_killed_repeatedly(make_cluster):
    c = make_cluster()
    cl = Clients(c)
    try:
        cl.step()
        for _ in range(CYCLES):
            old = leader(c)
            cl.grant()
            wait_for(lambda: all(p.confirmed >= p.budget - BATCH + UNDER_WAY for p in cl.pubs), DEADLINE,
                     "publishing under way", step=0.002)
            c.kill(old)
            leader(c, exclude={old})
            for p in cl.pubs:
                p.wait_confirmed(p.budget)
            c.start(old)
        c.wait_all_up()
        cl.step()
        distinct, total = cl.drain()
        first_seen_redelivered = len({d for d, r in cl.cons.deliveries if r} -
                                     {d for d, r in cl.cons.deliveries if not r})
        print("cycles %d, messages %d, deliveries %d, publisher resends %s, consumer reconnects %d, "
              "messages the client first saw flagged redelivered %d"
              % (CYCLES, distinct, total, [p.resends for p in cl.pubs], cl.cons.reconnects, first_seen_redelivered))
    finally:
        cl.stop()


def test_b_leader_partitioned_from_its_followers_then_healed(make_cluster):
    c = make_cluster(proxies=True)
    old = leader(c)
    at = list(c.nodes).index(old)
    cl = Clients(c, pub_nodes=(at, at), cons_node=at)
    try:
        cl.step()
        others = [n for n in c.nodes if n != old]
        cl.grant()
        c.partition([old], others)
        new = leader(c, exclude={old})
        assert new in others
        wait_for(lambda: online(c, new, new) and not online(c, new, old), DEADLINE,
                 "%s to see %s offline" % (new, old))
        c.heal()
        c.wait_all_up()
        wait_for(lambda: online(c, leader(c), old), DEADLINE, "%s back online" % old)
        for p in cl.pubs:
            p.wait_confirmed(p.budget)
        cl.step()
        cl.drain()
    finally:
        cl.stop()


def test_c_follower_paused_past_the_election_timeout(make_cluster):
    c = make_cluster()
    lead = leader(c)
    follower = next(n for n in c.nodes if n != lead)
    at = list(c.nodes).index(follower)
    cl = Clients(c, pub_nodes=(at, list(c.nodes).index(lead)), cons_node=at)
    try:
        cl.step()
        c.pause(follower)
        # Past the election timeout (1-2 s) and the clients' heartbeats (2 s):
        # the other two go on, the paused node's clients move.
        wait_for(lambda: not c.nodes[lead].running()[follower], DEADLINE, "%s to see %s down" % (lead, follower))
        cl.step()
        c.resume(follower)
        c.wait_all_up()
        wait_for(lambda: online(c, leader(c), follower), DEADLINE, "%s back online" % follower)
        cl.step()
        cl.drain()
    finally:
        cl.stop()


def test_d_every_node_killed_at_once(make_cluster):
    c = make_cluster()
    cl = Clients(c)
    try:
        cl.step()
        cl.grant()
        wait_for(lambda: all(p.confirmed >= p.budget - BATCH + UNDER_WAY for p in cl.pubs), DEADLINE,
                 "publishing under way", step=0.002)
        c.kill_all()
        c.start_all()
        c.wait_all_up()
        leader(c)
        for p in cl.pubs:
            p.wait_confirmed(p.budget)
        cl.step()
        cl.drain()
    finally:
        cl.stop()


# ---- a flipped bit in a member's Raft log ----

SEGMENT_HEADER = 40  # storage/segment.h: file header, then records
RECORD_HEADER = 16  # u32 length, u32 CRC32C, u64 index; the payload follows


def wal_entries(path):
    """(payload offset, payload) of every framed record of a WAL file."""
    with open(path, "rb") as f:
        img = f.read()
    off = SEGMENT_HEADER
    while off + RECORD_HEADER <= len(img):
        (length,) = struct.unpack_from("<I", img, off)
        if length == 0 or off + RECORD_HEADER + length > len(img):
            break
        yield off + RECORD_HEADER, img[off + RECORD_HEADER:off + RECORD_HEADER + length]
        off += RECORD_HEADER + length


def flip_in_entry(data_dir, marker):
    """Flips one bit of the body byte after marker inside an entry ('E')
    record of the node's Raft log: its WAL files (data_dir/raft/wal/wal/
    *.wal), else its segment files (data_dir/raft/wal/groups/*/*.seg), the
    same framing (docs/STORAGE.md); returns the file and offset."""
    base = os.path.join(data_dir, "raft", "wal")
    files = sorted(glob.glob(os.path.join(base, "wal", "*.wal"))) + \
        sorted(glob.glob(os.path.join(base, "groups", "*", "*.seg")))
    for path in files:
        for off, payload in wal_entries(path):
            i = payload.find(marker)
            if payload[:1] == b"E" and i >= 0:
                at = off + i + len(marker)
                with open(path, "r+b") as f:
                    f.seek(at)
                    byte = f.read(1)
                    f.seek(at)
                    f.write(bytes([byte[0] ^ 0x04]))
                return path, at
    raise AssertionError("no WAL entry holding %r under %s" % (marker, data_dir))


def test_e_flipped_bit_in_a_members_log_is_detected_and_repaired(make_cluster):
    c = make_cluster()
    lead = leader(c)
    victim, third = [n for n in c.nodes if n != lead]
    li = list(c.nodes).index(lead)
    cl = Clients(c, pub_nodes=(li, li), cons_node=li)
    try:
        cl.step(30)
        c.stop(victim)
        node = c.nodes[victim]
        log_before = len(node.log())
        path, at = flip_in_entry(node.broker.config["data_dir"], b"p0:5:")
        cl.step()  # entries the victim misses while down
        c.start(victim)
        wait_for(lambda: "its log was damaged" in node.log()[log_before:], DEADLINE,
                 "%s to report its damaged log (%s, byte %d flipped)" % (victim, path, at))
        wait_for(lambda: online(c, lead, victim), DEADLINE, "%s back online" % victim)
        wait_for(lambda: repaired(c, lead, victim), DEADLINE, "%s repaired from the leader" % victim)
        # With the third member stopped, every commit needs the repaired one.
        c.stop(third)
        cl.step()
        c.start(third)
        c.wait_all_up()
        cl.step()
        cl.drain()
    finally:
        cl.stop()


def test_f_no_confirm_without_a_majority(make_cluster):
    c = make_cluster()
    lead = leader(c)
    li = list(c.nodes).index(lead)
    cl = Clients(c, pub_nodes=(li, li), cons_node=li)
    try:
        cl.step()
        followers = [n for n in c.nodes if n != lead]
        for f in followers:
            c.kill(f)
        wait_for(lambda: not any(c.nodes[lead].running().values()), DEADLINE, "%s to see both down" % lead)
        before = [p.confirmed for p in cl.pubs]
        cl.grant()
        # Alone, the leader can commit nothing: for 3 s (beyond an election
        # timeout) no publish may be confirmed.
        holds_for(lambda: [p.confirmed for p in cl.pubs] == before, 3.0,
                  "a publish confirmed by %s without a majority" % lead)
        c.start(followers[0])
        for p in cl.pubs:
            p.wait_confirmed(p.budget)
        c.start(followers[1])
        c.wait_all_up()
        cl.step()
        cl.drain()
    finally:
        cl.stop()
