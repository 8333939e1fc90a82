"""The model registry: model versions made from job outputs (stored as datasets are), aliases."""
