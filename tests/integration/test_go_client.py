# SPDX-License-Identifier: MIT
# amqp091-go (Debian's golang-github-rabbitmq-amqp091-go-dev), the Go client
# RabbitMQ maintains: tests/integration/go/closeloop, built here with Debian's
# Go in GOPATH mode, opens and closes connections and must see no error.
import os
import shutil
import subprocess

import pytest

GO_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "go", "closeloop")
GOPATH = "/usr/share/gocode"


@pytest.fixture(scope="module")
def closeloop(tmp_path_factory):
    """The closeloop binary; skips without Go or amqp091-go (scripts/deps --test)."""
    go = shutil.which("go")
    if not go or not os.path.isdir(os.path.join(GOPATH, "src/github.com/rabbitmq/amqp091-go")):
        pytest.skip("needs golang-go and golang-github-rabbitmq-amqp091-go-dev (scripts/deps --test)")
    out = tmp_path_factory.mktemp("go")
    env = dict(os.environ, GO111MODULE="off", GOPATH=GOPATH, GOCACHE=str(out / "cache"),
               GOFLAGS="")
    subprocess.run([go, "build", "-o", str(out / "closeloop"), "."], cwd=GO_SRC, env=env,
                   check=True, timeout=120)
    return str(out / "closeloop")


def run_closeloop(binary, broker, *args):
    url = "amqp://guest:guest@%s/" % broker.addr
    return subprocess.run([binary, "-url", url, *args], capture_output=True, text=True,
                          timeout=60)


def test_close_twenty_times(closeloop, broker):
    """Before warren left the socket to the client after close-ok, most of
    these rounds ended with NotifyClose delivering Exception (501) Reason:
    "EOF" (8 of 20 clean), which sets off reconnect-on-close loops."""
    r = run_closeloop(closeloop, broker, "-n", "20")
    assert r.stdout.splitlines()[-1] == "clean 20/20", r.stdout + r.stderr
    assert r.returncode == 0


def test_update_secret(closeloop, broker):
    """Connection.UpdateSecret (connection.update-secret) succeeds."""
    r = run_closeloop(closeloop, broker, "-n", "3", "-update-secret")
    assert r.stdout.splitlines()[-1] == "clean 3/3", r.stdout + r.stderr
