#!/bin/sh
# Rebuilds web/dist/ (committed, embedded in the server binary beside web/src/) from the npm
# packages pinned in package-lock.json: MapLibre GL JS (BSD-3-Clause) and tus-js-client
# (MIT) ship minified browser bundles, copied as they are with their licences.
set -eu
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
rm -rf dist && mkdir dist
cp node_modules/maplibre-gl/dist/maplibre-gl.js node_modules/maplibre-gl/dist/maplibre-gl.css dist/
cp node_modules/maplibre-gl/LICENSE.txt dist/LICENSE-maplibre-gl.txt
cp node_modules/tus-js-client/dist/tus.min.js dist/
cp node_modules/tus-js-client/LICENSE dist/LICENSE-tus-js-client.txt
echo "web/dist rebuilt: $(du -sh dist | cut -f1)"
