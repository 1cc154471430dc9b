"""Encoder-decoder small language models distilled from a decoder-only teacher."""
