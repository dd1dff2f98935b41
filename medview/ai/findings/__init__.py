"""From a model's probabilities to the findings a reader sees: connected regions, their extent,
the false-positive stage, and per-lesion scoring against ground truth. numpy and scipy only."""
