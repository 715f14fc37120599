"""Run TF Serving's own model-server integration tests against the embedded server.

    python benchmarks/tfs_conformance.py /path/to/tensorflow/serving [--only testA,testB] [--timeout 300]

The argument is a checkout of github.com/tensorflow/serving (e.g. tag 2.19.1). Its
``tensorflow_serving/model_servers/tensorflow_model_server_test.py`` starts
``$TEST_SRCDIR/tf_serving/tensorflow_serving/model_servers/tensorflow_model_server`` with real
flags and talks to it over gRPC and REST. This script builds that layout in a temporary directory: the
checkout's ``servables`` (the test models) linked in, and in place of the binary a two-line wrapper
that runs ``python -m pytest_tfserving.embedded``. Nothing of TF Serving is copied into this project.

Every test runs in its own process (the suite caches servers per argument set and two tests reuse
one export directory), one after another; a test process and every server it started are killed
when it ends. Prints one line per test, then "N of M passed" and the failures with their last error
line. Exit status 0 when all passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

TEST_FILE = Path("tensorflow_serving/model_servers/tensorflow_model_server_test.py")
BASE_FILE = Path("tensorflow_serving/model_servers/test_util/tensorflow_model_server_test_base.py")
TEST_CLASS = "TensorflowModelServerTest"

WRAPPER = """#!/bin/sh
# Stands in for tensorflow_model_server: pytest-tfserving's embedded server, same flags.
exec "{python}" -m pytest_tfserving.embedded "$@"
"""

RUNNER = """
import runpy, sys
import tensorflow_serving
tensorflow_serving.__path__.append({package!r})  # model_servers.test_util from the checkout, apis from pip
sys.argv = [{test_file!r}, {test_id!r}]
runpy.run_path({test_file!r}, run_name="__main__")
"""


@dataclass(frozen=True)
class Outcome:
    name: str
    passed: bool
    seconds: float
    reason: str


def test_names(checkout: Path) -> list[str]:
    """The test methods of TensorflowModelServerTest, in file order (read, not imported)."""
    tree = ast.parse((checkout / TEST_FILE).read_text())
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == TEST_CLASS:
            return [
                item.name
                for item in node.body
                if isinstance(item, ast.FunctionDef) and item.name.startswith("test")
            ]
    raise SystemExit(f"{checkout / TEST_FILE} has no class {TEST_CLASS}")


def stage(checkout: Path, root: Path) -> Path:
    """TEST_SRCDIR with the checkout's test data and the wrapper where the binary would be."""
    package = root / "srcdir" / "tf_serving" / "tensorflow_serving"
    (package / "model_servers").mkdir(parents=True)
    (package / "servables").symlink_to((checkout / "tensorflow_serving" / "servables").resolve())
    wrapper = package / "model_servers" / "tensorflow_model_server"
    wrapper.write_text(WRAPPER.format(python=sys.executable))
    wrapper.chmod(0o755)
    return root / "srcdir"


def _last_error(output: str) -> str:
    """The most telling line of a failed test's output."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for marker in ('details = "', "AssertionError", "Error:", "error:", "Exception"):
        found = [line for line in lines if marker in line and not line.startswith("File ")]
        if found:
            return found[-1][:300]
    return lines[-1][:300] if lines else "(no output)"


def run_one(checkout: Path, srcdir: Path, name: str, timeout_s: float, verbose: bool) -> Outcome:
    tmp = Path(tempfile.mkdtemp(prefix=f"tfs-{name}-"))
    code = RUNNER.format(
        package=str((checkout / "tensorflow_serving").resolve()),
        test_file=str((checkout / TEST_FILE).resolve()),
        test_id=f"{TEST_CLASS}.{name}",
    )
    env = dict(os.environ, TEST_SRCDIR=str(srcdir), TEST_TMPDIR=str(tmp), TF_CPP_MIN_LOG_LEVEL="2")
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        cwd=tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the test and every server it starts share this process group
    )
    try:
        output, _ = process.communicate(timeout=timeout_s)
        passed = process.returncode == 0
        text = output.decode(errors="replace")
        reason = "" if passed else _last_error(text)
    except subprocess.TimeoutExpired:
        passed, text, reason = False, "", f"timed out after {timeout_s:.0f} s"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    if verbose and not passed:
        print(text[-6000:], file=sys.stderr)
    return Outcome(name, passed, time.monotonic() - started, reason)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, help="a tensorflow/serving checkout (e.g. tag 2.19.1)")
    parser.add_argument("--only", default="", help="comma-separated test names to run (default: all)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per test (default 300)")
    parser.add_argument("--verbose", action="store_true", help="print the output of failed tests")
    args = parser.parse_args(argv)
    for required in (TEST_FILE, BASE_FILE):
        if not (args.checkout / required).is_file():
            raise SystemExit(f"{args.checkout} is not a tensorflow/serving checkout: {required} is missing")
    names = test_names(args.checkout)
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - set(names)
        if unknown:
            raise SystemExit(f"no such tests: {', '.join(sorted(unknown))}; the suite has {', '.join(names)}")
        names = [n for n in names if n in wanted]
    with tempfile.TemporaryDirectory(prefix="tfs-conformance-") as root:
        srcdir = stage(args.checkout, Path(root))
        outcomes = []
        for name in names:
            outcome = run_one(args.checkout, srcdir, name, args.timeout, args.verbose)
            outcomes.append(outcome)
            mark = "PASS" if outcome.passed else "FAIL"
            print(f"{mark} {name} ({outcome.seconds:.0f} s){'' if outcome.passed else ': ' + outcome.reason}")
            sys.stdout.flush()
    passed = sum(o.passed for o in outcomes)
    print(f"\n{passed} of {len(outcomes)} passed")
    failed = [o for o in outcomes if not o.passed]
    if failed:
        print("Failed:")
        for outcome in failed:
            print(f"  {outcome.name}: {outcome.reason}")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
