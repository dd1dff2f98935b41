"""Dock panels of the main window: each one widget class in its own module."""
