"""`koemo predict`: every base model's inference recipe, fold averaging and the stack."""
