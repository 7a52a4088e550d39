"""Corpus readers (AI Hub, KEMDy) into the one manifest, the rater emotions, and the wavs' fingerprints."""
