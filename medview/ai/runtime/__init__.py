"""Running a model: network construction, vetted loading of weights and exported programs,
device choice, sliding inference over a volume and Grad-CAM. The parts that import torch."""
