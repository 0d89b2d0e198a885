"""Fixtures of the HTTP API tests (defined in axis_client.py, a uniquely named module)."""

from axis_client import axis, axis_config, offline_verification

__all__ = ["axis", "axis_config", "offline_verification"]
