"""bertprobe: see how BERT works from the command line."""

__version__ = "0.1.0"
