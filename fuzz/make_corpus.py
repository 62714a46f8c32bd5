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

# orgmodel: an organisation's upload checked against fuzz/models/tiny.toml (8x8, one
# class): the manifest text, a NUL byte, the ONNX file. The ONNX file is written here by
# hand (protobuf wire format; no onnx package needed): input `image` [1,3,8,8] float,
# ReduceMean over the channels (opset 13), output `mask` [1,1,8,8].


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, value):
    """One protobuf field: int (varint) or bytes/str/nested message (length-delimited)."""
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint(number << 3 | 2) + varint(len(value)) + value


def tensor_value(name, dims):
    shape = b"".join(field(1, field(1, d)) for d in dims)  # TensorShapeProto.dim.dim_value
    tensor = field(1, 1) + field(2, shape)  # elem_type FLOAT, shape
    return field(1, name) + field(2, field(1, tensor))  # ValueInfoProto{name, TypeProto{tensor_type}}


def tiny_onnx(input_name="image", output_name="mask", out_dims=(1, 1, 8, 8), axes=1, opset=13):
    attr_axes = field(1, "axes") + field(20, 7) + field(8, axes)  # AttributeProto INTS
    attr_keep = field(1, "keepdims") + field(20, 2) + field(3, 1)  # AttributeProto INT
    node = (field(1, input_name) + field(2, output_name) + field(3, "mean")
            + field(4, "ReduceMean") + field(5, attr_axes) + field(5, attr_keep))
    graph = (field(1, node) + field(2, "tiny") + field(11, tensor_value(input_name, (1, 3, 8, 8)))
             + field(12, tensor_value(output_name, out_dims)))
    return (field(1, 8) + field(2, "besikta-fuzz") + field(7, graph)
            + field(8, field(1, "") + field(2, opset)))  # ir_version 8, opset_import


tiny = open(os.path.join(root, "fuzz/models/tiny.toml"), "rb").read()
upload = tiny.replace(b'version = "server"', b'version = "org-1"')
good = tiny_onnx()
write("orgmodel", "valid", upload + b"\0" + good)
# Refused: the server's own version; another class; the ONNX file cut short; an output
# of another name; an output of the wrong shape (the reduction over the width).
write("orgmodel", "own-version", tiny + b"\0" + good)
write("orgmodel", "other-class", upload.replace(b'name = "crack"', b'name = "pothole"') + b"\0" + good)
write("orgmodel", "cut-short", upload + b"\0" + good[:len(good) // 2])
write("orgmodel", "other-output", upload + b"\0" + tiny_onnx(output_name="probs"))
write("orgmodel", "wrong-shape", upload + b"\0" + tiny_onnx(out_dims=(1, 3, 8, 1), axes=3))
write("orgmodel", "no-model", upload)
