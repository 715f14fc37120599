"""Managed local processes: launching, readiness waits, ports and cleanup on exit or signal."""
