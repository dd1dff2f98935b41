"""Models: cards and registry (torch-free, so listing models is fast), device choice,
inference and training. The only package that imports torch or MONAI."""
