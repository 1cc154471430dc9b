"""torch → ONNX export and the parity check that guards every exported artifact."""
