"""Getting training data: downloads, image sources and list files, the tutorial's split.

The dataset class and the uint8 cache live in :mod:`pixcolor.data`; the preview grid in
:mod:`pixcolor.datasets.preview`.
"""

from pixcolor.datasets.download import coco_sample, download, safe_extract
from pixcolor.datasets.split import read_file_list, resolve_files, seed_split, write_split

__all__ = [
    "coco_sample",
    "download",
    "read_file_list",
    "resolve_files",
    "safe_extract",
    "seed_split",
    "write_split",
]
