# SPDX-License-Identifier: MIT
# The "cluster" section of the configuration (docs/CLUSTERING.md) through
# warrend --check-config: a valid three-node and one-node section, the
# secret's rules (length after one trailing newline, a file readable by
# group or others refused with its path and mode), and every other mistake
# with its exact message and exit status 2.
# warren only (skips with WARREN_BROKER).
import json
import os
import subprocess

import pytest

SECRET = "s" * 32


def section(**kw):
    c = {"name": "warren", "node": "n1", "secret": SECRET,
         "listen": {"address": "127.0.0.1", "port": 25001},
         "nodes": [{"name": "n1", "address": "127.0.0.1", "port": 25001},
                   {"name": "n2", "address": "127.0.0.1", "port": 25002},
                   {"name": "n3", "address": "::1", "port": 25003}]}
    c.update(kw)
    return {k: v for k, v in c.items() if v is not None}


@pytest.fixture
def check(warrend_binary, tmp_path):
    """check(cluster section) -> (status, stdout, stderr lines with the
    config path replaced by FILE and tmp_path by DIR)."""
    def run(cluster):
        path = tmp_path / "warren.json"
        path.write_text(json.dumps({"cluster": cluster}))
        p = subprocess.run([warrend_binary, "--check-config", str(path)], capture_output=True, text=True,
                           timeout=30, cwd=str(tmp_path))
        lines = [line.replace(str(path), "FILE").replace(str(tmp_path), "DIR") for line in p.stderr.splitlines()]
        return p.returncode, p.stdout, lines
    return run


def secret_file(tmp_path, content, mode=0o600):
    path = tmp_path / "cluster.secret"
    path.write_bytes(content)
    os.chmod(path, mode)
    return str(path)


def test_valid_sections(check, tmp_path):
    assert check(section())[0] == 0
    one = section(nodes=[{"name": "n1", "address": "127.0.0.1", "port": 25001}])
    assert check(one)[0] == 0
    names = section(nodes=[{"name": "n1", "address": "127.0.0.1", "port": 25001},
                           {"name": "n2", "address": "localhost", "port": 25002},
                           {"name": "n3", "address": "n3.warren.default.svc.cluster.local", "port": 25003}])
    assert check(names)[0] == 0
    joiner = section(nodes=[{"name": "n1", "address": "127.0.0.1", "port": 25001, "seed": False},
                            {"name": "n2", "address": "127.0.0.1", "port": 25002, "seed": True}])
    assert check(joiner)[0] == 0
    # A secret file: one trailing newline is stripped, so 32 bytes + "\n" is enough.
    f = secret_file(tmp_path, b"k" * 32 + b"\n")
    assert check(section(secret=None, secret_file=f))[0] == 0


def problems(result):
    status, out, lines = result
    assert (status, out) == (2, ""), result
    return sorted(lines)


@pytest.mark.parametrize("cluster,expected", [
    ("on", ["FILE: cluster: expected an object, got a string"]),
    (section(extra=1), ["FILE: cluster.extra: unknown key"]),
    (section(name=None, node=None, listen=None, nodes=None),
     ["FILE: cluster: missing key 'listen'", "FILE: cluster: missing key 'name'",
      "FILE: cluster: missing key 'node'", "FILE: cluster: missing key 'nodes'"]),
    (section(name=""), ["FILE: cluster.name: must not be empty"]),
    (section(node="x" * 256), ["FILE: cluster.node: longer than 255 bytes"]),
    (section(secret=None), ["FILE: cluster: missing key 'secret_file' (or 'secret')"]),
    (section(secret_file="/nonexistent"), ["FILE: cluster: give either 'secret_file' or 'secret', not both"]),
    (section(secret="short"), ["FILE: cluster.secret: it has 5 bytes; a secret needs at least 32"]),
    (section(secret="s" * 31 + "\n"), ["FILE: cluster.secret: it has 31 bytes; a secret needs at least 32"]),
    (section(secret=None, secret_file="/nonexistent/secret"),
     ["FILE: cluster.secret_file: cannot open /nonexistent/secret: No such file or directory"]),
    (section(node="n4"), ["FILE: cluster.node: 'n4' is not one of cluster.nodes"]),
    (section(listen={"address": "127.0.0.1", "port": 25009}),
     ["FILE: cluster.nodes[0].port: this node's entry must name its listen port 25009, got 25001"]),
    (section(listen={"address": "localhost", "port": 25001, "tls": True}),
     ["FILE: cluster.listen.address: not an IPv4 or IPv6 address: 'localhost'",
      "FILE: cluster.listen.tls: unknown key"]),
    (section(listen={"port": 25001}), ["FILE: cluster.listen: missing key 'address'"]),
    (section(tls="yes"), ["FILE: cluster.tls: must be true or false"]),
    (section(nodes=[{"name": "n1", "address": "127.0.0.1", "port": 25001},
                    {"name": "n2", "address": "bad host!", "port": 25002},
                    {"name": "n3", "address": "-n3.example", "port": 25003},
                    {"name": "n4", "address": "a" * 64 + ".example", "port": 25004}]),
     ["FILE: cluster.nodes[1].address: not an IPv4 or IPv6 address or a host name: 'bad host!'",
      "FILE: cluster.nodes[2].address: not an IPv4 or IPv6 address or a host name: '-n3.example'",
      "FILE: cluster.nodes[3].address: not an IPv4 or IPv6 address or a host name: '" + "a" * 64 + ".example'"]),
    (section(tls=True), ["FILE: cluster.tls: TLS on peer links needs tls.certfile, tls.keyfile and tls.cacertfile"]),
    (section(nodes=[]), ["FILE: cluster.nodes: must name at least one node"]),
    (section(nodes={"n1": {}}), ["FILE: cluster.nodes: expected an array, got an object"]),
    (section(nodes=[{"name": "n1", "address": "127.0.0.1", "port": 25001},
                    {"name": "n1", "address": "127.0.0.2", "port": 0, "weight": 2}, "n3", {"name": "n3"}]),
     ["FILE: cluster.nodes[1].name: duplicate node name 'n1' (also cluster.nodes[0])",
      "FILE: cluster.nodes[1].port: must be between 1 and 65535, got 0",
      "FILE: cluster.nodes[1].weight: unknown key",
      "FILE: cluster.nodes[2]: expected an object, got a string",
      "FILE: cluster.nodes[3]: missing key 'address'", "FILE: cluster.nodes[3]: missing key 'port'"]),
    # Two names whose CRC32C (their Raft member id) is the same.
    (section(nodes=[{"name": "n1", "address": "127.0.0.1", "port": 25001},
                    {"name": "node-1371838", "address": "127.0.0.1", "port": 25002},
                    {"name": "node-2000402", "address": "127.0.0.1", "port": 25003}]),
     ["FILE: cluster.nodes[2].name: node name 'node-2000402' has the same Raft member id as 'node-1371838' "
      "(cluster.nodes[1]): rename one"]),
    # "seed": false marks a node that joins later (docs/CLUSTERING.md, Membership).
    (section(nodes=[{"name": "n1", "address": "127.0.0.1", "port": 25001, "seed": "no"}]),
     ["FILE: cluster.nodes[0].seed: must be true or false"]),
    (section(nodes=[{"name": "n1", "address": "127.0.0.1", "port": 25001, "seed": False},
                    {"name": "n2", "address": "127.0.0.1", "port": 25002, "seed": False}]),
     ["FILE: cluster.nodes: every node has \"seed\": false; a new cluster needs at least one seed"]),
])
def test_mistakes(check, cluster, expected):
    assert problems(check(cluster)) == sorted(expected)


def test_secret_file_too_short_after_newline(check, tmp_path):
    f = secret_file(tmp_path, b"k" * 31 + b"\n")
    assert problems(check(section(secret=None, secret_file=f))) == [
        "FILE: cluster.secret_file: the file holds 31 bytes; a secret needs at least 32"]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_secret_file_readable_by_others_is_refused(check, tmp_path, mode):
    f = secret_file(tmp_path, b"k" * 40, mode)
    assert problems(check(section(secret=None, secret_file=f))) == [
        "FILE: cluster.secret_file: DIR/cluster.secret is readable by group or others (mode %04o); "
        "make it readable by its owner only (chmod 600)" % mode]


def test_secret_file_is_a_directory(check, tmp_path):
    assert problems(check(section(secret=None, secret_file=str(tmp_path)))) == [
        "FILE: cluster.secret_file: DIR is not a regular file"]
