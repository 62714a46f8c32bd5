#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ from the repository's fixtures.

JPEG seeds keep a photo's header segments (EXIF, XMP, frame header, tables), the scan's
first 64 bytes and an end-of-image marker: small, yet they walk to the end like the
real photo. EXIF and XMP seeds are those payloads of the same photos. Run from anywhere;
the output is deterministic.
"""
import os, struct, sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
out = os.path.join(root, "fuzz", "corpus")
PHOTOS = ["brighton/DJI_0018.JPG", "broken/no-gps.jpg", "broken/gimbal-up.jpg",
          "broken/latitude-95.jpg", "broken/bomb-65535x65535.jpg"]
EXIF = b"Exif\0\0"
XMP = b"http://ns.adobe.com/xap/1.0/\0"


def write(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def segments(data):
    """(marker, start, end) of each header segment up to and including SOS."""
    pos = 2
    while pos + 4 <= len(data):
        assert data[pos] == 0xFF, pos
        marker = data[pos + 1]
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        yield marker, pos, pos + 2 + length
        if marker == 0xDA:
            return
        pos += 2 + length


for rel in PHOTOS:
    data = open(os.path.join(root, "fixtures", rel), "rb").read()
    stem = os.path.splitext(os.path.basename(rel))[0]
    head = bytearray(data[:2])
    for marker, start, end in segments(data):
        seg = data[start:end]
        payload = seg[4:]
        if marker == 0xE1 and payload.startswith(EXIF):
            write("exif", stem, payload[len(EXIF):])
        if marker == 0xE1 and payload.startswith(XMP):
            write("xmp", stem, payload[len(XMP):])
        # Leave out big APP2+ blobs (previews, ICC) to keep seeds small.
        if 0xE2 <= marker <= 0xEF and len(seg) > 4096:
            continue
        head += seg
        if marker == 0xDA:
            scan = data[end:end + 64].replace(b"\xff", b"\x00")
            head += scan + b"\xff\xd9"
    write("jpeg_walk", stem, bytes(head))
write("jpeg_walk", "not-a-photo", open(os.path.join(root, "fixtures/broken/not-a-photo.jpg"), "rb").read())

for rel in ["fixtures/models/coarse/mtscrack_coarse.toml", "fixtures/models/mtscrack_static.toml",
            "models/crack/crack-unet.toml", "models/pothole/pothole-det.toml",
            "models/roof/roof-damage.toml"]:
    write("manifest", os.path.basename(rel), open(os.path.join(root, rel), "rb").read())

# tus: line 1 Upload-Length/Offset, line 2 Upload-Metadata, line 3 Upload-Checksum.
write("tus_headers", "plain", b"4024770\nfilename RElKXzAwMTguSlBH,filetype aW1hZ2UvanBlZw==\n"
      b"sha1 2jmj7l5rSw0yVb/vlWAYkK/YBwk=\n")
write("tus_headers", "sha256", b"0\nname Li4vLi4vZXRjL3Bhc3N3ZA==\n"
      b"sha256 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n")
write("tus_headers", "odd", b"+12\nfilename ,name !!!\nmd5 AAAA\n")

# register: first byte picks the format (0 geojson, 1 gpkg, 2 fgb, 3 osm.pbf, 4 shp.zip)
# and the kind (/5 % 3: any, roads, roofs); the rest is the file.
road = (b'{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":"r1",'
        b'"name":"Main St","highway":"primary"},"geometry":{"type":"LineString","coordinates":'
        b'[[24.93,60.17],[24.94,60.171]]}}]}')
roof = (b'{"type":"FeatureCollection","crs":{"type":"name","properties":{"name":"EPSG:3067"}},'
        b'"features":[{"type":"Feature","properties":{"id":7},"geometry":{"type":"Polygon",'
        b'"coordinates":[[[385000,6672000],[385010,6672000],[385010,6672010],[385000,6672000]]]}}]}')
write("register", "road.geojson", bytes([0]) + road)
write("register", "roof-3067.geojson", bytes([10]) + roof)
pbf = open(os.path.join(root, "fixtures/registers/helsinki.osm.pbf"), "rb").read()
# The PBF header block and the first data block only.
write("register", "helsinki-head.osm.pbf", bytes([3]) + pbf[:16384])
