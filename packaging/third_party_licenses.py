"""Write LICENSE-THIRD-PARTY.txt for the desktop bundle: MedView's licence, then every
distribution the bundle carries (medview's requirements, followed recursively) with its
version, licence and the licence files it ships (LICENSE, COPYING, NOTICE, AUTHORS).

Data, not a hand-kept file: the curated rows of medview/resources/licenses/third_party.json
(also what the About box shows) name the licence where a package's metadata is vague, and
the rest comes from the installed metadata, so a dependency added later appears without an
edit here. Usage: python packaging/third_party_licenses.py OUT.txt"""

from __future__ import annotations

import json
import re
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CURATED = ROOT / "medview" / "resources" / "licenses" / "third_party.json"
LICENCE_FILE = re.compile(r"(^|/)(licen[cs]e|copying|notice|authors)[^/]*$", re.IGNORECASE)
RULE = "=" * 78


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _name(requirement: str) -> str | None:
    """The distribution a requirement names, or None when it is not needed here (an extra,
    another platform)."""
    from packaging.requirements import Requirement

    req = Requirement(requirement)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        return None
    return req.name


def bundled_distributions(root: str = "medview") -> list[metadata.Distribution]:
    """`root` and everything it requires, recursively, as installed here."""
    seen: dict[str, metadata.Distribution] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        key = _key(name)
        if key in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # a requirement for another platform
        seen[key] = dist
        todo += [n for n in map(_name, dist.requires or []) if n]
    return sorted(seen.values(), key=lambda d: d.metadata["Name"].lower())


def _licence(dist: metadata.Distribution, curated: dict[str, str]) -> str:
    name = _key(dist.metadata["Name"])
    if name in curated:
        return curated[name]
    meta = dist.metadata
    expression = meta.get("License-Expression")
    classifiers = [
        c.split("::")[-1].strip()
        for c in meta.get_all("Classifier") or []
        if c.startswith("License ::")
    ]
    short = (meta.get("License") or "").strip()
    if expression:
        return expression
    if short and "\n" not in short and len(short) < 80:
        return short
    return ", ".join(classifiers) or "see the licence text below"


def _texts(dist: metadata.Distribution) -> list[tuple[str, str]]:
    out = []
    for file in dist.files or []:
        if LICENCE_FILE.search(str(file)) and not str(file).endswith((".py", ".pyc")):
            try:
                out.append(
                    (
                        str(file),
                        Path(dist.locate_file(file)).read_text(encoding="utf-8", errors="replace"),
                    )
                )
            except OSError:
                continue
    return out


def render() -> str:
    rows = json.loads(CURATED.read_text(encoding="utf-8"))["components"]
    curated = {_key(r["distribution"]): r["licence"] for r in rows}
    dists = bundled_distributions()
    parts = [
        "MedView desktop app: third-party software",
        RULE,
        "MedView itself is licensed under the Apache License 2.0. The desktop app "
        "bundles the\nfollowing packages, each under its own licence (full texts below). "
        "Qt and PySide6\nare used under the GNU LGPL v3: you may replace the Qt and "
        "PySide6 libraries in\nthis folder with your own build of the same version.\n",
    ]
    for dist in dists:
        parts.append(f"  {dist.metadata['Name']:28s} {dist.version:16s} {_licence(dist, curated)}")
    for dist in dists:
        parts += [
            "",
            RULE,
            f"{dist.metadata['Name']} {dist.version} — {_licence(dist, curated)}",
            RULE,
        ]
        texts = _texts(dist)
        if not texts:
            parts.append("(this package ships no licence file; its licence is named above)")
        for path, text in texts:
            parts += [f"--- {path} ---", text.rstrip()]
    return "\n".join(parts) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    Path(argv[0]).write_text(render(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
