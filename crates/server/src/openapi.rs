//! The OpenAPI 3.1 description of the API, served at `/api/v1/openapi.json`.

use axum::Json;
use serde_json::{json, Value};

fn op(summary: &str, roles: &str, responses: Value) -> Value {
    json!({
        "summary": summary,
        "description": format!("Roles: {roles}."),
        "security": [{"bearer": []}],
        "responses": responses,
    })
}

/// An id in the path: the server reads it as an i64 (400 beyond), and ids start at 1.
fn id_param(name: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": id_schema()})
}

fn id_schema() -> Value {
    json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": i64::MAX})
}

/// A whole-number query value from `min` to `max` (the server answers 400 outside).
fn int_query(name: &str, description: &str, min: i64, max: i64) -> Value {
    json!({"name": name, "in": "query", "required": false, "schema": {"type": "integer", "minimum": min, "maximum": max}, "description": description})
}

/// `?flight=ID` of an export: one flight id (404 when not one of yours).
fn flight_query() -> Value {
    json!({"name": "flight", "in": "query", "required": false, "schema": id_schema(), "description": "one flight id"})
}

/// `?flight=ID` of a findings page: a filter, so any i64 is taken (no such flight: no
/// findings).
fn flight_filter() -> Value {
    json!({"name": "flight", "in": "query", "required": false, "schema": {"type": "integer", "format": "int64", "minimum": i64::MIN, "maximum": i64::MAX}, "description": "one flight id"})
}

/// A tile coordinate in the path: z is read as a u8, x and y as u32.
fn tile_param(name: &str, max: u64) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0, "maximum": max}})
}

/// One decimal number as Rust's `f64` parser reads it (infinity and NaN left out: no
/// bounding box may hold them).
const NUMBER: &str = r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?";

/// `bbox=min_lon,min_lat,max_lon,max_lat`: four numbers, spaces allowed around each. The
/// server also refuses longitudes outside -180..180, latitudes outside -90..90 and a
/// minimum after its maximum, which a pattern cannot say.
pub(crate) fn bbox_schema() -> Value {
    let pattern = format!("^ *{NUMBER} *(, *{NUMBER} *){{3}}$");
    json!({"type": "string", "pattern": pattern})
}

fn bbox_query() -> Value {
    json!({"name": "bbox", "in": "query", "required": false, "schema": bbox_schema(), "description": "min_lon,min_lat,max_lon,max_lat (WGS 84 degrees: longitudes -180 to 180, latitudes -90 to 90, minimum first)"})
}

fn query(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "schema": {"type": "string"}, "description": description})
}

fn geojson(description: &str) -> Value {
    json!({"200": {"description": description, "content": {"application/geo+json": {"schema": {"$ref": "#/components/schemas/FeatureCollection"}}}}})
}

/// A page of findings: GeoJSON, or 304 when `If-None-Match` names its ETag.
fn findings_page(description: &str) -> Value {
    let mut responses = geojson(description);
    responses["200"]["headers"] = json!({"ETag": {"required": true, "schema": {"type": "string"},
        "description": "strong: changes when the organisation's findings or reviews do"}});
    responses["304"] =
        json!({"description": "If-None-Match names the page's ETag: nothing changed"});
    responses
}

const ERRORS: &str =
    "401: no or unknown token; 403: the role may not; 404: not found in your organisation";

pub fn document() -> Value {
    let tus_headers = json!([
        {"name": "Tus-Resumable", "in": "header", "required": true, "schema": {"type": "string", "const": "1.0.0"}}
    ]);
    let tus_create_headers = json!([
        {"name": "Tus-Resumable", "in": "header", "required": true, "schema": {"type": "string", "const": "1.0.0"}},
        {"name": "Upload-Length", "in": "header", "required": true, "schema": {"type": "integer", "minimum": 0}, "description": "the photo's size in bytes (Upload-Defer-Length is not supported)"}
    ]);
    let tus_version = json!({"required": true, "schema": {"type": "string", "const": "1.0.0"}});
    let tus_capabilities = json!({"description": "capabilities", "headers": {
        "Tus-Resumable": tus_version,
        "Tus-Version": {"required": true, "schema": {"type": "string"}},
        "Tus-Extension": {"required": true, "schema": {"type": "string"}},
        "Tus-Checksum-Algorithm": {"required": true, "schema": {"type": "string"}},
        "Tus-Max-Size": {"required": true, "schema": {"type": "integer", "minimum": 0}}
    }});
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Besikta",
            "version": "1",
            "description": format!("Drone inspection photos in, road and roof defects on a map out. Every route needs 'Authorization: Bearer TOKEN'. {ERRORS}."),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]},
                "FeatureCollection": {"type": "object", "properties": {"type": {"const": "FeatureCollection"}, "features": {"type": "array"}}},
                "FindingReview": crate::review::openapi_schema(),
                "Flight": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "name": {"type": "string"},
                    "state": {"enum": ["uploading", "queued", "running", "done", "failed"]},
                    "progress": {"type": ["object", "null"], "properties": {"stage": {"type": "string"}, "done": {"type": "integer"}, "total": {"type": "integer"}, "file": {"type": ["string", "null"]}}},
                    "rejected": {"type": "array", "items": {"type": "object", "properties": {"file": {"type": "string"}, "reason": {"type": "string"}}}},
                    "warnings": {"type": "array", "items": {"type": "string"}, "description": "What the crew should know about the finished job (summary.json warnings): e.g. a model not run on photos too coarse for it, with the height to fly. Empty before a job finished."},
                    "photos_removed": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "removed_at": {"type": "string", "format": "date-time"}, "reason": {"enum": ["retention"]}}}, "description": "Original photos whose files the retention period (--retain-photos-days) removed; findings, products and each finding's default crop stay."},
                    "error": {"type": ["string", "null"]}, "created_at": {"type": "string", "format": "date-time"}, "photos": {"type": "integer"}
                }}
            }
        },
        "paths": {
            "/api/v1/me": {"get": op("The token's organisation, role and rights", "all", json!({"200": {"description": "who you are"}}))},
            "/api/v1/flights": {
                "post": {
                    "summary": "Create a flight", "description": "Roles: crew, admin.", "security": [{"bearer": []}],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 200, "description": "1 to 200 bytes once spaces around it are trimmed"}}, "required": ["name"]}}}},
                    "responses": {"201": {"description": "created", "content": {"application/json": {"schema": {"type": "object", "properties": {"id": {"type": "integer"}}}}}}}
                },
                "get": op("List flights, newest first", "all", json!({"200": {"description": "{\"flights\": [Flight]}"}}))
            },
            "/api/v1/flights/{id}": {"parameters": [id_param("id")],
                "get": op("A flight's state, progress and rejected photos", "all", json!({"200": {"description": "the flight", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Flight"}}}}})),
                "delete": op("Delete the flight with its photos, crops, findings and products (recorded in the audit log)", "planner, admin", json!({"200": {"description": "{\"deleted\": id, \"photos\": n, \"findings\": n}"}, "409": {"description": "a job is processing the flight; try when it has finished"}}))},
            "/api/v1/audit": {"get": {"summary": "The organisation's audit log, newest first: token creation, work-order status changes, register uploads, flight deletions (who: token id and role; when; what)", "description": "Roles: admin.", "security": [{"bearer": []}],
                "parameters": [int_query("limit", "entries to return (default 200)", 1, 5000)],
                "responses": {"200": {"description": "{\"entries\": [{id, at, token, role, action, detail}]}"}, "400": {"description": "bad limit"}}}},
            "/api/v1/flights/{id}/process": {"parameters": [id_param("id")], "post": op("Queue processing (idempotent while queued or running; a photo uploaded during a run queues a follow-up job, which is then the one returned)", "crew, admin", json!({"202": {"description": "{\"job\": id, \"state\": \"queued\" or \"running\"}"}, "409": {"description": "no photos yet, or original photos removed by the retention period"}}))},
            "/api/v1/flights/{id}/uploads": {
                "parameters": [id_param("id")],
                "options": {"summary": "tus capabilities: Tus-Version, Tus-Extension (creation, termination, checksum, expiration: Upload-Expires on creation, HEAD and PATCH; unfinished uploads are removed after it), Tus-Checksum-Algorithm (sha1, sha256), Tus-Max-Size",
                    // The same for every flight and upload: the path is not read (no token needed).
                    "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}, "description": "not read"}],
                    "responses": {"204": tus_capabilities}},
                "post": {"summary": "tus creation: Upload-Length and Upload-Metadata (filename base64)", "description": "Roles: crew, admin.", "security": [{"bearer": []}],
                    "parameters": tus_create_headers,
                    "responses": {"201": {"description": "Location of the new upload", "headers": {
                        "Location": {"required": true, "schema": {"type": "string"}},
                        "Tus-Resumable": tus_version,
                        "Upload-Offset": {"required": true, "schema": {"type": "integer", "minimum": 0}}}},
                        "422": {"description": "Upload-Length: 0: an empty file is not a photo (Besikta-Photo: rejected)"}, "412": {"description": "unsupported tus version"}, "413": {"description": "larger than the limit, or the photo would go over the organisation's quota (--quota-photo-gb, --quota-photos); the reason names it"}}}
            },
            "/api/v1/flights/{id}/uploads/{upload}": {
                "parameters": [id_param("id"), {"name": "upload", "in": "path", "required": true, "schema": {"type": "string"}}],
                "head": {"summary": "tus: the offset received so far", "security": [{"bearer": []}], "responses": {"200": {"description": "Upload-Offset, Upload-Length"}}},
                "patch": {"summary": "tus: append bytes at Upload-Offset (Content-Type application/offset+octet-stream), optionally verified by Upload-Checksum", "security": [{"bearer": []}],
                    "parameters": tus_headers,
                    "responses": {"204": {"description": "new Upload-Offset; when complete, Besikta-Photo: stored or duplicate"}, "409": {"description": "offset mismatch"}, "413": {"description": "more bytes than Upload-Length: nothing of the request kept, Upload-Offset says where to resume"}, "422": {"description": "complete but not a readable photo (Besikta-Photo: rejected)"}, "460": {"description": "checksum mismatch; nothing kept"}, "507": {"description": "disk full"}}},
                "delete": {"summary": "tus termination", "security": [{"bearer": []}], "responses": {"204": {"description": "deleted"}}}
            },
            "/api/v1/flights/{id}/photos": {"parameters": [id_param("id")], "post": {
                "summary": "Upload a small batch as multipart/form-data (one photo per file part)", "description": "Roles: crew, admin.", "security": [{"bearer": []}],
                "requestBody": {"content": {"multipart/form-data": {"schema": {"type": "object"}}}},
                "responses": {"200": {"description": "{\"files\": [{file, status: stored|duplicate|rejected, reason?}]}"}, "400": {"description": "the request broke off: {\"error\": ..., \"files\": [...]} lists the photos stored before the break"}, "413": {"description": "the organisation's photo quota is full (--quota-photos, --quota-photo-gb); a batch that fills it on the way has its later photos rejected with that reason"}}}},
            "/api/v1/flights/{id}/findings.geojson": {"parameters": [id_param("id")], "get": {"summary": "A flight's findings (same filters and paging as /api/v1/findings.geojson)", "description": "Roles: viewer, planner, admin.", "security": [{"bearer": []}],
                "parameters": [bbox_query(), query("class", "comma-separated classes"), query("severity", "comma-separated: low, medium, high"), query("review", crate::review::FILTER_DOC), query("since", "date or date-time"), int_query("limit", "page size", 1, 5000), int_query("after", "the last finding id of the previous page", 0, i64::MAX)],
                "responses": findings_page("findings")}},
            "/api/v1/flights/{id}/footprints.geojson": {"parameters": [id_param("id")], "get": op("A flight's photo footprints", "viewer, planner, admin", geojson("footprints"))},
            "/api/v1/flights/{id}/mosaic": {"parameters": [id_param("id")], "get": op("Whether the flight has an orthomosaic, and its tile URL template", "viewer, planner, admin", json!({"200": {"description": "{available, tiles}", "content": {"application/json": {}}}}))},
            "/api/v1/flights/{id}/mosaic/{z}/{x}/{y}.png": {"parameters": [id_param("id"), tile_param("z", u8::MAX.into()), tile_param("x", u32::MAX.into()), tile_param("y", u32::MAX.into())], "get": op("A 256 px Web Mercator tile of the flight's orthomosaic (made when the server runs with --mosaic-gsd-cm); 404 where it has no ground", "viewer, planner, admin", json!({"200": {"description": "PNG", "content": {"image/png": {}}}}))},
            "/api/v1/findings.geojson": {"get": {
                "summary": "Findings across flights", "description": "Roles: viewer, planner, admin.", "security": [{"bearer": []}],
                "parameters": [
                    bbox_query(),
                    query("class", "comma-separated classes, e.g. crack,pothole"),
                    query("severity", "comma-separated: low, medium, high"),
                    query("review", crate::review::FILTER_DOC),
                    query("since", "date or date-time (RFC 3339): findings stored since then"),
                    flight_filter(),
                    int_query("limit", "page size (default: all); a full page carries `next` and a Link rel=\"next\" header", 1, 5000),
                    int_query("after", "the last finding id of the previous page", 0, i64::MAX)
                ],
                "responses": findings_page("findings; each feature's id is the finding id used below; properties include the FindingReview members")}},
            "/api/v1/findings/{id}/photo.jpg": {"parameters": [id_param("id")], "get": op("The best view cropped around the defect, outline drawn", "viewer, planner, admin", json!({"200": {"description": "JPEG; header X-Besikta-Crop: cache (in memory), precomputed (made when the flight was processed) or decoded (made now from the photo)", "content": {"image/jpeg": {}}}, "304": {"description": "If-None-Match names the crop's ETag"}, "410": {"description": "the crop needs the original photo, which the retention period removed (the default crop stays available)"}}))},
            "/api/v1/findings/{id}/status": {"parameters": [id_param("id")], "put": {
                "summary": "Set the work-order status", "description": "Roles: planner, admin.", "security": [{"bearer": []}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {"status": {"enum": ["open", "scheduled", "in_progress", "done", "dismissed"]}}, "required": ["status"]}}}},
                "responses": {"200": {"description": "updated"}}}},
            "/api/v1/registers": {"get": op("The organisation's registers", "viewer, planner, admin", json!({"200": {"description": "{\"registers\": [...]}"}}))},
            "/api/v1/registers/{kind}": {"parameters": [{"name": "kind", "in": "path", "required": true, "schema": {"enum": ["roads", "roofs", "osm"]}}], "put": {
                "summary": "Upload a register (one GeoPackage, GeoJSON, FlatGeobuf or OSM PBF file as the body)", "description": "Roles: admin.", "security": [{"bearer": []}],
                "requestBody": {"content": {"application/octet-stream": {}}},
                "responses": {"200": {"description": "stored: {kind, format, bytes, assets, crs}"}, "415": {"description": "unknown format"}, "422": {"description": "the file cannot be read as a register (damaged, no layers, no CRS, no lines or polygons): the reason says which; the register in use is kept"}}}},
            "/api/v1/registers/{kind}/data": {"parameters": [{"name": "kind", "in": "path", "required": true, "schema": {"type": "string"}}], "get": op("A GeoJSON register as uploaded", "viewer, planner, admin", geojson("register"))},
            "/api/v1/tokens": {"post": {
                "summary": "Create a token in your organisation", "description": "Roles: admin.", "security": [{"bearer": []}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {"role": {"enum": ["crew", "viewer", "planner", "admin"]}}, "required": ["role"]}}}},
                "responses": {"201": {"description": "{\"token\": \"...\"} (shown once)"}}}},
            "/healthz": {"get": {"summary": "200 when the database answers", "security": [], "responses": {"200": {"description": "ok"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics: without a token this process's HTTP figures only; with an admin token also that organisation's flights, photos, findings and jobs", "security": [{}, {"bearer": []}], "responses": {"200": {"description": "text exposition format"}, "401": {"description": "unknown token"}, "403": {"description": "a token that is not an admin's"}}}}
        }
    });
    // Outside the literal above, which is at the macro's recursion limit.
    doc["paths"]["/api/v1/findings/{id}/review"] =
        json!({"parameters": [id_param("id")], "put": crate::review::openapi_put()});
    doc["paths"]["/api/v1/org/settings"] = crate::orgsettings::openapi_path();
    doc["paths"]["/api/v1/findings/{id}/views"] = crate::views::openapi_path();
    if let Some(paths) = crate::orgmodels::openapi_paths().as_object() {
        for (path, item) in paths {
            doc["paths"][format!("/api/v1{path}")] = item.clone();
        }
    }
    if let Some(paths) = crate::orgreference::openapi_paths().as_object() {
        for (path, item) in paths {
            doc["paths"][format!("/api/v1{path}")] = item.clone();
        }
    }
    doc["paths"]["/api/v1/training-export"] = crate::training::openapi_path();
    doc["paths"]["/api/v1/registers/{kind}/features"] = crate::registermap::openapi_path();
    doc["paths"]["/api/v1/classes"] = json!({"get": op(
        "The classes of the service's models (what a corrected class may be): {\"classes\": [{name, asset_kind}]}",
        "viewer, planner, admin",
        json!({"200": {"description": "the classes"}}),
    )});
    let include = query(
        "include",
        "unreviewed: also unreviewed findings, marked unreviewed in the review column; reviewed: confirmed and corrected only. Without it, the organisation's setting workorders_include_unreviewed decides (default: reviewed only). Rejected findings are never work",
    );
    let export = |summary: &str, responses: Value| {
        json!({"get": {"summary": summary, "description": "Roles: planner, admin. Work orders contain the confirmed and corrected findings (a correction's class and severity applied); rejected ones never.", "security": [{"bearer": []}],
            "parameters": [flight_query(), include.clone()], "responses": responses}})
    };
    doc["paths"]["/api/v1/workorders.csv"] = export(
        "Work orders of all processed flights (flight_id column first), or ?flight=ID; each order's findings share one review state, in the last columns review, reviewed_by (token names, space-separated) and reviewed_at (the latest review)",
        json!({"200": {"description": "CSV", "content": {"text/csv": {}}}, "422": {"description": "unknown include"}}),
    );
    doc["paths"]["/api/v1/workorders.geojson"] = export(
        "Work orders as GeoJSON (all processed flights, or ?flight=ID); properties review, reviewed_by (array of token names), reviewed_at",
        geojson("work orders"),
    );
    doc["paths"]["/api/v1/workorders.gpkg"] = export(
        "The findings that are work, as a GeoPackage: of ?flight=ID, else of the latest processed flight",
        json!({"200": {"description": "GeoPackage", "content": {"application/geopackage+sqlite3": {}}}}),
    );
    doc["paths"]["/api/v1/openapi.json"] = json!({"get": {"summary": "This document", "security": [], "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}}}});
    // tus clients may ask an upload's URL for the capabilities too.
    doc["paths"]["/api/v1/flights/{id}/uploads/{upload}"]["options"] =
        doc["paths"]["/api/v1/flights/{id}/uploads"]["options"].clone();
    crate::openapi_errors::add(&mut doc);
    doc
}

pub async fn openapi() -> Json<Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param<'a>(doc: &'a Value, path: &str, name: &str) -> &'a Value {
        doc["paths"][path]["parameters"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["name"] == name))
            .unwrap_or_else(|| panic!("{path} has no parameter {name}"))
    }

    #[test]
    fn the_bbox_pattern_takes_four_numbers_and_nothing_else() {
        let schema = bbox_schema();
        let re = regex::Regex::new(schema["pattern"].as_str().unwrap()).unwrap();
        // What both bbox parsers (findings and register features) read as four numbers.
        for ok in ["24,60,25,61", " -180 , -90.0,180., 9e1", "+1.5,.5,2,1E0"] {
            assert!(re.is_match(ok), "{ok}");
            let nums: Vec<f64> = ok.split(',').map(|x| x.trim().parse().unwrap()).collect();
            assert_eq!(nums.len(), 4);
        }
        for bad in [
            "",
            "1,2,3",
            "1,2,x,3,4",
            "1,2,,3,4",
            "1,2,3,4,5",
            "1;2;3;4",
            "inf,0,1,1",
            "NaN,0,1,1",
            "1,2,3,4\n",
        ] {
            assert!(!re.is_match(bad), "{bad:?}");
        }
    }

    #[test]
    fn path_numbers_are_bounded_as_the_server_reads_them() {
        let doc = document();
        let tile = "/api/v1/flights/{id}/mosaic/{z}/{x}/{y}.png";
        // axum reads z as a u8 and x, y as u32: anything beyond is a 400, not a tile.
        for (name, max) in [
            ("z", u64::from(u8::MAX)),
            ("x", u32::MAX.into()),
            ("y", u32::MAX.into()),
        ] {
            let schema = &param(&doc, tile, name)["schema"];
            assert_eq!(
                (schema["minimum"].as_u64(), schema["maximum"].as_u64()),
                (Some(0), Some(max)),
                "{name}"
            );
        }
        let id = &param(&doc, "/api/v1/flights/{id}", "id")["schema"];
        assert_eq!(
            (id["minimum"].as_i64(), id["maximum"].as_i64()),
            (Some(1), Some(i64::MAX))
        );
        // tus creation names the headers it cannot work without.
        let create = &doc["paths"]["/api/v1/flights/{id}/uploads"]["post"];
        let required: Vec<&str> = create["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "header" && p["required"] == true)
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(required, ["Tus-Resumable", "Upload-Length"]);
    }
}
