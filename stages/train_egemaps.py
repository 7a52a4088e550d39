"""train_egemaps stage: a small MLP on the standardised eGeMAPS functionals of each clip, K-fold out-of-fold."""

from koemo.core.runner import run_stage
from koemo.models import egemaps
from koemo.train.stage import train_stage

if __name__ == "__main__":
    run_stage("train_egemaps", train_stage, egemaps, __doc__, __file__)
