"""One label per utterance from the five annotators, and the one leakage-safe split every model shares."""
