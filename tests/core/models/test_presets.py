"""Presets: parameter counts, output shapes, training outputs, encoder stages."""

from __future__ import annotations

import pytest
import torch

from tamale.errors import TamaleInputError
from tamale.models import (
    available_presets,
    build_model,
    count_parameters,
    freeze_encoder,
    render_steps,
)


def _meta(name: str, **options):
    with torch.device("meta"):
        return build_model(name, **options)


def test_published_deeplab_parameter_count():
    c = count_parameters(_meta("panoptic_deeplab_r50"))
    assert c["total"] == 55_158_486
    assert c["encoder"] == 23_501_760
    assert c["semantic_decoder"] == 15_624_288
    assert c["instance_decoder"] == 15_615_664
    assert (c["semantic_head"], c["ins_center"], c["ins_xy"]) == (72_705, 72_705, 72_962)
    assert c["pointrend"] == 198_402
    assert c["total"] - c["encoder"] == 31_656_726


def test_published_bifpn_parameter_count():
    c = count_parameters(_meta("panoptic_bifpn_r50"))
    assert c["total"] == 27_350_786
    assert c["encoder"] == 23_501_760
    assert c["p2_resample"] == 33_024
    assert c["semantic_fpn"] == c["instance_fpn"] == 1_222_430
    assert c["semantic_decoder"] == c["instance_decoder"] == 630_528
    assert (c["semantic_head"], c["ins_center"], c["ins_xy"]) == (19_969, 19_969, 20_098)
    assert c["pointrend"] == 50_050


def test_published_variants_parameter_counts():
    # without the instance decoder, and with three classes (background + 2 + ...)
    assert count_parameters(_meta("panoptic_deeplab_r50", ins_decoder=False))["total"] == 39_542_822
    assert count_parameters(_meta("panoptic_bifpn_r50", ins_decoder=False))["total"] == 25_497_828
    assert (
        count_parameters(_meta("panoptic_deeplab_r50", num_classes=3))["total"]
        == 55_158_486 + 2_572
    )
    assert (
        count_parameters(_meta("panoptic_bifpn_r50", num_classes=3))["total"] == 27_350_786 + 1_292
    )


SMALL = {
    "tiny": {},
    "tiny_bifpn": {},
    "panoptic_deeplab_r18": {"decoder_channels": 16, "encoder": "resnet_tiny"},
    "panoptic_bifpn_r18": {"fpn_dim": 16, "encoder": "resnet_tiny"},
    "panoptic_bifpn_regnety": {"fpn_dim": 16, "encoder": "regnetx_400mf"},
    "panoptic_deeplab_r50": {"decoder_channels": 16, "encoder": "resnet_tiny", "output_stride": 16},
    "panoptic_bifpn_r50": {"fpn_dim": 16, "encoder": "resnet_tiny", "fpn_layers": 1},
}


def test_every_preset_is_tested():
    assert set(SMALL) == set(available_presets())


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("num_classes", [1, 3])
def test_predict_shapes(name, num_classes):
    torch.manual_seed(0)
    model = build_model(name, num_classes=num_classes, **SMALL[name]).eval()
    assert model.num_classes == num_classes
    size = 128
    assert size % model.padding_factor == 0
    x = torch.randn(2, 1, size, size)
    out = model.predict(x)
    assert set(out) == {"sem_logits", "ctr_hmp", "offsets"}
    assert out["sem_logits"].shape == (2, num_classes, size, size)
    assert out["ctr_hmp"].shape == (2, 1, size // 4, size // 4)
    assert out["offsets"].shape == (2, 2, size // 4, size // 4)
    assert all(v.dtype == torch.float32 for v in out.values())
    up = model.predict(x[:1], upsample=2, fine=True)
    assert up["sem_logits"].shape == (1, num_classes, 2 * size, 2 * size)
    assert up["ctr_hmp"].shape == (1, 1, size, size)
    assert up["offsets"].shape == (1, 2, size, size)


def test_predict_is_deterministic_and_batch_independent(tiny, x64):
    x = torch.cat([x64, x64.flip(-1)])
    both = tiny.predict(x)
    one = tiny.predict(x[1:])
    for k in both:
        torch.testing.assert_close(both[k][1:], one[k], rtol=1e-5, atol=1e-5)


def test_eval_forward_equals_fine_predict(tiny, x64):
    a = tiny(x64)
    b = tiny.predict(x64, fine=True)
    for k in b:
        torch.testing.assert_close(a[k], b[k])


def test_train_outputs(x64):
    torch.manual_seed(0)
    model = build_model("tiny", num_classes=3).train()
    out = model(torch.cat([x64, x64]))
    assert set(out) == {"sem_logits", "ctr_hmp", "offsets", "sem_points", "point_coords"}
    assert out["sem_logits"].shape == (2, 3, 64, 64)
    assert out["ctr_hmp"].shape == (2, 1, 64, 64)
    assert out["offsets"].shape == (2, 2, 64, 64)
    p = model.semantic_pr.train_num_points
    assert out["sem_points"].shape == (2, 3, p)
    assert out["point_coords"].shape == (2, p, 2)
    assert 0 <= out["point_coords"].min() and out["point_coords"].max() <= 1
    sum(v.sum() for v in out.values() if v.requires_grad).backward()


def test_no_pointrend_option(x64):
    model = build_model("tiny", pointrend=False).eval()
    assert model.semantic_pr is None
    assert model.predict(x64, upsample=2)["sem_logits"].shape == (1, 1, 128, 128)
    assert set(model.train()(x64)) == {"sem_logits", "ctr_hmp", "offsets"}


@pytest.mark.parametrize("encoder", ["resnet_tiny", "resnet18", "regnety_400mf", "regnetx_400mf"])
def test_encoder_stages(encoder):
    with torch.device("meta"):
        model = build_model("tiny", encoder=encoder)
    names = [n for n, _ in model.encoder.named_children()]
    assert names == ["stem", "stage1", "stage2", "stage3", "stage4"]
    assert list(model.encoder.strides) == [4, 8, 16, 32]


def test_dilated_encoder_output_stride():
    model = build_model("tiny", output_stride=16).eval()
    assert model.padding_factor == 16
    feats = model.encoder(torch.randn(1, 1, 64, 64))
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 4]
    assert model.predict(torch.randn(1, 1, 48, 80))["sem_logits"].shape == (1, 1, 48, 80)


def test_freezing_stage4_trains_only_stage4_of_encoder(x64):
    torch.manual_seed(0)
    model = build_model("tiny").train()
    assert freeze_encoder(model, "stage4") == ["stage4"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    out = model(torch.cat([x64, x64.flip(-2)]))
    (
        out["sem_logits"].mean() + out["ctr_hmp"].square().mean() + out["offsets"].abs().mean()
    ).backward()
    opt.step()
    after = model.state_dict()
    for key, value in before.items():
        if not key.startswith("encoder.") or key.endswith(
            ("running_mean", "running_var", "num_batches_tracked")
        ):
            continue
        changed = not torch.equal(value, after[key])
        if key.startswith("encoder.stage4."):
            if value.ndim >= 2:  # conv weights
                assert changed, key
        else:
            assert not changed, key
    assert not torch.equal(
        before["semantic_head.head.1.weight"], after["semantic_head.head.1.weight"]
    )
    assert freeze_encoder(model, "all") == ["stem", "stage1", "stage2", "stage3", "stage4"]
    assert freeze_encoder(model, "none") == []
    with pytest.raises(TamaleInputError, match="stage4"):
        freeze_encoder(model, "layer4")


def test_frozen_bn_option_keeps_batchnorm_in_eval():
    model = build_model("tiny", frozen_bn=True).train()
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)
    assert model.semantic_pr.training


def test_render_steps():
    assert [render_steps(u) for u in (1, 2, 4, 64)] == [2, 3, 4, 8]
    for bad in (0, 3, 6, -2):
        with pytest.raises(TamaleInputError, match="power of two"):
            render_steps(bad)


def test_bad_presets_and_options():
    with pytest.raises(TamaleInputError, match=r"panoptic_bifpn_r50.*tiny"):
        build_model("mitonet")
    with pytest.raises(TamaleInputError, match=r"fpn_dim.*it takes:.*decoder_channels"):
        build_model("tiny", fpn_dim=3)
    with pytest.raises(TamaleInputError, match="unknown encoder"):
        build_model("tiny", encoder="vgg16")
    with pytest.raises(TamaleInputError, match="num_classes"):
        build_model("tiny", num_classes=2)
    with pytest.raises(TamaleInputError, match="output_stride 32"):
        build_model("tiny_bifpn", output_stride=16)


def test_bad_inputs(tiny):
    with pytest.raises(TamaleInputError, match="multiples of the model's padding factor 32"):
        tiny.predict(torch.zeros(1, 1, 64, 70))
    with pytest.raises(TamaleInputError, match="1 input channel"):
        tiny.predict(torch.zeros(1, 3, 64, 64))
    with pytest.raises(TamaleInputError, match=r"shape \(N, 1"):
        tiny.predict(torch.zeros(64, 64))
    with pytest.raises(TamaleInputError, match="floats"):
        tiny.predict(torch.zeros(1, 1, 64, 64, dtype=torch.uint8))
    with pytest.raises(TamaleInputError, match="power of two"):
        tiny.predict(torch.zeros(1, 1, 64, 64), upsample=3)
