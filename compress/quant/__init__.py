"""Quantized distillation and differentiable quantization (Polino, Pascanu, Alistarh 2018)."""
