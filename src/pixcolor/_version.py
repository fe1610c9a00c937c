"""pixcolor's version, in a module that imports nothing, so low-level modules can read it."""

__version__ = "0.1.0"
