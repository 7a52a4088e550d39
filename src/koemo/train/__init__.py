"""Base-model training: one accelerate trainer (`trainer`), the models (`models`), K-fold OOF orchestration (`cv`),
per-model fold inputs (`inputs`), batching (`data`) and the shared stage runner (`stage`)."""
