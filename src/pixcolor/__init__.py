"""pixcolor: colorize black-and-white photos with a Pix2Pix conditional GAN in Lab space.

The one-call API mirrors whisper's ``load_model()`` / ``transcribe()``::

    import pixcolor
    model = pixcolor.load_model()          # the shipped default
    image = model.colorize("old_photo.jpg")  # PIL image, same size as the input
"""

__version__ = "0.1.0"
