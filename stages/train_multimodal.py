"""train_multimodal stage: the reference project's Conv1D over [text.model embedding ‖ mel means], K-fold OOF."""

from koemo.core.runner import run_stage
from koemo.models import multimodal
from koemo.train.stage import train_stage

if __name__ == "__main__":
    run_stage("train_multimodal", train_stage, multimodal, __doc__, __file__)
