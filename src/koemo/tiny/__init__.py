"""Random-init stand-ins ("local-tiny") for the demo and the tests, where no weights can be downloaded: text encoders
with tokenizers learned from the corpus (`text`) and a wav2vec 2.0 encoder (`wav2vec2`). Never pretrained models."""
