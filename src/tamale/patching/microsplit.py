"""MicroSplit patch constructors: lateral-context inputs and synthetic channel mixtures.

* :class:`MultiChannelTargetMsPatchConstr` (training mode i): the target channels were
  acquired together; the input is their weighted sum. With probability
  ``uncorrelated_channel_prob`` the channels come from different places.
* :class:`IndependentTargetsMsPatchConstr` (mode ii): each target structure has its own
  images (shapes may differ); channels always come from different places.
* :class:`PairedInputTargetMsPatchConstr` (mode iii): a real input and real targets.
* :class:`PredMsPatchConstr`: prediction tiles with lateral context, no target.

Inputs have the lateral-context scales on the first axis, L(Z)YX (native patch first).
A multi-channel real input (modes iii and prediction) gives ``L * C`` planes, scale
major: the first ``C`` planes are the native patch, so :meth:`get_principal_input`
returns ``input[:C]``. Everything is float32.

Randomness (channel weights, uncorrelated locations) comes from a generator derived
from ``(seed, epoch, index)`` where the seed is drawn once from ``rng`` (a Generator,
an int or None), so the same index gives the same patch in any worker.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tamale.errors import TamaleInputError
from tamale.patching._random import rng_for
from tamale.patching._validate import check_epoch, check_probability
from tamale.patching.constructor import as_float_pair, check_strategy_matches, resolve_seed
from tamale.patching.extractor import PatchExtractor
from tamale.patching.image_stack import ImageMetadata
from tamale.patching.lateral_context import (
    Downsample,
    PaddingMode,
    check_multiscale,
    extract_lateral_context,
)
from tamale.patching.specs import PatchSpecs, TileSpecs, UncorrelatedPatchSpecs
from tamale.patching.strategy import Patching
from tamale.patching.tiled import TiledPatching

__all__ = [
    "IndependentTargetsMsPatchConstr",
    "MultiChannelTargetMsPatchConstr",
    "PairedInputTargetMsPatchConstr",
    "PredMsPatchConstr",
]


def _alpha_ranges(
    alpha_ranges: Sequence[tuple[float, float]] | None, n: int, what: str
) -> list[tuple[float, float]] | None:
    if alpha_ranges is None:
        return None
    ranges = list(alpha_ranges)
    if len(ranges) != n:
        raise TamaleInputError(
            f"alpha_ranges has {len(ranges)} (low, high) pairs but there are {n} {what}: "
            "give one pair per channel"
        )
    return [as_float_pair(r, f"alpha_ranges[{i}]") for i, r in enumerate(ranges)]


def _draw_alphas(
    rng: np.random.Generator, ranges: list[tuple[float, float]] | None, chans: Sequence[int]
) -> np.ndarray:
    if ranges is None:
        return np.full(len(chans), 1.0 / len(chans), dtype=np.float32)
    return np.array([rng.uniform(*ranges[c]) for c in chans], dtype=np.float32)


def _mix(alphas: np.ndarray, lc: np.ndarray) -> np.ndarray:
    """Weighted sum over channels: (C,) x (C, L, ...) -> (L, ...), float32."""
    out = np.zeros(lc.shape[1:], dtype=np.float32)
    for a, plane in zip(alphas, lc):
        out += np.float32(a) * plane
    return out


def _scale_major(lc: np.ndarray) -> np.ndarray:
    """(C, L, ...) -> (L * C, ...) with the native scale's C planes first."""
    return np.ascontiguousarray(np.swapaxes(lc, 0, 1)).reshape(-1, *lc.shape[2:])


def _uncorrelated_metadata(
    base: ImageMetadata, extractors: Sequence[PatchExtractor], spec: UncorrelatedPatchSpecs
) -> ImageMetadata:
    meta = dict(base)
    extra = dict(base["additional_metadata"])
    metas = [ex.metadata(d) for ex, d in zip(extractors, spec.all_data_idx)]
    extra["all_sources"] = [m["source"] for m in metas]
    extra["all_data_shapes"] = [m["data_shape"] for m in metas]
    extra["all_original_data_shapes"] = [m["original_data_shape"] for m in metas]
    meta["additional_metadata"] = extra
    return ImageMetadata(**meta)  # type: ignore[typeddict-item]


class _MsBase:
    _seed: int = 0
    _epoch: int = 0
    multiscale_count: int
    padding_mode: PaddingMode
    downsample: Downsample

    def _rng(self, index: int) -> np.random.Generator:
        return rng_for(self._seed, self._epoch, int(index))

    def _lc(
        self,
        extractor: PatchExtractor,
        spec: PatchSpecs,
        channels: Sequence[int] | None,
    ) -> np.ndarray:
        return extract_lateral_context(
            extractor.image_stack(spec.data_idx),
            spec.sample_idx,
            channels,
            spec.coords,
            spec.patch_size,
            self.multiscale_count,
            self.padding_mode,
            self.downsample,
        )

    @property
    def seed(self) -> int:
        """Base seed of the constructor's random draws."""
        return self._seed

    def get_principal_input(self, input_patch: np.ndarray) -> np.ndarray:
        """The native-scale planes of the input, C(Z)YX."""
        return input_patch[: self._n_input_channels()]

    def _n_input_channels(self) -> int:
        return 1


class MultiChannelTargetMsPatchConstr(_MsBase):
    """Mode i: synthetic input = weighted sum of target channels acquired together.

    Parameters
    ----------
    patching_strategy : Patching
        Maps indices to patch specifications over the target images.
    target_extractor : PatchExtractor
        The multi-channel target images.
    multiscale_count : int
        Number of lateral-context scales ``L``.
    padding_mode : {"reflect", "wrap"}
        Padding of context windows reaching outside the image.
    alpha_ranges : sequence of (float, float), optional
        One ``(low, high)`` per data channel; each patch draws its weights uniformly
        in them. ``None``: every selected channel weighs ``1 / C``.
    uncorrelated_channel_prob : float
        Probability in [0, 1] that the channels come from different patches.
    channels : sequence of int, optional
        Target channels to use (``None``: all).
    rng : Generator or int, optional
        Source of the base seed (``None``: the operating system).
    downsample : {"mean", "resize"}, default "mean"
        How context scales are shrunk.

    Returns from :meth:`construct_patch`: input ``(L, (Z,) Y, X)``, target
    ``(C, (Z,) Y, X)`` and a :class:`PatchSpecs` or :class:`UncorrelatedPatchSpecs`.
    """

    def __init__(
        self,
        patching_strategy: Patching,
        target_extractor: PatchExtractor,
        multiscale_count: int,
        padding_mode: PaddingMode,
        alpha_ranges: Sequence[tuple[float, float]] | None,
        uncorrelated_channel_prob: float,
        channels: Sequence[int] | None = None,
        rng: np.random.Generator | int | None = None,
        *,
        downsample: Downsample = "mean",
    ) -> None:
        check_multiscale(multiscale_count, padding_mode)
        check_strategy_matches(patching_strategy, target_extractor, "target")
        self.patching_strategy = patching_strategy
        self.target_extractor = target_extractor
        self.multiscale_count = int(multiscale_count)
        self.padding_mode = padding_mode
        self.downsample = downsample
        n_c = target_extractor.n_channels
        self.alpha_ranges = _alpha_ranges(alpha_ranges, n_c, "target channels")
        self.uncorrelated_channel_prob = check_probability(
            uncorrelated_channel_prob, "uncorrelated_channel_prob"
        )
        stack0 = target_extractor.image_stacks[0]
        self.channels = (
            list(range(n_c)) if channels is None else stack0.check_channels(channels)  # type: ignore[attr-defined]
        )
        self._seed = resolve_seed(rng)

    @property
    def n_patches(self) -> int:
        """Number of patches of the strategy."""
        return self.patching_strategy.n_patches

    @property
    def input_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of the (synthetic) input images: the target shapes with one channel."""
        return [(s[0], 1, *s[2:]) for s in self.target_extractor.shapes]

    @property
    def target_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of the target images with the selected channels."""
        return [(s[0], len(self.channels), *s[2:]) for s in self.target_extractor.shapes]

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (strategy and constructor draws)."""
        self._epoch = check_epoch(epoch)
        self.patching_strategy.set_epoch(epoch)

    def construct_patch(self, index: int) -> tuple[np.ndarray, np.ndarray, PatchSpecs]:
        """Synthetic input L(Z)YX, target C(Z)YX and the spec."""
        spec = self.patching_strategy.get_patch_spec(index)
        rng = self._rng(index)
        uncorrelated = rng.random() < self.uncorrelated_channel_prob and len(self.channels) > 1
        out_spec: PatchSpecs = spec
        if uncorrelated:
            extra = rng.integers(0, self.n_patches, len(self.channels) - 1)
            specs = [spec] + [self.patching_strategy.get_patch_spec(int(i)) for i in extra]
            lc = np.concatenate(
                [self._lc(self.target_extractor, s, [c]) for s, c in zip(specs, self.channels)]
            )
            out_spec = UncorrelatedPatchSpecs(
                spec.data_idx,
                spec.sample_idx,
                spec.coords,
                spec.patch_size,
                principal_channel=0,
                all_data_idx=tuple(s.data_idx for s in specs),
                all_sample_idx=tuple(s.sample_idx for s in specs),
                all_coords=tuple(s.coords for s in specs),
            )
        else:
            lc = self._lc(self.target_extractor, spec, self.channels)
        alphas = _draw_alphas(rng, self.alpha_ranges, self.channels)
        return _mix(alphas, lc), np.ascontiguousarray(lc[:, 0]), out_spec

    def get_input_image_metadata(self, patch_spec: PatchSpecs) -> ImageMetadata:
        """Metadata of the (principal) target stack the input was made from."""
        base = self.target_extractor.metadata(patch_spec.data_idx)
        if isinstance(patch_spec, UncorrelatedPatchSpecs):
            n = len(patch_spec.all_data_idx)
            return _uncorrelated_metadata(base, [self.target_extractor] * n, patch_spec)
        return base

    def get_target_image_metadata(self, patch_spec: PatchSpecs) -> ImageMetadata:
        """Same as the input metadata."""
        return self.get_input_image_metadata(patch_spec)

    def get_patch_indices(self, data_idx: int) -> Sequence[int]:
        """Indices whose principal patch comes from stack ``data_idx``."""
        return self.patching_strategy.get_patch_indices(data_idx)


class IndependentTargetsMsPatchConstr(_MsBase):
    """Mode ii: each target structure in its own images; synthetic input.

    Parameters
    ----------
    patching_strategies : sequence of Patching
        One strategy per target structure (its data shapes are the extractor's).
    target_extractors : sequence of PatchExtractor
        One single-channel extractor per target structure.
    multiscale_count : int
        Number of lateral-context scales ``L``.
    padding_mode : {"reflect", "wrap"}
        Padding of context windows reaching outside the image.
    alpha_ranges : sequence of (float, float), optional
        One ``(low, high)`` per structure; ``None``: weights ``1 / C``.
    rng : Generator or int, optional
        Source of the base seed.
    downsample : {"mean", "resize"}, default "mean"
        How context scales are shrunk.

    Notes
    -----
    The principal structure is the one with the most patches; its strategy defines
    ``n_patches`` and ``get_patch_indices``; the other structures' patches are drawn
    uniformly from their own index ranges.
    """

    def __init__(
        self,
        patching_strategies: Sequence[Patching],
        target_extractors: Sequence[PatchExtractor],
        multiscale_count: int,
        padding_mode: PaddingMode,
        alpha_ranges: Sequence[tuple[float, float]] | None,
        rng: np.random.Generator | int | None = None,
        *,
        downsample: Downsample = "mean",
    ) -> None:
        check_multiscale(multiscale_count, padding_mode)
        strategies, extractors = list(patching_strategies), list(target_extractors)
        if not strategies or len(strategies) != len(extractors):
            raise TamaleInputError(
                f"give one patching strategy per target extractor (got {len(strategies)} "
                f"strategies and {len(extractors)} extractors)"
            )
        for i, (st, ex) in enumerate(zip(strategies, extractors)):
            check_strategy_matches(st, ex, f"target {i}")
            if ex.n_channels != 1:
                raise TamaleInputError(
                    f"target extractor {i} has {ex.n_channels} channels; each independent "
                    "target structure must be single-channel (use "
                    "MultiChannelTargetMsPatchConstr for channels acquired together)"
                )
        if len({ex.ndim for ex in extractors}) != 1:
            raise TamaleInputError("all target extractors must be 2D, or all 3D")
        self.patching_strategies = strategies
        self.target_extractors = extractors
        self.multiscale_count = int(multiscale_count)
        self.padding_mode = padding_mode
        self.downsample = downsample
        self.alpha_ranges = _alpha_ranges(alpha_ranges, len(strategies), "target structures")
        self.principal = int(np.argmax([s.n_patches for s in strategies]))
        self._seed = resolve_seed(rng)

    @property
    def n_patches(self) -> int:
        """Number of patches of the principal structure."""
        return self.patching_strategies[self.principal].n_patches

    @property
    def input_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of the principal structure's images."""
        return self.target_extractors[self.principal].shapes

    @property
    def target_shapes(self) -> list[tuple[int, ...]]:
        """Principal shapes with one channel per structure."""
        n = len(self.target_extractors)
        return [(s[0], n, *s[2:]) for s in self.input_shapes]

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (strategies and constructor draws)."""
        self._epoch = check_epoch(epoch)
        for s in self.patching_strategies:
            s.set_epoch(epoch)

    def construct_patch(self, index: int) -> tuple[np.ndarray, np.ndarray, UncorrelatedPatchSpecs]:
        """Synthetic input L(Z)YX, target C(Z)YX (C = structures) and the spec."""
        principal_spec = self.patching_strategies[self.principal].get_patch_spec(index)
        rng = self._rng(index)
        specs = []
        for c, st in enumerate(self.patching_strategies):
            if c == self.principal:
                specs.append(principal_spec)
            else:
                specs.append(st.get_patch_spec(int(rng.integers(0, st.n_patches))))
        lc = np.concatenate([self._lc(ex, s, None) for ex, s in zip(self.target_extractors, specs)])
        alphas = _draw_alphas(rng, self.alpha_ranges, list(range(len(specs))))
        spec = UncorrelatedPatchSpecs(
            principal_spec.data_idx,
            principal_spec.sample_idx,
            principal_spec.coords,
            principal_spec.patch_size,
            principal_channel=self.principal,
            all_data_idx=tuple(s.data_idx for s in specs),
            all_sample_idx=tuple(s.sample_idx for s in specs),
            all_coords=tuple(s.coords for s in specs),
        )
        return _mix(alphas, lc), np.ascontiguousarray(lc[:, 0]), spec

    def get_input_image_metadata(self, patch_spec: PatchSpecs) -> ImageMetadata:
        """Metadata of the principal image plus every structure's source."""
        base = self.target_extractors[self.principal].metadata(patch_spec.data_idx)
        if isinstance(patch_spec, UncorrelatedPatchSpecs):
            return _uncorrelated_metadata(base, self.target_extractors, patch_spec)
        return base

    def get_target_image_metadata(self, patch_spec: PatchSpecs) -> ImageMetadata:
        """Same as the input metadata."""
        return self.get_input_image_metadata(patch_spec)

    def get_patch_indices(self, data_idx: int) -> Sequence[int]:
        """Indices whose principal patch comes from stack ``data_idx``."""
        return self.patching_strategies[self.principal].get_patch_indices(data_idx)


class PairedInputTargetMsPatchConstr(_MsBase):
    """Mode iii: a real input with lateral context and real targets.

    Parameters
    ----------
    patching_strategy : Patching
        Maps indices to patch specifications.
    input_extractor : PatchExtractor
        The real inputs (any number of channels ``C``).
    target_extractor : PatchExtractor
        The targets (same samples and spatial sizes).
    multiscale_count : int
        Number of lateral-context scales ``L``.
    padding_mode : {"reflect", "wrap"}
        Padding of context windows reaching outside the image.
    downsample : {"mean", "resize"}, default "mean"
        How context scales are shrunk.

    Returns from :meth:`construct_patch`: input ``(L * C, (Z,) Y, X)`` (scale major),
    target ``(C_t, (Z,) Y, X)``, :class:`PatchSpecs`.
    """

    def __init__(
        self,
        patching_strategy: Patching,
        input_extractor: PatchExtractor,
        target_extractor: PatchExtractor,
        multiscale_count: int,
        padding_mode: PaddingMode,
        *,
        downsample: Downsample = "mean",
    ) -> None:
        check_multiscale(multiscale_count, padding_mode)
        check_strategy_matches(patching_strategy, input_extractor, "input")
        check_strategy_matches(patching_strategy, target_extractor, "target")
        self.patching_strategy = patching_strategy
        self.input_extractor = input_extractor
        self.target_extractor = target_extractor
        self.multiscale_count = int(multiscale_count)
        self.padding_mode = padding_mode
        self.downsample = downsample

    def _n_input_channels(self) -> int:
        return self.input_extractor.n_channels

    @property
    def n_patches(self) -> int:
        """Number of patches of the strategy."""
        return self.patching_strategy.n_patches

    @property
    def input_shapes(self) -> list[tuple[int, ...]]:
        """Shapes SC(Z)YX of the input images."""
        return self.input_extractor.shapes

    @property
    def target_shapes(self) -> list[tuple[int, ...]]:
        """Shapes SC(Z)YX of the target images."""
        return self.target_extractor.shapes

    def set_epoch(self, epoch: int) -> None:
        """Forward the epoch to the strategy."""
        self._epoch = check_epoch(epoch)
        self.patching_strategy.set_epoch(epoch)

    def construct_patch(self, index: int) -> tuple[np.ndarray, np.ndarray, PatchSpecs]:
        """Input (L*C)(Z)YX, target C_t(Z)YX and the spec."""
        spec = self.patching_strategy.get_patch_spec(index)
        x = _scale_major(self._lc(self.input_extractor, spec, None))
        return x, self.target_extractor.extract(spec), spec

    def get_input_image_metadata(self, patch_spec: PatchSpecs) -> ImageMetadata:
        """Metadata of the input stack."""
        return self.input_extractor.metadata(patch_spec.data_idx)

    def get_target_image_metadata(self, patch_spec: PatchSpecs) -> ImageMetadata:
        """Metadata of the target stack."""
        return self.target_extractor.metadata(patch_spec.data_idx)

    def get_patch_indices(self, data_idx: int) -> Sequence[int]:
        """Indices whose patches come from stack ``data_idx``."""
        return self.patching_strategy.get_patch_indices(data_idx)


class PredMsPatchConstr(_MsBase):
    """Prediction tiles with lateral context.

    Parameters
    ----------
    patching_strategy : TiledPatching
        The tiles.
    input_extractor : PatchExtractor
        The images to predict (any number of channels ``C``).
    multiscale_count : int
        Number of lateral-context scales ``L``.
    padding_mode : {"reflect", "wrap"}
        Padding of context windows reaching outside the image.
    downsample : {"mean", "resize"}, default "mean"
        How context scales are shrunk.
    """

    def __init__(
        self,
        patching_strategy: TiledPatching,
        input_extractor: PatchExtractor,
        multiscale_count: int,
        padding_mode: PaddingMode,
        *,
        downsample: Downsample = "mean",
    ) -> None:
        check_multiscale(multiscale_count, padding_mode)
        check_strategy_matches(patching_strategy, input_extractor, "input")
        self.patching_strategy = patching_strategy
        self.input_extractor = input_extractor
        self.multiscale_count = int(multiscale_count)
        self.padding_mode = padding_mode
        self.downsample = downsample

    def _n_input_channels(self) -> int:
        return self.input_extractor.n_channels

    @property
    def n_patches(self) -> int:
        """Number of tiles."""
        return self.patching_strategy.n_patches

    @property
    def input_shapes(self) -> list[tuple[int, ...]]:
        """Shapes SC(Z)YX of the input images."""
        return self.input_extractor.shapes

    @property
    def target_shapes(self) -> None:
        """Prediction has no targets."""
        return None

    def set_epoch(self, epoch: int) -> None:
        """Accepted for the protocol (tiles do not change)."""
        self._epoch = check_epoch(epoch)

    def construct_patch(self, index: int) -> tuple[np.ndarray, None, PatchSpecs]:
        """Input (L*C)(Z)YX, no target, and the :class:`TileSpecs`."""
        spec = self.patching_strategy.get_patch_spec(index)
        assert isinstance(spec, TileSpecs)
        return _scale_major(self._lc(self.input_extractor, spec, None)), None, spec

    def get_input_image_metadata(self, patch_spec: PatchSpecs) -> ImageMetadata:
        """Metadata of the input stack."""
        return self.input_extractor.metadata(patch_spec.data_idx)

    def get_target_image_metadata(self, patch_spec: PatchSpecs) -> None:
        """Prediction has no targets."""
        return None

    def get_patch_indices(self, data_idx: int) -> Sequence[int]:
        """Indices of the tiles of stack ``data_idx``."""
        return self.patching_strategy.get_patch_indices(data_idx)
