"""Post-processing of network outputs: panoptic merge, filters, 3D linking and consensus.

3D parts (this branch): :mod:`~tamale.postprocess.median` (true median filter
across slices), :mod:`~tamale.postprocess.pieces` (2D pieces and their
overlaps), :mod:`~tamale.postprocess.linking` (slice-to-slice linking, size
and extent filters, numbering) and :mod:`~tamale.postprocess.consensus`
(ortho-plane consensus).
"""
