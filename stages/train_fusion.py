"""train_fusion stage: gated fusion of the text.model sentence embedding with ssl.model layer features, K-fold OOF."""

from koemo.core.runner import run_stage
from koemo.models import fusion
from koemo.train.stage import train_stage

if __name__ == "__main__":
    run_stage("train_fusion", train_stage, fusion, __doc__, __file__)
