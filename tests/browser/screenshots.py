#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Screenshots of the management UI for docs/MANAGEMENT.md.

Starts warrend (as tests/integration does) with a few queues, a publisher
and a consumer running, lets the overview and a queue's page chart a minute
of traffic in headless Chromium, and saves PNGs of the overview, the queue's
detail and the admin page:

    WARREND=$PWD/build/broker/warrend /usr/bin/python3 tests/browser/screenshots.py [docs/images]
"""
import os
import shutil
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import pika  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

import conftest  # noqa: E402

it, helpers = conftest.it, conftest.helpers
CHART_SECONDS = 60


def traffic(broker, stop):
    """Publishes to orders (consumed and acked, slower than published) and
    to audit (never consumed) until stop is set."""
    pub = pika.BlockingConnection(helpers.params(broker.host, broker.port))
    con = pika.BlockingConnection(helpers.params(broker.host, broker.port))
    pch, cch = pub.channel(), con.channel()
    pch.confirm_delivery()
    for q, args in [("orders", {"x-max-length": 100000}), ("audit", {"x-message-ttl": 3600000}),
                    ("emails", {}), ("payments.retry", {"x-dead-letter-exchange": "amq.direct"})]:
        pch.queue_declare(q, durable=True, arguments=args)
    cch.basic_qos(prefetch_count=50)
    cch.basic_consume("orders", lambda ch, m, p, b: ch.basic_ack(m.delivery_tag))
    i = 0
    while not stop.is_set():
        burst = 20 + (i % 30)
        for _ in range(burst):
            pch.basic_publish("", "orders", b'{"order": %d}' % i,
                              pika.BasicProperties(content_type="application/json", delivery_mode=2))
        if i % 3 == 0:
            pch.basic_publish("", "audit", b"audit event %d" % i,
                              pika.BasicProperties(headers={"source": "billing"}))
        con.process_data_events(time_limit=0.05 if i % 40 < 20 else 0.01)
        i += 1
    pub.close()
    con.close()


def login(driver, url):
    driver.get(url + "/")
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "username"))
    driver.find_element(By.ID, "username").send_keys("guest")
    driver.find_element(By.ID, "password").send_keys("guest")
    driver.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "whoami"))


def main():
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "docs", "images"))
    os.makedirs(out, exist_ok=True)
    amqp, mgmt, prom = helpers.free_port(), helpers.free_port(), helpers.free_port()
    cfg = it.mgmt_config(amqp, mgmt, prom)
    cfg["users"] = conftest.USERS
    cfg["collect_statistics_interval"] = 1000
    broker = it.start_warrend(raw_config=cfg)
    stop = threading.Event()
    t = threading.Thread(target=traffic, args=(broker, stop))
    t.start()
    profile = tempfile.mkdtemp(prefix="warren-chromium-")
    driver = conftest.new_driver(profile)
    url = "http://127.0.0.1:%d" % mgmt
    try:
        driver.set_window_size(1400, 1000)
        login(driver, url)
        time.sleep(CHART_SECONDS)  # the charts need a minute of samples to show
        driver.save_screenshot(os.path.join(out, "ui-overview.png"))
        driver.get(url + "/#/queues/%2F/orders")
        time.sleep(CHART_SECONDS)
        driver.save_screenshot(os.path.join(out, "ui-queue.png"))
        driver.get(url + "/#/admin/users")
        WebDriverWait(driver, 10).until(lambda d: "mon" in d.find_element(By.ID, "admin-users").text)
        driver.save_screenshot(os.path.join(out, "ui-admin.png"))
    finally:
        stop.set()
        t.join()
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
        it.stop_and_check(broker)
    print("screenshots in", out)


if __name__ == "__main__":
    main()
