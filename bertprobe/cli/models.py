"""``bertprobe models``."""

from __future__ import annotations

from bertprobe.cli.app import command
from bertprobe.cli.options import Common


@command("models", shared=("json",))
def models_cli(*, common: Common) -> None:
    """List the bundled models and the BERT-family models in the local Hugging Face cache.

    Example: bertprobe models
    """
    from bertprobe import render
    from bertprobe.models import list_models

    render.show_models(list_models(), json=common.json)
