"""train_audio stage: a ResNet on the cached mel spectrograms, K-fold out-of-fold (reads no text param)."""

from koemo.core.runner import run_stage
from koemo.models import audio
from koemo.train.stage import train_stage

if __name__ == "__main__":
    run_stage("train_audio", train_stage, audio, __doc__, __file__)
