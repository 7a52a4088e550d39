"""Random-init stand-ins ("local-tiny") for the demo and the tests, where no weights can be downloaded: text encoders
with tokenizers learned from the corpus (`text`), a Whisper (`whisper`) and a wav2vec 2.0 encoder (`wav2vec2`), each
written with its "local-tiny" marker by `save`. Never pretrained models."""
