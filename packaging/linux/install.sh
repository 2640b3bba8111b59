#!/usr/bin/env bash
# Install the built bundle for the current user on Linux: the app, its menu entry, its icon and
# "Open with PathShare" for *.age files. No root needed; run again to update.
#
#   packaging/linux/install.sh [BUNDLE_DIR]      # default: dist/pathshare
#
# Installs to ~/.local/opt/pathshare, links ~/.local/bin/pathshare, and registers the .desktop entry,
# icon and MIME type under ~/.local/share. Remove with: packaging/linux/install.sh --uninstall
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DATA="${XDG_DATA_HOME:-$HOME/.local/share}"
OPT="$HOME/.local/opt/pathshare"
BIN="$HOME/.local/bin"

if [[ "${1:-}" == "--uninstall" ]]; then
  rm -rf "$OPT" "$BIN/pathshare" "$DATA/applications/pathshare.desktop" \
    "$DATA/icons/hicolor/256x256/apps/pathshare.png" "$DATA/icons/hicolor/scalable/apps/pathshare.svg" \
    "$DATA/mime/packages/pathshare.xml"
  command -v update-mime-database >/dev/null && update-mime-database "$DATA/mime" || true
  echo "PathShare removed (your vault and settings are kept)."
  exit 0
fi

BUNDLE="$(realpath "${1:-$ROOT/dist/pathshare}")"
[[ -x "$BUNDLE/pathshare" ]] || { echo "install: no bundle at $BUNDLE; run 'make package' first." >&2; exit 1; }

mkdir -p "$OPT" "$BIN" "$DATA/applications" "$DATA/icons/hicolor/256x256/apps" \
  "$DATA/icons/hicolor/scalable/apps" "$DATA/mime/packages"
rm -rf "$OPT" && cp -a "$BUNDLE" "$OPT"
ln -sfn "$OPT/pathshare" "$BIN/pathshare"
# The menu entry runs the installed binary by its full path (~/.local/bin may not be on PATH).
sed -e "s|^Exec=pathshare|Exec=$OPT/pathshare|" -e "s|^TryExec=pathshare|TryExec=$OPT/pathshare|" \
  "$HERE/pathshare.desktop" >"$DATA/applications/pathshare.desktop"
cp "$ROOT/packaging/icons/pathshare.png" "$DATA/icons/hicolor/256x256/apps/pathshare.png"
cp "$ROOT/packaging/icons/pathshare.svg" "$DATA/icons/hicolor/scalable/apps/pathshare.svg"
cp "$HERE/pathshare-mime.xml" "$DATA/mime/packages/pathshare.xml"
command -v update-mime-database >/dev/null && update-mime-database "$DATA/mime" || true
command -v update-desktop-database >/dev/null && update-desktop-database "$DATA/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$DATA/icons/hicolor" || true
echo "PathShare installed in $OPT (menu entry, icon and *.age association registered)."
