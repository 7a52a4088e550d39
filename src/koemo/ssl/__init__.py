"""Self-supervised speech encoders (wav2vec 2.0 family): a params registry (hub id or local path), every hidden layer
mean-pooled per clip and cached once (`pooling`, `cache`), the heads that train on the cache (`heads`, `inputs`) and
end-to-end fine-tuning (`finetune`)."""
