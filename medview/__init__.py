"""MedView: a desktop viewer for CT and MR studies with AI assistance.

Importing this package loads neither Qt nor torch, so `medview --help` answers at once.
"""

__version__ = "0.1.0"
