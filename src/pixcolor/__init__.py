"""pixcolor: colorize black-and-white photos with a Pix2Pix-style colorizer in Lab space.

The one-call API mirrors whisper's ``load_model()`` / ``transcribe()``::

    import pixcolor
    model = pixcolor.load_model()            # the shipped default
    image = model.colorize("old_photo.jpg")  # PIL image, same size as the input
    big = pixcolor.upscale(image, scale=2)   # SRCNN super-resolution

Lower layers stay public: ``pixcolor.color`` (Lab conversions), ``pixcolor.models``
(``create_generator``), ``pixcolor.train.Trainer``, ``pixcolor.metrics``.
"""

__version__ = "0.1.0"

from pixcolor.pipeline import Colorizer, available_models, colorize, load_model
from pixcolor.sr import upscale

__all__ = ["Colorizer", "__version__", "available_models", "colorize", "load_model", "upscale"]
