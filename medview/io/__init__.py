"""Files and networks in and out: pydicom, SimpleITK, highdicom. No Qt, no torch."""
