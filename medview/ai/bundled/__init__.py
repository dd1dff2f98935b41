"""The recipe that built MedView's bundled models from the demo generator
(scripts/train_bundled_models.sh), and their evaluation. Uses the engine; the engine never
uses it."""
