"""train_text stage: fine-tune the `text.model` encoder (registry `encoders.<name>`) with a classification head."""

from koemo.core.runner import run_stage
from koemo.models import text
from koemo.train.stage import train_stage

if __name__ == "__main__":
    run_stage("train_text", train_stage, text, __doc__, __file__)
