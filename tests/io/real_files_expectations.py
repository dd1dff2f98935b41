"""Known, explained disagreements between MedView and other DICOM readers on the real files
that pydicom and pydicom-data ship (used by test_real_files.py).

No reader is always right (docs/development.md), so each file that does not follow the
default — MedView loads it and SimpleITK (GDCM) is the reference for its values and
geometry — is listed here with the reader that was shown to be right and a one-line reason.
Each reason was settled by DICOM semantics and by the file's twins (the same image in
another transfer syntax)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Outcome = Literal["image", "non_image", "error", "dicomdir"]
Reference = Literal["sitk", "pydicom", "none"]


@dataclass(frozen=True)
class Expect:
    """What MedView must do with one file.

    outcome: "image" loads; "non_image" is listed as a non-image object; "error" ends in
    InvalidInputError/UnsupportedInputError when loaded; "dicomdir" loads the series it
    references. reference: the reader MedView's voxels must equal ("none": no single file to
    compare with). Geometry is compared with SimpleITK whenever SimpleITK reads the file."""

    outcome: Outcome = "image"
    reference: Reference = "sitk"
    reason: str = ""


DEFAULT = Expect()

_MONOCHROME1 = (
    "MONOCHROME1: GDCM inverts the values on read; MedView keeps the stored "
    "modality values and sets invert_display, as pydicom does"
)
_RGB_RLE = (
    "GDCM decodes 16- and 32-bit RGB RLE wrongly; MedView equals pydicom and the "
    "native, big-endian and 8-bit twins"
)
_RTDOSE_1FRAME = "GDCM fails an assertion on single-frame RT doses; pydicom and the twins agree"
_BIG_ENDIAN_PALETTE = (
    "pydicom reads big-endian palette LUT data byte-swapped; MedView swaps "
    "it back and equals SimpleITK and the little-endian twin"
)
_SEG = (
    "a Segmentation labels another image; MedView lists it apart instead of showing its "
    "1-bit frames as an image (GDCM turns them into 0/255)"
)
_DICOMDIR = (
    "a DICOMDIR index: MedView loads the series it references, which are checked "
    "file by file and against the DICOMDIR itself"
)

EXPECTED: dict[str, Expect] = {
    **{
        f"pydicom-data/{n}.dcm": Expect(reference="pydicom", reason=_MONOCHROME1)
        for n in (
            "RG1_J2KI",
            "RG1_J2KR",
            "RG1_UNCI",
            "RG1_UNCR",
            "RG3_J2KI",
            "RG3_J2KR",
            "RG3_UNCI",
            "RG3_UNCR",
        )
    },
    **{
        f"pydicom/dicomdirtests/77654033/{n}": Expect(reference="pydicom", reason=_MONOCHROME1)
        for n in ("CR1/6154", "CR2/6247", "CR3/6278")
    },
    "pydicom-data/mlut_18.dcm": Expect(
        reference="pydicom",
        reason="GDCM ignores the Modality LUT Sequence; MedView applies it, as pydicom does",
    ),
    **{
        f"pydicom/SC_rgb_rle_{n}.dcm": Expect(reference="pydicom", reason=_RGB_RLE)
        for n in ("16bit", "16bit_2frame", "32bit", "32bit_2frame")
    },
    "pydicom/rtdose_expb.dcm": Expect(
        reference="pydicom",
        reason="GDCM reads this 32-bit big-endian RT dose wrongly; "
        "pydicom and the little-endian and RLE twins agree",
    ),
    **{
        f"pydicom/rtdose{n}_1frame.dcm": Expect(reference="pydicom", reason=_RTDOSE_1FRAME)
        for n in ("", "_expb", "_rle")
    },
    "pydicom-data/OBXXXX1A_expb.dcm": Expect(reason=_BIG_ENDIAN_PALETTE),
    "pydicom-data/OBXXXX1A_expb_2frame.dcm": Expect(reason=_BIG_ENDIAN_PALETTE),
    "pydicom/badVR.dcm": Expect(
        reason="pydicom's pixel_array fails on its NumberOfFrames '1A'; MedView reads one "
        "frame, equal to SimpleITK and to its twin rtdose.dcm"
    ),
    "pydicom/JPEG-lossy.dcm": Expect(
        outcome="error",
        reference="none",
        reason="pydicom's JPEG decoders reject its scan header; GDCM decodes it to the values "
        "of its repaired twin JPGExtended.dcm, which MedView reads",
    ),
    **{
        k: Expect(outcome="non_image", reference="none", reason=_SEG)
        for k in (
            "pydicom-data/liver.dcm",
            "pydicom-data/liver_expb.dcm",
            "pydicom/liver_1frame.dcm",
            "pydicom/liver_expb_1frame.dcm",
        )
    },
    **{
        f"pydicom/dicomdirtests/DICOMDIR{n}": Expect(
            outcome="dicomdir", reference="none", reason=_DICOMDIR
        )
        for n in ("", "-bigEnd", "-implicit", "-nooffset", "-nopatient", "-reordered")
    },
}
