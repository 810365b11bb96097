"""Fine-tuning backends."""

from finetunekit.trainers.base import FineTunedModel, Trainer

__all__ = ["FineTunedModel", "Trainer"]
