"""The training loop end to end: train -> registered -> 2D inference; resume equals an
uninterrupted run; Cancel leaves a loadable checkpoint; finetuning a registered model."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from tamale.config import ConfigError
from tamale.inference import Inference2DConfig, infer_2d
from tamale.models import load_model
from tamale.models.weights import load_state_dict
from tamale.progress import Cancelled, CancelToken
from tamale.registry import get_card, list_models
from tamale.training import fit, load_checkpoint


def test_train_register_and_infer(make_config, em_pairs, tmp_path):
    events = []
    config = make_config(val_dir=tmp_path / "train", iterations=4, val_every=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecated torch APIs (empanada: torch.cuda.amp)
        result = fit(config, progress=events.append)
    assert "trained" in list_models()
    card = get_card("trained")
    assert card.architecture == "tiny" and card.classes[0].kind == "instance"
    assert card.weights.sha256 and card.padding_factor == 32
    assert set(card.quality) == {"iou", "pq", "f1"}
    # the card and weights are also in the model directory
    assert (result.output_dir / "card.yaml").is_file()
    assert (result.output_dir / "weights.safetensors").is_file()
    # progress: one train event per iteration, metrics for the live plot
    train = [e for e in events if e.stage == "train" and "loss" in e.metrics]
    assert [int(e.metrics["iteration"]) for e in train if e.message != "validating"] == [1, 2, 3, 4]
    assert all({"loss", "lr", "loss_ce", "loss_point"} <= set(e.metrics) for e in train)
    assert sum("val_f1" in e.metrics for e in train) == 2
    assert train[-1].total == 4
    # 2D inference with the new model through tamale.inference
    out = infer_2d(em_pairs[0][0], "trained", Inference2DConfig(use_gpu=False))
    assert out.labels.shape == (128, 128) and out.labels.dtype == np.uint32
    assert out.model_name == "trained"


def test_resume_gives_the_same_weights(make_config, tmp_path):
    full = fit(
        make_config(model_name="full", iterations=6, checkpoint_every=3, register_model=False)
    )
    token = CancelToken()

    def stop_after_3(event):
        if event.stage == "train" and event.step == 3 and event.metrics:
            token.cancel()

    with pytest.raises(Cancelled):
        fit(make_config(model_name="cut", iterations=6, register_model=False),
            progress=stop_after_3, cancel=token)  # fmt: skip
    ckpt = tmp_path / "models" / "cut" / "checkpoints" / "last.pt"
    assert load_checkpoint(ckpt)["iteration"] == 3
    resumed = fit(make_config(model_name="cut", iterations=6, register_model=False, resume=ckpt))
    a = load_state_dict(full.output_dir / "weights.safetensors")
    b = load_state_dict(resumed.output_dir / "weights.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    assert [h["loss"] for h in full.history] == [h["loss"] for h in resumed.history]


def test_resume_refuses_other_parameters(make_config, tmp_path):
    fit(make_config(model_name="r", iterations=2, register_model=False))
    ckpt = tmp_path / "models" / "r" / "checkpoints" / "last.pt"
    from tamale.errors import TamaleInputError

    with pytest.raises(TamaleInputError, match="other patch_size"):
        fit(make_config(model_name="r", iterations=2, patch_size=96 - 32 + 32 * 1, resume=ckpt))


def test_cancel_leaves_a_loadable_checkpoint(make_config, tmp_path):
    token = CancelToken()

    def cancel_at_2(event):
        if event.stage == "train" and event.step == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        fit(make_config(iterations=50), progress=cancel_at_2, cancel=token)
    state = load_checkpoint(tmp_path / "models" / "trained" / "checkpoints" / "last.pt")
    assert state["iteration"] == 2
    from tamale.models import build_model

    model = build_model("tiny")
    model.load_state_dict(state["model"])
    assert "trained" not in list_models()  # a cancelled run registers nothing


def test_cpu_training_runs_channels_last_and_exports_plain_weights(make_config, tmp_path):
    # channels-last convolutions are the faster CPU path (docs/performance.md, Training)
    result = fit(make_config(iterations=2, checkpoint_every=2))
    state = load_checkpoint(tmp_path / "models" / "trained" / "checkpoints" / "last.pt")
    convs = {k: v for k, v in state["model"].items() if v.ndim == 4 and min(v.shape[:2]) > 1}
    assert convs and all(v.is_contiguous(memory_format=torch.channels_last) for v in convs.values())
    exported = load_state_dict(result.output_dir / "weights.safetensors")
    assert all(exported[k].is_contiguous() for k in convs)
    torch.testing.assert_close({k: exported[k] for k in convs}, convs, rtol=0, atol=0)


def test_same_seed_same_model_other_seed_other_model(make_config):
    a = fit(make_config(model_name="a", register_model=False))
    b = fit(make_config(model_name="b", register_model=False))
    c = fit(make_config(model_name="c", register_model=False, seed=1))
    wa, wb, wc = (load_state_dict(r.output_dir / "weights.safetensors") for r in (a, b, c))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_last_iterations_are_saved(make_config):
    """iterations not a multiple of the checkpoint interval: the end is still saved (empanada
    dropped the last epochs) and the exported weights are the final ones."""
    result = fit(make_config(iterations=5, checkpoint_every=2))
    state = load_checkpoint(result.checkpoint)
    assert state["iteration"] == 5
    exported = load_state_dict(result.output_dir / "weights.safetensors")
    for key, value in state["model"].items():
        assert torch.equal(exported[key], value)


def test_export_best(make_config, tmp_path):
    result = fit(make_config(val_dir=tmp_path / "train", iterations=4, val_every=1, export="best"))
    best = load_checkpoint(result.best_checkpoint)
    exported = load_state_dict(result.output_dir / "weights.safetensors")
    assert all(torch.equal(exported[k], v) for k, v in best["model"].items())
    # the card's quality is the exported weights' validation, not the last one's
    assert result.card.quality == {k: best["validation"][f"val_{k}"] for k in ("iou", "pq", "f1")}
    assert result.validation == best["validation"]


def test_finetune_registered_model_keeps_frozen_encoder(make_config, tiny_model):
    base = load_model(get_card(tiny_model))
    result = fit(
        make_config(model_name="finetuned", base_model=tiny_model, architecture=None, iterations=2)
    )
    card = get_card("finetuned")
    assert card.finetune["base_model"] == tiny_model and card.architecture == "tiny"
    assert result.card.norms == get_card(tiny_model).norms
    new = load_state_dict(result.output_dir / "weights.safetensors")
    old = base.state_dict()
    enc = [k for k in old if k.startswith("encoder.")]
    assert all(torch.equal(old[k], new[k]) for k in enc)  # 'none': BN statistics included
    assert not all(torch.equal(old[k], new[k]) for k in old if k.startswith("semantic_head"))


def test_finetune_an_empanada_torchscript_model(make_config, tmp_path, monkeypatch):
    """An empanada (TorchScript) card is converted to its tamale preset and finetuned."""
    from test_convert_helpers import script_empanada_style

    import tamale.models.empanada as emp
    from tamale.models import build_model, fold_batchnorm
    from tamale.registry import register_model

    torch.manual_seed(0)
    script_empanada_style(fold_batchnorm(build_model("tiny").eval()), tmp_path / "m.pth")
    (tmp_path / "m.yaml").write_text(
        "class_names: {1: mito}\nlabels: [1]\nthing_list: [1]\nmodel: m.pth\n"
        "padding_factor: 32\nnorms: {mean: 0.5, std: 0.2}\n"
    )
    register_model(tmp_path / "m.yaml", "empanada-mito")
    monkeypatch.setattr(emp, "_CANDIDATES", ("tiny",))
    result = fit(make_config(model_name="ft-emp", base_model="empanada-mito", architecture=None,
                             iterations=2, finetune_layers="stage4"))  # fmt: skip
    assert result.card.architecture == "tiny" and result.card.norms.mean == 0.5
    assert get_card("ft-emp").finetune["finetune_layers"] == "stage4"


def test_new_model_encoder_from_a_registered_model(make_config, tiny_model):
    result = fit(make_config(model_name="warm", encoder_init=tiny_model, finetune_layers="none",
                             iterations=2))  # fmt: skip
    old = load_model(get_card(tiny_model)).state_dict()
    new = load_state_dict(result.output_dir / "weights.safetensors")
    assert all(torch.equal(old[k], new[k]) for k in old if k.startswith("encoder."))
    assert any(m.startswith("encoder initialised from model") for m in result.messages)


def test_new_model_encoder_from_weights_files(make_config, tmp_path):
    """A .safetensors file and a PyTorch checkpoint ('state_dict', 'module.' prefixes, no
    'encoder.' prefix: the shape of self-supervised encoder checkpoints) both load."""
    from safetensors.torch import save_file

    from tamale.errors import TamaleInputError
    from tamale.models import build_model

    torch.manual_seed(5)
    source = build_model("tiny")
    encoder = {k: v for k, v in source.state_dict().items() if k.startswith("encoder.")}
    save_file({k: v.contiguous() for k, v in encoder.items()}, str(tmp_path / "enc.safetensors"))
    bare = {"module." + k.removeprefix("encoder."): v for k, v in encoder.items()}
    torch.save({"state_dict": bare, "epoch": 3}, tmp_path / "enc.pth.tar")
    for path, name in ((tmp_path / "enc.safetensors", "st"), (tmp_path / "enc.pth.tar", "pt")):
        result = fit(make_config(model_name=name, encoder_init=str(path), finetune_layers="none",
                                 iterations=1, register_model=False))  # fmt: skip
        new = load_state_dict(result.output_dir / "weights.safetensors")
        assert all(torch.equal(new[k], v) for k, v in encoder.items()), name
    other = build_model("tiny", encoder="resnet18")
    torch.save(other.state_dict(), tmp_path / "r18.pt")
    with pytest.raises(TamaleInputError, match="does not match this architecture"):
        fit(make_config(model_name="bad", encoder_init=str(tmp_path / "r18.pt")))


def test_training_at_half_resolution(make_config, tmp_path):
    """downsampling=2: patches from half-resolution images; validation at full
    resolution through 2D inference's downsampling; the card recommends it."""
    result = fit(make_config(model_name="half", downsampling=2, val_dir=tmp_path / "train",
                             iterations=2, batch_size=2))  # fmt: skip
    assert result.card.inference == {"downsampling": 2}
    assert "val_f1" in result.validation


def test_downsample_pair_keeps_images_and_masks_aligned():
    from tamale.training.data import downsample_pair

    mask = np.zeros((10, 13), np.uint32)
    mask[2:8, 4:12] = 7
    image = (mask * 10).astype(np.float32)
    small_image, small_mask = downsample_pair(image, mask, 2)
    assert small_image.shape == small_mask.shape == (5, 7)
    inside = (small_image == 70) | (small_image == 0)  # blocks fully in or out
    np.testing.assert_array_equal(small_image[inside], small_mask[inside] * 10)


def test_recommended_inference_goes_into_the_card_and_into_validation(make_config, tmp_path):
    # a min area larger than the images: validation keeps no prediction at all
    config = make_config(
        val_dir=tmp_path / "train", iterations=2, val_every=2, inference={"min_area": 128 * 128 + 1}
    )
    result = fit(config)
    assert result.validation["val_tp"] == 0 and result.validation["val_fp"] == 0
    assert result.validation["val_fn"] > 0
    assert get_card("trained").inference == {"min_area": 128 * 128 + 1}
    # finetuning keeps the base model's recommendations, overridden key by key
    fit(
        make_config(
            model_name="finetuned",
            base_model="trained",
            architecture=None,
            iterations=1,
            inference={"centers_min_distance": 9},
        )
    )
    assert get_card("finetuned").inference == {"min_area": 128 * 128 + 1, "centers_min_distance": 9}


@pytest.mark.parametrize(
    ("inference", "message"),
    [
        ({"nonsense": 1}, "unknown inference parameters: nonsense"),
        ({"downsampling": 2}, "the training's `downsampling`"),
        ({"centers_min_distance": 0}, "centers_min_distance"),
    ],
)
def test_bad_recommended_inference_is_refused(make_config, inference, message):
    with pytest.raises(ConfigError, match=message):
        make_config(inference=inference)
