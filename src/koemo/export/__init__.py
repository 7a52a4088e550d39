"""`koemo export`: the trained models as one self-contained folder (weights, tokenizers, settings, stack, card)."""
