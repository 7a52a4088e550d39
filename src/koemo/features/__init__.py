"""Hand-made acoustic features (`audio_features`, `extra_audio_features@<kind>`, `egemaps_features`): mel / MFCC /
mel-mean (`spectral`), the training-row augmentations (`augment`), their cache on the shared clip pass (`cache`) and
the openSMILE eGeMAPS functionals (`egemaps`)."""
