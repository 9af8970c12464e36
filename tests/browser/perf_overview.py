#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""How long the management UI's overview takes per refresh under load.

Starts warrend (as tests/integration does), declares QUEUES queues and opens
CONNECTIONS AMQP connections, logs in with headless Chromium and re-renders
the overview SAMPLES times; each refresh (fetching /api/overview and
/api/nodes, then updating the page and charts) is timed by the page itself
with the Performance API ("refresh:overview" measures). Prints the median,
95th percentile and maximum, and the same for a page of the queue list.

    WARREND=$PWD/build/broker/warrend /usr/bin/python3 tests/browser/perf_overview.py \\
        [--queues 10000] [--connections 1000] [--samples 30]

Exits 1 when the median overview refresh is not under --budget ms (200).
"""
import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import pika  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

import conftest  # noqa: E402

it, helpers = conftest.it, conftest.helpers


def load(broker, queues, connections):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, connections + 256)), hard))
    conn = pika.BlockingConnection(helpers.params(broker.host, broker.port))
    ch = conn.channel()
    for i in range(queues):
        ch.queue_declare("perf-%05d" % i)
    for i in range(0, queues, 10):
        ch.basic_publish("", "perf-%05d" % i, b"x")
    conns = [conn]
    for _ in range(connections - 1):
        conns.append(pika.BlockingConnection(helpers.params(broker.host, broker.port)))
    return conns


def measures(driver, name):
    return driver.execute_script(
        "return performance.getEntriesByName(arguments[0]).map(e => e.duration);", name)


def sample(driver, route, name, n):
    """Renders route n times (alternating two hashes of the same page) and
    returns the n refresh durations in ms."""
    driver.execute_script("performance.clearMeasures(arguments[0]);", name)
    for i in range(n):
        driver.execute_script("location.hash = arguments[0];", "#/" + route + ("/" if i % 2 else ""))
        WebDriverWait(driver, 30, poll_frequency=0.01).until(lambda d: len(measures(d, name)) > i)
    return measures(driver, name)


def report(what, ms):
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    print("%s: median %.1f ms, p95 %.1f ms, max %.1f ms over %d refreshes"
          % (what, statistics.median(ms), p95, ms[-1], len(ms)))
    return statistics.median(ms)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queues", type=int, default=10000)
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--budget", type=float, default=200.0)
    a = ap.parse_args()
    amqp, mgmt, prom = helpers.free_port(), helpers.free_port(), helpers.free_port()
    cfg = it.mgmt_config(amqp, mgmt, prom)
    cfg["users"] = conftest.USERS
    cfg["collect_statistics_interval"] = 5000
    broker = it.start_warrend(raw_config=cfg)
    profile = tempfile.mkdtemp(prefix="warren-chromium-")
    driver = None
    try:
        t0 = time.monotonic()
        conns = load(broker, a.queues, a.connections)
        print("declared %d queues, opened %d connections in %.1f s"
              % (a.queues, len(conns), time.monotonic() - t0))
        totals = it.Http("127.0.0.1", mgmt).get("/api/overview").json["object_totals"]
        print("overview object_totals: %s" % totals)
        driver = conftest.new_driver(profile)
        url = "http://127.0.0.1:%d" % mgmt
        driver.get(url + "/")
        WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "username"))
        driver.find_element(By.ID, "username").send_keys("guest")
        driver.find_element(By.ID, "password").send_keys("guest")
        driver.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
        WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "whoami"))
        median = report("overview", sample(driver, "", "refresh:overview", a.samples))
        report("queue list (page of 100 of %d)" % a.queues, sample(driver, "queues", "refresh:queues", a.samples))
        for c in conns:
            c.close()
    finally:
        if driver:
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
        it.stop_and_check(broker)
    return 0 if median < a.budget else 1


if __name__ == "__main__":
    sys.exit(main())
