//! `besikta mosaic` on the three real Brighton fixture photos, checked with GDAL's own
//! tools: `gdalinfo` reads the output as a Cloud-Optimized GeoTIFF (COG layout, the flight's
//! UTM zone, red, green, blue and alpha bands, overviews) and `gdallocationinfo` finds the
//! mosaic opaque inside every photo's footprint (`besikta footprints`, same metadata poses)
//! and transparent outside them; a folder without photos is a clear error.

use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

mod common;
use common::*;

fn tool(program: &str, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} is installed (GDAL's tools): {e}"));
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn ok(o: &Output) -> String {
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout
}

/// Each footprint's exterior ring, WGS 84 lon/lat.
fn footprints(path: &Path) -> Vec<Vec<[f64; 2]>> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            f["geometry"]["coordinates"][0]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| [p[0].as_f64().unwrap(), p[1].as_f64().unwrap()])
                .collect()
        })
        .collect()
}

/// The alpha band's value at each WGS 84 lon/lat point (0 outside the raster).
fn alpha_at(mosaic: &Path, points: &[[f64; 2]]) -> Vec<u8> {
    let input: String = points
        .iter()
        .map(|p| format!("{} {}\n", p[0], p[1]))
        .collect();
    let out = tool(
        "gdallocationinfo",
        &["-valonly", "-b", "4", "-wgs84", mosaic.to_str().unwrap()],
        Some(&input),
    );
    let values: Vec<u8> = out
        .lines()
        .map(|l| l.trim().parse::<u8>().unwrap_or(0))
        .collect();
    assert_eq!(values.len(), points.len(), "{out}");
    values
}

#[test]
fn mosaic_is_a_cog_gdal_reads_covering_every_footprint() {
    let dir = tempfile::tempdir().unwrap();
    let fp = dir.path().join("footprints.geojson");
    let mosaic = dir.path().join("mosaic.tif");
    let flight = brighton();
    ok(&besikta(&[
        "footprints",
        flight.to_str().unwrap(),
        "-o",
        fp.to_str().unwrap(),
    ]));
    let stdout = ok(&besikta(&[
        "mosaic",
        flight.to_str().unwrap(),
        "--no-align",
        "--gsd-cm",
        "5",
        "-o",
        mosaic.to_str().unwrap(),
    ]));
    assert!(stdout.contains("3 photos"), "{stdout}");

    let info: Value = serde_json::from_str(&tool(
        "gdalinfo",
        &["-json", mosaic.to_str().unwrap()],
        None,
    ))
    .unwrap();
    assert_eq!(info["driverShortName"], "GTiff");
    assert_eq!(
        info["metadata"]["IMAGE_STRUCTURE"]["LAYOUT"], "COG",
        "{info}"
    );
    // Brighton Beach (Minnesota, longitude -92): UTM zone 15 north.
    let wkt = info["coordinateSystem"]["wkt"].as_str().unwrap();
    assert!(wkt.contains("ID[\"EPSG\",32615]"), "{wkt}");
    let gt: Vec<f64> = info["geoTransform"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(
        (gt[1] - 0.05).abs() < 1e-9 && (gt[5] + 0.05).abs() < 1e-9,
        "{gt:?}"
    );
    let bands = info["bands"].as_array().unwrap();
    let colours: Vec<&str> = bands
        .iter()
        .map(|b| b["colorInterpretation"].as_str().unwrap())
        .collect();
    assert_eq!(colours, ["Red", "Green", "Blue", "Alpha"]);
    for b in bands {
        assert_eq!(b["type"], "Byte");
        // Overviews for the web map's zoomed-out tiles: at least one, each half the last.
        let ov = b["overviews"].as_array().expect("the COG has overviews");
        assert!(!ov.is_empty(), "{b}");
        assert_eq!(
            ov[0]["size"][0],
            info["size"][0].as_u64().unwrap().div_ceil(2)
        );
    }

    // Inside every footprint (corners pulled 5 % towards the centre, edge midpoints and the
    // centre) the mosaic is opaque.
    let rings = footprints(&fp);
    assert_eq!(rings.len(), 3);
    let mut inside = Vec::new();
    let mut outside = Vec::new();
    for ring in &rings {
        let corners = &ring[..ring.len() - 1];
        let n = corners.len() as f64;
        let c = corners
            .iter()
            .fold([0.0, 0.0], |s, p| [s[0] + p[0] / n, s[1] + p[1] / n]);
        inside.push(c);
        for (i, p) in corners.iter().enumerate() {
            let q = corners[(i + 1) % corners.len()];
            let mid = [(p[0] + q[0]) / 2.0, (p[1] + q[1]) / 2.0];
            for v in [*p, mid] {
                inside.push([v[0] + 0.05 * (c[0] - v[0]), v[1] + 0.05 * (c[1] - v[1])]);
                // 10 % beyond the edge, away from the centre: outside this photo.
                outside.push([v[0] + 0.1 * (v[0] - c[0]), v[1] + 0.1 * (v[1] - c[1])]);
            }
        }
    }
    let alpha = alpha_at(&mosaic, &inside);
    let opaque = alpha.iter().filter(|&&a| a == 255).count();
    assert_eq!(
        opaque,
        inside.len(),
        "alpha inside the footprints: {alpha:?}"
    );
    // Outside every footprint it is transparent: points beyond one photo's edge that no
    // other photo sees.
    let in_any = |p: &[f64; 2]| rings.iter().any(|r| contains(r, *p));
    let lonely: Vec<[f64; 2]> = outside.into_iter().filter(|p| !in_any(p)).collect();
    assert!(lonely.len() >= 4, "{lonely:?}");
    let alpha = alpha_at(&mosaic, &lonely);
    assert!(alpha.iter().all(|&a| a == 0), "alpha outside: {alpha:?}");
}

/// Point in polygon (even-odd), lon/lat treated as planar over a few hundred metres.
fn contains(ring: &[[f64; 2]], p: [f64; 2]) -> bool {
    let mut inside = false;
    for w in ring.windows(2) {
        let (a, b) = (w[0], w[1]);
        if (a[1] > p[1]) != (b[1] > p[1])
            && p[0] < a[0] + (p[1] - a[1]) / (b[1] - a[1]) * (b[0] - a[0])
        {
            inside = !inside;
        }
    }
    inside
}

#[test]
fn mosaic_without_photos_says_so() {
    common::assert_no_photos_is_an_error("mosaic", "mosaic.tif");
}
