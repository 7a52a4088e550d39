"""Commands beside the pipeline: job profiles, `koemo share`, `koemo report`, the offline plots page."""
