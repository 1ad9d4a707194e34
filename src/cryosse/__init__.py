"""cryosse: the Mu et al. 2024 (DeepSSETracer 1.1) dataset, benchmark and predictor as a workflow."""

__version__ = "0.1.0"
