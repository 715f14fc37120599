"""``python -m pytest_tfserving init [DIRECTORY]``: the same as the ``pytest-tfserving`` command."""

from __future__ import annotations

import sys

from pytest_tfserving.scaffold import main

sys.exit(main())
