"""The inference core: everything about fill-mask models, nothing about Discord."""

from bot.core.errors import FillMaskError
from bot.core.types import FillRequest, FillResult, Prediction

__all__ = ["FillMaskError", "FillRequest", "FillResult", "Prediction"]
