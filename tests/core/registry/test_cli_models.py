"""`tamale models ...`: every subcommand through `main([...])`, one through the real entry point."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from tamale.cli import main
from tamale.registry import get_card, hidden_models, list_archived, list_models


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["models", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_register_info_export_import_archive_restore(
    capsys, empanada_card, other_scripted_model, tmp_path
):
    code, out, _ = run(capsys, "list")
    assert code == 0 and "no models registered" in out
    code, out, err = run(
        capsys,
        "register",
        str(empanada_card),
        "--name",
        "cli-net",
        "--quantized-weights",
        str(other_scripted_model),
    )
    assert code == 0 and "registered cli-net (40 parameters)" in out
    code, out, _ = run(capsys, "list")
    assert out.split()[:3] == ["cli-net", "user", "TorchScript"]
    code, out, _ = run(capsys, "info", "cli-net")
    assert code == 0 and out.startswith("# cli-net") and "1001, 1002" in out
    code, _, err = run(capsys, "register", str(empanada_card), "--name", "cli-net")
    assert code == 2 and "already registered" in err
    code, out, _ = run(capsys, "register", str(empanada_card), "--name", "cli-net", "--replace")
    assert code == 0
    archive = tmp_path / "cli-net.zip"
    code, out, _ = run(capsys, "export", "cli-net", str(archive))
    assert code == 0 and zipfile.is_zipfile(archive)
    code, _, err = run(capsys, "export", "cli-net", str(archive))
    assert code == 2 and "already exists" in err
    code, out, _ = run(capsys, "import", str(archive), "--name", "cli-copy")
    assert code == 0 and list_models() == ["cli-copy", "cli-net"]
    code, _, err = run(capsys, "import", str(archive), "--name", "cli-copy")
    assert code == 2 and "already registered" in err
    code, out, _ = run(capsys, "import", str(archive), "--name", "cli-copy", "--replace")
    assert code == 0
    code, out, _ = run(capsys, "archive", "cli-copy")
    assert code == 0 and list_archived() == ["cli-copy"] and list_models() == ["cli-net"]
    code, out, _ = run(capsys, "list", "--all")
    assert "cli-copy" in out and "archived" in out
    code, _, err = run(capsys, "remove", "cli-net")
    assert code == 2 and "archive it first" in err
    code, out, _ = run(capsys, "restore", "cli-copy")
    assert code == 0 and list_models() == ["cli-copy", "cli-net"]
    run(capsys, "archive", "cli-copy")
    code, out, _ = run(capsys, "remove", "cli-copy")
    assert code == 0 and list_archived() == []


def test_hide_and_unhide(capsys, tmp_path, monkeypatch, scripted_model):
    from registry_helpers import EMPANADA_CARD

    root = tmp_path / "bundled"
    (root / "Builtin").mkdir(parents=True)
    (root / "Builtin" / "card.yaml").write_text(EMPANADA_CARD.format(model=scripted_model))
    monkeypatch.setattr("tamale.registry.store.bundled_dir", lambda: root)
    code, out, _ = run(capsys, "hide", "Builtin")
    assert code == 0 and hidden_models() == {"Builtin"} and list_models() == []
    code, out, _ = run(capsys, "list", "--all")
    assert "bundled, hidden" in out
    code, out, _ = run(capsys, "unhide", "Builtin")
    assert code == 0 and list_models() == ["Builtin"]
    assert get_card("Builtin").source == "empanada"


def test_bad_input_exits_2_with_a_message(capsys, tmp_path, empanada_card):
    cases = [
        (["info", "ghost"], "no model named 'ghost'"),
        (["register", str(tmp_path / "none.yaml")], "model card not found"),
        (["register", str(empanada_card), "--name", "../x"], "not allowed"),
        (["register", str(empanada_card), "--weights", str(tmp_path / "w.pth")], "not found"),
        (["import", str(tmp_path / "none.zip")], "not found"),
        (["archive", "ghost"], "no user model named 'ghost'"),
        (["restore", "ghost"], "no archived model named 'ghost'"),
        (["hide", "ghost"], "no bundled model named 'ghost'"),
        (["unhide", "ghost"], "not hidden"),
    ]
    for argv, message in cases:
        code, _, err = run(capsys, *argv)
        assert code == 2, argv
        assert err.startswith("tamale: error: ") and message in err, (argv, err)


def test_models_help_through_the_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "tamale.cli", "models", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for action in ("list", "info", "register", "export", "import", "archive", "restore", "hide"):
        assert action in out.stdout
