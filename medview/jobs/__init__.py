"""Long operations as plain generators composing io (and later ai), with no Qt: the same job
runs in a test, in the CLI and, through ui/workers.py, in the GUI (docs/architecture.md).

A job is `def job(inputs..., ctx: JobContext) -> Generator[Progress, None, Result]`."""
