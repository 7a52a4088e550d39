"""Base-model training: one accelerate trainer (`trainer`), K-fold OOF orchestration (`cv`), batching (`data`), the
runner every training stage calls (`runner`), and one module per model with its fold builder (`text`, `audio`,
`multimodal`; the SSL heads live in `koemo.ssl`)."""
