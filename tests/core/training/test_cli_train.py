"""``tamale train`` and ``tamale finetune``."""

from __future__ import annotations

from tamale.cli import main
from tamale.registry import get_card, list_models
from tamale.training import load_checkpoint

FAST = ["--architecture", "tiny", "--patch-size", "64", "--batch-size", "4", "--device", "cpu"]


def test_train_then_finetune(train_dir, tmp_path, capsys):
    models = tmp_path / "models"
    code = main(["train", "--model-name", "cli-new", "--train-dir", str(train_dir),
                 "--val-dir", str(train_dir), "--model-dir", str(models),
                 "--labels", "1,mito,instance", "--iterations", "2", *FAST])  # fmt: skip
    assert code == 0
    err = capsys.readouterr().err
    assert "trained cli-new in 2 iterations" in err and "registered as cli-new" in err
    assert get_card("cli-new").classes[0].name == "mito"
    code = main(["finetune", "--model", "cli-new", "--model-name", "cli-ft",
                 "--train-dir", str(train_dir), "--model-dir", str(models),
                 "--finetune-layers", "stage4", "--iterations", "2", "--patch-size", "64",
                 "--batch-size", "4", "--device", "cpu"])  # fmt: skip
    assert code == 0
    assert get_card("cli-ft").finetune == {
        "patch_size": 64, "iterations": 2, "batch_size": 4, "finetune_layers": "stage4",
        "base_model": "cli-new",
    }  # fmt: skip


def test_config_file_and_options(train_dir, tmp_path):
    cfg = tmp_path / "custom.yaml"
    cfg.write_text(
        f"model_name: from-file\ntrain_dir: {train_dir}\nmodel_dir: {tmp_path / 'm'}\n"
        "architecture: tiny\npatch_size: 64\nbatch_size: 4\niterations: 5\ndevice: cpu\n"
        "optimizer: {lr: 0.001, schedule: constant}\naugment: {rotation: 30}\n"
    )
    assert main(["train", "--config", str(cfg), "--iterations", "2", "--no-register"]) == 0
    state = load_checkpoint(tmp_path / "m" / "from-file" / "checkpoints" / "last.pt")
    assert state["iteration"] == 2  # the option wins over the file
    assert state["config"]["optimizer"]["lr"] == 0.001
    assert state["config"]["augment"]["rotation"] == 30
    assert "from-file" not in list_models()


def test_unknown_key_and_taken_name_exit_2(train_dir, tmp_path, capsys, tiny_model):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("itterations: 3\n")
    args = ["--train-dir", str(train_dir), "--model-dir", str(tmp_path / "m"), *FAST]
    assert main(["train", "--config", str(cfg), "--model-name", "x", *args]) == 2
    assert "itterations: unknown key" in capsys.readouterr().err
    assert main(["train", "--model-name", tiny_model, "--iterations", "1", *args]) == 2
    assert "already registered" in capsys.readouterr().err
    assert main(["finetune", "--model-name", "y", *args[:4]]) == 2
    assert "missing --model" in capsys.readouterr().err


def test_resume_from_the_command_line(train_dir, tmp_path):
    from tamale.progress import CancelToken

    models = tmp_path / "models"
    base = ["train", "--model-name", "r", "--train-dir", str(train_dir), "--model-dir",
            str(models), "--iterations", "4", "--checkpoint-every", "2", *FAST]  # fmt: skip
    # a run stopped after its checkpoint at 2 (as if killed): resume finishes it
    from tamale.cli import build_parser
    from tamale.cli.train import build_config
    from tamale.training import fit

    config = build_config(build_parser().parse_args(base), finetune=False)
    config = config.model_copy(update={"iterations": 4})
    import pytest

    from tamale.progress import Cancelled

    token = CancelToken()
    with pytest.raises(Cancelled):
        fit(config, cancel=token, progress=lambda e: e.step == 2 and e.metrics and token.cancel())
    ckpt = models / "r" / "checkpoints" / "last.pt"
    assert load_checkpoint(ckpt)["iteration"] == 2
    assert main(["train", "--resume", str(ckpt)]) == 0
    assert load_checkpoint(ckpt)["iteration"] == 4 and "r" in list_models()
