"""train_audio stage: a ResNet on the cached mel spectrograms, K-fold out-of-fold (reads no text param)."""

from koemo.errors import run_stage
from koemo.lineage import used_params
from koemo.params import load_params
from koemo.train.inputs import AudioInputs, FeatureStore
from koemo.train.stage import headline, read_labels, run_training_stage


def main() -> None:
    params = load_params()
    classes = params["labels"]["classes"]
    spec = params["train_audio"]
    labels = read_labels("data/labels.parquet", classes)
    store = FeatureStore(f"data/features/{spec['features']}")
    build = AudioInputs(labels, store, len(classes), spec)
    config = {"features": spec["features"], "input_shape": list(store.shard(0).shape[1:])}
    metrics, runtime = run_training_stage("audio", labels, classes, params["train"], spec, build, config,
                                          recorded=used_params("audio", params))
    print(headline("audio", metrics, runtime))


if __name__ == "__main__":
    run_stage("train_audio", main)
