"""What every result a command returns can do in Python: ``to_dict()``, ``show()`` and a notebook view.

Rendering stays in ``bertprobe.render`` (the only package that imports rich); it is imported on first use.
"""

from __future__ import annotations

from typing import Any


class Rendered:
    """Mixin for the result dataclasses that ``bertprobe.render.show`` draws.

    ``to_dict()`` is the document ``--json`` prints; ``show()`` prints the tables the command prints;
    ``_repr_html_()`` is the same view as HTML, which Jupyter shows for a result left at the end of a cell.
    The seed the Python API ran with is kept on the object (not a field, so it is not part of the data).
    """

    def to_dict(self) -> dict[str, Any]:
        """The JSON document ``bertprobe <command> --json`` prints for this result."""
        from bertprobe import render

        return render.to_document(self, getattr(self, "_bertprobe_seed", None))

    def show(self, **view: Any) -> None:
        """Print the command's tables on stdout (``view``: e.g. ``explain=True``, ``details=True``)."""
        from bertprobe import render

        render.show(self, seed=getattr(self, "_bertprobe_seed", None), **view)

    def _repr_html_(self) -> str:
        from bertprobe import render

        return render.html(self)
