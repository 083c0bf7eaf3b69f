#!/usr/bin/python3
"""otter-web's API against a real store, broker and service (python3 stdlib only).

Walks every route of otter-web's own route table (otter-web --routes) without a
session and with a forged one, checks the table against docs/openapi.yaml,
and checks login, cookies, throttling, CSRF, roles, the CLI's validation
texts, job create/cancel, the event stream, logout, removed accounts, pages
and that no private key is ever served.
"""

import base64
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from web_fleet import OPERATOR, VIEWER, Client, Fleet, log_has, wait_for  # noqa: E402

ROOT = os.environ.get("OTTER_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../../.."))
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        raise AssertionError(what)


def routes():
    out = subprocess.run([os.environ["OTTER_WEB_BIN"], "--routes"], capture_output=True,
                         text=True, check=True).stdout
    return [tuple(line.split()) for line in out.splitlines() if line.strip()]


def openapi_routes():
    """(METHOD, path with {} for parameters) from docs/openapi.yaml."""
    got, path = [], None
    with open(os.path.join(ROOT, "docs/openapi.yaml")) as f:
        in_paths = False
        for line in f:
            if line.startswith("paths:"):
                in_paths = True
                continue
            if not in_paths:
                continue
            m = re.match(r"^  (/\S+):\s*$", line)
            if m:
                path = re.sub(r"\{[^}]+\}", "{}", m.group(1))
                continue
            m = re.match(r"^    (get|post|put|delete|patch):", line)
            if m and path:
                got.append((m.group(1).upper(), path))
    return got


def test_route_table(fleet):
    table = routes()
    check(len(table) >= 10, "the route table lists the API")
    documented = set(openapi_routes())
    served = {(m, p) for m, p, _ in table}
    check(served == documented, "route table and docs/openapi.yaml differ: %s" %
          (served ^ documented))
    anon = Client(fleet.url)
    forged = Client(fleet.url)
    forged.jar.set_cookie(__import__("http.cookiejar").cookiejar.Cookie(
        0, "otter_session", "ab" * 32, None, False, "127.0.0.1", False, False, "/", True,
        False, None, False, None, None, {}))
    open_routes = 0
    for method, pattern, role in table:
        for arg in ("dev-a", "no-such-thing"):
            path = pattern.replace("{}", arg)
            for c in (anon, forged):
                st, j, _ = c.json(method, path, {"user": "x", "password": "y"}
                                  if role == "none" else {})
                if role == "none":
                    check(st in (400, 401), "%s %s answers a bad login with %d" %
                          (method, path, st))
                    open_routes += 1
                else:
                    check(st == 401 and j["code"] == "unauthenticated",
                          "%s %s without a session: %d" % (method, path, st))
    check(open_routes > 0 and all(r != "none" for m, p, r in table if p != "/api/v1/session"),
          "only login is open")
    # Paths not in the table tell nothing either.
    for path in ("/api/v1/nothing", "/api/v2/things", "/api/v1/things/a/b"):
        st, j, _ = anon.json("GET", path)
        check(st == 401, "GET %s without a session: %d" % (path, st))


def test_pages(fleet):
    anon = Client(fleet.url)
    for page in ("/", "/index.html", "/jobs.html", "/job.html", "/thing.html", "/new-job.html"):
        st, h, _ = anon.request("GET", page)
        check(st == 303 and h.get("Location") == "/login.html", "%s without a session: %d" %
              (page, st))
    for page in ("/login.html", "/app.js", "/app.css", "/login.js"):
        st, h, b = anon.request("GET", page)
        check(st == 200, "%s is public" % page)
        check("default-src 'self'" in h.get("Content-Security-Policy", ""), "CSP on " + page)
        check(h.get("X-Frame-Options") == "DENY", "no framing")
    # Pages keep their connection open: a browser fetches a page's scripts and styles on it.
    u = urllib.parse.urlparse(fleet.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        for page in ("/login.html", "/app.js", "/app.css", "/login.js"):
            try:
                conn.request("GET", page)
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException) as e:
                check(False, "%s on the same connection: %r" % (page, e))
            check(resp.status == 200 and not resp.will_close,
                  "%s answered on one kept connection (%d, Connection: %s)" %
                  (page, resp.status, resp.getheader("Connection")))
    finally:
        conn.close()
    op = Client(fleet.url)
    op.login(*OPERATOR)
    for path in ("/keys/codesign.key", "/codesign.key", "/..%2fkeys%2fcodesign.key",
                 "/%2e%2e/keys/codesign.key", "/../data/otter.db", "/web/users", "/users",
                 "/data/broker/server.key", "/.htaccess", "/app.js%00.html"):
        st, _, b = op.request("GET", path)
        check(st in (400, 404), "%s is not served (%d)" % (path, st))
        check(b"PRIVATE KEY" not in b and b"pbkdf2" not in b, "nothing secret in " + path)


def test_login_cookies_throttling(fleet):
    c = Client(fleet.url)
    st, j, _ = c.json("POST", "/api/v1/session", {"user": OPERATOR[0], "password": "wrong-pass-9"})
    check(st == 401 and j["code"] == "bad_login", "a wrong password is refused")
    st, _, b = c.request("POST", "/api/v1/session", raw=json.dumps(
        {"user": OPERATOR[0], "password": OPERATOR[1]}).encode(),
        headers={"Content-Type": "text/plain"})
    check(st == 415, "login needs application/json (no cross-site form posts): %d" % st)
    st, j, h = c.login(*OPERATOR)
    check(st == 200 and j["role"] == "operator" and len(j["csrfToken"]) == 64, "login")
    cookie = h.get("Set-Cookie", "")
    check("HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie,
          "session cookie flags: " + cookie)
    check("Secure" not in cookie, "no Secure flag over plain HTTP")
    # Five wrong passwords for one account: the next attempt waits, even with the right one.
    t = Client(fleet.url)
    for _ in range(5):
        st, j, _ = t.json("POST", "/api/v1/session", {"user": VIEWER[0], "password": "nope-nope-1"})
        check(st == 401, "wrong password refused")
    st, j, h = t.json("POST", "/api/v1/session", {"user": VIEWER[0], "password": VIEWER[1]})
    check(st == 429 and j["code"] == "throttled" and int(h["Retry-After"]) >= 1,
          "login throttled after 5 failures: %d" % st)
    check("wait" in j["message"], "the message says what to do")
    time.sleep(int(h["Retry-After"]) + 0.2)
    st, j, _ = t.login(*VIEWER)
    check(st == 200, "after the wait the right password logs in: %d" % st)


def raw_request(url, src, method, path, body=b"", headers=None, timeout=30):
    """One request on its own connection from the source address src (127.x.y.z): returns
    (status or None when the connection is closed without an answer, seconds, header text)."""
    u = urllib.parse.urlparse(url)
    h = {"Host": u.netloc, "Content-Type": "application/json", "Connection": "close"}
    h.update(headers or {})
    if body is not None and "Transfer-Encoding" not in h:
        h["Content-Length"] = str(len(body))
    head = "%s %s HTTP/1.1\r\n%s\r\n" % (method, path, "".join(
        "%s: %s\r\n" % kv for kv in h.items()))
    t0 = time.time()
    s = socket.socket()
    try:
        s.settimeout(timeout)
        s.bind((src, 0))
        s.connect((u.hostname, u.port))
        s.sendall(head.encode() + (body or b""))
        data = b""
        while b"\r\n\r\n" not in data:
            x = s.recv(4096)
            if not x:
                break
            data += x
    except OSError:
        data = b""
    finally:
        s.close()
    m = re.match(rb"HTTP/1\.1 (\d+)", data)
    return (int(m.group(1)) if m else None), time.time() - t0, data.decode("latin-1")


def login_burst(url, user, n, addrs, password="wrong-guess-1"):
    """n logins for one account sent at once from the addresses addrs; the statuses."""
    out, go = [], threading.Event()

    def one(i):
        body = json.dumps({"user": user, "password": "%s-%d" % (password, i)}).encode()
        go.wait()
        out.append(raw_request(url, addrs[i % len(addrs)], "POST", "/api/v1/session", body,
                               timeout=120))

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    go.set()
    for t in ts:
        t.join()
    return out


def test_login_race(fleet):
    """Guesses for one account sent at once are counted before their passwords are checked:
    no more than the five free attempts get a 401 (the others wait, 429, or find the
    password checks busy, 503)."""
    fleet.cli("user", "add", "racer", "--role", "viewer", stdin="racer-pass-12\n")
    got = login_burst(fleet.url, "racer", 30, ["127.0.0.%d" % a for a in (2, 3, 4, 5)])
    codes = [st for st, _, _ in got]
    checked = codes.count(401)
    check(checked <= 5 and codes.count(429) + codes.count(503) == 30 - checked,
          "30 guesses at once: %d checked (at most 5), answers %s" %
          (checked, sorted(set(codes))))


def test_success_keeps_address_count(fleet):
    """A login of one's own account does not reset the address's count of failures, so an
    account holder cannot spray guesses at other accounts from that address."""
    src = "127.0.0.9"

    def login(user, password):
        body = json.dumps({"user": user, "password": password}).encode()
        return raw_request(fleet.url, src, "POST", "/api/v1/session", body, timeout=120)[0]

    codes = [login("spray%d" % i, "wrong-guess-1") for i in range(20)]
    check(codes == [401] * 20, "20 guesses at 20 names checked: %s" % codes)
    check(login("spray20", "wrong-guess-1") == 429, "the 21st waits")
    time.sleep(1.2)
    check(login(*VIEWER) == 200, "the address's own account logs in after the wait")
    codes = [login("spray%d" % i, "wrong-guess-1") for i in range(21, 25)]
    check(codes.count(429) >= 3,
          "after that login the address still waits between guesses: %s" % codes)


def test_sessions_per_account(fleet):
    """One account keeps at most 16 sessions: its 17th login ends its own least recently used
    session, never another account's."""
    op = Client(fleet.url)
    check(op.login(*OPERATOR)[0] == 200, "operator logged in")
    viewers = []
    for i in range(17):
        v = Client(fleet.url)
        check(v.login(*VIEWER)[0] == 200, "viewer login %d" % i)
        viewers.append(v)
    alive = [v.json("GET", "/api/v1/session")[0] for v in viewers]
    check(alive == [401] + [200] * 16, "the viewer's oldest session ended: %s" % alive)
    check(op.json("GET", "/api/v1/session")[0] == 200, "the operator's session lives on")


def test_login_hashing_bound(fleet):
    """Password checks running at once are bounded (the CPUs, and a few logins waiting): made-up
    names from as many addresses, sent at once, beyond the bound are answered 503 with
    Retry-After at once, before hashing; then the operator logs in without waiting."""
    check(Client(fleet.url).login(*OPERATOR)[0] == 200, "the operator logged in from here")
    cpus = max(1, min(16, os.cpu_count() or 1))
    n = 2 * (cpus + 4) + 8
    out, go = [], threading.Event()

    def one(i):
        body = json.dumps({"user": "nobody%d" % i, "password": "wrong-guess-1"}).encode()
        go.wait()
        out.append(raw_request(fleet.url, "127.0.1.%d" % (i + 1), "POST", "/api/v1/session",
                               body, timeout=120))

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    go.set()
    for t in ts:
        t.join()
    busy = [(secs, head) for st, secs, head in out if st == 503]
    checked = sum(1 for st, _, _ in out if st == 401)
    m = re.search(r"\((\d+) at once, (\d+) waiting\)", busy[0][1] if busy else "")
    check(m is not None and checked + len(busy) == n,
          "%d logins at once: %d checked, %d refused 503 (%s)" %
          (n, checked, len(busy), sorted(set(st for st, _, _ in out))))
    bound = int(m.group(1)) + int(m.group(2))
    check(checked <= bound + 2, "%d checked, the bound is %d" % (checked, bound))
    check(all("Retry-After: 1" in h for _, h in busy), "503 with Retry-After")
    slowest = max(secs for secs, _ in busy)
    check(slowest < 2, "the 503s come at once, before hashing: the slowest in %.2f s" % slowest)
    # A flood that goes on, from addresses no login succeeded from: the operator, who logged
    # in from this address before, gets the slot kept for such addresses.
    stop, codes = threading.Event(), []

    def flood(k):
        i = 0
        while not stop.is_set():
            body = json.dumps({"user": "flood%d-%d" % (k, i),
                               "password": "wrong-guess-1"}).encode()
            codes.append(raw_request(fleet.url, "127.0.%d.%d" % (2 + k, 1 + i % 250), "POST",
                                     "/api/v1/session", body, timeout=120)[0])
            i += 1

    ts = [threading.Thread(target=flood, args=(k,)) for k in range(2 * (cpus + 4))]
    for t in ts:
        t.start()
    try:
        time.sleep(1.5)
        t0 = time.time()
        st = Client(fleet.url).login(*OPERATOR)[0]
        took = time.time() - t0
    finally:
        stop.set()
        for t in ts:
            t.join()
    check(codes.count(503) > 0, "the flood is refused 503 in part: %d of %d" %
          (codes.count(503), len(codes)))
    check(st == 200 and took < 5, "the operator logs in during the flood: %d in %.1f s" %
          (st, took))


def test_host_checked(fleet):
    """Against DNS rebinding: a Host that is not a name of the console is refused with 421
    before anything else (its Origin then matching it does not help); the address listened
    on, localhost (on loopback) and --public-host names are served."""
    port = urllib.parse.urlparse(fleet.url).port
    login = json.dumps({"user": VIEWER[0], "password": VIEWER[1]}).encode()

    def status(url, host, method="GET", path="/login.html", body=None, headers=None):
        h = {"Host": host}
        h.update(headers or {})
        return raw_request(url, "127.0.0.1", method, path, body, headers=h)[0]

    evil = "evil.example:%d" % port
    check(status(fleet.url, evil, "POST", "/api/v1/session", login,
                 {"Origin": "http://" + evil}) == 421, "a rebinding page's login: 421")
    check(status(fleet.url, evil) == 421 and status(fleet.url, "") == 421, "and its pages")
    for host in ("127.0.0.1:1", "127.0.0.2:%d" % port, "localhost.evil.example:%d" % port,
                 "127.0.0.1:%d:%d" % (port, port), "[::1]:%d" % port):
        check(status(fleet.url, host) == 421, "Host %s refused" % host)
    for host in ("127.0.0.1:%d" % port, "localhost:%d" % port, "LOCALHOST:%d" % port):
        check(status(fleet.url, host) == 200, "Host %s served" % host)
    check(status(fleet.url, "localhost:%d" % port, "POST", "/api/v1/session", login,
                 {"Origin": "http://localhost:%d" % port}) == 200, "a login by localhost")
    fleet.spawn("web-hosts", [os.environ["OTTER_WEB_BIN"], "--data-dir", fleet.data, "--port",
                              "0", "--public-host", "console.example", "--public-host",
                              "proxy.example:8443"])
    wait_for(lambda: log_has(fleet.log("web-hosts"), "ready: "), 10, "otter-web --public-host")
    with open(fleet.log("web-hosts")) as f:
        url = re.search(r"ready: (http://[0-9.]+:[0-9]+)/", f.read()).group(1)
    p2 = urllib.parse.urlparse(url).port
    for host in ("console.example", "Console.Example:%d" % p2, "console.example:8080",
                 "proxy.example:8443", "127.0.0.1:%d" % p2):
        check(status(url, host) == 200, "Host %s served with --public-host" % host)
    for host in ("proxy.example:%d" % p2, "proxy.example", "evil.example:%d" % p2,
                 "console.example.evil:%d" % p2):
        check(status(url, host) == 421, "Host %s refused with --public-host" % host)
    for bad in (":8080", "console.example:http", "console.example:", "console.example:0",
                "console.example:99999", "console.example:80:80"):
        try:
            r = subprocess.run([os.environ["OTTER_WEB_BIN"], "--data-dir", fleet.data, "--port",
                                "0", "--public-host", bad], capture_output=True, text=True,
                               timeout=10)
        except subprocess.TimeoutExpired:
            check(False, "otter-web refuses to start with --public-host %s: it started" % bad)
        check(r.returncode == 2 and "bad --public-host '%s'" % bad in r.stderr,
              "otter-web refuses to start with --public-host %s: %d %s" %
              (bad, r.returncode, r.stderr))


def hold_slots(url, head, per_addr=32, addrs=(2, 3, 4, 5)):
    """Connections from 127.0.0.<addrs> (32 each: every slot) that sent head; the sockets."""
    u = urllib.parse.urlparse(url)
    socks = []
    for a in addrs:
        for _ in range(per_addr):
            s = socket.socket()
            s.settimeout(5)
            s.bind(("127.0.0.%d" % a, 0))
            try:
                s.connect((u.hostname, u.port))
                s.sendall(head)
                socks.append(s)
            except OSError:
                s.close()
    return socks


def operator_login_time(url, limit_s):
    """Seconds until the operator logs in (tries every half second), or None."""
    t0 = time.time()
    body = json.dumps({"user": OPERATOR[0], "password": OPERATOR[1]}).encode()
    while time.time() - t0 < limit_s:
        if raw_request(url, "127.0.0.1", "POST", "/api/v1/session", body, timeout=10)[0] == 200:
            return time.time() - t0
        time.sleep(0.5)
    return None


def test_slow_senders(fleet):
    """Nobody without an account can hold the connection slots (128, 32 per address): an
    upload refused for want of a session is answered at once and its connection closed
    without reading its never-ending body, and a request that does not arrive whole within
    20 s (headers sent a line every 2 s) is cut off."""
    port = urllib.parse.urlparse(fleet.url).port
    head = ("POST /api/v1/uploads HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: "
            "application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nA\r\n" %
            port).encode()
    socks = hold_slots(fleet.url, head)
    answers = []
    for s in socks:
        data = b""
        try:
            while True:
                x = s.recv(4096)
                if not x:
                    break
                data += x
        except OSError:
            pass
        s.close()
        answers.append(data.split(b" ")[1] if data.startswith(b"HTTP/1.1 ") else data[:20])
    check(len(socks) >= 100 and answers == [b"401"] * len(socks),
          "refused uploads answered 401 and closed: %d of %d (%s)" %
          (answers.count(b"401"), len(socks), sorted(set(answers))))
    took = operator_login_time(fleet.url, 5)
    check(took is not None and took < 5, "then the operator logs in at once: %s s" % took)
    # Headers a line every 2 s: each slot held until the deadline, not longer.
    head = ("GET /api/v1/things HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % port).encode()
    t0 = time.time()
    socks = hold_slots(fleet.url, head)
    stop = threading.Event()

    def trickle():
        while not stop.wait(2):
            for s in socks:
                try:
                    s.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    pass

    th = threading.Thread(target=trickle)
    th.start()
    try:
        held = raw_request(fleet.url, "127.0.0.1", "GET", "/login.html", None, timeout=3)[0]
        took = operator_login_time(fleet.url, 40)
    finally:
        stop.set()
        th.join()
        for s in socks:
            s.close()
    check(len(socks) >= 100 and held is None,
          "%d slow senders hold the slots at first (%s)" % (len(socks), held))
    check(took is not None and time.time() - t0 < 20 + 8,
          "the operator logs in once the deadline cut them: %s s after they started, %s" %
          (round(time.time() - t0, 1), took))


def test_csrf_and_roles(fleet):
    op = Client(fleet.url)
    op.login(*OPERATOR)
    body = {"image": "x", "targets": "dev-a"}
    st, j, _ = op.json("POST", "/api/v1/jobs", body, csrf=False)
    check(st == 403 and j["code"] == "csrf", "no CSRF token: %d" % st)
    st, j, _ = op.json("POST", "/api/v1/jobs", body, headers={"X-CSRF-Token": "0" * 64})
    check(st == 403 and j["code"] == "csrf", "wrong CSRF token")
    st, j, _ = op.json("POST", "/api/v1/jobs", body, headers={"Origin": "http://evil.example"})
    check(st == 403 and j["code"] == "csrf", "another site's origin")
    st, j, _ = op.json("DELETE", "/api/v1/session", csrf=False)
    check(st == 403, "logout needs the token too")
    st, _, _ = op.json("GET", "/api/v1/things")
    check(st == 200, "still logged in")
    other = Client(fleet.url)
    other.login(*OPERATOR)
    st, j, _ = op.json("POST", "/api/v1/jobs", body, headers={"X-CSRF-Token": other.csrf})
    check(st == 403, "another session's token does not fit")
    v = Client(fleet.url)
    v.login(*VIEWER)
    for path in ("/api/v1/things", "/api/v1/things/dev-a", "/api/v1/jobs", "/api/v1/images",
                 "/api/v1/groups", "/api/v1/session"):
        st, _, _ = v.json("GET", path)
        check(st == 200, "viewer reads " + path)
    st, j, _ = v.json("POST", "/api/v1/jobs", body)
    check(st == 403 and j["code"] == "forbidden" and "viewer" in j["message"],
          "a viewer may not create jobs")
    st, j, _ = v.json("POST", "/api/v1/jobs/seed/cancel")
    check(st == 403 and j["code"] == "forbidden", "a viewer may not cancel")


def cli_error(fleet, *args):
    r = fleet.cli(*args, check=False)
    check(r.returncode != 0, "otter %s fails" % " ".join(args))
    return r.stderr.strip().replace("otter: error: ", "")


def test_validation_as_cli(fleet):
    op = Client(fleet.url)
    op.login(*OPERATOR)
    images = op.json("GET", "/api/v1/images")[1]
    check(len(images) == 1 and images[0]["signed"] and images[0]["version"] == "1.1.0",
          "the image the CLI signed: %s" % images)
    image = images[0]["imageId"]
    fw = os.path.join(os.environ["OTTER_FW_DIR"], "otter-fw-1.1.0")
    key = os.path.join(fleet.dir, "keys/codesign.key")
    base = ["job", "create", "--file", fw, "--version", "1.1.0", "--key", key]
    cases = [
        ({"targets": "nosuch"}, ["--targets", "nosuch"], 422),
        ({"targets": "bad name"}, ["--targets", "bad name"], 400),
        ({"targets": "group:empty"}, ["--targets", "group:empty"], 422),
        ({"targets": ","}, ["--targets", ","], 400),
        ({"targets": "dev-a", "rolloutRate": "0"}, ["--targets", "dev-a", "--rollout-rate", "0"],
         400),
        ({"targets": "dev-a", "timeoutMinutes": 99999},
         ["--targets", "dev-a", "--timeout-minutes", "99999"], 400),
        ({"targets": "dev-a", "abortFailurePercent": 10},
         ["--targets", "dev-a", "--abort-failure-percent", "10"], 400),
        ({"targets": "dev-a", "abortFailurePercent": 101, "abortMinFinished": 1},
         ["--targets", "dev-a", "--abort-failure-percent", "101", "--abort-min-finished", "1"],
         400),
        ({"targets": "dev-a", "jobId": "bad id!"}, ["--targets", "dev-a", "--job-id", "bad id!"],
         400),
        ({"targets": "dev-a", "jobId": "-x"}, ["--targets", "dev-a", "--job-id=-x"], 400),
    ]
    names = {"--targets": "targets", "--rollout-rate": "rolloutRate",
             "--timeout-minutes": "timeoutMinutes", "--abort-failure-percent":
             "abortFailurePercent", "--abort-min-finished": "abortMinFinished"}
    for body, cli_args, status in cases:
        st, j, _ = op.json("POST", "/api/v1/jobs", dict(body, image=image))
        want = cli_error(fleet, *(base + cli_args))
        for a, b in names.items():
            want = want.replace(a, b)
        check(st == status, "%s: status %d, want %d" % (body, st, status))
        check(j["message"] == want, "same text as the CLI:\n  api: %s\n  cli: %s" %
              (j["message"], want))
    st, j, _ = op.json("POST", "/api/v1/jobs", {"image": "AFR_OTA-none", "targets": "dev-a"})
    check(st == 404 and "images" in j["message"], "unknown image")
    st, j, _ = op.json("POST", "/api/v1/jobs", {"image": image, "targets": ["dev-a"]})
    check(st == 400 and "targets is one string" in j["message"] and '"d1,d2,group:lab"' in
          j["message"], "targets as an array: %d %s" % (st, j))
    st, j, _ = op.json("POST", "/api/v1/jobs", {"image": image, "targets": "dev-a", "x": 1})
    check(st == 400 and "unknown field 'x'" in j["message"], "unknown field")
    st, j, _ = op.json("POST", "/api/v1/jobs", raw=b"{not json")
    check(st == 400, "malformed JSON")
    st, j, _ = op.json("POST", "/api/v1/jobs", raw=b"[" * 70000)
    check(st == 413 and j["code"] == "too_large", "body over 64 KiB: %d" % st)
    check(len(op.json("GET", "/api/v1/jobs")[1]) == 1, "no refused request created a job")


def read_event(resp):
    """The next data: event of an event stream (skips comments)."""
    while True:
        line = resp.readline()
        if not line:
            return None
        line = line.decode().rstrip("\n")
        if line.startswith("data: "):
            resp.readline()
            return json.loads(line[6:])


def check_listing_as_things(op, when):
    """Every row of the things' listing (read for the whole fleet at once) is what the thing's
    own page says, but its history and attributes."""
    rows = op.json("GET", "/api/v1/things")[1]
    check(rows, "things listed")
    for row in rows:
        one = op.json("GET", "/api/v1/things/" + row["name"])[1]
        one.pop("history")
        one.pop("attributes")
        check(row == one, "%s: listed %s / shown %s" % (when, row, one))


def test_jobs_and_events(fleet):
    op = Client(fleet.url)
    op.login(*OPERATOR)
    image = op.json("GET", "/api/v1/images")[1][0]["imageId"]
    st, j, _ = op.json("POST", "/api/v1/jobs", {"image": image, "targets": "dev-a,group:lab",
                                               "jobId": "web-1", "rolloutRate": 100})
    check(st == 201 and j["jobId"] == "web-1" and j["counts"]["targets"] == 2,
          "job created: %d %s" % (st, j))
    check(j["rolloutRate"] == 100 and j["version"] == "1.1.0", "settings and version")
    # A job made again from an image targets the image's version (a device already on
    # it is SKIPPED, not updated again) and the image's device types.
    seed = op.json("GET", "/api/v1/jobs/seed")[1]
    check(j["targetVersion"] == "1.1.0" == seed["targetVersion"] and
          j["deviceTypes"] == seed["deviceTypes"],
          "target version and device types from the image: %s / %s" %
          ((j["targetVersion"], j["deviceTypes"]), (seed["targetVersion"], seed["deviceTypes"])))
    check(j["document"]["afr_ota"]["streamname"] == image, "the image's document")
    st, j, _ = op.json("POST", "/api/v1/jobs", {"image": image, "targets": "dev-a",
                                               "jobId": "web-1"})
    check(st == 409 and "taken" in j["message"], "job id taken")
    thing = op.json("GET", "/api/v1/things/dev-a")[1]
    check(thing["currentJob"]["jobId"] in ("seed", "web-1") and
          {h["jobId"] for h in thing["history"]} == {"seed", "web-1"}, "thing history")
    check_listing_as_things(op, "two jobs")
    # The event stream: the job now, then the change when it is canceled.
    u = urllib.parse.urlparse(fleet.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
    cookie = "otter_session=" + next(c.value for c in op.jar if c.name == "otter_session")
    conn.request("GET", "/api/v1/jobs/web-1/events", headers={"Cookie": cookie})
    resp = conn.getresponse()
    check(resp.status == 200 and resp.getheader("Content-Type") == "text/event-stream",
          "event stream")
    ev = read_event(resp)
    check(ev["jobId"] == "web-1" and ev["status"] == "IN_PROGRESS", "first event: the job")
    st, j, _ = op.json("POST", "/api/v1/jobs/web-1/cancel")
    check(st == 200 and j["status"] == "CANCELED", "canceled")
    # A change pushed before the cancel (a device's report) may come first: read up to it.
    ev = read_event(resp)
    for _ in range(10):
        if ev is None or ev["status"] == "CANCELED":
            break
        ev = read_event(resp)
    check(ev is not None and ev["status"] == "CANCELED" and
          all(e["status"] == "CANCELED" for e in ev["executions"]), "pushed: canceled")
    check(read_event(resp) is None, "the stream ends with the job")
    conn.close()
    st, j, _ = op.json("POST", "/api/v1/jobs/web-1/cancel")
    want = cli_error(fleet, "job", "cancel", "web-1")
    check(st == 409 and j["message"] == want, "cancel twice: %s / %s" % (j["message"], want))
    # A device's failure reason comes with its error named and explained, as the CLI shows it.
    fleet.report("dev-a", "seed", {"status": "FAILED", "statusDetails": {
        "reason": "0x000000f7: 0x00000000", "detail": "the port cannot activate"}})
    wait_for(lambda: op.json("GET", "/api/v1/jobs/seed")[1]["executions"][0]["status"] ==
             "FAILED", 20, "dev-a's failure stored")
    e = op.json("GET", "/api/v1/jobs/seed")[1]["executions"][0]
    check(e["statusDetails"]["reason"] == "0x000000f7: 0x00000000" and
          e["reasonText"].startswith("0x000000f7: 0x00000000 (OTA_ERR_ROLLBACK: anti-rollback: "),
          "the reason in words: %s" % e)
    cur = op.json("GET", "/api/v1/things/dev-a")[1]["history"]
    check(any("OTA_ERR_ROLLBACK" in h.get("reasonText", "") for h in cur), "the thing's history")
    check_listing_as_things(op, "a failed execution")
    st, j, _ = op.json("GET", "/api/v1/jobs/nope")
    check(st == 404 and j["message"] == cli_error(fleet, "job", "show", "nope"), "unknown job")
    st, j, _ = op.json("GET", "/api/v1/things/nope")
    check(st == 404 and j["code"] == "not_found", "unknown thing")


def test_fleet_operations(fleet):
    """What the inventory and the rollouts add: device type, firmware version, presence,
    phases, abort rules, why a job ended, SKIPPED counted apart."""
    op = Client(fleet.url)
    op.login(*OPERATOR)
    t = op.json("GET", "/api/v1/things/dev-b")[1]
    check(t["deviceType"] is None and t["firmwareVersion"] is None and t["online"] is False and
          t["lastSeen"] is None, "nothing reported yet: %s" % t)
    fleet.cli("thing", "set", "dev-b", "deviceType=sim-board", "firmwareVersion=1.1.0")
    row = next(x for x in op.json("GET", "/api/v1/things")[1] if x["name"] == "dev-b")
    check(row["deviceType"] == "sim-board" and row["firmwareVersion"] == "1.1.0" and
          row["online"] is False, "the fleet list reads the inventory: %s" % row)
    check(row["presence"] is None and row["presenceUnknownOn"] == [], "never seen: %s" % row)
    # What the service writes after a gap in its view of brokers 2 and 3: neither online nor
    # offline.
    check(fleet.cli("thing", "set", "dev-b", "connected=true", check=False).returncode != 0,
          "presence cannot be set")
    fleet.presence_unknown("dev-b", (2, 3))
    t = op.json("GET", "/api/v1/things/dev-b")[1]
    check(t["presence"] == "unknown" and t["presenceUnknownOn"] == [2, 3] and
          t["online"] is False, "presence unknown on brokers 2 and 3: %s" % t)
    fleet.presence_unknown("dev-b", ())
    fw = os.path.join(os.environ["OTTER_FW_DIR"], "otter-fw-1.1.0")
    fleet.cli("job", "create", "--file", fw, "--version", "1.1.0", "--targets",
              "dev-a,dev-b,dev-c", "--key", os.path.join(fleet.dir, "keys/codesign.key"),
              "--job-id", "phased", "--phases", "50,100", "--phase-success", "90",
              "--abort", "FAILED:20:2,TIMED_OUT:50:4")
    j = op.json("GET", "/api/v1/jobs/phased")[1]
    check(j["rollout"]["phases"] == [50, 100] and j["rollout"]["phaseSuccessPercent"] == 90 and
          j["rollout"]["currentPhase"] == 0, "phases and the open one: %s" % j["rollout"])
    check(j["abortRules"] == [{"failureType": "FAILED", "percent": 20, "minExecuted": 2},
                              {"failureType": "TIMED_OUT", "percent": 50, "minExecuted": 4}],
          "abort rules: %s" % j["abortRules"])
    check(j["counts"]["skipped"] == 1 and j["targetVersion"] == "1.1.0" and
          next(e for e in j["executions"] if e["thing"] == "dev-b")["status"] == "SKIPPED",
          "dev-b already runs 1.1.0: SKIPPED, counted apart: %s" % j["counts"])
    check(j["reasonCode"] is None and j["reason"] is None, "no reason while in progress")
    fleet.cli("job", "cancel", "phased", "--reason-code", "BAD_BATCH", "--comment",
              "batteries <low>")
    j = op.json("GET", "/api/v1/jobs")[1]
    j = next(x for x in j if x["jobId"] == "phased")
    check(j["status"] == "CANCELED" and j["reasonCode"] == "BAD_BATCH" and
          j["reason"] == "batteries <low>", "why the job ended: %s %s" % (j["reasonCode"],
                                                                         j["reason"]))
    # What otter thing disable and otter thing revoke did, as thing list shows it.
    fleet.cli("thing", "create", "dev-r")
    t = op.json("GET", "/api/v1/things/dev-r")[1]
    check(t["disabled"] is False and t["revoked"] is False, "a new thing: %s" % t)
    fleet.cli("thing", "disable", "dev-r")
    row = next(x for x in op.json("GET", "/api/v1/things")[1] if x["name"] == "dev-r")
    check(row["disabled"] is True and row["revoked"] is False, "disabled: %s" % row)
    check("disabled" in fleet.cli("thing", "list").stdout, "as the CLI says")
    fleet.cli("thing", "revoke", "dev-r")
    t = op.json("GET", "/api/v1/things/dev-r")[1]
    check(t["revoked"] is True, "revoked: %s" % t)
    fleet.cli("thing", "delete", "dev-r")


def upload(client, data, **kw):
    if len(data) > 1024 * 1024:
        return upload_expect(client, data)
    return client.json("POST", "/api/v1/uploads", raw=data,
                       headers=dict({"Content-Type": "application/octet-stream"},
                                    **kw.pop("headers", {})), **kw)


def upload_expect(client, data):
    """An upload as curl sends a large body: with Expect: 100-continue, the body only after
    the server's 100 (a refusal comes instead, and otter-web closes without reading it)."""
    u = urllib.parse.urlparse(client.base)
    cookie = "; ".join("%s=%s" % (c.name, c.value) for c in client.jar)
    head = ("POST /api/v1/uploads HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream"
            "\r\nContent-Length: %d\r\nExpect: 100-continue\r\nCookie: %s\r\n"
            "X-CSRF-Token: %s\r\nConnection: close\r\n\r\n" %
            (u.netloc, len(data), cookie, client.csrf))
    s = socket.create_connection((u.hostname, u.port), timeout=60)
    try:
        s.sendall(head.encode())
        data_in = b""
        while b"\r\n\r\n" not in data_in:
            x = s.recv(65536)
            if not x:
                break
            data_in += x
        if data_in.startswith(b"HTTP/1.1 100"):
            data_in = data_in.split(b"\r\n\r\n", 1)[1]
            s.sendall(data)
        while True:
            x = s.recv(65536)
            if not x:
                break
            data_in += x
    finally:
        s.close()
    head_in, _, body = data_in.partition(b"\r\n\r\n")
    lines = head_in.decode("latin-1").split("\r\n")
    h = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split(" ")[1]), (json.loads(body) if body else None), h


def uploads_left(fleet):
    d = os.path.join(fleet.data, "web/uploads")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def test_upload_and_sign(fleet):
    """Firmware uploaded raw, signed with the key otter-web holds, published as a job."""
    op = Client(fleet.url)
    op.login(*OPERATOR)
    v = Client(fleet.url)
    v.login(*VIEWER)
    with open(os.path.join(os.environ["OTTER_FW_DIR"], "otter-fw-1.1.0"), "rb") as f:
        fw = f.read()
    st, j, _ = upload(v, fw)
    check(st == 403 and j["code"] == "forbidden", "a viewer may not upload: %d" % st)
    st, j, _ = upload(op, fw, csrf=False)
    check(st == 403 and j["code"] == "csrf", "an upload needs the CSRF token")
    st, j, _ = op.json("POST", "/api/v1/uploads", raw=fw)
    check(st == 415, "an upload is application/octet-stream")
    check(uploads_left(fleet) == [], "nothing stored for refused uploads")
    st, j, _ = upload(op, b"\0" * (16 * 1024 * 1024 + 1))
    check(st == 413 and j["code"] == "too_large" and "16 MiB" in j["message"],
          "an upload over 16 MiB: %d" % st)
    check(uploads_left(fleet) == [], "the oversize upload is not kept")
    st, j, _ = upload(op, fw)
    check(st == 201 and j["size"] == len(fw) and re.fullmatch(r"[0-9a-f]{32}", j["uploadId"]),
          "uploaded: %d %s" % (st, j))
    up = j["uploadId"]
    check(uploads_left(fleet) == [up + ".bin"], "streamed to the data folder")
    mode = os.stat(os.path.join(fleet.data, "web/uploads", up + ".bin")).st_mode & 0o777
    check(mode == 0o600, "the upload is the server's alone: %o" % mode)
    body = {"upload": up, "version": "1.1.0", "targets": "dev-a,group:lab",
            "jobId": "signed-1", "rolloutRate": 50}
    st, j, _ = op.json("POST", "/api/v1/jobs", body)
    check(st == 503 and j["code"] == "signing_unavailable" and "--signing-key" in j["message"]
          and "web/codesign.key" in j["message"], "no key, no signing: %d %s" % (st, j))
    key = os.path.join(fleet.data, "web/codesign.key")
    shutil.copy(os.path.join(fleet.dir, "keys/codesign.key"), key)
    shutil.copy(os.path.join(fleet.dir, "keys/codesign.crt"), os.path.join(fleet.data, "web"))
    os.chmod(key, 0o644)
    st, j, _ = op.json("POST", "/api/v1/jobs", body)
    check(st == 503 and "chmod 600" in j["message"], "a key others can read is not used")
    for k, want in ((key, "chmod 600"), (key + ".none", "cannot read --signing-key")):
        r = subprocess.run([os.environ["OTTER_WEB_BIN"], "--data-dir", fleet.data, "--port", "0",
                            "--signing-key", k], capture_output=True, text=True, timeout=20)
        check(r.returncode == 1 and want in r.stdout + r.stderr,
              "otter-web refuses to start with %s: %d %s" % (k, r.returncode, r.stderr))
    os.chmod(key, 0o600)
    st, j, _ = v.json("POST", "/api/v1/jobs", body)
    check(st == 403, "a viewer may not sign")
    st, j, _ = op.json("POST", "/api/v1/jobs", dict(body, version="1.1"))
    check(st == 400 and "bad version '1.1'" in j["message"], "bad version: %s" % j)
    st, j, _ = op.json("POST", "/api/v1/jobs", body)
    check(st == 201 and j["jobId"] == "signed-1" and j["version"] == "1.1.0" and
          j["counts"]["targets"] == 2 and j["rolloutRate"] == 50, "signed job: %d %s" % (st, j))
    f0 = j["document"]["afr_ota"]["files"][0]
    check(f0["certfile"] == "codesign.crt" and f0["otterVersion"] == "1.1.0", "the document")
    # The signature verifies with the certificate over the stored image (as a device checks).
    shown = fleet.cli("job", "show", "signed-1").stdout
    stored = re.search(r"firmware:\s+(\S+) \(file id", shown).group(1)
    with open(stored, "rb") as f:
        image = f.read()
    check(f0["filesize"] == len(image) and image.endswith(fw), "the image: header + the upload")
    sig = os.path.join(fleet.dir, "signed-1.sig")
    pub = os.path.join(fleet.dir, "codesign.pub")
    with open(sig, "wb") as f:
        f.write(base64.b64decode(f0["sig-sha256-ecdsa"]))
    subprocess.run(["openssl", "x509", "-in", os.path.join(fleet.dir, "keys/codesign.crt"),
                    "-pubkey", "-noout", "-out", pub], check=True)
    r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pub, "-signature", sig, stored],
                       capture_output=True, text=True)
    check(r.returncode == 0 and "Verified OK" in r.stdout, "signature verifies: %s" % r.stdout)
    check(uploads_left(fleet) == [], "the upload is removed once published")
    st, j, _ = op.json("POST", "/api/v1/jobs", dict(body, jobId="signed-2"))
    check(st == 404 and "POST /api/v1/uploads" in j["message"], "an upload signs one job")
    images = op.json("GET", "/api/v1/images")[1]
    check(any(i["version"] == "1.1.0" and i["signed"] and i["imageId"] ==
              j2["imageId"] for i in images for j2 in [op.json("GET", "/api/v1/jobs/signed-1")[1]]),
          "the signed upload is an image the next job can reuse")
    op.json("POST", "/api/v1/jobs/signed-1/cancel")
    # An RSA key in its place: the document names sig-sha256-rsa, as AWS writes it.
    fleet.cli("keygen", "--out", os.path.join(fleet.dir, "rsa"), "--type", "rsa-2048")
    shutil.copy(os.path.join(fleet.dir, "rsa/codesign.key"), key)
    shutil.copy(os.path.join(fleet.dir, "rsa/codesign.crt"), os.path.join(fleet.data, "web"))
    os.chmod(key, 0o600)
    st, j, _ = upload(op, fw)
    st, j, _ = op.json("POST", "/api/v1/jobs", dict(body, upload=j["uploadId"], jobId="signed-rsa"))
    check(st == 201, "RSA-signed job: %d %s" % (st, j))
    f0 = j["document"]["afr_ota"]["files"][0]
    check("sig-sha256-ecdsa" not in f0 and len(base64.b64decode(f0["sig-sha256-rsa"])) == 256,
          "the RSA document: %s" % sorted(f0))
    with open(sig, "wb") as f:
        f.write(base64.b64decode(f0["sig-sha256-rsa"]))
    subprocess.run(["openssl", "x509", "-in", os.path.join(fleet.dir, "rsa/codesign.crt"),
                    "-pubkey", "-noout", "-out", pub], check=True)
    shown = fleet.cli("job", "show", "signed-rsa").stdout
    stored = re.search(r"firmware:\s+(\S+) \(file id", shown).group(1)
    r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pub, "-signature", sig, stored],
                       capture_output=True, text=True)
    check(r.returncode == 0 and "Verified OK" in r.stdout, "RSA signature verifies: %s" % r.stdout)
    op.json("POST", "/api/v1/jobs/signed-rsa/cancel")


def esp_app(text):
    """An ESP-IDF application image whose descriptor states version text."""
    b = bytearray(b"\x11" * 1024)
    b[0] = 0xE9
    b[32:36] = bytes([0x32, 0x54, 0xCD, 0xAB])
    b[48:80] = text.encode().ljust(32, b"\0")
    return bytes(b)


def test_upload_checks_as_cli(fleet):
    """An upload gets the checks of 'otter job create --file' (the same code): the version in
    an ESP-IDF descriptor or an image header, a finished image's device type, deviceTypes."""
    op = Client(fleet.url)
    op.login(*OPERATOR)
    fw_img = os.path.join(fleet.dir, "typed.img")
    with open(os.path.join(os.environ["OTTER_FW_DIR"], "otter-fw-1.1.0"), "rb") as f:
        fw = f.read()
    with open(os.path.join(fleet.dir, "fw.bin"), "wb") as f:
        f.write(fw)
    fleet.cli("image", "create", os.path.join(fleet.dir, "fw.bin"), "--version", "1.3.0",
              "--device-type", "board-x", "--out", fw_img)
    with open(fw_img, "rb") as f:
        typed = f.read()
    base = {"version": "1.3.0", "targets": "dev-a"}

    def job(data, **kw):
        st, j, _ = upload(op, data)
        check(st == 201, "uploaded: %d %s" % (st, j))
        return op.json("POST", "/api/v1/jobs", dict(base, upload=j["uploadId"], **kw))

    cases = (
        # (file, extra fields, status, words of the message)
        (esp_app("v1.2.0"), {}, 422,
         "application version 'v1.2.0' (ESP-IDF descriptor), not 1.3.0; give version 1.2.0"),
        (typed, {"version": "1.3.1"}, 422, "image header for version 1.3.0, not 1.3.1; "
                                           "give version 1.3.0"),
        (typed, {}, 422, "made for one device type, and the job names none; give deviceTypes"),
        (typed, {"deviceTypes": "board-x,board-y"}, 422, "not all of the job's device types"),
        (b"OTIM" + b"\0" * 60, {}, 422, "damaged image header"),
    )
    for data, extra, want, words in cases:
        before = len(uploads_left(fleet))
        st, j, _ = job(data, **extra)
        check(st == want and words in j["message"], "refused upload %s: %d %s" % (extra, st, j))
        check(len(uploads_left(fleet)) == before + 1, "a refused upload is kept for another try")
        for name in uploads_left(fleet):  # at most 8 may wait
            os.unlink(os.path.join(fleet.data, "web/uploads", name))
    # The CLI says the same of the same file.
    r = fleet.cli("job", "create", "--file", fw_img, "--targets", "dev-a", "--key",
                  os.path.join(fleet.dir, "keys/codesign.key"), check=False)
    check(r.returncode == 1 and "made for one device type" in r.stderr, "the CLI: %s" % r.stderr)
    for extra, words in (({"deviceTypes": "bad type"}, "bad deviceTypes"),
                         ({"deviceTypes": ""}, "bad deviceTypes"),
                         ({"deviceTypes": 7}, "bad deviceTypes")):
        st, j, _ = job(typed, **extra)
        check(st == 400 and words in j["message"], "%s: %d %s" % (extra, st, j))
    st, j, _ = op.json("POST", "/api/v1/jobs", {"image": "AFR_OTA-x", "targets": "dev-a",
                                                "deviceTypes": "board-x"})
    check(st == 400 and "deviceTypes" in j["message"], "deviceTypes goes with an upload: %s" % j)
    # The right version and type: published, the type in the document and the targeting.
    st, j, _ = job(typed, deviceTypes="board-x", jobId="typed-1")
    check(st == 201 and j["deviceTypes"] == "board-x", "typed job: %d %s" % (st, j))
    f0 = j["document"]["afr_ota"]["files"][0]
    check(f0["otterDeviceTypes"] == ["board-x"] and f0["otterVersion"] == "1.3.0",
          "the document names the type: %s" % f0)
    # A job made again from that image keeps its version and device type.
    st, j, _ = op.json("POST", "/api/v1/jobs", {"image": j["imageId"], "targets": "dev-a",
                                                "jobId": "typed-2"})
    check(st == 201 and j["deviceTypes"] == "board-x" and j["targetVersion"] == "1.3.0",
          "a job from the typed image: %d %s" % (st, j))
    st, j, _ = job(esp_app("1.3.0"), jobId="esp-1")
    check(st == 201, "a descriptor stating the version: %d %s" % (st, j))
    for jid in ("typed-1", "typed-2", "esp-1"):
        op.json("POST", "/api/v1/jobs/%s/cancel" % jid)
    for name in uploads_left(fleet):
        os.unlink(os.path.join(fleet.data, "web/uploads", name))


def stored_image(fleet, job_id):
    """The file of the image a job publishes, as the store holds it."""
    shown = fleet.cli("job", "show", job_id).stdout
    return re.search(r"firmware:\s+(\S+) \(file id", shown).group(1)


def clear_uploads(fleet):
    for name in uploads_left(fleet):
        os.unlink(os.path.join(fleet.data, "web/uploads", name))


def test_security_counter(fleet):
    """securityCounter and deviceType of an upload go into its header as 'otter job create
    --security-counter --device-type' writes it (the same code, the same refusals), and a job
    whose image devices will refuse after a higher published counter says so, as the CLI
    warns."""
    op = Client(fleet.url)
    op.login(*OPERATOR)
    fw_path = os.path.join(fleet.dir, "fw.bin")
    with open(os.path.join(os.environ["OTTER_FW_DIR"], "otter-fw-1.1.0"), "rb") as f:
        fw = f.read()
    with open(fw_path, "wb") as f:
        f.write(fw)
    key = os.path.join(fleet.dir, "keys/codesign.key")
    n_jobs = len(op.json("GET", "/api/v1/jobs")[1])

    def job(version, **kw):
        st, j, _ = upload(op, fw)
        check(st == 201, "uploaded: %d %s" % (st, j))
        return op.json("POST", "/api/v1/jobs", dict({"upload": j["uploadId"], "version": version,
                                                     "targets": "dev-a"}, **kw))

    # Refusals, each with the CLI's text (its option names the field), before anything is
    # signed or published.
    cli_base = ["job", "create", "--file", fw_path, "--version", "1.5.0", "--targets", "dev-a",
                "--key", key]
    for field, opt, value in (("securityCounter", "--security-counter", "0"),
                              ("securityCounter", "--security-counter", "65536"),
                              ("securityCounter", "--security-counter", "-1"),
                              ("securityCounter", "--security-counter", "5x"),
                              ("securityCounter", "--security-counter", ""),
                              ("deviceType", "--device-type", "bad type"),
                              ("deviceType", "--device-type", "a,b"),
                              ("deviceType", "--device-type", ""),
                              ("deviceType", "--device-type", "x" * 65)):
        st, j, _ = job("1.5.0", **{field: value})
        check(len(uploads_left(fleet)) == 1, "a refused upload is kept for another try")
        clear_uploads(fleet)
        want = cli_error(fleet, *(cli_base + [opt, value])).replace(opt, field)
        check(st == 400 and j["code"] == "bad_request" and j["message"] == want,
              "%s %r: %d, same text as the CLI:\n  api: %s\n  cli: %s" %
              (field, value, st, j["message"], want))
    for extra, words in (({"securityCounter": 70000}, "bad securityCounter '70000'; give 1-65535"),
                         ({"securityCounter": 1.5}, "bad securityCounter '1.5'; give 1-65535"),
                         ({"securityCounter": True}, "bad securityCounter; give a whole number"),
                         ({"deviceType": 7}, "bad deviceType; give one type"),
                         ({"deviceType": "board-c", "deviceTypes": "board-c,board-d"},
                          "give deviceTypes board-c or leave it out")):
        st, j, _ = job("1.5.0", **extra)
        clear_uploads(fleet)
        check(st == 400 and words in j["message"], "%s: %d %s" % (extra, st, j))
    image = op.json("GET", "/api/v1/images")[1][0]["imageId"]
    for extra in ({"securityCounter": 5}, {"deviceType": "board-c"}):
        st, j, _ = op.json("POST", "/api/v1/jobs", dict({"image": image, "targets": "dev-a"},
                                                        **extra))
        check(st == 400 and "go into the header of an upload" in j["message"],
              "%s goes with an upload: %d %s" % (extra, st, j))
    check(len(op.json("GET", "/api/v1/jobs")[1]) == n_jobs, "no refused request made a job")
    clear_uploads(fleet)

    # A counter and a type: the header 'otter image create' writes from the same values, the
    # job for that type; the first counter in the store warns of nothing.
    st, j, _ = job("1.5.0", securityCounter=5, deviceType="board-c", jobId="sc-5")
    check(st == 201 and j["deviceTypes"] == "board-c" and j["warnings"] == [],
          "counter 5, type board-c: %d %s" % (st, j))
    made = os.path.join(fleet.dir, "sc-5.img")
    fleet.cli("image", "create", "--version", "1.5.0", "--security-counter", "5",
              "--device-type", "board-c", "--out", made, fw_path)
    with open(made, "rb") as f:
        want = f.read()
    with open(stored_image(fleet, "sc-5"), "rb") as f:
        check(f.read() == want, "the stored image is the one 'otter image create' makes")
    shown = json.loads(fleet.cli("image", "show", "--json", "--device-type", "board-c",
                                 made).stdout)
    check(shown["securityCounter"] == 5 and shown["forDeviceType"] is True and
          shown["format"] == 2, "its header: %s" % shown)
    # A counter given as a decimal string, as the other numbers of a job create.
    st, j, _ = job("1.5.1", securityCounter="5", jobId="sc-5b")
    check(st == 201 and j["warnings"] == [], "the same counter warns of nothing: %s" % j)
    shown = json.loads(fleet.cli("image", "show", "--json", stored_image(fleet, "sc-5b")).stdout)
    check(shown["securityCounter"] == 5 and shown["deviceTypeTag"] is None and
          j["deviceTypes"] == "", "counter 5 from a string, any type: %s %s" % (shown, j))

    # No counter, or a lower one: published, with the CLI's warning.
    st, j, _ = job("1.5.2", jobId="sc-none")
    check(st == 201 and len(j["warnings"]) == 1, "no counter after counter 5: %d %s" % (st, j))
    w = j["warnings"][0]
    check(w["code"] == "security_counter_rollback" and w["securityCounter"] == 0 and
          w["publishedSecurityCounter"] == 5 and w["publishedJobId"] == "sc-5b" and
          w["publishedImageId"] == op.json("GET", "/api/v1/jobs/sc-5b")[1]["imageId"],
          "the warning names the newest image with counter 5: %s" % w)
    r = fleet.cli("job", "create", "--file", fw_path, "--version", "1.5.3", "--targets", "dev-a",
                  "--key", key, "--job-id", "cli-none")
    cli_warning = r.stderr.strip().replace("otter: warning: ", "")
    check(w["message"] == cli_warning.replace("--security-counter", "securityCounter"),
          "the CLI's warning:\n  api: %s\n  cli: %s" % (w["message"], cli_warning))
    check("this image has no security counter" in w["message"] and
          "OTA_ERR_ROLLBACK" in w["message"] and "securityCounter 5 or higher" in w["message"],
          "what the warning says: %s" % w["message"])
    st, j, _ = job("1.5.4", securityCounter=3, jobId="sc-3")
    check(st == 201 and len(j["warnings"]) == 1 and
          "this image has security counter 3, but" in j["warnings"][0]["message"],
          "a lower counter: %d %s" % (st, j))
    # A job made again from an old image warns too; from the newest one it does not.
    old_image = op.json("GET", "/api/v1/jobs/sc-none")[1]["imageId"]
    st, j, _ = op.json("POST", "/api/v1/jobs", {"image": old_image, "targets": "dev-a",
                                                "jobId": "sc-again"})
    check(st == 201 and [x["publishedSecurityCounter"] for x in j["warnings"]] == [5],
          "a job from the image without a counter: %d %s" % (st, j))
    st, j, _ = op.json("POST", "/api/v1/jobs", {"image": op.json("GET", "/api/v1/jobs/sc-5")[1]
                                                ["imageId"], "targets": "dev-a",
                                                "jobId": "sc-5-again"})
    check(st == 201 and j["warnings"] == [], "a job from the counter-5 image: %d %s" % (st, j))
    for jid in ("sc-5", "sc-5b", "sc-none", "cli-none", "sc-3", "sc-again", "sc-5-again"):
        op.json("POST", "/api/v1/jobs/%s/cancel" % jid)
    clear_uploads(fleet)


def test_groups_and_attributes(fleet):
    """Groups and thing attributes edited through the API: roles, CSRF, the store's rules
    (the CLI's), dynamic groups following attributes, markup kept as data."""
    v = Client(fleet.url)
    v.login(*VIEWER)
    op = Client(fleet.url)
    op.login(*OPERATOR)
    edits = [("POST", "/api/v1/groups", {"name": "field"}),
             ("DELETE", "/api/v1/groups/lab", None),
             ("PUT", "/api/v1/groups/lab/members/dev-b", None),
             ("DELETE", "/api/v1/groups/lab/members/dev-c", None),
             ("PUT", "/api/v1/things/dev-b/attributes/site", {"value": "x"}),
             ("DELETE", "/api/v1/things/dev-b/attributes/site", None)]
    for method, path, body in edits:
        st, j, _ = v.json(method, path, body)
        check(st == 403 and j["code"] == "forbidden", "a viewer may not %s %s: %d" %
              (method, path, st))
        st, j, _ = op.json(method, path, body, csrf=False)
        check(st == 403 and j["code"] == "csrf", "%s %s needs the CSRF token: %d" %
              (method, path, st))
        st, j, _ = op.json(method, path, body, headers={"Origin": "http://evil.example"})
        check(st == 403 and j["code"] == "csrf", "%s %s from another site: %d" % (method, path, st))
    check(v.json("GET", "/api/v1/groups/lab")[1]["members"] == ["dev-c"], "nothing changed")

    # Static groups.
    st, j, _ = op.json("POST", "/api/v1/groups", {"name": "field"})
    check(st == 201 and j == {"name": "field", "kind": "static", "query": "", "size": 0,
                              "createdAt": j["createdAt"], "members": []}, "created: %s" % j)
    st, j, _ = op.json("POST", "/api/v1/groups", {"name": "field"})
    check(st == 409 and "exists" in j["message"], "a name taken: %d" % st)
    for body in ({"name": "bad name"}, {"name": "<b>x</b>"}, {}, {"name": 7},
                 {"name": "q", "query": "site"}, {"name": "q", "query": "a<b"},
                 {"name": "q", "query": 5}, {"name": "q", "extra": 1}):
        st, j, _ = op.json("POST", "/api/v1/groups", body)
        check(st == 400 and j["code"] == "bad_request", "refused %s: %d %s" % (body, st, j))
    check(op.json("GET", "/api/v1/groups/q")[0] == 404, "no refused request made a group")
    st, j, _ = op.json("POST", "/api/v1/groups", {"name": "-g"})
    check(st == 400 and "not starting with '-'" in j["message"], "a name starting with '-': %s" % j)
    st, j, _ = op.json("PUT", "/api/v1/groups/field/members/dev-a")
    check(st == 200 and j["members"] == ["dev-a"] and j["size"] == 1, "member added: %s" % j)
    st, j, _ = op.json("PUT", "/api/v1/groups/field/members/dev-a")
    check(st == 200 and j["members"] == ["dev-a"], "adding twice is as asked")
    st, j, _ = op.json("PUT", "/api/v1/groups/field/members/nosuch")
    check(st == 404 and "unknown thing" in j["message"], "unknown thing: %d" % st)
    st, j, _ = op.json("PUT", "/api/v1/groups/nosuch/members/dev-a")
    check(st == 404 and "unknown group" in j["message"], "unknown group: %d" % st)
    check("dev-a" in fleet.cli("group", "show", "field").stdout, "the CLI sees the same store")
    check("field" in op.json("GET", "/api/v1/things/dev-a")[1]["groups"], "the thing's groups")

    # Attributes, and a dynamic group that follows them.
    st, j, _ = op.json("POST", "/api/v1/groups", {"name": "sims",
                                                  "query": "site=lab2,firmwareVersion<2.0.0"})
    check(st == 201 and j["kind"] == "dynamic" and j["members"] == [], "dynamic: %s" % j)
    st, j, _ = op.json("PUT", "/api/v1/groups/sims/members/dev-a")
    check(st == 409 and "dynamic" in j["message"] and "attributes" in j["message"],
          "no members by hand in a dynamic group: %d %s" % (st, j))
    st, j, _ = op.json("PUT", "/api/v1/things/dev-b/attributes/site", {"value": "lab2"})
    check(st == 200 and j["attributes"]["site"] == "lab2", "attribute set: %s" % j)
    check(op.json("GET", "/api/v1/groups/sims")[1]["members"] == ["dev-b"],
          "the dynamic group follows the attribute")
    check("site" in fleet.cli("thing", "show", "dev-b").stdout, "the CLI shows it")
    bad = [("deviceType", "bad type!", "device type"), ("firmwareVersion", "1.2", "version"),
           ("note", 'say "hi"', "value"), ("note", "", "value"), ("note", "x" * 129, "value"),
           ("bad-key", "x", "key")]
    for key, value, word in bad:
        st, j, _ = op.json("PUT", "/api/v1/things/dev-b/attributes/" + key, {"value": value})
        check(st == 400 and word in j["message"], "%s=%r refused: %d %s" % (key, value, st, j))
    for body in ({}, {"value": 3}, {"value": "x", "other": 1}):
        st, j, _ = op.json("PUT", "/api/v1/things/dev-b/attributes/note", body)
        check(st == 400, "body %s refused: %d" % (body, st))
    st, j, _ = op.json("PUT", "/api/v1/things/nosuch/attributes/site", {"value": "x"})
    check(st == 404 and "unknown thing" in j["message"], "attribute of an unknown thing")
    markup = "<img src=x onerror=alert(1)><script>alert(2)</script>"  # no '"' in a value
    st, _, b = op.request("PUT", "/api/v1/things/dev-b/attributes/note", {"value": markup})
    check(st == 200, "markup is a value like any other")
    st, h, b = op.request("GET", "/api/v1/things/dev-b")
    check(h.get("Content-Type", "").startswith("application/json") and
          h.get("X-Content-Type-Options") == "nosniff", "the API answers JSON, not sniffed")
    check(json.loads(b)["attributes"]["note"] == markup and b"<script>" in b,
          "the value comes back as data, unchanged")
    st, j, _ = op.json("DELETE", "/api/v1/things/dev-b/attributes/site")
    check(st == 200 and "site" not in j["attributes"], "attribute removed")
    st, j, _ = op.json("DELETE", "/api/v1/things/dev-b/attributes/site")
    check(st == 404 and "no attribute" in j["message"], "removing it again: %d" % st)
    # What the service keeps is not the operator's to write: the CLI's words, and what to use.
    for key, cmd in (("lastSeen", None), ("disabled", "otter thing disable"),
                     ("revoked", "otter thing revoke"), ("connected", None)):
        for method, body, cli in (("PUT", {"value": "true"}, ("thing", "set", "dev-b",
                                                              key + "=true")),
                                  ("DELETE", None, ("thing", "unset", "dev-b", key))):
            st, j, _ = op.json(method, "/api/v1/things/dev-b/attributes/" + key, body)
            r = fleet.cli(*cli, check=False)
            want = r.stderr.strip()
            check(st == 400 and r.returncode == 2 and want.endswith(j["message"]) and
                  "cannot be set" in j["message"] and (cmd is None or cmd in j["message"]),
                  "%s %s refused: %d %s / %s" % (method, key, st, j, want))
    attrs = op.json("GET", "/api/v1/things/dev-b")[1]["attributes"]
    check("disabled" not in attrs and "revoked" not in attrs, "nothing written: %s" % attrs)
    check(op.json("GET", "/api/v1/groups/sims")[1]["members"] == [], "the dynamic group follows")
    for method, body in (("PUT", {"value": "true"}), ("DELETE", None)):
        st, j, _ = op.json(method, "/api/v1/things/dev-b/attributes/connected", body)
        check(st == 400 and "presence" in j["message"],
              "%s of the computed presence refused as such: %d %s" % (method, st, j))

    # Deleting: refused while an IN_PROGRESS job targets the group, then done.
    # The newest version: an image no newer than a member's firmwareVersion would be SKIPPED for
    # it, and the job over at once (the images list in id order, which is random).
    image = max(op.json("GET", "/api/v1/images")[1],
                key=lambda i: tuple(int(x) for x in i["version"].split(".")))["imageId"]
    st, j, _ = op.json("POST", "/api/v1/jobs", {"image": image, "targets": "group:field",
                                               "jobId": "for-field"})
    check(st == 201, "a job for the group: %d %s" % (st, j))
    st, j, _ = op.json("DELETE", "/api/v1/groups/field")
    check(st == 409 and "cancel that job first" in j["message"], "delete refused: %d %s" % (st, j))
    op.json("POST", "/api/v1/jobs/for-field/cancel")
    st, j, _ = op.json("DELETE", "/api/v1/groups/field/members/dev-a")
    check(st == 200 and j["members"] == [], "member removed")
    st, j, _ = op.json("DELETE", "/api/v1/groups/field/members/dev-a")
    check(st == 404 and "not in group" in j["message"], "removing it again: %d" % st)
    for name in ("field", "sims"):
        st, _, _ = op.json("DELETE", "/api/v1/groups/" + name)
        check(st == 200, "group %s deleted" % name)
        check(op.json("GET", "/api/v1/groups/" + name)[0] == 404, "and gone")
    st, j, _ = op.json("DELETE", "/api/v1/groups/field")
    check(st == 404, "deleting an unknown group")
    check("dev-a" in fleet.cli("thing", "list").stdout, "the things stay")


def test_upload_bounds(fleet):
    """A user cannot fill the disk: at most 8 uploads waiting, 64 MiB in all, an hour each."""
    op = Client(fleet.url)
    op.login(*OPERATOR)
    d = os.path.join(fleet.data, "web/uploads")
    check(uploads_left(fleet) == [], "no upload waiting")
    ids = []
    for i in range(8):
        st, j, _ = upload(op, b"fw-%d" % i * 100)
        check(st == 201, "upload %d stored: %d" % (i, st))
        ids.append(j["uploadId"])
    st, j, _ = upload(op, b"one too many")
    check(st == 507 and j["code"] == "storage_full" and "8 uploads" in j["message"] and
          "create jobs" in j["message"], "the ninth waits: %d %s" % (st, j))
    check(len(uploads_left(fleet)) == 8, "nothing stored for the refused one")
    # An upload unused for over an hour is removed to make room.
    old = os.path.join(d, ids[0] + ".bin")
    os.utime(old, (time.time() - 3700, time.time() - 3700))
    st, j, _ = upload(op, b"fresh")
    check(st == 201 and not os.path.exists(old), "an hour-old upload made room: %d" % st)
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    # The bytes: three uploads waiting hold 60 MiB (sparse files), 4 MiB are left.
    for i in range(3):
        with open(os.path.join(d, "%032x.bin" % (i + 1)), "wb") as f:
            f.truncate(20 * 1024 * 1024)
    st, j, _ = upload(op, b"\0" * (5 * 1024 * 1024))
    check(st == 507 and j["code"] == "storage_full" and "4194304 bytes" in j["message"],
          "over the room left: %d %s" % (st, j))
    check(len(uploads_left(fleet)) == 3, "the refused upload is not kept")
    st, j, _ = upload(op, b"\0" * (3 * 1024 * 1024))
    check(st == 201, "what fits is stored: %d %s (waiting: %s)" % (st, j, sorted(os.listdir(d))))
    for i in range(3):
        os.unlink(os.path.join(d, "%032x.bin" % (i + 1)))
    st, j, _ = upload(op, b"\0" * 1024)
    check(st == 201, "room again once uploads are gone: %d" % st)
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))


def test_no_secret_served(fleet):
    op = Client(fleet.url)
    op.login(*OPERATOR)
    for method, pattern, _ in routes():
        if method != "GET" or pattern.endswith("/events"):
            continue
        for arg in ("dev-a", "seed"):
            st, _, b = op.request("GET", pattern.replace("{}", arg))
            check(b"PRIVATE KEY" not in b and b"pbkdf2" not in b and b"password" not in b,
                  "no secret in " + pattern)


def test_logout_and_removed_account(fleet):
    op = Client(fleet.url)
    op.login(*OPERATOR)
    u = urllib.parse.urlparse(fleet.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
    cookie = "otter_session=" + next(c.value for c in op.jar if c.name == "otter_session")
    conn.request("GET", "/api/v1/jobs/seed/events", headers={"Cookie": cookie})
    resp = conn.getresponse()
    check(read_event(resp)["jobId"] == "seed", "stream open")
    st, j, h = op.json("DELETE", "/api/v1/session")
    check(st == 200 and "Max-Age=0" in h.get("Set-Cookie", ""), "logged out")
    check(read_event(resp) is None, "logout ends the session's event streams")
    conn.close()
    st, _, _ = op.json("GET", "/api/v1/things")
    check(st == 401, "the old session is gone")
    v = Client(fleet.url)
    v.login(*VIEWER)
    fleet.cli("user", "remove", VIEWER[0])
    st, j, _ = v.json("GET", "/api/v1/things")
    check(st == 401, "a removed account's session ends: %d" % st)
    st, _, _ = v.login(*VIEWER)
    check(st == 401, "and it cannot log in")


def test_tls(fleet):
    """HTTPS with a certificate of one's own: the session cookie is Secure."""
    import ssl
    from web_fleet import log_has
    cert, key = os.path.join(fleet.dir, "web.crt"), os.path.join(fleet.dir, "web.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days",
                    "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    # An upload cut off by a stop is removed when otter-web starts.
    os.makedirs(os.path.join(fleet.data, "web/uploads"), exist_ok=True)
    part = os.path.join(fleet.data, "web/uploads", "0" * 32 + ".part")
    with open(part, "wb") as f:
        f.write(b"half")
    fleet.spawn("web-tls", [os.environ["OTTER_WEB_BIN"], "--data-dir", fleet.data, "--port", "0",
                            "--cert", cert, "--key", key])
    wait_for(lambda: log_has(fleet.log("web-tls"), "ready: https://"), 10, "otter-web --tls")
    check(not os.path.exists(part), "a partial upload is removed at start")
    with open(fleet.log("web-tls")) as f:
        base = re.search(r"ready: (https://[0-9.]+:[0-9]+)/", f.read()).group(1)
    ctx = ssl.create_default_context(cafile=cert)
    u = urllib.parse.urlparse(base)
    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=20)
    conn.request("POST", "/api/v1/session", json.dumps({"user": OPERATOR[0],
                                                        "password": OPERATOR[1]}),
                 {"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    cookie = r.getheader("Set-Cookie", "")
    check(r.status == 200 and "; Secure" in cookie and "HttpOnly" in cookie,
          "HTTPS login: %d %s" % (r.status, cookie))
    check(r.getheader("Strict-Transport-Security", "").startswith("max-age="), "HSTS")
    conn.close()


def test_log_lines_are_the_loggers(fleet):
    """A request path that unescapes to ESC, a line break and a forged log line, and a
    bidi override, reaches otter-web's log escaped: every line is the logger's own."""
    forged = "2026-12-07T19:59:59Z otter-web ERROR forged"
    path = "/api/v1/things/%1b%5b2J%0a" + urllib.parse.quote(forged) + "%e2%80%ae"
    st, _, _ = Client(fleet.url).request("GET", path)
    check(st == 401, "GET of the forged path without a session: %d" % st)
    shown = "\\x1b[2J\\x0a" + forged + "\\u202e"
    wait_for(lambda: log_has(fleet.log("web"), shown), 10, "the request in the log, escaped")
    with open(fleet.log("web"), "rb") as f:
        text = f.read()
    check(b"\x1b" not in text and "\u202e".encode() not in text, "no ESC, no override in the log")
    check(not any(line.startswith(forged.encode()) for line in text.split(b"\n")),
          "no forged line in the log")


def main():
    build = os.environ.get("OTTER_TEST_TMP", "/tmp")
    with Fleet(build, devices=(), spare_things=("dev-a", "dev-b")) as fleet:
        try:
            fleet.cli("thing", "create", "dev-c", "--group", "lab")
            fleet.image_job("1.1.0", "dev-a", "seed")
            for t in (test_route_table, test_pages, test_login_cookies_throttling,
                      test_login_race, test_success_keeps_address_count,
                      test_sessions_per_account, test_login_hashing_bound, test_host_checked,
                      test_slow_senders,
                      test_csrf_and_roles, test_validation_as_cli, test_jobs_and_events,
                      test_fleet_operations, test_upload_and_sign, test_upload_checks_as_cli,
                      test_security_counter, test_upload_bounds,
                      test_groups_and_attributes,
                      test_no_secret_served, test_log_lines_are_the_loggers, test_tls,
                      test_logout_and_removed_account):
                t(fleet)
                print("ok", t.__name__)
        except BaseException:
            fleet.dump_logs()
            raise
    print("web_api: %d checks passed" % checks)


if __name__ == "__main__":
    main()
