"""Hand-made acoustic features (`audio_features@<kind>`): mel / MFCC / mel-mean (`spectral`), the training-row
augmentations (`augment`), and the cache built on the shared clip pass (`cache`)."""
