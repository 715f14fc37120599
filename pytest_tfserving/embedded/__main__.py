"""Entry point: ``python -m pytest_tfserving.embedded --port=8500 --model_base_path=...``."""

from __future__ import annotations

import os
import sys

from pytest_tfserving.tf_extra import EMBEDDED_SERVER_MODULES, tf_extra_problem

problem = tf_extra_problem("the embedded server", EMBEDDED_SERVER_MODULES)
if problem is not None:
    sys.exit(f"error: {problem}")

from pytest_tfserving.embedded.main import main  # noqa: E402 - imports TensorFlow

code = main()
sys.stdout.flush()
sys.stderr.flush()
# Servers, batchers and pools are already stopped; skip TensorFlow's slow interpreter teardown so
# SIGTERM ends the process promptly.
os._exit(code)
