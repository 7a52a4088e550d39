"""The embedded offline demo corpus: synthetic Korean emotional speech in the AI Hub release format."""

from koemo.demo.synth import build_demo_corpus, write_disabled

__all__ = ["build_demo_corpus", "write_disabled"]
