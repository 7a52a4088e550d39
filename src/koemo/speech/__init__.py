"""Self-supervised speech encoders (wav2vec 2.0 family): a params registry (hub id or local path), a tiny offline
stand-in, and per-layer pooled features cached once for the heads that train on them.
"""
