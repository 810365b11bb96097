"""Chat models (what answers questions) and local model sources."""

from finetunekit.models.base import ChatModel, ModelSource, to_messages

__all__ = ["ChatModel", "ModelSource", "to_messages"]
