"""Model cards and the model registry.

Bundled models ship with tamale; user models live under the user data folder
(``TAMALE_HOME`` overrides). Every operation here notifies subscribers
(:func:`subscribe`), so every model list in every dock stays current.

Long operations are work generators (``iter_*``) with blocking wrappers that
take ``progress`` and ``cancel``.
"""

from tamale.registry.card import ClassSpec, ModelCard, Norms, WeightsRef, load_card, save_card
from tamale.registry.download import Downloaded, download, iter_download
from tamale.registry.events import notify_changed, subscribe
from tamale.registry.info import (
    ClassInfo,
    ModelInfo,
    WeightsInfo,
    format_info,
    iter_model_info,
    model_info,
)
from tamale.registry.manage import (
    archive_model,
    hide_model,
    list_archived,
    remove_archived_model,
    restore_model,
    unhide_model,
)
from tamale.registry.register import RegisteredModel, iter_register_model, register_model
from tamale.registry.store import get_card, hidden_models, list_models, model_location
from tamale.registry.transfer import (
    ArchiveManifest,
    export_model,
    import_model,
    iter_export_model,
    iter_import_model,
    read_manifest,
)
from tamale.registry.weights import iter_local_card, local_card

__all__ = [
    "ArchiveManifest",
    "ClassInfo",
    "ClassSpec",
    "Downloaded",
    "ModelCard",
    "ModelInfo",
    "Norms",
    "RegisteredModel",
    "WeightsInfo",
    "WeightsRef",
    "archive_model",
    "download",
    "export_model",
    "format_info",
    "get_card",
    "hidden_models",
    "hide_model",
    "import_model",
    "iter_download",
    "iter_export_model",
    "iter_import_model",
    "iter_local_card",
    "iter_model_info",
    "iter_register_model",
    "list_archived",
    "list_models",
    "load_card",
    "local_card",
    "model_info",
    "model_location",
    "notify_changed",
    "read_manifest",
    "register_model",
    "remove_archived_model",
    "restore_model",
    "save_card",
    "subscribe",
    "unhide_model",
]
