"""One seed for every source of randomness bertprobe touches."""

from __future__ import annotations

import random


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (sklearn takes ``random_state=seed`` where it is used)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
