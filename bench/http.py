#!/usr/bin/env python3
# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""bench/http.py - `make bench-http`: the HTTP API under load while a large
file ingests (issue 4). Not part of make test.

Per round, two fresh daemons on scratch roots (loopback only):
  quiet   a ROWS-row product file ingests with no HTTP traffic
  loaded  the same file ingests while `wrk -t4 -c64 -d10s` hammers
          GET /uploads/1/ (wrk starts first, so the whole ingest is under load)
The ingest time is the daemon's own (ms= of its completion log line).
Prints requests/s, latency percentiles and the slowdown, each the median of
--rounds rounds (default 3); the goal is a slowdown under 10%.
"""
import argparse
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(TOP, "build", "ingestd")

CONFIG = """root: {root}/drop
database: {root}/ingestd.db
workers: 2
settle_ms: 100
http:
  listen: "127.0.0.1:{port}"
  max_connections: 256
  per_ip: 128
datasets:
  - name: product
    table: product
    match: "*.csv"
    schema:
      primaryKey: [sku]
      fields:
        - {{name: sku, type: string, constraints: {{required: true}}}}
        - {{name: name, type: string}}
        - {{name: price, type: number}}
        - {{name: description, type: string}}
        - {{name: active, type: boolean}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gen(path, rows):
    if os.path.exists(path) and os.path.getsize(path) > 0:
        return
    with open(path + ".tmp", "w") as f:
        f.write("sku,name,price,description,active\n")
        for i in range(rows):
            f.write("SKU-%08d,Item %d,%d.%02d,Description of item %d,%s\n"
                    % (i, i, i % 5000, i % 100, i, "true" if i % 3 else "false"))
    os.rename(path + ".tmp", path)


class Daemon:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ingestd-bench-http-")
        self.port = free_port()
        with open(os.path.join(self.dir, "c.yaml"), "w") as f:
            f.write(CONFIG.format(root=self.dir, port=self.port))
        self.log = open(os.path.join(self.dir, "log"), "w+")
        self.proc = subprocess.Popen([BIN, "-c", os.path.join(self.dir, "c.yaml")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("bench: daemon did not listen:\n" + self.text())
                time.sleep(0.05)

    def text(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def drop(self, src, name):
        tmp = os.path.join(self.dir, "drop", "." + name)
        shutil.copyfile(src, tmp)
        os.rename(tmp, os.path.join(self.dir, "drop", "inbox", name))

    def wait_ms(self, name, timeout=600):
        pat = re.compile(r'file="%s".*state=(\w+).* ms=(\d+)' % re.escape(name))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = pat.search(self.text())
            if m:
                if m.group(1) != "completed":
                    sys.exit("bench: %s ended %s" % (name, m.group(1)))
                return int(m.group(2))
            time.sleep(0.05)
        sys.exit("bench: %s did not complete" % name)

    def close(self):
        self.proc.terminate()
        self.proc.wait(60)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def wrk_run(port, seconds, conns, threads):
    p = subprocess.Popen(["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % seconds, "--latency",
                          "http://127.0.0.1:%d/uploads/1/" % port],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return p


def wrk_parse(out):
    def lat(label):
        m = re.search(r"^\s+%s\s+([\d.]+)(us|ms|s)\s*$" % label, out, re.M)
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    return {"rps": rps, "p50": lat("50%"), "p99": lat("99%"), "errors": errs.group(0) if errs else ""}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2000000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=4, help="wrk threads")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench: wrk missing: run scripts/test-deps.sh")
    data = os.path.join(TOP, "bench", "data")
    os.makedirs(data, exist_ok=True)
    big = os.path.join(data, "http-%d.csv" % a.rows)
    small = os.path.join(data, "http-small.csv")
    gen(big, a.rows)
    gen(small, 10)
    quiet, loaded, wrks = [], [], []
    for r in range(a.rounds):
        d = Daemon()
        try:
            d.drop(small, "small.csv")
            d.wait_ms("small.csv")
            d.drop(big, "big.csv")
            quiet.append(d.wait_ms("big.csv"))
        finally:
            d.close()
        d = Daemon()
        try:
            d.drop(small, "small.csv")
            d.wait_ms("small.csv")
            p = wrk_run(d.port, a.seconds, a.connections, a.threads)
            time.sleep(0.5)
            d.drop(big, "big.csv")
            loaded.append(d.wait_ms("big.csv"))
            ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            out = p.communicate(timeout=a.seconds + 30)[0].decode()
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            wrks.append(wrk_parse(out))
            # wrk itself runs on the same cores: its CPU time is what the
            # load costs before the daemon serves a single request
            wrks[-1]["cpu"] = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / a.seconds
        finally:
            d.close()
        print("round %d: ingest quiet %d ms, under load %d ms; wrk %.0f req/s p50 %.2f ms p99 %.2f ms, "
              "wrk's own CPU %.2f cores %s"
              % (r + 1, quiet[-1], loaded[-1], wrks[-1]["rps"], wrks[-1]["p50"], wrks[-1]["p99"],
                 wrks[-1]["cpu"], wrks[-1]["errors"]), flush=True)
    mq, ml = statistics.median(quiet), statistics.median(loaded)
    print("median of %d: %d rows ingest %.0f ms quiet, %.0f ms under load (%+.1f%%); "
          "GET /uploads/1/ with %d connections: %.0f req/s, p50 %.2f ms, p99 %.2f ms; "
          "wrk itself used %.2f of the %d cores"
          % (a.rounds, a.rows, mq, ml, (ml / mq - 1) * 100, a.connections,
             statistics.median(w["rps"] for w in wrks),
             statistics.median(w["p50"] for w in wrks),
             statistics.median(w["p99"] for w in wrks),
             statistics.median(w["cpu"] for w in wrks), os.cpu_count()))


if __name__ == "__main__":
    main()
