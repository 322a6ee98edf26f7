"""``tamale models ...``: list, describe, register, export, import, archive and hide models."""

from __future__ import annotations

import argparse
import sys

from tamale.cli._progress import TerminalProgress
from tamale.errors import TamaleInputError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list, describe, register, export, import, archive or hide models",
        description="Manage the model registry (the same operations as the napari docks).",
    )
    sub = parser.add_subparsers(title="actions", metavar="ACTION")
    parser.set_defaults(func=lambda _args: _help(parser))

    p = sub.add_parser("list", help="list the available models")
    p.add_argument(
        "--all", action="store_true", help="also list hidden bundled models and archived models"
    )
    p.set_defaults(func=run_list)

    p = sub.add_parser("info", help="describe a model: classes, labels, patch sizes, files")
    p.add_argument("name", help="model name")
    p.set_defaults(func=run_info)

    p = sub.add_parser("register", help="register a model from a card (tamale or empanada YAML)")
    p.add_argument("card", help="the model card (.yaml)")
    p.add_argument("--name", help="registry name (default: the card's name or file name)")
    p.add_argument("--weights", help="weights file or http(s) URL (default: the card's)")
    p.add_argument(
        "--quantized-weights", help="quantized weights file or http(s) URL (default: the card's)"
    )
    p.add_argument("--replace", action="store_true", help="replace a user model of that name")
    p.set_defaults(func=run_register)

    p = sub.add_parser("export", help="write a model (card + weights + hashes) to one zip file")
    p.add_argument("name", help="model name")
    p.add_argument("out", help="archive to write (.zip), or a folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")
    p.set_defaults(func=run_export)

    p = sub.add_parser("import", help="import a model archive (tamale or empanada export)")
    p.add_argument("archive", help="the archive (.zip / .empanada)")
    p.add_argument("--name", help="registry name (default: the name it was exported under)")
    p.add_argument("--replace", action="store_true", help="replace a user model of that name")
    p.set_defaults(func=run_import)

    for action, help_text, func in (
        ("archive", "move a user model into the archive (restore brings it back)", run_archive),
        ("restore", "bring an archived model back", run_restore),
        ("hide", "hide a bundled model from model lists", run_hide),
        ("unhide", "show a hidden bundled model again", run_unhide),
        ("remove", "delete an archived model for good", run_remove),
    ):
        p = sub.add_parser(action, help=help_text)
        p.add_argument("name", help="model name")
        p.set_defaults(func=func)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def run_list(args: argparse.Namespace) -> int:
    from tamale.registry import get_card, hidden_models, list_archived, list_models
    from tamale.registry.store import bundled_models

    hidden = hidden_models()
    names = list_models(include_hidden=args.all)
    rows = []
    for name in names:
        where = "bundled" if name in bundled_models() else "user"
        if name in hidden:
            where += ", hidden"
        try:
            card = get_card(name)
            arch = card.architecture or "TorchScript"
            about = card.description.strip().splitlines()[0] if card.description.strip() else ""
        except ValueError as exc:  # a broken card is listed with its problem
            arch, about = "?", f"unreadable card: {str(exc).splitlines()[0]}"
        rows.append((name, where, arch, about))
    if args.all:
        rows += [(name, "archived", "", "") for name in list_archived()]
    if not rows:
        print("no models registered (tamale models register CARD)")
        return 0
    width = max(len(r[0]) for r in rows)
    for name, where, arch, about in rows:
        line = f"{name:<{width}}  {where:<16}  {arch:<24}  {about}".rstrip()
        print(line)
    return 0


def run_info(args: argparse.Namespace) -> int:
    from tamale.registry import format_info, model_info

    print(format_info(model_info(args.name, progress=TerminalProgress())), end="")
    return 0


def run_register(args: argparse.Namespace) -> int:
    from tamale.registry import register_model

    reg = register_model(
        args.card,
        args.name,
        args.weights,
        args.quantized_weights,
        replace=args.replace,
        progress=TerminalProgress(),
    )
    print(f"registered {reg.name} ({reg.parameters:,} parameters) in {reg.directory}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from tamale.registry import export_model

    path = export_model(args.name, args.out, overwrite=args.overwrite, progress=TerminalProgress())
    print(f"exported {args.name} to {path}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from tamale.registry import import_model

    reg = import_model(args.archive, args.name, replace=args.replace, progress=TerminalProgress())
    print(f"imported {reg.name} ({reg.parameters:,} parameters) into {reg.directory}")
    return 0


def run_archive(args: argparse.Namespace) -> int:
    from tamale.registry import archive_model

    print(f"archived {args.name} in {archive_model(args.name)}")
    return 0


def run_restore(args: argparse.Namespace) -> int:
    from tamale.registry import restore_model

    print(f"restored {args.name} to {restore_model(args.name)}")
    return 0


def run_hide(args: argparse.Namespace) -> int:
    from tamale.registry import hide_model

    hide_model(args.name)
    print(f"{args.name} is hidden (tamale models unhide {args.name} shows it again)")
    return 0


def run_unhide(args: argparse.Namespace) -> int:
    from tamale.registry import unhide_model

    unhide_model(args.name)
    print(f"{args.name} is listed again")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from tamale.registry import list_archived, remove_archived_model
    from tamale.registry.store import user_models

    if args.name in user_models() and args.name not in list_archived():
        raise TamaleInputError(
            f"{args.name!r} is registered, not archived: archive it first "
            f"(tamale models archive {args.name}), then remove it"
        )
    remove_archived_model(args.name)
    print(f"removed the archived model {args.name}", file=sys.stdout)
    return 0
