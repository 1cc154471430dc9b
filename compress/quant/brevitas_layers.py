"""The quantize stage's ``brevitas`` method: the model's layers swapped for Brevitas' quantized
layers, the industry's standard quantization-aware training path, exported as QCDQ ONNX.

Every ``Conv2d`` and ``Linear`` becomes a ``QuantConv2d``/``QuantLinear`` with per-output-channel
signed weights at ``bits`` (Brevitas' narrow range: 2^b − 1 levels, so at 2 bits the weights are
ternary, {−1, 0, 1}·scale), its fp32 weights and bias copied; every ``ReLU`` becomes a
``QuantReLU`` whose output is uint8. The first layer quantizes its input and the last its output
to int8, so the whole network computes on integer grids and its logits have a step the export's
parity is stated in. With ``keep_first_last`` those two layers' weights stay at 8 bits (the usual
practice; fp32 weights cannot go through integer kernels). A BatchNorm right after a conv is
folded into it first (so ONNX Runtime can run the conv as an integer QLinearConv); pooling and any
other layer stay as they are; activation scales are collected from the first training batches,
then learned.

The swap is recorded in the checkpoint's architecture description (``quantization``), so
loading the checkpoint rebuilds the same layers before the weights go in.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from compress.errors import ModelError

METHOD = "brevitas"
EXTRA = "pip install -e '.[brevitas]'"


def brevitas() -> Any:
    """``brevitas.nn`` and ``brevitas.quant``, or a clear error naming the extra."""
    try:
        import brevitas.nn as qnn
        import brevitas.quant as quant
    except ImportError as e:
        raise ModelError(f"the brevitas quantize method needs Brevitas ({e}): {EXTRA}") from None
    return qnn, quant


def missing() -> str | None:
    """Why the method cannot run here (Brevitas not installed), or None; checked at plan time."""
    from importlib.util import find_spec

    if find_spec("brevitas") is None or find_spec("onnxoptimizer") is None:
        return f"the brevitas method needs Brevitas and onnxoptimizer: {EXTRA}"
    return None


def description(bits: int, keep_first_last: bool) -> dict:
    """What the checkpoint's architecture keeps to rebuild the quantized layers."""
    return {"method": METHOD, "bits": bits, "keep_first_last": keep_first_last,
            "fold_batchnorm": True}  # fmt: skip


def with_brevitas_layers(model: nn.Module, bits: int, keep_first_last: bool,
                         fold: bool = True) -> nn.Module:  # fmt: skip
    """Swap ``model``'s layers for Brevitas ones in place (see the module's docstring); the
    returned model computes what ``model`` did, on quantized weights and activations."""
    qnn, quant = brevitas()
    if fold:
        fold_batchnorm(model)
    layers = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if not layers:
        raise ModelError("the brevitas method quantizes Conv2d and Linear layers; this model "
                         "has none")  # fmt: skip
    first, last = layers[0], layers[-1]
    for name, module in list(model.named_modules()):
        extra: dict[str, Any] = {}
        if name in (first, last) and keep_first_last:
            extra["weight_bit_width"] = 8
        if name == first:
            extra["input_quant"] = quant.Int8ActPerTensorFloat
        if name == last:  # int8 logits: the artifact's parity is stated in their steps
            extra["output_quant"] = quant.Int8ActPerTensorFloat
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            _replace(model, name, _quant_layer(qnn, quant, module, {"weight_bit_width": bits,
                                                                     **extra}))  # fmt: skip
        elif isinstance(module, nn.ReLU):
            _replace(model, name, qnn.QuantReLU(act_quant=quant.Uint8ActPerTensorFloat))
    return model


def rebuild(model: nn.Module, quantization: dict) -> nn.Module:
    """The layers a checkpoint's ``quantization`` entry says its model was trained with."""
    if quantization.get("method") != METHOD:
        raise ModelError(f"unknown layer quantization {quantization.get('method')!r} in the "
                         f"architecture description (known: {METHOD})")  # fmt: skip
    model = with_brevitas_layers(model, int(quantization["bits"]),
                                 bool(quantization.get("keep_first_last", False)),
                                 bool(quantization.get("fold_batchnorm", False)))  # fmt: skip
    for module in model.modules():
        # Its activation scales come from the checkpoint, so they count as collected: their
        # state-dict entries then exist and the checkpoint's values load into them.
        if hasattr(module, "collect_stats_steps") and hasattr(module, "counter"):
            module.counter = module.collect_stats_steps + 1
    return model


def fold_batchnorm(model: nn.Module) -> None:
    """Fold every BatchNorm2d that directly follows a Conv2d in a Sequential into the conv (its
    scale into the weights, its shift into a bias) and drop it. The quantized conv then feeds its
    ReLU and activation quantizer directly, which ONNX Runtime fuses into an integer QLinearConv;
    a BatchNorm between them would keep the conv in fp32 on dequantized weights."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        for i in range(1, len(seq)):
            conv, bn = seq[i - 1], seq[i]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                training = conv.training
                seq[i - 1] = fuse_conv_bn_eval(conv.eval(), bn.eval()).train(training)
                seq[i] = nn.Identity()


def is_brevitas(model: nn.Module) -> bool:
    """Whether ``model`` holds Brevitas layers (what a QCDQ export needs)."""
    return any(type(m).__module__.startswith("brevitas.") for m in model.modules())


def quantized_weights(model: nn.Module) -> tuple[list[str], int]:
    """The names of the weights Brevitas quantizes and the mean number of weights that share
    one scale (one scale per output channel)."""
    qnn, _ = brevitas()
    layers = [(n, m) for n, m in model.named_modules()
              if isinstance(m, (qnn.QuantConv2d, qnn.QuantLinear))]  # fmt: skip
    weights = sum(m.weight.numel() for _, m in layers)
    channels = sum(m.weight.shape[0] for _, m in layers)
    return [f"{n}.weight" for n, _ in layers], max(1, round(weights / max(channels, 1)))


def _quant_layer(qnn: Any, quant: Any, fp: nn.Conv2d | nn.Linear, options: dict) -> nn.Module:
    """The Brevitas twin of ``fp`` with its weights and bias."""
    common = {"bias": fp.bias is not None, "weight_quant": quant.Int8WeightPerChannelFloat,
              **options}  # fmt: skip
    if isinstance(fp, nn.Linear):
        layer = qnn.QuantLinear(fp.in_features, fp.out_features, **common)
    else:
        layer = qnn.QuantConv2d(fp.in_channels, fp.out_channels, fp.kernel_size,
                                stride=fp.stride, padding=fp.padding, dilation=fp.dilation,
                                groups=fp.groups, padding_mode=fp.padding_mode,
                                **common)  # fmt: skip
    layer.weight.data.copy_(fp.weight.data)
    if fp.bias is not None:
        layer.bias.data.copy_(fp.bias.data)
    return layer.to(fp.weight.device)


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name), child, new)
