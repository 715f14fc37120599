"""Small real child processes for the launcher and wait tests: ``python -c`` scripts, no TensorFlow."""

from __future__ import annotations

import sys
import textwrap
import time

import psutil


def python(script: str, *args: str) -> list[str]:
    """argv running ``script`` (dedented) under this interpreter, unbuffered."""
    return [sys.executable, "-u", "-c", textwrap.dedent(script), *args]


# Prints the embedded server's readiness lines (written by the same helpers the server uses), then idles.
ANNOUNCES_PORTS = """
    import signal, sys, time
    from pytest_tfserving.process.ready_line import grpc_line, rest_line
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("loading models ...")
    time.sleep(float(sys.argv[1]))
    print(grpc_line(int(sys.argv[2])), file=sys.stderr)
    print(rest_line(int(sys.argv[3])), file=sys.stderr)
    while True:
        time.sleep(1)
"""

NEVER_READY = """
    import time
    print("still warming up", flush=True)
    while True:
        time.sleep(1)
"""

DIES_EARLY = """
    import sys, time
    print("fatal: cannot load model 'tiny'", flush=True)
    time.sleep(0.2)
    sys.exit(3)
"""

# Binds the port in argv[1] and then says so; a taken port ends it the way servers report a lost race.
BINDS_PORT = """
    import socket, sys, time
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", int(sys.argv[1])))
    except OSError as exc:
        print(f"bind failed: {exc}", flush=True)
        sys.exit(1)
    sock.listen()
    print(f"listening on {sys.argv[1]}", flush=True)
    while True:
        time.sleep(1)
"""

# After a delay, serves TF Serving's model status on the port in argv[2]: "tiny" AVAILABLE, others 404.
MODEL_STATUS_SERVER = """
    import json, sys, time
    from http.server import BaseHTTPRequestHandler, HTTPServer
    time.sleep(float(sys.argv[1]))

    class Status(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/v1/models/tiny":
                self.send_error(404, "Servable not found")
                return
            body = json.dumps({"model_version_status": [{"version": "1", "state": "AVAILABLE"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    print("serving", flush=True)
    HTTPServer(("127.0.0.1", int(sys.argv[2])), Status).serve_forever()
"""

IGNORES_SIGTERM = """
    import signal, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ready", flush=True)
    while True:
        time.sleep(1)
"""

# Starts a grandchild in the same process group and prints its pid.
HAS_GRANDCHILD = """
    import subprocess, sys, time
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    print(f"grandchild {grandchild.pid}", flush=True)
    while True:
        time.sleep(1)
"""

# Starts a ManagedProcess (a sleeper), prints its pid and idles: the test SIGKILLs this parent.
PARENT_OF_MANAGED = """
    import sys, time
    from pathlib import Path
    from pytest_tfserving.process.launcher import ManagedProcess
    child = ManagedProcess([sys.executable, "-c", "import time; time.sleep(120)"], Path(sys.argv[1]))
    print(child.pid, flush=True)
    while True:
        time.sleep(1)
"""


def gone(pid: int, timeout_s: float = 10.0, poll_s: float = 0.05) -> bool:
    """Whether ``pid`` exits (or is a zombie) within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(poll_s)
    return False


# A sleeper under a new session whose parent exits at once: the daemonizing double fork. Prints the
# sleeper's pid; with nobody to re-parent to below, init (or the nearest subreaper) adopts it.
SPAWNS_A_DAEMON = """
    import os, subprocess, sys
    read_end, write_end = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.setsid()
        daemon = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)  # a daemon lets go of its stdio
        os.write(write_end, str(daemon.pid).encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(middle, 0)
    print(os.read(read_end, 32).decode(), flush=True)
"""

# A server that detaches two helpers from its process group, as daemons do: one in a session of its
# own (setsid), one orphaned at once by a double fork (SPAWNS_A_DAEMON). Prints both pids, then idles.
DETACHES_HELPERS = f"""
    import subprocess, sys, textwrap, time
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    own_session = subprocess.Popen(sleeper, start_new_session=True)
    spawner = subprocess.run([sys.executable, "-c", textwrap.dedent({SPAWNS_A_DAEMON!r})],
                             capture_output=True, text=True, check=True)
    print(f"helpers {{own_session.pid}} {{spawner.stdout.strip()}}", flush=True)
    while True:
        time.sleep(1)
"""
