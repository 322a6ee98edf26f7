"""Convert empanada TorchScript models into tamale's eager models.

empanada's exported models are TorchScript archives of networks whose layer
structure is that of tamale's ``panoptic_deeplab_r50`` (MitoNet_v1,
DropNet, NucleoNet) or ``panoptic_bifpn_r50`` (MitoNet_v1_mini) presets, but
with other module names (``layer1`` .. ``layer4`` instead of ``stage1`` ..
``stage4``, for a start), and with some BatchNorms folded into the
convolutions before export (``fuse_model()``; which ones varies between
models).

The conversion therefore matches layers by **order and shape**, not by name:
both state dicts are read as a sequence of convolutions (each with an
optional bias and an optional BatchNorm after it) and plain parameters (the
BiFPN fusion weights), and paired one by one. Only the top-level module names
are relied on when present (tamale kept empanada's: ``encoder``,
``semantic_decoder``, ``instance_fpn``, ``ins_xy``, ``semantic_pr``, ...): each
top-level module is then matched on its own, whatever order they were
registered in, and the number of classes, instance decoder and PointRend are
read off them. A convolution whose BatchNorm
was folded loads into tamale's ``conv + BN`` with the BN set to an exact
identity carrying the folded bias, so every tamale model keeps the same
layout (and the same safetensors keys) whatever its origin. Shared
submodules (the BiFPN's after-combine convs) appear several times in a
TorchScript state dict; repeats are skipped. The first layer that does not
fit is named in the error.

Converted models carry ``frozen_bn=True``: their BatchNorms hold folded
statistics, so finetuning keeps them in eval mode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tamale.errors import TamaleInputError
from tamale.models.panoptic import PanopticModel
from tamale.models.presets import build_preset
from tamale.models.torchscript import load_torchscript
from tamale.registry.card import ModelCard

__all__ = ["convert_empanada"]

_BN_KEYS = ("weight", "bias", "running_mean", "running_var")


@dataclass
class _Group:
    """One module's tensors in a state dict."""

    kind: str  # "conv", "bn" or "param"
    prefix: str
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        t = self.tensors.get("weight", next(iter(self.tensors.values())))
        return tuple(t.shape)

    def key(self, leaf: str = "weight") -> str:
        if self.kind == "param":
            return self.prefix
        return f"{self.prefix}.{leaf}" if self.prefix else leaf


def _state_groups(state: dict[str, torch.Tensor], dedupe: bool) -> list[_Group]:
    """Split a state dict into per-module groups, in order (see module docstring)."""
    by_prefix: dict[str, dict[str, torch.Tensor]] = {}
    order: list[str] = []
    for key, tensor in state.items():
        prefix, _, leaf = key.rpartition(".")
        if prefix not in by_prefix:
            by_prefix[prefix] = {}
            order.append(prefix)
        by_prefix[prefix][leaf] = tensor
    groups: list[_Group] = []
    seen: set[tuple[int, tuple[int, ...]]] = set()
    for prefix in order:
        tensors = by_prefix[prefix]
        if "running_mean" in tensors:
            found = [_Group("bn", prefix, {k: tensors[k] for k in _BN_KEYS if k in tensors})]
        elif "weight" in tensors and tensors["weight"].ndim >= 3:
            found = [
                _Group(
                    "conv", prefix, {k: v for k, v in tensors.items() if k in ("weight", "bias")}
                )
            ]
        else:
            found = [
                _Group("param", f"{prefix}.{leaf}" if prefix else leaf, {"": t})
                for leaf, t in tensors.items()
                if leaf != "num_batches_tracked"
            ]
        for g in found:
            first = next(iter(g.tensors.values()))
            ident = (first.data_ptr(), tuple(first.shape))
            if dedupe and first.numel() and ident in seen:
                continue
            seen.add(ident)
            groups.append(g)
    return groups


def _fail(target: str, mine: str, theirs: str) -> TamaleInputError:
    return TamaleInputError(
        f"the TorchScript model does not have the layout of {target}: tamale layer {mine!r} "
        f"does not match {theirs}"
    )


_Pairs = list[tuple[_Group, _Group, _Group | None, _Group | None]]


def _top(group: _Group) -> str:
    return group.prefix.split(".", 1)[0]


def _plan(model: nn.Module, source: list[_Group], target: str) -> _Pairs:
    """Pair ``model``'s groups with ``source``'s; returns (mine, theirs, my_bn, their_bn) tuples.

    When the source uses tamale's (and empanada's) top-level module names
    (``encoder``, ``semantic_decoder``, ``ins_xy``, ...), each top-level module is
    matched on its own, so their registration order does not matter; otherwise
    the whole sequence is matched in order.
    """
    mine = _state_groups(model.state_dict(), dedupe=False)
    mine_tops = list(dict.fromkeys(_top(g) for g in mine))
    source_tops = {_top(g) for g in source}
    if set(mine_tops) <= source_tops:
        extra = sorted(source_tops - set(mine_tops))
        if extra:
            raise TamaleInputError(
                f"the TorchScript model does not have the layout of {target}: it has module(s) "
                f"{', '.join(extra)} that tamale does not"
            )
        pairs: _Pairs = []
        for top in mine_tops:
            pairs += _plan_sequence(
                [g for g in mine if _top(g) == top], [g for g in source if _top(g) == top], target
            )
        return pairs
    return _plan_sequence(mine, source, target)


def _plan_sequence(mine: list[_Group], source: list[_Group], target: str) -> _Pairs:
    """Pair two group sequences in order (see module docstring)."""
    pairs: _Pairs = []
    i = 0
    j = 0
    while j < len(mine):
        g = mine[j]
        j += 1
        theirs = source[i] if i < len(source) else None
        where = (
            "nothing (the TorchScript model has fewer layers)"
            if theirs is None
            else repr(theirs.key())
        )
        if g.kind == "param":
            if theirs is None or theirs.kind != "param" or theirs.shape != g.shape:
                raise _fail(target, g.prefix, where)
            pairs.append((g, theirs, None, None))
            i += 1
            continue
        if g.kind == "bn":
            raise _fail(target, g.key(), "(a BatchNorm without a convolution)")
        if theirs is None or theirs.kind != "conv" or theirs.shape != g.shape:
            raise _fail(target, g.key(), f"{where} of shape {theirs.shape if theirs else ()}")
        i += 1
        my_bn = mine[j] if j < len(mine) and mine[j].kind == "bn" else None
        if my_bn is not None:
            j += 1
        their_bn = source[i] if i < len(source) and source[i].kind == "bn" else None
        if their_bn is not None:
            if my_bn is None or their_bn.shape != my_bn.shape:
                raise _fail(
                    target, g.key(), f"{their_bn.key()!r} (a BatchNorm tamale does not have)"
                )
            i += 1
        if my_bn is None and "bias" in theirs.tensors and "bias" not in g.tensors:
            raise _fail(target, g.key(), f"{theirs.key('bias')!r} (a bias tamale does not have)")
        pairs.append((g, theirs, my_bn, their_bn))
    if i != len(source):
        raise TamaleInputError(
            f"the TorchScript model does not have the layout of {target}: it has more layers, "
            f"starting with {source[i].key()!r}"
        )
    return pairs


@torch.no_grad()
def _load(model: nn.Module, pairs: _Pairs) -> None:
    own = model.state_dict()
    for mine, theirs, my_bn, their_bn in pairs:
        if mine.kind == "param":
            own[mine.prefix].copy_(theirs.tensors[""])
            continue
        own[mine.key()].copy_(theirs.tensors["weight"])
        bias = theirs.tensors.get("bias")
        if my_bn is None:
            if "bias" in mine.tensors:
                own[mine.key("bias")].copy_(bias if bias is not None else 0.0)
            continue
        bn = model.get_submodule(my_bn.prefix)
        if their_bn is not None:
            for leaf in _BN_KEYS:
                own[my_bn.key(leaf)].copy_(their_bn.tensors[leaf])
            if bias is not None:  # conv bias before a BN: shift the BN's mean
                own[my_bn.key("running_mean")].sub_(bias)
        else:  # folded: an exact identity BN that adds the folded bias
            own[my_bn.key("running_mean")].zero_()
            own[my_bn.key("running_var")].fill_(1.0)
            own[my_bn.key("weight")].fill_(math.sqrt(1.0 + bn.eps))
            own[my_bn.key("bias")].copy_(bias if bias is not None else 0.0)


_CANDIDATES = ("panoptic_deeplab_r50", "panoptic_bifpn_r50")


def _candidates(source: list[_Group], preset: str | None, options: dict[str, Any]):
    presets = [preset] if preset else list(_CANDIDATES)
    tops = {_top(g) for g in source}
    if "semantic_head" in tops:  # named like tamale / empanada: read the layout off the names
        head = [g for g in source if g.kind == "conv" and _top(g) == "semantic_head"]
        layout = {
            "num_classes": head[-1].shape[0],
            "ins_decoder": bool(tops & {"instance_decoder", "instance_fpn"}),
            "pointrend": "semantic_pr" in tops,
        }
        for name in presets:
            yield name, {**layout, **options}
        return
    convs = [g for g in source if g.kind == "conv"]
    if len(convs) < 7:
        raise TamaleInputError("the TorchScript model has too few convolutions to convert")
    for name in presets:
        for pr in (True, False):
            # the last conv is PointRend's predictor (C outputs); without PointRend the
            # semantic head's last conv comes before the center and offset heads' 3 convs each
            c = convs[-1].shape[0] if pr else convs[-7].shape[0]
            for ins in (True, False):
                yield name, {"num_classes": c, "ins_decoder": ins, "pointrend": pr, **options}


def convert_empanada(
    module: torch.jit.ScriptModule | nn.Module | str | Path,
    card: ModelCard | None = None,
    *,
    preset: str | None = None,
    options: dict[str, Any] | None = None,
    name: str | None = None,
) -> tuple[PanopticModel, ModelCard]:
    """Convert an empanada TorchScript model into a tamale model and card.

    Parameters
    ----------
    module : ScriptModule, nn.Module or path
        The TorchScript model (or its ``.pth`` file). Float models only:
        int8 archives cannot be converted (quantize the converted model with
        :func:`tamale.models.quantize_model` instead).
    card : ModelCard, optional
        The model's empanada card: classes, norms, padding factor,
        description and finetuning defaults carry over.
    preset : str, optional
        Force a preset instead of trying ``panoptic_deeplab_r50`` then
        ``panoptic_bifpn_r50``.
    options : dict, optional
        Preset options to force (e.g. ``{"output_stride": 32}``; the number of
        classes, instance decoder and PointRend are detected).
    name : str, optional
        Name of the new card (default: the card's name, or ``converted``).

    Returns
    -------
    model : PanopticModel
        In eval mode, with ``frozen_bn=True``.
    card : ModelCard
        tamale card naming the preset and options; its weights entry points
        at ``<name>.safetensors`` without a hash: write the file with
        :func:`tamale.models.save_weights` and set the returned hash.
    """
    if isinstance(module, (str, Path)):
        module = load_torchscript(module)
    state = module.state_dict()
    if any(t.dtype in (torch.qint8, torch.quint8, torch.qint32) for t in state.values()) or any(
        "_packed_params" in k for k in state
    ):
        raise TamaleInputError(
            "this is a quantized (int8) TorchScript model; convert the float model and quantize "
            "it with tamale.models.quantize_model"
        )
    source = _state_groups(state, dedupe=True)
    options = dict(options or {})
    if card is not None and "output_stride" not in options and card.padding_factor % 32:
        options["output_stride"] = 16
    errors: list[str] = []
    for target, opts in _candidates(source, preset, options):
        if target == "panoptic_bifpn_r50":
            opts.pop("output_stride", None)
        with torch.device("meta"):
            template = build_preset(target, **opts)
        try:
            _plan(template, source, target)
        except TamaleInputError as exc:
            errors.append(str(exc))
            continue
        model = build_preset(target, **opts, frozen_bn=True)
        _load(model, _plan(model, source, target))
        model.options = {**opts, "frozen_bn": True}
        model.eval()
        return model, _card(model, card, name)
    raise TamaleInputError(
        "the TorchScript model matches no tamale preset "
        f"({', '.join([preset] if preset else _CANDIDATES)}); first difference: {errors[0]}"
    )


def _card(model: PanopticModel, card: ModelCard | None, name: str | None) -> ModelCard:
    name = name or (card.name if card is not None else "converted")
    classes = (
        [c.model_dump() for c in card.classes]
        if card is not None
        else [
            {"id": k, "name": f"class {k}", "kind": "instance"}
            for k in range(1, max(2, model.num_classes))
        ]
    )
    padding = (
        model.padding_factor
        if card is None
        else math.lcm(model.padding_factor, card.padding_factor)
    )
    mapping: dict[str, Any] = {
        "name": name,
        "architecture": model.architecture,
        "architecture_options": dict(model.options),
        "weights": {"uri": f"{name}.safetensors", "format": "safetensors"},
        "classes": classes,
        "padding_factor": padding,
    }
    if card is not None:
        mapping.update(
            description=card.description,
            norms=card.norms.model_dump(),
            label_divisor=card.label_divisor,
            inference=dict(card.inference),
            finetune=dict(card.finetune),
            license=card.license,
            training_data=card.training_data,
        )
    return ModelCard.from_mapping(mapping)
