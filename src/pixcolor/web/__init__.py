"""``pixcolor serve``: a local web page that colorizes photos (needs ``pip install 'pixcolor[web]'``).

The server is a thin layer over the public API (:func:`pixcolor.pipeline.load_model`,
:meth:`pixcolor.pipeline.Colorizer.colorize`); it holds no model logic.

Example:
    >>> from pixcolor.pipeline import load_model
    >>> from pixcolor.web import create_app
    >>> app = create_app(load_model())  # then: uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from pixcolor.web.app import create_app

__all__ = ["create_app"]
