"""The `audio_features` family (mel, melmean, MFCC): one decode + augmentation pass, batched torch."""
