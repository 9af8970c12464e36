# SPDX-License-Identifier: MIT
# Users and permissions changed at run time: a definitions import creates
# them (RabbitMQ's password_hash opens the account over AMQP and the
# permissions are enforced), PUT and DELETE on /api/users/NAME and
# /api/permissions/VHOST/USER answer with RabbitMQ's statuses and bodies,
# a user's and a vhost's permissions are listed, deleting a user closes its
# connections, and an export imports back with its users.
# warren-only: each test starts its own warrend.
import base64
import hashlib
import json

import pika
import pytest

from helpers import channel_error


def rabbit_hash(password, salt=b"\x90\x8d\xe2\x11"):
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt ++ sha256(salt ++ password))."""
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


DEFS = {
    "users": [{"name": "imported", "password_hash": rabbit_hash("imp-Pw-1"),
               "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["monitoring"]}],
    "vhosts": [{"name": "/"}],
    "permissions": [{"user": "imported", "vhost": "/", "configure": "^imp\\.", "write": ".*",
                     "read": ".*"}],
}


def refused(queue, user):
    return "ACCESS_REFUSED - access to queue '%s' in vhost '/' refused for user '%s'" % (queue, user)


def test_imported_user_logs_in_and_is_limited(warren):
    w = warren()
    assert w.mgmt.post("/api/definitions", DEFS).status == 204
    u = w.mgmt.get("/api/users/imported").json
    assert (u["password_hash"], u["tags"]) == (DEFS["users"][0]["password_hash"], ["monitoring"])
    perm = w.mgmt.get("/api/permissions/%2F/imported").json
    assert (perm["configure"], perm["write"], perm["read"]) == ("^imp\\.", ".*", ".*")

    c = w.connect(user="imported", password="imp-Pw-1")
    ch = c.channel()
    ch.queue_declare("imp.ok")
    with channel_error(403, refused("other.q", "imported")):
        ch.queue_declare("other.q")
    c.close()
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        w.connect(user="imported", password="wrong")


def test_definitions_loaded_at_boot_and_round_trip(warren, tmp_path):
    path = tmp_path / "defs.json"
    path.write_text(json.dumps(DEFS))
    w = warren({"load_definitions": str(path)})
    w.connect(user="imported", password="imp-Pw-1").close()
    exported = w.mgmt.get("/api/definitions").json
    assert sorted(u["name"] for u in exported["users"]) == ["guest", "imported"]

    w2 = warren()
    assert w2.mgmt.post("/api/definitions", exported).status == 204
    again = w2.mgmt.get("/api/definitions").json
    key = lambda u: u["name"]  # noqa: E731
    assert sorted(again["users"], key=key) == sorted(exported["users"], key=key)
    assert sorted(map(json.dumps, again["permissions"])) == sorted(map(json.dumps, exported["permissions"]))
    w2.connect(user="imported", password="imp-Pw-1").close()


def test_put_delete_user_and_permission(warren):
    w = warren()
    api = w.mgmt
    assert api.get("/api/users/bob").status == 404
    assert api.put("/api/users/bob", {"password": "b0b", "tags": "monitoring,management"}).status == 201
    assert api.get("/api/users/bob").json["tags"] == ["monitoring", "management"]
    assert api.put("/api/users/bob", {"password": "b0b2", "tags": ""}).status == 204
    assert api.get("/api/users/bob").json["tags"] == []
    assert api.put("/api/users/bob", {"password": "x", "password_hash": rabbit_hash("x")}).status == 400
    assert api.put("/api/users/bob", {"password_hash": "not base64!"}).status == 400
    assert api.put("/api/users/bob", {"password": "b", "hashing_algorithm": "nope"}).status == 400
    # RabbitMQ's PUT needs tags (an empty string will do).
    r = api.put("/api/users/notags", {"password": "x"})
    assert (r.status, r.json) == (400, {"error": "bad_request", "reason": "tags_not_present"})
    assert api.get("/api/users/notags").status == 404

    # No permission yet: bob cannot open "/".
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError):
        w.connect(user="bob", password="b0b2")
    assert api.get("/api/permissions/%2F/bob").status == 404
    assert api.put("/api/permissions/%2F/bob", {"configure": "", "write": ".*", "read": ".*"}).status == 201
    assert api.put("/api/permissions/%2F/bob", {"configure": "^bob", "write": ".*", "read": ".*"}).status == 204
    assert api.put("/api/permissions/%2F/bob", {"configure": "(", "write": ".*", "read": ".*"}).status == 400
    assert api.put("/api/permissions/%2F/bob", {"configure": ".*"}).status == 400
    # RabbitMQ: a PUT for an unknown user or vhost is a bad request; a GET
    # or DELETE is not found.
    for path in ["/api/permissions/%2F/nobody", "/api/permissions/no-vh/bob"]:
        r = api.put(path, {"configure": ".*", "write": ".*", "read": ".*"})
        assert (r.status, r.json) == (400, {"error": "bad_request", "reason": "vhost_or_user_not_found"})
        assert (api.get(path).status, api.delete(path).status) == (404, 404)
    perm = {"user": "bob", "vhost": "/", "configure": "^bob", "write": ".*", "read": ".*"}
    assert api.get("/api/users/bob/permissions").json == [perm]
    assert perm in api.get("/api/vhosts/%2F/permissions").json
    assert api.get("/api/users/nobody/permissions").status == 404
    assert api.get("/api/vhosts/no-vh/permissions").status == 404
    c = w.connect(user="bob", password="b0b2")
    ch = c.channel()
    ch.queue_declare("bob.q")
    with channel_error(403, refused("q.bob", "bob")):
        ch.queue_declare("q.bob")

    # A permission taken away applies to the open connection at once.
    assert api.delete("/api/permissions/%2F/bob").status == 204
    assert api.delete("/api/permissions/%2F/bob").status == 404
    with channel_error(403, refused("bob.q2", "bob")):
        c.channel().queue_declare("bob.q2")

    # Deleting the user closes its connections, as RabbitMQ does.
    assert api.delete("/api/users/bob").status == 204
    assert api.delete("/api/users/bob").status == 404
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as e:
        for _ in range(50):
            c.process_data_events(0.1)
    assert (e.value.reply_code, e.value.reply_text) == (320, "CONNECTION_FORCED - user 'bob' is deleted")
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        w.connect(user="bob", password="b0b2")
    assert api.get("/api/users/bob").status == 404
    assert "bob" not in [p["user"] for p in api.get("/api/permissions").json]


def test_user_management_needs_administrator(warren):
    w = warren()
    assert w.mgmt.put("/api/users/mon", {"password": "m", "tags": ["monitoring"]}).status == 201
    r = w.mgmt.put("/api/users/x", {"password": "x"}, user="mon", password="m")
    assert r.status == 401


def test_import_checks_users_and_permissions_first(warren):
    w = warren()
    api = w.mgmt
    bad_hash = {"users": [{"name": "ok", "password": "p"}, {"name": "bad", "password_hash": "%%%%"}],
                "queues": [{"name": "not-created", "vhost": "/", "durable": True, "auto_delete": False,
                            "arguments": {}}]}
    r = api.post("/api/definitions", bad_hash)
    assert r.status == 400 and "users[1]: 'password_hash' is not a base64" in r.json["reason"], r
    bad_re = {"permissions": [{"user": "guest", "vhost": "/", "configure": "(", "write": "", "read": ""}]}
    r = api.post("/api/definitions", bad_re)
    assert r.status == 400 and "permissions[0]: 'configure': invalid regular expression" in r.json["reason"], r
    # Nothing of either document was applied.
    assert api.get("/api/users/ok").status == 404
    assert api.get("/api/queues/%2F/not-created").status == 404
    # A permission needs its user (from the file or the broker) and vhost.
    r = api.post("/api/definitions", {"permissions": [{"user": "ghost", "vhost": "/", "configure": ".*",
                                                        "write": ".*", "read": ".*"}]})
    assert r.status == 400 and "user 'ghost' does not exist" in r.json["reason"], r
    # A vhost-scoped import leaves users alone, as RabbitMQ's does.
    assert api.post("/api/definitions/%2F", {"users": [{"name": "scoped", "password": "s"}]}).status == 204
    assert api.get("/api/users/scoped").status == 404
