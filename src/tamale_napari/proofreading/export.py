"""Export segmentation dock: TIFF per image, one TIFF, or OME-Zarr (uint32)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from magicgui.widgets import CheckBox, ComboBox, FileEdit, LineEdit, RadioButtons
from napari.layers import Image
from napari.utils.notifications import show_info

import napari
from tamale.errors import TamaleInputError
from tamale.proofread import iter_export_ome_zarr, iter_export_stack, iter_export_tiff
from tamale.proofread.config import ExportConfig
from tamale_napari._layers import layer_array, layers_of_type, source_file_names

from ._common import ProofreadDock

__all__ = ["ExportSegmentation"]

_FIELDS = ExportConfig.model_fields


class ExportSegmentation(ProofreadDock):
    """Write a labels layer for other software (Fiji, Amira, ...)."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self.viewer = viewer
        self.image_layer = ComboBox(
            label="image layer",
            choices=self._image_choices,
            nullable=True,
            tooltip="Optional: the image stack the labels belong to; when it was opened with "
            "File > Open Folder, each image's labels keep the image's file name",
        )
        self.export_type = RadioButtons(
            label="export type",
            choices=["2D images", "3D image (TIFF)", "3D image (OME-Zarr)"],
            value="2D images",
            tooltip=_FIELDS["export_type"].description,
        )
        self.folder_name = LineEdit(
            label="Folder name", value="segmentation", tooltip=_FIELDS["folder_name"].description
        )
        self.save_dir = FileEdit(
            label="save directory",
            mode="d",
            tooltip="Directory the export is written into",
        )
        self.overwrite = CheckBox(
            value=False, text="overwrite existing files", tooltip=_FIELDS["overwrite"].description
        )
        super().__init__(
            viewer,
            run_text="Export segmentation",
            run_tooltip="Write the labels as uint32 without singleton axes",
            points=False,
            apply_3d=False,
            extra=[self.export_type, self.folder_name, self.save_dir, self.overwrite],
        )
        self.insert(0, self.image_layer)
        self.written: Any = None

    def _image_choices(self, _widget: Any = None) -> list:
        return layers_of_type(self.viewer, Image)

    def to_config(self) -> ExportConfig:
        return ExportConfig.from_mapping(
            {
                "export_type": self.export_type.value,
                "folder_name": self.folder_name.value,
                "overwrite": self.overwrite.value,
            }
        )

    def set_config(self, cfg: ExportConfig) -> None:
        self.export_type.value = cfg.export_type
        self.folder_name.value = cfg.folder_name
        self.overwrite.value = cfg.overwrite

    def target(self, cfg: ExportConfig) -> Path:
        """Where ``cfg`` writes: a folder of TIFFs, a ``.tif`` or a ``.ome.zarr``."""
        base = Path(self.save_dir.value)
        if not str(self.save_dir.value) or str(self.save_dir.value) == ".":
            raise TamaleInputError("choose the directory to save the segmentation in")
        if cfg.export_type == "2D images":
            return base / cfg.folder_name
        if cfg.export_type == "3D image (TIFF)":
            return base / f"{cfg.folder_name}.tif"
        return base / f"{cfg.folder_name}.ome.zarr"

    def run(self) -> None:
        cfg = self.to_config()
        layer = self.labels()
        data = layer_array(layer)
        target = self.target(cfg)
        if cfg.export_type == "2D images":
            n = int(data.shape[0]) if data.ndim > 2 else 1
            source = self.image_layer.value or layer
            names = source_file_names(source, n)
            if names is None and source is not layer:
                names = source_file_names(layer, n)
            work = lambda tok: iter_export_stack(  # noqa: E731
                data, target, names, stem=layer.name, overwrite=cfg.overwrite, cancel=tok
            )
        elif cfg.export_type == "3D image (TIFF)":
            work = lambda tok: iter_export_tiff(data, target, overwrite=cfg.overwrite, cancel=tok)  # noqa: E731
        else:
            work = lambda tok: iter_export_ome_zarr(  # noqa: E731
                data,
                target,
                scale=tuple(float(s) for s in layer.scale),
                name=layer.name,
                overwrite=cfg.overwrite,
                cancel=tok,
            )
        self.start(work, on_result=self._written, description="export segmentation")

    def _written(self, result: Any) -> None:
        self.written = result
        where = result[0].parent if isinstance(result, list) and result else result
        count = f"{len(result)} files in " if isinstance(result, list) else ""
        self.final_status = f"wrote {count}{where}"
        show_info(f"Exported the segmentation: {count}{where}")
