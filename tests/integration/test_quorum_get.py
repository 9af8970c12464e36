# SPDX-License-Identifier: MIT
# basic.get on a quorum queue when its outcome is unknown (docs/QUORUM.md,
# "The queue type"): a DEQUEUE whose proposal timed out and went again must
# deliver once, with and without acks; one with no outcome for 30 s answers
# the connection (541) and loses nothing; a queue.purge, which waits for its
# PURGE to be applied, answers 541 as well. Real 3-node clusters with paused
# followers; every wait is a condition with a deadline. warren only. In the
# integration-2 shard: the 30 s case mostly waits, and the quorum shard is
# the suite's longest.
import threading

import pika
import pytest

from cluster import DEADLINE
from helpers import wait_for
from test_cluster_quorum import led_by_n1, queue_info, raft_of


@pytest.mark.parametrize("auto_ack", [False, True], ids=["ack", "no-ack"])
def test_a_get_retried_across_a_leader_change_is_delivered_once(cluster, auto_ack):
    """A basic.get reaches the leader's log as its followers stop: it cannot
    commit, and at its 5 s deadline its outcome is unknown, so the node
    proposes it again (a DEQUEUE is not idempotent as an ENQUEUE is). n2 comes
    back: n1's log is the longer, so n1 leads again and the first attempt
    commits and is answered. The second attempt must then not be sent, or,
    sent, must not take back the message answered: before, it checked out the
    next message to the answered get, whose consumer then went DOWN, returning
    the answered message too, and the client's ack of it was dropped, so the
    same channel got it again (the CI failure "2047, consumed before the
    restart, came back unflagged" in test_quorum_memory.py). A no-ack get's
    second attempt took its message for good: its DEQUEUE now checks out too,
    settled once the answer is handed over."""
    n1, conn, ch = led_by_n1(cluster, "qg", [b"a", b"b", b"c"])
    before = raft_of(n1, "qg")
    first = []
    cluster.pause("n2")
    cluster.pause("n3")
    try:
        t = threading.Thread(target=lambda: first.append(ch.basic_get("qg", auto_ack=auto_ack)))
        t.start()
        wait_for(lambda: raft_of(n1, "qg").get("last_index", 0) > before["last_index"], DEADLINE,
                 "the get in n1's log")
        wait_for(lambda: raft_of(n1, "qg").get("proposals_timed_out", 0) > before["proposals_timed_out"],
                 DEADLINE, "the get's outcome unknown at its deadline")
        # n1's log is the longer: with n2 alone back, only n1 can win, and its get commits.
        cluster.resume("n2")
        t.join(DEADLINE)
        assert first, "the get was not answered"
    finally:
        cluster.resume("n2")
        cluster.resume("n3")
    m, _, b = first[0]
    assert (m.redelivered, b) == (False, b"a")
    # a stays unacked (its consumer in the machine lives) while the rest are got. Should the second
    # attempt have gone before the first was answered, what it took comes back (flagged, perhaps
    # after c): b and c, each once, and never a again.
    rest, tag = [], [m.delivery_tag]

    def more():
        m, _, b = ch.basic_get("qg", auto_ack=auto_ack)
        if m is not None:
            rest.append(b)
            tag[0] = m.delivery_tag
        return len(rest) >= 2
    wait_for(more, DEADLINE, "b and c")
    assert sorted(rest) == [b"b", b"c"]
    assert ch.basic_get("qg") == (None, None, None)
    if not auto_ack:
        ch.basic_ack(tag[0], multiple=True)
    conn.close()
    for n in ("n1", "n2", "n3"):
        wait_for(lambda: (queue_info(cluster.nodes[n], "qg") or {}).get("messages") == 0, DEADLINE,
                 "%s to see qg empty" % n)


def closed_while_followers_paused(cluster, call):
    """call() (a method on a connection to n1) in a thread while n2 and n3 are
    paused, for up to the 30-s retry deadline and a margin; then both resume.
    The (code, text) the broker closed the connection with, if it did."""
    failed = []

    def run():
        try:
            call()
        except pika.exceptions.ConnectionClosedByBroker as e:
            failed.append((e.reply_code, e.reply_text))
    cluster.pause("n2")
    cluster.pause("n3")
    try:
        t = threading.Thread(target=run)
        t.start()
        t.join(30 + DEADLINE)
    finally:
        cluster.resume("n2")
        cluster.resume("n3")
    return failed


def test_a_get_without_a_quorum_for_30s_fails_and_loses_nothing(cluster):
    """With both followers stopped, a basic.get cannot commit; after the 30 s
    every command is retried (WR_QUORUM_RETRY_MS) the connection hears, as
    from RabbitMQ, that the queue's leader is not there. Before, nothing
    answered the get: the connection, parked behind it, hung for good. The
    message is not lost: once the followers are back it is got again."""
    n1, conn, ch = led_by_n1(cluster, "qa", [b"x"])
    assert closed_while_followers_paused(cluster, lambda: ch.basic_get("qa")) == [
        (541, "INTERNAL_ERROR - timed out waiting for the leader of queue 'qa' in vhost '/'")]
    got = []

    def again():
        got.extend(b for m, _, b in [attempt_get(n1, "qa")] if m is not None)
        return got
    wait_for(again, DEADLINE, "x got again")
    assert got == [b"x"]


def test_a_purge_without_a_quorum_for_30s_fails(cluster):
    """queue.purge waits for its PURGE to be applied (purge_async), so with
    both followers paused it cannot be answered; after the 30 s every command
    is retried the connection hears 541, as for a basic.get, instead of
    staying parked behind it for good. (Whether the purge still commits once
    the followers are back is open, as for a command RabbitMQ timed out.)"""
    n1, conn, ch = led_by_n1(cluster, "qp", [b"x"])
    assert closed_while_followers_paused(cluster, lambda: ch.queue_purge("qp")) == [
        (541, "INTERNAL_ERROR - timed out waiting for the leader of queue 'qp' in vhost '/'")]
    wait_for(lambda: queue_info(n1, "qp") is not None, DEADLINE, "qp still there")


def attempt_get(node, queue):
    """basic.get with auto-ack on a new connection; (None, None, None) when empty or refused."""
    conn = node.connect()
    try:
        return conn.channel().basic_get(queue, auto_ack=True)
    except pika.exceptions.AMQPError:
        return None, None, None
    finally:
        if conn.is_open:
            conn.close()



def test_an_api_get_waits_for_its_dequeue_and_requeues(cluster):
    """The management API's get of a quorum queue is answered once its
    DEQUEUE commits (until session 18 it answered [] at once): with both
    followers paused it sits in n1's log and no reply comes; once they are
    back the reply has the head message and the count left, and the message
    (ack_requeue_true) is at the head again, before the next."""
    n1, conn, ch = led_by_n1(cluster, "qa", [b"a", b"b"])
    before = raft_of(n1, "qa")
    reply = []
    get = threading.Thread(target=lambda: reply.append(n1.http().post(
        "/api/queues/%2F/qa/get", {"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"})))
    cluster.pause("n2")
    cluster.pause("n3")
    try:
        get.start()
        wait_for(lambda: raft_of(n1, "qa").get("last_index", 0) > before["last_index"], DEADLINE,
                 "the get's DEQUEUE in n1's log")
        assert get.is_alive() and not reply, "the get was answered with no follower to commit it"
    finally:
        cluster.resume("n2")
        cluster.resume("n3")
    get.join(DEADLINE)
    assert reply and reply[0].status == 200, reply
    assert [(m["payload"], m["message_count"]) for m in reply[0].json] == [("a", 1)]
    m, _, body = ch.basic_get("qa", auto_ack=True)
    assert (body, m.redelivered) == (b"a", True)
    assert ch.basic_get("qa", auto_ack=True)[2] == b"b"
    conn.close()
