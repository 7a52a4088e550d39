"""Speech recognition: the `asr_models` registry (Whisper through transformers), batched transcription, CER/WER."""
