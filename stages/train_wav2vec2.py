"""train_wav2vec2 stage: learned softmax layer weighting → MLP on the cached SSL features of ssl.model, K-fold OOF."""

from koemo.params import load_params
from koemo.speech.inputs import SSLInputs, SSLStore
from koemo.speech.stage import check_mode, with_layer_weights
from koemo.train.stage import headline, read_labels, run_training_stage


def main() -> None:
    params = load_params()
    classes = params["labels"]["classes"]
    spec = params["train_wav2vec2"]
    check_mode(spec)
    store = SSLStore(f"data/ssl/{params['ssl']['model']}")
    labels = read_labels("data/labels.parquet", classes)
    inputs = SSLInputs(labels, store.aligned(labels["wav_id"].astype(str).tolist()), len(classes), spec)
    config = {"ssl_encoder": store.encoder, "layers": store.layers, "dim": store.dim,
              "rows_without_audio": int(inputs.missing.sum())}
    metrics, runtime = run_training_stage("wav2vec2", labels, classes, params["train"], spec, inputs, config)
    metrics = with_layer_weights("wav2vec2", metrics, runtime, store.encoder, int(inputs.missing.sum()))
    print(headline("wav2vec2", metrics, runtime))
    print(f"train_wav2vec2: features of {store.encoder['encoder']} ({store.encoder['source']}); mean layer weights "
          f"{metrics['layer_weights']['mean']}")


if __name__ == "__main__":
    main()
