"""Errors raised by samplers and scrapers; each message says what to check or fix."""

from __future__ import annotations


class SamplingError(RuntimeError):
    """A resource or metrics source could not be read (process gone, container stopped, bad page)."""
