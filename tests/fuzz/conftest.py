"""Fixtures of the fuzzing tests (defined in demo_axis.py, a uniquely named module)."""

from demo_axis import demo_axis

__all__ = ["demo_axis"]
