"""AI assistance, in five parts by role (docs/architecture.md), each importing only those
after it: `bundled` (the recipe that built the shipped models) -> `training` (the fine-tune
engine) -> `runtime` (loading, devices, inference, Grad-CAM) -> `findings` (post-processing,
extent, false-positive stage, scoring) -> `models` (cards and the registry: no torch, the one
part the UI reads)."""
