"""schemathesis hooks for crates/cli/tests/openapi_fuzz.rs (loaded through SCHEMATHESIS_HOOKS).

Bodies of binary media types schemathesis has no serializer for (the GeoTIFF of
PUT /api/v1/org/reference) are sent as raw bytes, like application/octet-stream.
"""
import schemathesis

schemathesis.serializer.alias("image/tiff", "application/octet-stream")
