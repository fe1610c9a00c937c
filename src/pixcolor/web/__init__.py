"""``pixcolor serve``: a local web page that colorizes photos (needs ``pip install 'pixcolor[web]'``).

The server is a thin layer over the public API (:func:`pixcolor.load_model`,
:meth:`pixcolor.pipeline.Colorizer.colorize`, :func:`pixcolor.sr.load_upscaler`); it holds no
model logic. Modules: ``app`` (routes), ``upload`` (reading a form under limits), ``fields``
(checking its values), ``jobs`` (queue and kept results), ``photo`` (the work on a worker
thread), ``hinting`` (colour hints: previews and suggested colours), ``models`` (loading and
warming), ``security`` (CSP, ``Host:`` check), ``server`` (uvicorn with bounded connections),
``options`` (the limits).

Example:
    >>> from pixcolor.web import WebOptions, create_app, load_models
    >>> app = create_app(load_models(["default"], device=None), WebOptions(max_queue=2))
"""

from pixcolor.web.app import create_app
from pixcolor.web.models import ModelSet, load_models
from pixcolor.web.options import WebOptions

__all__ = ["ModelSet", "WebOptions", "create_app", "load_models"]
