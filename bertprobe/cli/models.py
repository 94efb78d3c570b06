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

    notices: list[str] = []
    infos = list_models(notices)
    for notice in notices:  # a broken snapshot is skipped, not fatal
        render.notice(notice)
    render.show_models(infos, json=common.json)
