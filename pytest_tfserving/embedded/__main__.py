"""Entry point: ``python -m pytest_tfserving.embedded --port=8500 --model_base_path=...``."""

from __future__ import annotations

import os
import sys

from pytest_tfserving.embedded.main import main

code = main()
sys.stdout.flush()
sys.stderr.flush()
# Servers, batchers and pools are already stopped; skip TensorFlow's slow interpreter teardown so
# SIGTERM ends the process promptly.
os._exit(code)
