"""train_wav2vec2 stage: learned softmax weighting of the ssl.model layers → MLP, K-fold OOF.

`mode: frozen` trains the head on the cached SSL features; `mode: finetune` trains the registry encoder
audio_encoders.<ssl.model> under the same head from the labels' wavs (CNN feature encoder frozen, transformer at
lr × encoder_lr_scale; a GPU job for real encoders).
"""

from koemo.core.runner import run_stage
from koemo.models import wav2vec2
from koemo.train.stage import train_stage

if __name__ == "__main__":
    run_stage("train_wav2vec2", train_stage, wav2vec2, __doc__, __file__)
