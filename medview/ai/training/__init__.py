"""The fine-tune engine behind `medview train` and the Training panel: job files, study
preparation, patches, the training loop, checkpoints, metrics and new versions. The job and
run files (job, runs, data) are read by the UI and import no torch at module level."""
