"""Test-wide settings: Qt runs offscreen, logs stay inside the test's temporary folders."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
