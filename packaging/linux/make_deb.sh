#!/usr/bin/env bash
# Build a .deb from the PyInstaller folder: the app in /opt/medview, /usr/bin/medview
# linked to it, the desktop entry and the icon where desktops look for them.
#
#   packaging/linux/make_deb.sh dist/MedView dist/
#
# Depends names the system libraries the bundled Qt platform plugins need (ldd on the
# bundled xcb and wayland plugins and Qt's libraries). PyInstaller copies the X11/xcb ones it
# finds on the build machine but never OpenGL/EGL or Wayland; declaring them all keeps a
# bundle built where libxcb-cursor0, -icccm4 or -keysyms1 are missing (a plain desktop
# often lacks them; docs/development.md) working. DEB_COMPRESS picks dpkg-deb's compressor:
# gzip by default (any dpkg; 1 GB in about a minute here), xz for the smallest file (slow),
# zstd for Debian 12+ / Ubuntu 22.04+. Recommends names Mesa's OpenGL drivers: the 3D view
# (VTK) needs OpenGL 3.2 from a GPU vendor's driver or Mesa (llvmpipe where there is no GPU),
# and says so in one sentence without it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
app="${1:?usage: make_deb.sh DIST_FOLDER OUT_FOLDER}"
out="${2:?usage: make_deb.sh DIST_FOLDER OUT_FOLDER}"
[ -x "$app/medview" ] || { echo "make_deb: $app/medview is missing; run packaging/build first" >&2; exit 1; }

version="$(cd "$root" && python3 -c 'import re; print(re.search(r"__version__ = \"(.+)\"", open("medview/__init__.py").read()).group(1))')"
arch="$(dpkg --print-architecture)"
depends="libc6 (>= 2.28), libgl1, libegl1, libglib2.0-0, libfontconfig1, libfreetype6, \
libdbus-1-3, libx11-6, libx11-xcb1, libxcb1, libxcb-cursor0, libxcb-icccm4, \
libxcb-image0, libxcb-keysyms1, libxcb-randr0, libxcb-render0, libxcb-render-util0, \
libxcb-shape0, libxcb-shm0, libxcb-sync1, libxcb-xfixes0, libxcb-xinerama0, libxcb-xkb1, \
libxkbcommon0, libxkbcommon-x11-0, libwayland-client0, libwayland-cursor0, libwayland-egl1"

stage="$(mktemp -d "${TMPDIR:-/tmp}/medview-deb.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
pkg="$stage/medview_${version}_${arch}"
mkdir -p "$pkg/DEBIAN" "$pkg/opt" "$pkg/usr/bin" "$pkg/usr/share/applications" \
         "$pkg/usr/share/icons/hicolor/256x256/apps" "$pkg/usr/share/icons/hicolor/scalable/apps" \
         "$pkg/usr/share/doc/medview"
cp -a "$app" "$pkg/opt/medview"
ln -s /opt/medview/medview "$pkg/usr/bin/medview"
install -m 644 "$here/medview.desktop" "$pkg/usr/share/applications/medview.desktop"
install -m 644 "$root/medview/resources/icons/medview.png" \
        "$pkg/usr/share/icons/hicolor/256x256/apps/medview.png"
install -m 644 "$root/medview/resources/icons/medview.svg" \
        "$pkg/usr/share/icons/hicolor/scalable/apps/medview.svg"
if [ -f "$app/LICENSE-THIRD-PARTY.txt" ]; then
  install -m 644 "$app/LICENSE-THIRD-PARTY.txt" "$pkg/usr/share/doc/medview/copyright"
fi

installed_kb="$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)"
cat > "$pkg/DEBIAN/control" <<EOF
Package: medview
Version: $version
Section: science
Priority: optional
Architecture: $arch
Installed-Size: $installed_kb
Depends: $depends
Recommends: libgl1-mesa-dri
Maintainer: MedView developers
Description: CT and MR viewer with AI assistance (not a medical device)
 MedView opens DICOM, NIfTI, NRRD and MHA studies, scrolls, windows and measures
 them, and runs bundled AI models that highlight findings for a radiologist to
 review. Everything runs on this computer: no server, no download on first run.
 .
 MedView is not a medical device; AI output is assistance, not a diagnosis.
EOF
cat > "$pkg/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  command -v update-desktop-database >/dev/null && update-desktop-database -q /usr/share/applications || true
  command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t /usr/share/icons/hicolor || true
fi
exit 0
EOF
cp "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/postrm"
sed -i 's/= configure/= remove/' "$pkg/DEBIAN/postrm"
chmod 755 "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/postrm"

mkdir -p "$out"
deb="$out/medview_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"${DEB_COMPRESS:-gzip}" --build "$pkg" "$deb" >/dev/null
echo "$deb"
