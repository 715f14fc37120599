"""Locally built stand-in images (TF Serving contract, Redis) so docker-backend tests run offline.

Build: ``python -m pytest_tfserving.images build``; references: ``python -m pytest_tfserving.images tag``.
"""
