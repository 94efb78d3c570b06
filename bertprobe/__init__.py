"""bertprobe: see how BERT works from the command line."""

__version__ = "0.1.0"


def load(spec: str = "auto", head: str = "encoder", **options):
    """Load a model as every command does: ``bertprobe.load("bert-base-uncased", head="mlm")``.

    Options: ``revision``, ``device`` (auto|cpu|cuda|mps), ``dtype``, ``offline``. The result's
    ``backend`` is the contract the commands use. Importing ``bertprobe`` stays light: torch and
    transformers load on the first call.
    """
    from bertprobe.models import load as _load

    return _load(spec, head, **options)
