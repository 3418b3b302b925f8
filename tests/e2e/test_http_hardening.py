# SPDX-FileCopyrightText: 2026 the ingestd authors
# SPDX-License-Identifier: MIT
"""
test_http_hardening.py - issue 13, items 11-14 and 16: slow clients held
to a total request deadline and evicted at the connection limits, too
many query parameters answered at once, the Host check (DNS rebinding),
the unix socket transport (bound or passed by the service manager),
bearer tokens, the refusal to serve a public address unauthenticated, and
one log line per event under journald.

Every loop here is bounded in count and in time.
"""

import grp
import json
import os
import select
import socket
import stat
import time

from harness import (SCALE, Daemon, DaemonError, check, check_eq, csv_text,
                     product_rows, wait_until)
from httpc import get, http_daemon, request

H = "sku,name,price,description,active\n"


def slow_sockets(port, n, host="127.0.0.1"):
    """n connections that sent a request line and one header: each then
    looks like a slowloris client (more header bytes are still to come)."""
    socks = []
    for i in range(n):
        s = socket.create_connection((host, port), timeout=5 * SCALE)
        s.sendall(b"GET /uploads/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow-%d: " % i)
        socks.append(s)
    return socks


def closed_by_peer(s):
    """True when the server closed s (EOF or reset); never blocks."""
    r, _, _ = select.select([s], [], [], 0)
    if not r:
        return False
    try:
        return s.recv(4096) == b""
    except OSError:
        return True


def trickle_until_closed(socks, limit_s):
    """Send one header byte to each open socket every 0.5 s (never idle
    long enough for timeout_s) until all are closed or limit_s passed.
    Returns the seconds each one lasted (None: still open)."""
    t0 = time.monotonic()
    lasted = [None] * len(socks)
    for _ in range(int(limit_s / 0.5) + 1):
        for i, s in enumerate(socks):
            if lasted[i] is not None:
                continue
            if closed_by_peer(s):
                lasted[i] = time.monotonic() - t0
                continue
            try:
                s.send(b"a")
            except OSError:
                lasted[i] = time.monotonic() - t0
        if all(x is not None for x in lasted) or time.monotonic() - t0 > limit_s:
            break
        time.sleep(0.5)
    return lasted


def timed_healthz(d):
    t = time.monotonic()
    code, _, body = get(d, "/healthz", timeout=5)
    return code, time.monotonic() - t, body


def close_all(socks):
    for s in socks:
        s.close()


# --------------------------------------------------------------------------
# 11. slowloris


def test_http_slowloris_per_ip(bin):
    """32 slow sockets from 127.0.0.1 (the per_ip limit) neither lock out
    /healthz nor outlive request_timeout_s while they keep sending."""
    d = http_daemon(bin, timeout_s=30, request_timeout_s=3)
    socks = slow_sockets(d.port, 32)
    try:
        time.sleep(1.2)  # older than the eviction age
        code, took, _ = timed_healthz(d)
        check_eq(code, 200, "/healthz with 32 slow sockets from one IP")
        check(took < 2 * SCALE, "/healthz took %.2fs" % took)
        lasted = trickle_until_closed(socks, 10 * SCALE)
        check(all(x is not None for x in lasted),
              "slow sockets still open after 10 s (request_timeout_s: 3): %d"
              % sum(x is None for x in lasted))
        check(max(lasted) < 6 * SCALE, "the last one lasted %.1fs" % max(lasted))
    finally:
        close_all(socks)
    check("sent no complete request within request_timeout_s=3" in d.log(),
          "the cut is logged\n" + d.log_tail())


def test_http_slowloris_max_connections(bin):
    """max_connections reached by slow sockets: /healthz still answers."""
    d = http_daemon(bin, timeout_s=30, request_timeout_s=20, max_connections=8, per_ip=64)
    socks = slow_sockets(d.port, 8)
    try:
        time.sleep(1.2)
        for i in range(3):
            code, took, _ = timed_healthz(d)
            check_eq(code, 200, "/healthz #%d with max_connections slow sockets" % i)
            check(took < 2 * SCALE, "/healthz took %.2fs" % took)
        check("at the connection limit: closed" in d.log(), "eviction logged")
    finally:
        close_all(socks)


def test_http_idle_keepalive_not_evicted(bin):
    """Connections that completed a request are not evicted: at the per_ip
    limit of such connections a new one is refused (as before)."""
    d = http_daemon(bin, per_ip=2, timeout_s=30, request_timeout_s=30)
    import http.client
    held = []
    try:
        for _ in range(2):
            def open_one():
                c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=5 * SCALE)
                try:
                    c.request("GET", "/healthz")
                    r = c.getresponse()
                    r.read()
                    return c if r.status == 200 else None
                except OSError:  # the probe of wait_listening may still count
                    c.close()
                    return None
            held.append(wait_until("a kept connection", open_one, 5, daemon=d))
        time.sleep(1.2)
        with socket.create_connection(("127.0.0.1", d.port), timeout=5 * SCALE) as s:
            try:
                s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
                data = s.recv(100)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
        check_eq(data, b"", "a third connection is refused")
        for c in held:  # and the kept ones still work
            c.request("GET", "/healthz")
            r = c.getresponse()
            r.read()
            check_eq(r.status, 200, "kept connection still served")
    finally:
        for c in held:
            c.close()


# --------------------------------------------------------------------------
# 12. query parameters


def raw_get(port, target, timeout=5):
    """(status, body, seconds) of one raw GET, or (None, b'', s) on EOF."""
    t = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout * SCALE) as s:
        s.sendall(b"GET " + target.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    took = time.monotonic() - t
    if not data.startswith(b"HTTP/1."):
        return None, data, took
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head[9:12]), body, took


def test_http_many_query_parameters(bin):
    d = http_daemon(bin, timeout_s=15)
    many = "/uploads/?" + "&".join("p%d=%d" % (i, i) for i in range(470))
    check(len(many) > 3300, "a 3.3 KB request line")
    code, body, took = raw_get(d.port, many, timeout=10)
    check_eq(code, 400, "470 query parameters (%r)" % body[:100])
    check(took < 2 * SCALE, "answered after %.1fs" % took)
    check_eq(json.loads(body)["detail"], "more than 32 query parameters", "message")
    # known names, so that only the count can refuse (an unknown name is
    # a 400 of its own)
    code, body, _ = raw_get(d.port, "/uploads/?" + "&".join(["limit=5"] * 33))
    check_eq(code, 400, "33 parameters")
    check_eq(json.loads(body)["detail"], "more than 32 query parameters", "33: message")
    code, _, _ = raw_get(d.port, "/uploads/?" + "&".join(["limit=5"] * 32))
    check_eq(code, 200, "32 parameters")
    code, _, _ = raw_get(d.port, "/uploads/?" + "&" * 100 + "limit=5")
    check_eq(code, 200, "empty pieces do not count")
    code, _, _ = timed_healthz(d)
    check_eq(code, 200, "still serving")


# --------------------------------------------------------------------------
# 13. Host check


def test_http_host_check(bin):
    d = http_daemon(bin)
    p = d.port
    table = [
        ("attacker.example", 421),
        ("attacker.example:%d" % p, 421),
        ("localhost.attacker.example", 421),
        ("127.0.0.1.nip.io", 421),
        ("localhost", 200),
        ("localhost:%d" % p, 200),
        ("LOCALHOST.:%d" % p, 200),
        ("127.0.0.1:%d" % p, 200),
        ("[::1]:%d" % p, 200),
        ("", 421),
    ]
    for host, want in table:
        for path in ("/uploads/", "/healthz"):
            code, h, body = get(d, path, headers={"Host": host})
            check_eq(code, want, "Host %r on %s" % (host, path))
            if want == 421:
                check("allowed_hosts" in json.loads(body)["detail"], "421 body %r" % body)
    # HTTP/1.0 without Host: not a browser, served
    with socket.create_connection(("127.0.0.1", p), timeout=5 * SCALE) as s:
        s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        check(s.recv(64).startswith(b"HTTP/1.1 200") , "HTTP/1.0 without Host")


def test_http_allowed_hosts(bin):
    d = http_daemon(bin, allowed_hosts='["ingest.example.org", "Box"]')
    for host, want in [("ingest.example.org", 200), ("INGEST.example.org:80", 200),
                       ("box", 200), ("localhost", 200), ("other.example.org", 421)]:
        code, _, _ = get(d, "/uploads/", headers={"Host": host})
        check_eq(code, want, "Host %r with allowed_hosts" % host)


# --------------------------------------------------------------------------
# 14. unix socket, tokens, refusal


def unix_get(path, target="/healthz", headers=b""):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5 * SCALE)
        s.connect(path)
        s.sendall(b"GET " + target.encode() + b" HTTP/1.1\r\nHost: localhost\r\n"
                  + headers + b"Connection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head[9:12]), body


def test_http_unix_socket(bin):
    d = Daemon(bin, start=False)
    sock = os.path.join(d.dir, "http.sock")
    d.overrides.update(listen=None, extra='http:\n  listen: "unix:%s"\n  socket_mode: "0600"\n'
                       '  socket_group: nogroup\n' % sock)
    d.write_config()
    d.start()
    d.drop("a.csv", csv_text(product_rows(2)))
    d.wait_state("a.csv", "completed")
    st = os.lstat(sock)
    check(stat.S_ISSOCK(st.st_mode), "a socket at %s" % sock)
    check_eq(oct(st.st_mode & 0o777), oct(0o600), "socket_mode")
    check_eq(st.st_gid, grp.getgrnam("nogroup").gr_gid, "socket_group")
    code, body = unix_get(sock, "/uploads/1/")
    check_eq(code, 200, "GET over the unix socket")
    check_eq(body, d.read("status", "1.json"), "the status document")
    check("http: listening on unix:%s" % sock in d.log(), "address logged")
    check_eq(d.stop(), 0, "exit code")
    check(not os.path.exists(sock), "socket removed at exit")
    # a stale socket left by a crash is replaced; another file is not
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(sock)
    stale.close()
    d.start()
    check_eq(unix_get(sock)[0], 200, "over a stale socket")
    check_eq(d.stop(), 0, "exit code")
    with open(sock, "w") as f:
        f.write("not a socket")
    try:
        d.start()
        d.proc.wait(10 * SCALE)
        d.exit_codes.append(d.proc.returncode)
    except DaemonError:
        pass
    d.stopped = True
    check_eq(d.exit_codes[-1:], [1], "exit code when the path is a file")
    check("exists and is not a socket" in d.log(), "clear error\n" + d.log_tail())


def test_http_unix_socket_activation(bin):
    from test_systemd import _activated
    tmp = os.path.join("/tmp", "ingestd-e2e-sock-%d" % os.getpid())
    os.makedirs(tmp, exist_ok=True)
    path = os.path.join(tmp, "http.sock")
    if os.path.exists(path):
        os.unlink(path)
    lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lst.bind(path)
    lst.listen(16)
    try:
        d = _activated(bin, lst.fileno())
        lst.close()
        d.drop("a.csv", csv_text(product_rows(2)))
        d.wait_state("a.csv", "completed")
        code, body = unix_get(path, "/uploads/1/")
        check_eq(code, 200, "GET on the passed unix socket")
        check_eq(body, d.read("status", "1.json"), "detail on the passed socket")
        check("http: listening on unix:%s" % path in d.log(), "address logged\n" + d.log_tail())
        check_eq(d.stop(), 0, "exit code")
        check(os.path.exists(path), "a passed socket is the service manager's: not removed")
    finally:
        lst.close()
        if os.path.exists(path):
            os.unlink(path)
        os.rmdir(tmp)


TOKEN = "tok-0123456789abcdef-SECRET"


def tokens_daemon(bin, text, mode=0o600, listen=None):
    d = Daemon(bin, start=False)
    tf = os.path.join(d.dir, "tokens")
    with open(tf, "w") as f:
        f.write(text)
    os.chmod(tf, mode)
    d.overrides.update(listen=None, extra='http:\n  listen: "%s"\n  tokens_file: "%s"\n'
                       % (listen or "127.0.0.1:%d" % d.port, tf))
    d.write_config()
    return d


def start_fails(d, what):
    try:
        d.start()
        d.proc.wait(10 * SCALE)
        d.exit_codes.append(d.proc.returncode)
    except DaemonError:
        pass
    d.stopped = True
    check_eq(d.exit_codes[-1:], [1], "exit code: " + what)


def test_http_bearer_tokens(bin):
    d = tokens_daemon(bin, "# ops\n\n%s all\nother-token-0123456789 all\n" % TOKEN)
    d.start()
    d.drop("a.csv", csv_text(product_rows(2)))
    d.wait_state("a.csv", "completed")
    table = [
        (None, 401),
        ("Bearer", 401),
        ("Bearer ", 401),
        ("Bearer " + TOKEN[:-1], 401),
        ("Bearer " + TOKEN + "x", 401),
        ("Basic " + TOKEN, 401),
        ("Bearer " + TOKEN, 200),
        ("bearer " + TOKEN, 200),
        ("Bearer other-token-0123456789", 200),
    ]
    for auth, want in table:
        hdrs = {"Authorization": auth} if auth is not None else {}
        for path in ("/uploads/", "/uploads/1/", "/uploads/1/errors", "/metrics"):
            code, h, body = get(d, path, headers=hdrs)
            check_eq(code, want, "%s with Authorization %r" % (path, auth))
            if want == 401:
                check_eq(h.get("www-authenticate"), 'Bearer realm="ingestd"', "WWW-Authenticate")
    check_eq(get(d, "/healthz")[0], 200, "/healthz needs no token")
    check(TOKEN not in d.log() and "SECRET" not in d.log(), "a token in the log")
    check("tokens=2" in d.log(), "token count logged")


def test_http_tokens_file_problems(bin):
    cases = [
        ("%s all\n" % TOKEN, 0o644, "readable by other users"),
        ("%s partner-a\n" % TOKEN, 0o600, "the only scope so far is all"),
        ("short all\n", 0o600, "at least 16 characters"),
        ("# nothing\n", 0o600, "no token in it"),
    ]
    for text, mode, msg in cases:
        d = tokens_daemon(bin, text, mode)
        start_fails(d, msg)
        check(msg in d.log(), "%r in the log\n%s" % (msg, d.log_tail()))
        check(TOKEN not in d.log(), "a token in the log")


def test_http_public_address_needs_auth(bin):
    d = Daemon(bin, start=False)
    d.overrides.update(listen=None, extra='http:\n  listen: "0.0.0.0:%d"\n' % d.port)
    d.write_config()
    start_fails(d, "0.0.0.0 without tokens_file")
    check("refusing to serve 0.0.0.0:%d without authentication" % d.port in d.log(),
          "clear message\n" + d.log_tail())
    check_eq(d.listdir("inbox"), [], "nothing taken")
    d2 = tokens_daemon(bin, "%s all\n" % TOKEN, listen="0.0.0.0:%d" % d.port)
    d2.port = d.port
    d2.start()
    check_eq(request(d.port, "/uploads/")[0], 401, "no token on 0.0.0.0")
    check_eq(request(d.port, "/uploads/", headers={"Authorization": "Bearer " + TOKEN})[0], 200,
             "token on 0.0.0.0")


# --------------------------------------------------------------------------
# 16. one line per event


def journal_lines(d):
    with open(d.logpath, "rb") as f:
        return [l for l in f.read().split(b"\n") if l and not l.startswith(b"--- harness")]


def test_log_one_line_per_event(bin):
    """Under journald every stderr line is one event with a <N> priority:
    configuration problems at start-up too, and a rejection whose reason
    has many lines, and a file whose name holds a line break."""
    d = Daemon(bin, start=False)
    d.env_base = d.env
    d.env = lambda: dict(d.env_base(), JOURNAL_STREAM="8:12345")
    good = d.config_text()
    d.write_config(good + "bogus_key: 1\nworkers: nope\n")
    try:
        d.start()
    except DaemonError:
        pass
    d.stopped = True
    check_eq(d.exit_codes[-1:], [78], "exit code of a bad configuration")
    lines = journal_lines(d)
    check(len(lines) >= 2, "two problems reported: %r" % lines)
    for l in lines:
        check(l.startswith(b"<3>"), "a start-up line without its priority: %r" % l)
    open(d.logpath, "wb").close()

    d.write_config(good)
    d.start()
    d.drop("bad.csv", "sku,nm,price\nS1,a,1\n")
    d.drop("two\nlines.csv", "sku,nm\n1,2\n")
    d.wait_uploads(2)
    d.stop()
    lines = journal_lines(d)
    for l in lines:
        check(l[:1] == b"<" and l[2:3] == b">", "a line that is not an event: %r" % l)
    rej = [l for l in lines if b"state=rejected" in l]
    check_eq(len(rej), 2, "one line for each rejection: %r" % rej)
    check(any(b"Expected columns:" in l and b"Found columns:" in l for l in rej),
          "the whole reason on the rejection's line: %r" % rej)


# --------------------------------------------------------------------------
# found by fuzzing


def test_fuzz_sep_line_nul_rejected(d):
    """An Excel sep= line naming NUL as the delimiter (found by
    fuzz_header) aborted the daemon on an assert; it is now a header like
    any other, and refused."""
    d.drop("sepnul.csv", b"\xef\xbb\xbfsep=\x00\n;nu1;2\n")
    d.drop("after.csv", csv_text(product_rows(2)))
    st = d.wait_state("sepnul.csv", "rejected")
    check("UTF-8" in st.get("reason", ""), "reason: %r" % st.get("reason"))
    d.wait_state("after.csv", "completed")
    check(d.alive(), "the daemon survived")
