"""DICOM reading: indexing files into series, parsing headers, decoding pixels, assembling
volumes, tags for display, and DICOM SEG."""
