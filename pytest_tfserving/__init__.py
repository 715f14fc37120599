"""pytest-tfserving."""
