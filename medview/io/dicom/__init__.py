"""DICOM reading: indexing files into series, parsing headers, decoding pixels, assembling
volumes, tags for display, and DICOM SEG. pydicom is imported here first, lean
(lean_import), since every module of this package imports it."""

from medview.io.dicom.lean_import import import_pydicom

import_pydicom()
