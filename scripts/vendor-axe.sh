#!/usr/bin/env bash
# Vendors axe-core, the accessibility engine that tests/support/browser/accessibility.rs injects,
# from the npm registry into tests/vendor/axe-core/: the minified bundle, its licences and a
# README naming the version and the tarball's integrity.
# Usage: scripts/vendor-axe.sh [VERSION]   (default: the pinned one)
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-4.14.1}"
dest=tests/vendor/axe-core
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "axe-core@$version" >/dev/null && tar xzf "axe-core-$version.tgz")
integrity=$(cd "$work" && npm view "axe-core@$version" dist.integrity)
mkdir -p "$dest"
cp "$work/package/axe.min.js" "$work/package/LICENSE" "$work/package/LICENSE-3RD-PARTY.txt" "$dest/"
cat >"$dest/README.md" <<README
# axe-core $version (vendored)

Deque Systems' accessibility engine, which \`tests/support/browser/accessibility.rs\` injects
into pages under test (\`Browser::assert_accessible\`).

\`axe.min.js\`, \`LICENSE\` (MPL-2.0) and \`LICENSE-3RD-PARTY.txt\` are from the npm package
\`axe-core@$version\` (\`npm pack axe-core@$version\`), unmodified; the tarball's integrity:
\`$integrity\`.

Update with \`scripts/vendor-axe.sh <version>\`.
README
echo "vendored axe-core $version into $dest ($(wc -c <"$dest/axe.min.js") bytes)"
