"""framework: a WSGI micro-framework whose spine is a signal dispatcher."""

from __future__ import annotations

from . import signals
from .dispatch import Signal
from .dispatch import receiver

__all__ = ["Signal", "receiver", "signals"]

__version__ = "0.1.0"
