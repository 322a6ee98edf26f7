"""Export / import archives: round trips, safety, corruption, versions, names."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from registry_helpers import EMPANADA_CARD, sha256

from tamale import _paths
from tamale.errors import TamaleInputError
from tamale.progress import Cancelled, CancelToken
from tamale.registry import (
    export_model,
    get_card,
    import_model,
    list_models,
    read_manifest,
    register_model,
)
from tamale.registry.install import MARKER


@pytest.fixture
def exported(empanada_card, other_scripted_model, tmp_path) -> Path:
    register_model(empanada_card, weights_quantized=other_scripted_model)
    return export_model("TestNet", tmp_path / "TestNet.zip")


def _fresh_home(monkeypatch, tmp_path, name="other_machine") -> Path:
    home = tmp_path / name
    monkeypatch.setenv("TAMALE_HOME", str(home))
    return home


def _staging_is_empty() -> bool:
    root = _paths.user_data_dir() / ".staging"
    return not root.exists() or not any(root.iterdir())


def _rewrite(src: Path, dst: Path, change, fix_manifest: bool = False) -> Path:
    """Copy archive ``src`` to ``dst`` with ``change(name, data) -> (name, data) | None``.

    With ``fix_manifest``, the manifest's sizes and hashes follow the changes
    (an archive that is consistent but malicious).
    """
    with zipfile.ZipFile(src) as zin:
        files = {}
        for info in zin.infolist():
            out = change(info.filename, zin.read(info))
            if out is not None:
                files[out[0]] = out[1]
    if fix_manifest:
        manifest = json.loads(files["tamale-model.json"])
        for name, data in files.items():
            if name in manifest["files"]:
                manifest["files"][name] = {
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "size": len(data),
                }
        files["tamale-model.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(dst, "w") as zout:
        for name, data in files.items():
            zout.writestr(name, data)
    return dst


def test_export_writes_one_self_contained_archive(exported, scripted_model, other_scripted_model):
    with zipfile.ZipFile(exported) as zf:
        assert sorted(zf.namelist()) == [
            "card.yaml",
            "tamale-model.json",
            "weights.pth",
            "weights_quantized.pth",
        ]
        manifest = json.loads(zf.read("tamale-model.json"))
    assert manifest["format"] == "tamale-model-archive" and manifest["name"] == "TestNet"
    assert manifest["files"]["weights.pth"]["sha256"] == sha256(scripted_model)
    assert manifest["files"]["weights_quantized.pth"]["sha256"] == sha256(other_scripted_model)
    assert read_manifest(exported).tamale_version == manifest["tamale_version"]


def test_round_trip_on_a_fresh_home_under_a_chosen_name(exported, monkeypatch, tmp_path):
    import torch

    original = get_card("TestNet")
    _fresh_home(monkeypatch, tmp_path)
    assert list_models() == []
    reg = import_model(exported, name="Imported-1")
    assert list_models() == ["Imported-1"]
    card = get_card("Imported-1")
    assert card.weights.sha256 == original.weights.sha256
    assert card.weights_quantized.sha256 == original.weights_quantized.sha256
    assert card.classes == original.classes and card.finetune == original.finetune
    assert json.loads((reg.directory / MARKER).read_text())["origin"] == "import"
    # the imported model computes exactly what the original does
    x = torch.rand(1, 1, 32, 32)
    a = torch.jit.load(original.resolve(original.weights))(x)
    b = torch.jit.load(card.resolve(card.weights))(x)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # and exports again to an identical payload
    again = export_model("Imported-1", tmp_path / "again.zip")
    assert read_manifest(again).files["weights.pth"] == read_manifest(exported).files["weights.pth"]


def test_import_never_overwrites_unless_asked(exported, scripted_model):
    before = get_card("TestNet").model_dump()
    with pytest.raises(TamaleInputError, match="already registered"):
        import_model(exported)
    assert get_card("TestNet").model_dump() == before and _staging_is_empty()
    assert import_model(exported, replace=True).name == "TestNet"
    assert import_model(exported, name="copy").name == "copy"
    assert list_models() == ["copy", "TestNet"]


def test_export_never_overwrites_a_file_unless_asked(exported):
    size = exported.stat().st_size
    with pytest.raises(TamaleInputError, match="already exists"):
        export_model("TestNet", exported)
    exported.write_bytes(b"user file")
    with pytest.raises(TamaleInputError, match="already exists"):
        export_model("TestNet", exported)
    assert exported.read_bytes() == b"user file"
    export_model("TestNet", exported, overwrite=True)
    assert exported.stat().st_size == size


def test_export_into_a_folder_and_cancel_leaves_no_partial_file(exported, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    assert export_model("TestNet", folder) == folder / "TestNet.zip"
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        export_model("TestNet", folder / "cancelled.zip", cancel=token)
    assert sorted(p.name for p in folder.iterdir()) == ["TestNet.zip"]
    with pytest.raises(TamaleInputError, match="folder not found"):
        export_model("TestNet", tmp_path / "no" / "such" / "m.zip")


def test_malicious_member_names_are_refused(exported, tmp_path):
    for evil in ("../evil", "/etc/evil", "sub/evil", "..\\evil", ".evil"):
        bad = tmp_path / "bad.zip"
        with zipfile.ZipFile(exported) as zin, zipfile.ZipFile(bad, "w") as zout:
            for info in zin.infolist():
                zout.writestr(info.filename, zin.read(info))
            zout.writestr(evil, b"pwned")
        with pytest.raises(TamaleInputError, match="unsafe entry"):
            import_model(bad, name="evil-model")
        assert not (tmp_path / "evil").exists() and not Path("/etc/evil").exists()
        assert "evil-model" not in list_models() and _staging_is_empty()


def test_a_card_pointing_outside_the_archive_is_refused(exported, tmp_path):
    def change(name, data):
        if name == "card.yaml":
            data = data.replace(b"uri: weights.pth", b"uri: ../../weights.pth")
        return name, data

    bad = _rewrite(exported, tmp_path / "bad.zip", change, fix_manifest=True)
    with pytest.raises(TamaleInputError, match="not a file inside the archive"):
        import_model(bad, name="x")


def test_corrupt_and_foreign_archives_are_clear_errors(exported, tmp_path):
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(TamaleInputError, match="corrupt or not a zip"):
        import_model(garbage)
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(exported.read_bytes()[: exported.stat().st_size // 2])
    with pytest.raises(TamaleInputError, match="corrupt"):
        import_model(truncated, name="t")
    # cut inside the manifest at the end: the stored TorchScript weights (zip files
    # themselves) must not be mistaken for the archive
    cut = tmp_path / "cut.zip"
    cut.write_bytes(exported.read_bytes()[:-40])
    with pytest.raises(TamaleInputError, match="corrupt"):
        import_model(cut, name="t")
    # flip bytes inside the stored weights: the zip CRC (or the hash) catches it
    data = bytearray(exported.read_bytes())
    with zipfile.ZipFile(exported) as zf:
        info = zf.getinfo("weights.pth")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 100
    data[start : start + 8] = b"\x00" * 8
    flipped = tmp_path / "flipped.zip"
    flipped.write_bytes(bytes(data))
    with pytest.raises(TamaleInputError, match=r"corrupt|damaged"):
        import_model(flipped, name="f")
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(TamaleInputError, match="not a tamale model archive"):
        import_model(plain)
    with pytest.raises(TamaleInputError, match="not found"):
        import_model(tmp_path / "missing.zip")
    assert list_models() == ["TestNet"] and _staging_is_empty()


def test_hash_mismatch_inside_an_archive_is_refused(exported, tmp_path):
    def change(name, data):
        if name == "weights.pth":
            return name, data + b"x"
        return name, data

    bad = _rewrite(exported, tmp_path / "bad.zip", change)
    with pytest.raises(TamaleInputError, match=r"size the manifest says|damaged"):
        import_model(bad, name="x")

    def same_size(name, data):
        if name == "tamale-model.json":
            manifest = json.loads(data)
            manifest["files"]["weights.pth"]["sha256"] = "0" * 64
            return name, json.dumps(manifest).encode()
        return name, data

    bad2 = _rewrite(exported, tmp_path / "bad2.zip", same_size)
    with pytest.raises(TamaleInputError, match="damaged"):
        import_model(bad2, name="x")
    assert "x" not in list_models() and _staging_is_empty()


def test_archive_from_a_newer_tamale_is_refused(exported, tmp_path):
    for key, value in (("tamale_version", "99.0.0"), ("archive_version", 2)):

        def change(name, data, key=key, value=value):
            if name == "tamale-model.json":
                manifest = json.loads(data)
                manifest[key] = value
                data = json.dumps(manifest).encode()
            return name, data

        bad = _rewrite(exported, tmp_path / f"newer-{key}.zip", change)
        with pytest.raises(TamaleInputError, match="newer than this tamale"):
            import_model(bad, name="n")


def test_unexpected_members_and_zip_bombs_are_refused(exported, tmp_path):
    extra = _rewrite(
        exported,
        tmp_path / "extra.zip",
        lambda n, d: (n, d),
    )
    with zipfile.ZipFile(extra, "a") as zf:
        zf.writestr("payload.sh", b"echo hi")
    with pytest.raises(TamaleInputError, match=r"unexpected: payload\.sh"):
        import_model(extra, name="x")
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(exported) as zin, zipfile.ZipFile(bomb, "w") as zout:
        for info in zin.infolist():
            if info.filename != "weights.pth":
                zout.writestr(info.filename, zin.read(info))
        zout.writestr("weights.pth", b"\0" * (64 << 20), compress_type=zipfile.ZIP_DEFLATED)
    with pytest.raises(TamaleInputError, match="expands"):
        import_model(bomb, name="x")


def test_empanada_export_archives_import(tmp_path, scripted_model, other_scripted_model):
    archive = tmp_path / "MitoLike.empanada"
    with zipfile.ZipFile(archive, "w") as zf:
        text = EMPANADA_CARD.format(model="MitoLike.pth").replace(
            "padding_factor", "model_quantized: MitoLike_quantized.pth\npadding_factor"
        )
        zf.writestr("MitoLike.yaml", text)
        zf.write(scripted_model, "MitoLike.pth")
        zf.write(other_scripted_model, "MitoLike_quantized.pth")
    reg = import_model(archive)
    assert reg.name == "MitoLike"
    card = get_card("MitoLike")
    assert card.source == "empanada" and card.weights.sha256 == sha256(scripted_model)
    assert card.weights_quantized.sha256 == sha256(other_scripted_model)
    assert sorted(p.name for p in reg.directory.iterdir()) == [
        "card.yaml",
        MARKER,
        "weights.pth",
        "weights_quantized.pth",
    ]


def test_import_leaves_the_archive_folder_alone(exported, tmp_path):
    # empanada extracted into <archive folder>/tmp after rmtree-ing it
    sibling = exported.parent / "tmp"
    sibling.mkdir()
    (sibling / "precious.txt").write_text("keep me")
    import_model(exported, name="again")
    assert (sibling / "precious.txt").read_text() == "keep me"
