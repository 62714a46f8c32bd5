//! Registers on the map whatever format was uploaded: the OpenStreetMap fixture, and
//! GeoPackage, zipped shapefile, FlatGeobuf and GeoJSON registers made from it with GDAL's
//! `ogr2ogr`, are uploaded through the API, and the features served for a bounding box are
//! compared with what `ogr2ogr -spat` (GDAL's own tool, the truth from outside) gives for
//! the same box: the same assets, names and coordinates. Also the cap, the roles and the
//! bad requests.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{env, fixture, Env};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Central Helsinki around the university: 201 roads and 55 buildings of the fixture.
const BBOX: [f64; 4] = [24.944, 60.168, 24.951, 60.171];

fn bbox_arg() -> String {
    BBOX.map(|v| v.to_string()).join(",")
}

/// One asset: name and its coordinates flattened in order.
type Assets = BTreeMap<String, (Option<String>, Vec<[f64; 2]>)>;

fn flatten(v: &Value, out: &mut Vec<[f64; 2]>) {
    match v.as_array() {
        Some(a) if a.len() >= 2 && a[0].is_number() => {
            out.push([a[0].as_f64().unwrap(), a[1].as_f64().unwrap()])
        }
        Some(a) => a.iter().for_each(|x| flatten(x, out)),
        None => {}
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `ogr2ogr -f GeoJSON` of `layer` (all layers of a one-layer file when `None`) with
/// GDAL's spatial filter on [`BBOX`] and an optional attribute filter, as assets by the id
/// `id_of` gives a feature's properties.
fn ogr(
    file: &Path,
    layer: Option<&str>,
    filter: Option<&str>,
    id_of: impl Fn(&Value) -> String,
) -> Assets {
    let mut cmd = Command::new("ogr2ogr");
    cmd.args(["-f", "GeoJSON", "/vsistdout/"]).arg(file);
    if let Some(l) = layer {
        cmd.arg(l);
    }
    if let Some(w) = filter {
        cmd.args(["-where", w]);
    }
    cmd.arg("-spat").args(BBOX.map(|v| v.to_string()));
    let out = cmd
        .output()
        .expect("GDAL's ogr2ogr runs (apt-get install gdal-bin)");
    assert!(
        out.status.success(),
        "ogr2ogr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut assets = Assets::new();
    for f in fc["features"].as_array().unwrap() {
        let mut coords = Vec::new();
        flatten(&f["geometry"]["coordinates"], &mut coords);
        let name = text_of(&f["properties"]["name"]);
        let before = assets.insert(id_of(&f["properties"]), (name, coords));
        assert!(before.is_none(), "ids are unique in the truth");
    }
    assets
}

/// `ogr2ogr` from the OSM fixture into `out` (its driver by extension), with extra args.
fn convert(out: &Path, args: &[&str]) {
    let status = Command::new("ogr2ogr")
        .arg(out)
        .arg(fixture("registers/helsinki.osm.pbf"))
        .args(args)
        .output()
        .expect("GDAL's ogr2ogr runs");
    assert!(
        status.status.success(),
        "ogr2ogr {}: {}",
        out.display(),
        String::from_utf8_lossy(&status.stderr)
    );
}

async fn upload(e: &Env, kind: &str, file: &Path) -> Value {
    let r = e
        .send(
            Method::PUT,
            &format!("/api/v1/registers/{kind}"),
            Some(e.token("a", "admin")),
            &[],
            Body::from(std::fs::read(file).unwrap()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}: {}", file.display(), r.text());
    r.json()
}

/// The served features of `kind` in [`BBOX`], and the whole answer.
async fn served(e: &Env, kind: &str, extra: &str) -> (Assets, Value, Option<String>) {
    let r = e
        .get(
            &format!(
                "/api/v1/registers/{kind}/features?bbox={}{extra}",
                bbox_arg()
            ),
            e.token("a", "viewer"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/geo+json"));
    let capped = r.header("x-besikta-capped").map(String::from);
    let fc = r.json();
    let mut assets = Assets::new();
    for f in fc["features"].as_array().unwrap() {
        let mut coords = Vec::new();
        flatten(&f["geometry"]["coordinates"], &mut coords);
        let id = f["properties"]["asset_id"].as_str().unwrap().to_string();
        assert_eq!(f["id"].as_str(), Some(id.as_str()));
        let name = f["properties"]["asset_name"].as_str().map(String::from);
        assets.insert(id, (name, coords));
    }
    (assets, fc, capped)
}

/// Same assets, same names, every coordinate within 1e-7 degrees (about 1 cm).
fn assert_same(what: &str, served: &Assets, truth: &Assets) {
    let a: Vec<&String> = served.keys().collect();
    let b: Vec<&String> = truth.keys().collect();
    assert_eq!(a, b, "{what}: served ids vs ogr2ogr's");
    let mut worst = 0.0f64;
    for (id, (name, coords)) in served {
        let (tname, tcoords) = &truth[id];
        assert_eq!(name, tname, "{what}: name of {id}");
        assert_eq!(coords.len(), tcoords.len(), "{what}: vertices of {id}");
        for (p, q) in coords.iter().zip(tcoords) {
            worst = worst.max((p[0] - q[0]).abs()).max((p[1] - q[1]).abs());
        }
    }
    assert!(
        worst < 1e-7,
        "{what}: coordinates differ by up to {worst} degrees"
    );
    println!(
        "{what}: {} assets as ogr2ogr -spat, coordinates within {worst:.1e} degrees",
        served.len()
    );
}

fn osm_id(p: &Value) -> String {
    text_of(&p["osm_id"]).expect("an osm_id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_of_every_format_are_served_by_bounding_box_as_gdal_reads_them() {
    let e = env();
    let pbf = fixture("registers/helsinki.osm.pbf");

    // OpenStreetMap: roads from `lines` (tagged highway) and buildings from
    // `multipolygons` (tagged building), ids as `way/N` or `relation/N`.
    let put = upload(&e, "osm", &pbf).await;
    assert_eq!(put["format"], "osm.pbf");
    let mut truth = ogr(&pbf, Some("lines"), Some("highway IS NOT NULL"), |p| {
        format!("way/{}", osm_id(p))
    });
    let roads = truth.len();
    truth.extend(ogr(
        &pbf,
        Some("multipolygons"),
        Some("building IS NOT NULL"),
        |p| match text_of(&p["osm_way_id"]) {
            Some(w) => format!("way/{w}"),
            None => format!("relation/{}", osm_id(p)),
        },
    ));
    assert!(roads > 100 && truth.len() - roads > 30, "a busy box");
    let (got, fc, capped) = served(&e, "osm", "").await;
    assert_same("osm.pbf", &got, &truth);
    assert_eq!(fc["matched"], truth.len());
    assert_eq!(
        (fc["capped"].as_bool(), capped.as_deref()),
        (Some(false), Some("false"))
    );
    let kinds: Vec<&str> = fc["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["asset_kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "road").count(), roads);
    assert_eq!(
        kinds.iter().filter(|k| **k == "roof").count(),
        truth.len() - roads
    );

    // The cap: the first `limit` assets, and the answer says it left some out.
    let (got, fc, capped) = served(&e, "osm", "&limit=10").await;
    assert_eq!(got.len(), 10);
    assert_eq!(fc["matched"], truth.len());
    assert_eq!(fc["limit"], 10);
    assert_eq!(
        (fc["capped"].as_bool(), capped.as_deref()),
        (Some(true), Some("true"))
    );
    assert!(got.keys().all(|k| truth.contains_key(k)));

    // Other formats, made from the fixture by ogr2ogr and read back by it as the truth.
    let dir = tempfile::tempdir().unwrap();
    let gpkg = dir.path().join("roads.gpkg");
    convert(
        &gpkg,
        &["lines", "-where", "highway IS NOT NULL", "-nln", "roads"],
    );
    let fgb = dir.path().join("roads.fgb");
    convert(
        &fgb,
        &[
            "lines",
            "-where",
            "highway IS NOT NULL",
            "-select",
            "osm_id,name,highway",
        ],
    );
    // Buildings with one id column; a shapefile zipped as GDAL writes `.shp.zip`, and the
    // same as GeoJSON.
    let shp = dir.path().join("roofs.shp.zip");
    let roofs_sql = "SELECT COALESCE(osm_way_id, osm_id) AS id, name, building, geometry \
                     FROM multipolygons WHERE building IS NOT NULL";
    convert(
        &shp,
        &["-dialect", "SQLite", "-sql", roofs_sql, "-nln", "roofs"],
    );
    let geojson = dir.path().join("roofs.geojson");
    convert(&geojson, &["-dialect", "SQLite", "-sql", roofs_sql]);
    let id = |p: &Value| text_of(&p["id"]).expect("an id");
    for (kind, file, format, id_of) in [
        ("roads", &gpkg, "gpkg", &osm_id as &dyn Fn(&Value) -> String),
        ("roofs", &shp, "shp.zip", &id),
        ("roads", &fgb, "fgb", &osm_id),
        ("roofs", &geojson, "geojson", &id),
    ] {
        let put = upload(&e, kind, file).await;
        assert_eq!(put["format"], format);
        let truth = ogr(file, None, None, id_of);
        assert!(
            truth.len() > 30,
            "{format}: {} assets in the box",
            truth.len()
        );
        let (got, fc, _) = served(&e, kind, "").await;
        assert_same(format, &got, &truth);
        assert_eq!(fc["capped"], false);
    }

    // The list offers the features of every register, whatever its format.
    let list = e
        .get("/api/v1/registers", e.token("a", "viewer"))
        .await
        .json();
    let mut urls: Vec<(String, String)> = list["registers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["format"].as_str().unwrap().to_string(),
                r["features_url"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    urls.sort();
    assert_eq!(
        urls,
        [
            ("fgb".into(), "/api/v1/registers/roads/features".into()),
            ("geojson".into(), "/api/v1/registers/roofs/features".into()),
            ("osm.pbf".into(), "/api/v1/registers/osm/features".into()),
        ]
    );

    // Roles and organisations: crews do not read registers; another organisation has none.
    let uri = format!("/api/v1/registers/osm/features?bbox={}", bbox_arg());
    assert_eq!(
        e.get(&uri, e.token("a", "crew")).await.status,
        StatusCode::FORBIDDEN
    );
    for role in ["viewer", "planner", "admin"] {
        assert_eq!(
            e.get(&uri, e.token("a", role)).await.status,
            StatusCode::OK,
            "{role}"
        );
    }
    assert_eq!(
        e.get(&uri, e.token("b", "admin")).await.status,
        StatusCode::NOT_FOUND
    );
    // Bad requests say what is expected.
    for (query, expect) in [
        ("", "bbox is required"),
        ("?bbox=24.9,60.1,25.0", "four numbers"),
        ("?bbox=25.0,60.1,24.9,60.2", "minimum must come first"),
        ("?bbox=24.9,95,25,96", "latitudes"),
        ("?bbox=24.9,60.1,25,60.2&limit=0", "limit"),
        ("?bbox=24.9,60.1,25,60.2&limit=20000", "limit"),
    ] {
        let r = e
            .get(
                &format!("/api/v1/registers/osm/features{query}"),
                e.token("a", "viewer"),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        let msg = r.json()["error"].as_str().unwrap().to_string();
        assert!(msg.contains(expect), "{query}: {msg}");
    }
    // An empty box is an empty collection, not an error.
    let r = e
        .get(
            "/api/v1/registers/osm/features?bbox=0,0,0.001,0.001",
            e.token("a", "viewer"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["features"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn the_openapi_document_describes_register_features() {
    let e = env();
    let doc = e
        .get("/api/v1/openapi.json", e.token("a", "viewer"))
        .await
        .json();
    let get = &doc["paths"]["/api/v1/registers/{kind}/features"]["get"];
    let names: Vec<&str> = get["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bbox", "limit"]);
    assert_eq!(get["parameters"][0]["required"], true);
    assert!(get["responses"]["200"]["headers"]["X-Besikta-Capped"].is_object());
    assert!(get["responses"]["422"].is_object());
}
