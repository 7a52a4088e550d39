"""koemo: a reproducible DVC pipeline for Korean speech emotion recognition."""

__version__ = "0.1.0"
