"""matlib: a library of pretrained property models and shotgun transfer learning."""

__version__ = "0.1.0"
