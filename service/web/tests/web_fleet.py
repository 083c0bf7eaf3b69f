"""A fleet for the web console's tests: Mosquitto with the configuration
`otter broker init` writes, otter-service, simulated devices (otter-device)
and otter-web, all on free 127.0.0.1 ports in a fresh folder, with accounts
made by `otter user add`. Every process started is stopped on close(), also
when a test fails.

Binaries come from the environment the CTest entry sets: OTTER_BIN,
OTTER_SERVICE_BIN, OTTER_DEVICE_BIN, OTTER_WEB_BIN, OTTER_FW_DIR.
"""

import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import http.cookiejar

OPERATOR = ("olivia", "operator-pass-1")
VIEWER = ("victor", "viewer-pass-1")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout_s, what):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def log_has(path, text):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return text in f.read()
    except FileNotFoundError:
        return False


class Fleet:
    """Broker, service, devices and console. Use as a context manager."""

    def __init__(self, root, devices=(), spare_things=(), group="lab"):
        self.bin = os.environ["OTTER_BIN"]
        self.dir = tempfile.mkdtemp(prefix="otter-web-", dir=root)
        self.data = os.path.join(self.dir, "data")
        self.env = dict(os.environ, OTTER_DATA_DIR=self.data)
        self.procs = []
        self.devices = list(devices)
        try:
            self._start(devices, spare_things, group)
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def log(self, name):
        return os.path.join(self.dir, name + ".log")

    def cli(self, *args, stdin=None, check=True):
        r = subprocess.run([self.bin] + list(args), env=self.env, input=stdin,
                           capture_output=True, text=True, timeout=60)
        with open(self.log("cli"), "a") as f:
            f.write("$ otter %s\n%s%s(exit %d)\n" % (" ".join(args), r.stdout, r.stderr,
                                                     r.returncode))
        if check and r.returncode != 0:
            raise AssertionError("otter %s failed: %s" % (" ".join(args), r.stderr))
        return r

    def spawn(self, name, argv, env=None):
        out = open(self.log(name), "a")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env or self.env,
                             cwd=self.dir, start_new_session=True)
        out.close()
        self.procs.append((name, p))
        return p

    def _start(self, devices, spare_things, group):
        port = free_port()
        self.cli("broker", "init", "--port", str(port))
        mosq = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.broker = self.spawn("broker", [mosq, "-c",
                                            os.path.join(self.data, "broker/mosquitto.conf")])
        wait_for(lambda: log_has(self.log("broker"), "listen socket on port %d" % port), 10,
                 "Mosquitto")
        self.broker_port = port
        # otter-service finds the broker and its login in the data folder.
        self.spawn("service", [os.environ["OTTER_SERVICE_BIN"], "--data-dir", self.data,
                               "--share-group", "none"])
        wait_for(lambda: log_has(self.log("service"), "INFO ready:"), 20, "otter-service")
        self.cli("keygen", "--out", os.path.join(self.dir, "keys"))
        for t in list(devices) + list(spare_things):
            self.cli("thing", "create", t, "--group", group) if t in devices else \
                self.cli("thing", "create", t)
        fw = os.environ["OTTER_FW_DIR"]
        for t in devices:
            conf = os.path.join(self.dir, t + ".conf")
            with open(conf, "w") as f:
                f.write("thing_file = %s/things/%s.json\ncodesign_cert = %s/keys/codesign.crt\n"
                        "broker_port = %d\n" % (self.data, t, self.dir, port))
            self.spawn("device-" + t, [os.environ["OTTER_DEVICE_BIN"], "--flash",
                                       os.path.join(self.dir, t + ".flash"), "--factory",
                                       os.path.join(fw, "otter-fw-1.0.0"), "--factory-version",
                                       "1.0.0", "--config", conf])
        for t in devices:
            wait_for(lambda: log_has(self.log("device-" + t), "INFO agent started"), 20,
                     "device " + t)
        self.cli("user", "add", OPERATOR[0], "--role", "operator", stdin=OPERATOR[1] + "\n")
        self.cli("user", "add", VIEWER[0], "--role", "viewer", stdin=VIEWER[1] + "\n")
        self.web = self.spawn("web", [os.environ["OTTER_WEB_BIN"], "--data-dir", self.data,
                                      "--port", "0"])
        wait_for(lambda: log_has(self.log("web"), "ready: "), 10, "otter-web")
        with open(self.log("web")) as f:
            self.url = re.search(r"ready: (http://[0-9.]+:[0-9]+)/", f.read()).group(1)

    def image_job(self, version, targets, job_id):
        """`otter job create` with the device's firmware of that version."""
        self.cli("job", "create", "--file",
                 os.path.join(os.environ["OTTER_FW_DIR"], "otter-fw-" + version),
                 "--version", version, "--targets", targets,
                 "--key", os.path.join(self.dir, "keys/codesign.key"), "--job-id", job_id)

    def report(self, thing, job_id, update):
        """The thing sends a job execution update (a dict) through the broker with its own
        login, as a device does."""
        with open(os.path.join(self.data, "things/%s.json" % thing)) as f:
            cred = json.load(f)
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.broker_port), "-u",
                        cred["username"], "-P", cred["password"], "-i", cred["client_id"], "-q",
                        "1", "-t", "$aws/things/%s/jobs/%s/update" % (thing, job_id), "-m",
                        json.dumps(update)], check=True, timeout=20)

    def presence_unknown(self, thing, brokers):
        """Puts in the store what the service keeps for a thing whose presence on these brokers
        is unknown (seen there only before a gap), or forgets its presence (brokers empty).
        Presence comes from the brokers' notices, which no command can set."""
        db = sqlite3.connect(os.path.join(self.data, "otter.db"), timeout=10)
        try:
            with db:
                db.execute("DELETE FROM presence WHERE thing = ?", (thing,))
                for k in brokers:
                    db.execute("INSERT INTO presence(thing, broker, online, epoch, at_ms) "
                               "VALUES(?, ?, 0, -1, ?)", (thing, k, int(time.time() * 1000)))
        finally:
            db.close()

    def close(self):
        for name, p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        self.procs = []

    def dump_logs(self):
        for name in ["broker", "web", "service"] + ["device-" + d for d in self.devices]:
            try:
                with open(self.log(name), errors="replace") as f:
                    print("---- %s (last lines) ----" % name)
                    print("".join(f.readlines()[-40 if name == "broker" else -15:]))
            except FileNotFoundError:
                pass


class Client:
    """An HTTP client with its own cookies (one browser)."""

    def __init__(self, base):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar),
                                                  NoRedirect())
        self.csrf = None

    def request(self, method, path, body=None, headers=None, raw=None, csrf=True):
        h = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if method != "GET" and "Content-Type" not in h:
            h["Content-Type"] = "application/json"
        if method != "GET" and csrf and self.csrf:
            h.setdefault("X-CSRF-Token", self.csrf)
        if method != "GET" and data is None:
            data = b"{}"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=h)
        try:
            with self.opener.open(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def json(self, method, path, body=None, **kw):
        st, h, b = self.request(method, path, body, **kw)
        return st, (json.loads(b) if b else None), h

    def login(self, user, password):
        st, j, h = self.json("POST", "/api/v1/session", {"user": user, "password": password})
        if st == 200:
            self.csrf = j["csrfToken"]
        return st, j, h


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kw):
        return None
