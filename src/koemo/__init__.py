"""koemo: a reproducible DVC pipeline for Korean speech emotion recognition (version: `importlib.metadata`)."""
