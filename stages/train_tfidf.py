"""train_tfidf stage: TF-IDF over Kiwi morphemes and character n-grams → logistic regression, K-fold out-of-fold."""

from koemo.core.runner import run_stage
from koemo.models import tfidf
from koemo.train.stage import train_stage

if __name__ == "__main__":
    run_stage("train_tfidf", train_stage, tfidf, __doc__, __file__)
