"""Moved to ``bertprobe.models.native`` (the native backend); this name stays for old imports."""

from bertprobe.models.native import *  # noqa: F403
from bertprobe.models.native import available_heads, build, normalise_keys, supports  # noqa: F401
