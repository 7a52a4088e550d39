"""Korean text encoders: a params registry (hub id or local path, `registry`) and batched sentence embedding (`embed`).

`registry.load_encoder(name, spec)` gives a ready model + tokenizer; `embed.embed_texts` turns texts into one pooled
vector each. Nothing here downloads unless the Hugging Face hub is reachable and not disabled.
"""
