"""PlatformIO dev-platform class for Octo's virtual boards."""

from platformio.public import PlatformBase


class OctoPlatform(PlatformBase):
    """Everything happens in builder/main.py; no registry packages needed."""
