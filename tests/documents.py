"""Comparing JSON documents of two runs."""

from __future__ import annotations

import pytest


def close(a, b, rel: float = 1e-5, abs_: float = 1e-5) -> bool:
    """Documents equal in everything but float rounding.

    A text batched with others runs through other matrix shapes than the same text alone, and the
    last digits of its scores may differ (1e-7 has been seen); every other field must be equal.
    """
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=rel, abs=abs_)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], rel, abs_) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y, rel, abs_) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b
