#!/usr/bin/env bash
# `make deb`: the Debian packages tlsresume, libtlsresume0 and libtlsresume-dev, built by
# dpkg-buildpackage from a copy of the tracked files (the tree stays clean), then checked by
# lintian. usage: scripts/deb.sh OUT_DIR  (the .deb files land in OUT_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mkdir -p "${1:?OUT_DIR}" && cd "$1" && pwd)
src="$out/src/tlsresume-$(sed -n '1s/^tlsresume (\([^)]*\)).*/\1/p' debian/changelog)"
rm -rf "$out/src"
mkdir -p "$src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z | xargs -0 cp --parents -t "$src"
else
    tar --exclude='./build*' --exclude='./.git' -cf - . | tar -xf - -C "$src"
fi
(cd "$src" && dpkg-buildpackage -us -uc -b -j"$(nproc)") >"$out/build.log" 2>&1 || {
    tail -30 "$out/build.log" >&2
    echo "error deb: dpkg-buildpackage failed (log: $out/build.log)" >&2
    exit 1
}
mv "$out"/src/*.deb "$out"/src/*.changes "$out"/src/*.buildinfo "$out"/
rm -rf "$out/src"
# lintian's verdict: the tags that remain are listed in docs/DEPLOY.md with the reason.
lintian --no-tag-display-limit "$out"/tlsresume_*.changes >"$out/lintian.txt" 2>&1 || true
echo "info deb: $(ls "$out"/*.deb | tr '\n' ' ')"
echo "info deb: lintian: $(grep -c '^[EW]:' "$out/lintian.txt" || true) errors and warnings ($out/lintian.txt)"
