# SPDX-License-Identifier: MIT
# Exchanges: the four types and their routing, the pre-declared exchanges,
# declare/passive/equivalence, delete, auto-delete, internal, exchange-to-
# exchange bindings, reserved names, the default exchange.
import pika
import pytest

import amqp_raw as raw
from helpers import channel_error, connection_error, drain


def routed(ch, exchange, routing_key, queues, headers=None):
    """Publishes one message and returns the set of queues (of `queues`) it
    reached, draining them."""
    body = b"probe-" + routing_key.encode()
    props = pika.BasicProperties(headers=headers) if headers is not None else None
    ch.basic_publish(exchange, routing_key, body, props)
    hit = set()
    for q in queues:
        got = drain(ch, q)
        assert got in ([], [body]), "queue %s got %r" % (q, got)
        if got:
            hit.add(q)
    return hit


def fresh_queue(ch, name):
    q = name("q")
    ch.queue_declare(q, exclusive=True)
    return q


@pytest.mark.parametrize("xname,xtype", [
    ("amq.direct", "direct"), ("amq.fanout", "fanout"), ("amq.topic", "topic"),
    ("amq.headers", "headers"), ("amq.match", "headers")])
def test_predeclared_exchanges(ch, name, xname, xtype):
    """The amq.* exchanges exist (passive declare) and route by their type."""
    ch.exchange_declare(xname, passive=True)
    q = fresh_queue(ch, name)
    if xtype == "headers":
        ch.queue_bind(q, xname, "", arguments={"x-match": "all", "k": "v"})
        assert routed(ch, xname, "anything", [q], headers={"k": "v"}) == {q}
        assert routed(ch, xname, "anything", [q], headers={"k": "w"}) == set()
    elif xtype == "fanout":
        ch.queue_bind(q, xname, "ignored")
        assert routed(ch, xname, "other", [q]) == {q}
    elif xtype == "topic":
        ch.queue_bind(q, xname, "%s.*" % q)
        assert routed(ch, xname, "%s.x" % q, [q]) == {q}
        assert routed(ch, xname, "%s.x.y" % q, [q]) == set()
    else:
        ch.queue_bind(q, xname, q)
        assert routed(ch, xname, q, [q]) == {q}
        assert routed(ch, xname, q + "x", [q]) == set()


def test_default_exchange_routes_by_queue_name(ch, name):
    q = fresh_queue(ch, name)
    assert routed(ch, "", q, [q]) == {q}
    assert routed(ch, "", q + "-nope", [q]) == set()


@pytest.mark.parametrize("passive", [True, False])
def test_default_exchange_declare_refused(ch, passive):
    """Even a passive declare of the default exchange ("") is refused."""
    with channel_error(403, "ACCESS_REFUSED - operation not permitted on the default exchange"):
        ch.exchange_declare("", "direct", durable=True, passive=passive)


@pytest.mark.parametrize("op", ["queue_bind", "queue_unbind", "exchange_delete",
                                "exchange_bind_src", "exchange_bind_dst"])
def test_default_exchange_operations_refused(conn, name, op):
    ch = conn.channel()
    q = fresh_queue(ch, name)
    x = name("x")
    ch.exchange_declare(x, "fanout", auto_delete=True)
    text = "ACCESS_REFUSED - operation not permitted on the default exchange"
    with channel_error(403, text):
        if op == "queue_bind":
            ch.queue_bind(q, "", q)
        elif op == "queue_unbind":
            ch.queue_unbind(q, "", q)
        elif op == "exchange_delete":
            ch.exchange_delete("")
        elif op == "exchange_bind_src":
            ch.exchange_bind(x, "", "rk")
        else:
            ch.exchange_bind("", x, "rk")


def test_direct_routing(ch, name):
    x = name("x")
    ch.exchange_declare(x, "direct", auto_delete=True)
    qa, qb, qc = (fresh_queue(ch, name) for _ in range(3))
    ch.queue_bind(qa, x, "red")
    ch.queue_bind(qb, x, "red")
    ch.queue_bind(qb, x, "green")
    ch.queue_bind(qc, x, "")
    qs = [qa, qb, qc]
    assert routed(ch, x, "red", qs) == {qa, qb}
    assert routed(ch, x, "green", qs) == {qb}
    assert routed(ch, x, "", qs) == {qc}
    assert routed(ch, x, "blue", qs) == set()
    assert routed(ch, x, "RED", qs) == set()


def test_duplicate_binding_delivers_once(ch, name):
    x = name("x")
    ch.exchange_declare(x, "direct", auto_delete=True)
    q = fresh_queue(ch, name)
    ch.queue_bind(q, x, "k")
    ch.queue_bind(q, x, "k")
    assert routed(ch, x, "k", [q]) == {q}   # exactly one copy (routed checks)


def test_fanout_routing(ch, name):
    x = name("x")
    ch.exchange_declare(x, "fanout", auto_delete=True)
    qa, qb = fresh_queue(ch, name), fresh_queue(ch, name)
    ch.queue_bind(qa, x, "")
    ch.queue_bind(qb, x, "whatever")
    assert routed(ch, x, "", [qa, qb]) == {qa, qb}
    assert routed(ch, x, "zzz", [qa, qb]) == {qa, qb}


TOPIC_CASES = [
    # (binding key, routing key, matches)
    ("a.b.c", "a.b.c", True),
    ("a.b.c", "a.b", False),
    ("a.*.c", "a.b.c", True),
    ("a.*.c", "a.c", False),
    ("a.*.c", "a.b.b.c", False),
    ("*", "a", True),
    ("*", "", False),
    ("*", "a.b", False),
    ("#", "", True),
    ("#", "a.b.c", True),
    ("a.#", "a", True),
    ("a.#", "a.b.c", True),
    ("a.#", "ab", False),
    ("#.c", "c", True),
    ("#.c", "a.b.c", True),
    ("#.c", "a.b.c.d", False),
    ("a.#.c", "a.c", True),
    ("a.#.c", "a.x.y.c", True),
    ("a.#.#.c", "a.c", True),
    ("*.#", "", False),
    ("*.#", "a", True),
    ("#.*", "a.b", True),
    ("*.*", "a..", False),
    ("*.*", "a.", True),
    ("a..b", "a..b", True),
    ("a.*.b", "a..b", True),
    ("", "", True),
    ("", "a", False),
]


def test_topic_routing(ch, name):
    x = name("x")
    ch.exchange_declare(x, "topic", auto_delete=True)
    queues = []
    for binding, _, _ in TOPIC_CASES:
        q = fresh_queue(ch, name)
        ch.queue_bind(q, x, binding)
        queues.append(q)
    failures = []
    for i, (binding, key, match) in enumerate(TOPIC_CASES):
        hit = routed(ch, x, key, queues)
        if (queues[i] in hit) != match:
            failures.append("binding %r, routing key %r: expected %s" % (
                binding, key, "match" if match else "no match"))
    assert not failures, "\n".join(failures)


HEADERS_CASES = [
    # (binding arguments, message headers, matches)
    ({"x-match": "all", "a": "1", "b": "2"}, {"a": "1", "b": "2"}, True),
    ({"x-match": "all", "a": "1", "b": "2"}, {"a": "1", "b": "2", "c": "3"}, True),
    ({"x-match": "all", "a": "1", "b": "2"}, {"a": "1"}, False),
    ({"x-match": "all", "a": "1", "b": "2"}, {"a": "1", "b": "3"}, False),
    ({"x-match": "all", "a": "1"}, None, False),
    ({"x-match": "all"}, None, True),          # no keys: everything matches
    ({"x-match": "all"}, {"z": "1"}, True),
    ({"a": "1"}, {"a": "1"}, True),             # x-match defaults to all
    ({"a": "1", "b": "2"}, {"a": "1"}, False),
    ({"x-match": "any", "a": "1", "b": "2"}, {"a": "1"}, True),
    ({"x-match": "any", "a": "1", "b": "2"}, {"b": "2", "c": "9"}, True),
    ({"x-match": "any", "a": "1", "b": "2"}, {"a": "2", "b": "1"}, False),
    ({"x-match": "any", "a": "1"}, None, False),
    ({"x-match": "any"}, {"a": "1"}, False),    # no keys: nothing matches
    # x- keys in the binding are ignored by all/any ...
    ({"x-match": "all", "x-foo": "1", "a": "1"}, {"a": "1"}, True),
    ({"x-match": "any", "x-foo": "1"}, {"x-foo": "1"}, False),
    # ... and compared by all-with-x/any-with-x.
    ({"x-match": "all-with-x", "x-foo": "1", "a": "1"}, {"a": "1"}, False),
    ({"x-match": "all-with-x", "x-foo": "1", "a": "1"}, {"a": "1", "x-foo": "1"}, True),
    ({"x-match": "any-with-x", "x-foo": "1"}, {"x-foo": "1"}, True),
    ({"x-match": "any-with-x", "x-foo": "1", "a": "1"}, {"x-foo": "2"}, False),
    # typed values: integers, booleans, nested tables compare by value
    ({"x-match": "all", "n": 42}, {"n": 42}, True),
    ({"x-match": "all", "n": 42}, {"n": 43}, False),
    ({"x-match": "all", "n": 42}, {"n": "42"}, False),
    ({"x-match": "all", "f": True}, {"f": True}, True),
    ({"x-match": "all", "f": True}, {"f": False}, False),
    # a void binding value means "present, any value"
    ({"x-match": "all", "p": None}, {"p": "anything"}, True),
    ({"x-match": "all", "p": None}, {"q": "anything"}, False),
    ({"x-match": "any", "p": None, "q": "1"}, {"p": 5}, True),
]


def test_headers_routing(ch, name):
    x = name("x")
    ch.exchange_declare(x, "headers", auto_delete=True)
    queues = []
    for args, _, _ in HEADERS_CASES:
        q = fresh_queue(ch, name)
        ch.queue_bind(q, x, "", arguments=args)
        queues.append(q)
    failures = []
    for i, (args, headers, match) in enumerate(HEADERS_CASES):
        hit = routed(ch, x, "ignored", queues, headers=headers)
        if (queues[i] in hit) != match:
            failures.append("binding %r, headers %r: expected %s" % (
                args, headers, "match" if match else "no match"))
    assert not failures, "\n".join(failures)


def test_headers_integer_types_compare_by_value(broker, name):
    """A binding value sent as a 32-bit int ('I', what pika sends) matches a
    message header sent as a 64-bit int ('l'): values compare numerically."""
    c = broker.connect()
    ch = c.channel()
    x = name("x")
    ch.exchange_declare(x, "headers", auto_delete=True)
    q = name("q")
    ch.queue_declare(q, auto_delete=True)
    ch.queue_bind(q, x, "", arguments={"x-match": "all", "n": 7})
    with broker.raw() as r:
        r.handshake()
        r.open_channel(1)
        props = raw.table({"n": 7})       # the raw encoder sends ints as 'l'
        r.send(raw.basic_publish(1, x, ""))
        r.send(raw.header_frame(1, 2, flags=1 << 13, props=props))
        r.send(raw.body_frame(1, b"hi"))
        r.send(raw.basic_get(1, q))
        f = r.read_method()
        assert f.method == raw.BASIC_GET_OK, f
    ch.queue_delete(q)
    c.close()


def test_headers_invalid_x_match(conn, name):
    ch = conn.channel()
    x = name("x")
    ch.exchange_declare(x, "headers", auto_delete=True)
    q = fresh_queue(ch, name)
    ch.queue_bind(q, x, "", arguments={"x-match": "any", "k": 1})   # keep x alive
    with channel_error(406, "PRECONDITION_FAILED - Invalid x-match field value "
                            "<<\"nope\">>; expected all, any, all-with-x, or any-with-x"):
        ch.queue_bind(q, x, "", arguments={"x-match": "nope"})
    with channel_error(406, "PRECONDITION_FAILED - Invalid x-match field type signedint "
                            "(value 1); expected longstr"):
        conn.channel().queue_bind(q, x, "", arguments={"x-match": 1})


def test_exchange_declare_ok_and_passive(ch, name):
    x = name("x")
    ok = ch.exchange_declare(x, "direct", auto_delete=True)
    assert isinstance(ok.method, pika.spec.Exchange.DeclareOk)
    ch.exchange_declare(x, passive=True)
    # passive ignores type and flags
    ch.exchange_declare(x, "fanout", passive=True, durable=True)


def test_exchange_passive_missing(ch, name):
    x = name("x")
    with channel_error(404, "NOT_FOUND - no exchange '%s' in vhost '/'" % x):
        ch.exchange_declare(x, passive=True)


@pytest.mark.parametrize("first,second,arg,received,current", [
    (dict(exchange_type="direct"), dict(exchange_type="fanout"), "type", "fanout", "direct"),
    (dict(durable=False), dict(durable=True), "durable", "true", "false"),
    (dict(auto_delete=True), dict(auto_delete=False), "auto_delete", "false", "true"),
    (dict(internal=False), dict(internal=True), "internal", "true", "false"),
])
def test_exchange_inequivalent_redeclare(conn, name, first, second, arg, received, current):
    ch = conn.channel()
    x = name("x")
    base = dict(exchange_type="direct", auto_delete=True)
    ch.exchange_declare(x, **dict(base, **first))
    ch.exchange_declare(x, **dict(base, **first))   # identical: fine
    with channel_error(406, "PRECONDITION_FAILED - inequivalent arg '%s' for exchange '%s' in "
                            "vhost '/': received '%s' but current is '%s'"
                            % (arg, x, received, current)):
        ch.exchange_declare(x, **dict(base, **second))
    conn.channel().exchange_delete(x)


def test_exchange_delete(ch, name):
    x = name("x")
    ch.exchange_declare(x, "direct")
    ch.exchange_delete(x)
    with channel_error(404, "NOT_FOUND - no exchange '%s' in vhost '/'" % x):
        ch.exchange_declare(x, passive=True)


def test_exchange_delete_missing_is_ok(ch, name):
    """Deleting an exchange that does not exist succeeds (delete-ok)."""
    ch.exchange_delete(name("x"))


def test_exchange_delete_if_unused(conn, name):
    ch = conn.channel()
    x = name("x")
    ch.exchange_declare(x, "direct")
    q = fresh_queue(ch, name)
    ch.queue_bind(q, x, "k")
    with channel_error(406, "PRECONDITION_FAILED - exchange '%s' in vhost '/' in use" % x):
        ch.exchange_delete(x, if_unused=True)
    ch = conn.channel()
    ch.queue_unbind(q, x, "k")
    ch.exchange_delete(x, if_unused=True)
    with channel_error(404, "NOT_FOUND - no exchange '%s' in vhost '/'" % x):
        ch.exchange_declare(x, passive=True)


def test_exchange_delete_removes_bindings(ch, name):
    x = name("x")
    ch.exchange_declare(x, "fanout")
    q = fresh_queue(ch, name)
    ch.queue_bind(q, x, "")
    ch.exchange_delete(x)
    ch.exchange_declare(x, "fanout", auto_delete=True)
    ch.queue_bind(fresh_queue(ch, name), x, "")     # keep it alive
    assert routed(ch, x, "", [q]) == set()


def test_exchange_auto_delete(conn, name):
    """An auto-delete exchange goes when its last binding goes (not before it
    had one)."""
    ch = conn.channel()
    x = name("x")
    ch.exchange_declare(x, "direct", auto_delete=True)
    ch.exchange_declare(x, passive=True)    # no bindings yet: still there
    q1, q2 = fresh_queue(ch, name), fresh_queue(ch, name)
    ch.queue_bind(q1, x, "a")
    ch.queue_bind(q2, x, "b")
    ch.queue_unbind(q1, x, "a")
    ch.exchange_declare(x, passive=True)    # one binding left
    ch.queue_delete(q2)                     # removes the last binding
    with channel_error(404, "NOT_FOUND - no exchange '%s' in vhost '/'" % x):
        ch.exchange_declare(x, passive=True)


def test_exchange_auto_delete_via_exchange_binding(conn, name):
    ch = conn.channel()
    src, dst = name("src"), name("dst")
    ch.exchange_declare(src, "fanout", auto_delete=True)
    ch.exchange_declare(dst, "fanout")
    ch.exchange_bind(dst, src, "")
    ch.exchange_unbind(dst, src, "")
    with channel_error(404, "NOT_FOUND - no exchange '%s' in vhost '/'" % src):
        ch.exchange_declare(src, passive=True)
    conn.channel().exchange_delete(dst)


def test_internal_exchange(conn, name):
    ch = conn.channel()
    front, internal = name("front"), name("internal")
    ch.exchange_declare(front, "fanout", auto_delete=True)
    ch.exchange_declare(internal, "fanout", internal=True, auto_delete=True)
    ch.exchange_bind(internal, front, "")
    q = fresh_queue(ch, name)
    ch.queue_bind(q, internal, "")
    # reachable through an exchange-to-exchange binding
    assert routed(ch, front, "", [q]) == {q}
    with channel_error(403, "ACCESS_REFUSED - cannot publish to internal exchange '%s' "
                            "in vhost '/'" % internal):
        ch.basic_publish(internal, "", b"direct to internal")
        ch.queue_declare(q, passive=True)   # round trip to surface the close


def test_exchange_to_exchange_bindings(ch, name):
    a, b, c = name("a"), name("b"), name("c")
    ch.exchange_declare(a, "topic", auto_delete=True)
    ch.exchange_declare(b, "direct", auto_delete=True)
    ch.exchange_declare(c, "fanout", auto_delete=True)
    qb, qc = fresh_queue(ch, name), fresh_queue(ch, name)
    ch.exchange_bind(b, a, "x.*")        # a --x.*--> b
    ch.exchange_bind(c, a, "#")          # a --#--> c
    ch.queue_bind(qb, b, "x.y")
    ch.queue_bind(qc, c, "")
    assert routed(ch, a, "x.y", [qb, qc]) == {qb, qc}
    assert routed(ch, a, "x.z", [qb, qc]) == {qc}      # b's direct key differs
    assert routed(ch, a, "q", [qb, qc]) == {qc}
    ch.exchange_unbind(c, a, "#")
    assert routed(ch, a, "x.y", [qb, qc]) == {qb}
    assert routed(ch, a, "q", [qb, qc]) == set()


def test_exchange_binding_cycle_and_diamond(ch, name):
    """Cycles terminate; a queue reachable by two paths gets one copy."""
    a, b, c = name("a"), name("b"), name("c")
    for x in (a, b, c):
        ch.exchange_declare(x, "fanout", auto_delete=True)
    q = fresh_queue(ch, name)
    ch.exchange_bind(b, a, "")
    ch.exchange_bind(c, a, "")
    ch.exchange_bind(a, b, "")     # cycle a -> b -> a
    ch.queue_bind(q, b, "")
    ch.queue_bind(q, c, "")        # diamond a -> b -> q, a -> c -> q
    assert routed(ch, a, "", [q]) == {q}     # exactly one copy


def test_bind_missing_exchange(conn, name):
    ch = conn.channel()
    q = fresh_queue(ch, name)
    x = name("x")
    with channel_error(404, "NOT_FOUND - no exchange '%s' in vhost '/'" % x):
        ch.queue_bind(q, x, "k")


def test_bind_missing_queue(conn, name):
    ch = conn.channel()
    x = name("x")
    ch.exchange_declare(x, "direct", auto_delete=True)
    q = name("q")
    with channel_error(404, "NOT_FOUND - no queue '%s' in vhost '/'" % q):
        ch.queue_bind(q, x, "k")
    conn.channel().exchange_delete(x)


def test_exchange_bind_missing_source(conn, name):
    ch = conn.channel()
    dst, src = name("dst"), name("src")
    ch.exchange_declare(dst, "fanout", auto_delete=True)
    with channel_error(404, "NOT_FOUND - no exchange '%s' in vhost '/'" % src):
        ch.exchange_bind(dst, src, "")
    conn.channel().exchange_delete(dst)


def test_exchange_bind_missing_destination(conn, name):
    ch = conn.channel()
    dst, src = name("dst"), name("src")
    ch.exchange_declare(src, "fanout", auto_delete=True)
    with channel_error(404, "NOT_FOUND - no exchange '%s' in vhost '/'" % dst):
        ch.exchange_bind(dst, src, "")
    conn.channel().exchange_delete(src)


def test_exchange_bind_both_missing(ch, name):
    dst, src = name("dst"), name("src")
    # RabbitMQ names only the source.
    with channel_error(404, "NOT_FOUND - no exchange '%s' in vhost '/'" % src):
        ch.exchange_bind(dst, src, "")


def test_unbind_missing_binding_is_ok(ch, name):
    x = name("x")
    ch.exchange_declare(x, "direct", auto_delete=True)
    q = fresh_queue(ch, name)
    ch.queue_bind(q, x, "bound")
    ch.queue_unbind(q, x, "never-bound")
    assert routed(ch, x, "bound", [q]) == {q}


def test_reserved_prefix_declare(ch, name):
    x = "amq." + name("x")
    with channel_error(403, "ACCESS_REFUSED - exchange name '%s' contains reserved prefix "
                            "'amq.*'" % x):
        ch.exchange_declare(x, "direct")


def test_reserved_prefix_passive_missing(ch, name):
    x = "amq." + name("x")
    with channel_error(404, "NOT_FOUND - no exchange '%s' in vhost '/'" % x):
        ch.exchange_declare(x, passive=True)


def test_redeclare_predeclared(conn):
    """An equivalent active declare of a pre-declared exchange is fine (the
    reserved-prefix rule applies to creating new ones); a non-equivalent one
    gets the usual 406. The amq.* exchanges are durable."""
    conn.channel().exchange_declare("amq.direct", "direct", durable=True)
    with channel_error(406, "PRECONDITION_FAILED - inequivalent arg 'type' for exchange "
                            "'amq.direct' in vhost '/': received 'fanout' but current is "
                            "'direct'"):
        conn.channel().exchange_declare("amq.direct", "fanout", durable=True)
    with channel_error(406, "PRECONDITION_FAILED - inequivalent arg 'durable' for exchange "
                            "'amq.topic' in vhost '/': received 'false' but current is "
                            "'true'"):
        conn.channel().exchange_declare("amq.topic", "topic", durable=False)


@pytest.mark.parametrize("xname", ["amq.fanout", "amq.match", "amq.no-such-exchange"])
def test_delete_amq_prefixed_refused(ch, xname):
    """Deleting any amq.* exchange is refused, existing or not."""
    with channel_error(403, "ACCESS_REFUSED - deletion of system exchange '%s' in vhost '/' "
                            "not allowed" % xname):
        ch.exchange_delete(xname)


def test_unknown_exchange_type(broker, name):
    """An unknown type is a connection error, 503 COMMAND_INVALID."""
    c = broker.connect()
    ch = c.channel()
    with connection_error(503, "COMMAND_INVALID - unknown exchange type 'x-no-such-type'"):
        ch.exchange_declare(name("x"), exchange_type="x-no-such-type")
    assert c.is_closed


def test_unknown_exchange_type_passive_ok(ch):
    """passive ignores the type."""
    ch.exchange_declare("amq.direct", exchange_type="x-no-such-type", passive=True)
