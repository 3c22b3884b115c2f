"""The inference core: everything about fill-mask models, nothing about Discord."""

from bot.inference.errors import FillMaskError
from bot.inference.types import FillRequest, FillResult, Prediction

__all__ = ["FillMaskError", "FillRequest", "FillResult", "Prediction"]
