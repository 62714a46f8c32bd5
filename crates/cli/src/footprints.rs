//! The `besikta footprints` subcommand: the coverage map of a flight as GeoJSON.

use anyhow::Context;
use besikta_georef::{
    CameraHeight, CrsTransform, Dem, FootprintOptions, GeometryOptions, Ground, PhotoGeometry,
};
use serde_json::{json, Value};
use std::path::PathBuf;

/// Arguments of `besikta footprints`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Photos, or folders searched recursively for photos.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// GeoJSON file to write (one Polygon feature per photo).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Write coordinates in this CRS (e.g. EPSG:3006) instead of WGS 84 longitude/latitude;
    /// the file then names its CRS the way GDAL reads it (not RFC 7946).
    #[arg(long)]
    pub crs: Option<String>,
    /// DEM/DSM raster (GeoTIFF, any CRS, heights in metres above mean sea level) for the
    /// ground; without it, the ground is level at the take-off point.
    #[arg(long)]
    pub dem: Option<PathBuf>,
    /// Take-off point as LAT,LON (WGS 84 degrees): the camera is then placed at the ground
    /// height there plus the relative altitude, instead of at the drone's absolute
    /// altitude (use it with --dem when that altitude is off or in another vertical datum).
    #[arg(long, value_name = "LAT,LON", value_parser = parse_lat_lon)]
    pub take_off: Option<[f64; 2]>,
    /// Oblique photos are cut this far from the camera (metres along the view) instead of
    /// at the horizon.
    #[arg(long, default_value_t = FootprintOptions::default().max_range_m)]
    pub max_range: f64,
    /// Points along each edge of a photo, corners included.
    #[arg(long, default_value_t = FootprintOptions::default().points_per_edge)]
    pub points_per_edge: usize,
}

/// Runs the subcommand; the returned byte is the process exit code.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let ground = match &args.dem {
        Some(path) => Ground::Dem(Dem::open(path).context("cannot use the DEM given with --dem")?),
        None => Ground::TakeOffPlane,
    };
    let output_crs = match &args.crs {
        Some(def) => {
            let t = CrsTransform::from_wgs84(def).context("cannot use the CRS given with --crs")?;
            let epsg = t.epsg().with_context(|| {
                format!("--crs {def:?} has no EPSG code, and GeoJSON can only name a CRS by its EPSG code")
            })?;
            Some((t, epsg))
        }
        None => None,
    };
    let geometry_opts = GeometryOptions {
        camera_height: match args.take_off {
            Some([lat, lon]) => CameraHeight::OverTakeOff { lat, lon },
            None => CameraHeight::Absolute,
        },
        ..GeometryOptions::default()
    };
    let opts = FootprintOptions {
        points_per_edge: args.points_per_edge,
        max_range_m: args.max_range,
    };

    let report = besikta_ingest::scan(&args.paths);
    let mut skipped = 0usize;
    for r in &report.rejected {
        eprintln!("skipped {}: {}", r.file, r.reason);
        skipped += 1;
    }
    for o in &report.orthophotos {
        eprintln!("ignored {}: an orthophoto has no camera footprint", o.file);
    }
    let mut features = Vec::with_capacity(report.captures.len());
    for capture in &report.captures {
        let crs = output_crs.as_ref().map(|(t, _)| t);
        match feature(capture, &ground, &geometry_opts, &opts, crs) {
            Ok(f) => features.push(f),
            Err(e) => {
                eprintln!("skipped {}: {e:#}", capture.file);
                skipped += 1;
            }
        }
    }
    let mut collection = json!({ "type": "FeatureCollection" });
    if let Some((_, epsg)) = &output_crs {
        // The pre-RFC 7946 way to name a CRS; GDAL's GeoJSON driver reads it.
        collection["crs"] = json!({
            "type": "name",
            "properties": { "name": format!("urn:ogc:def:crs:EPSG::{epsg}") }
        });
    }
    let count = features.len();
    collection["features"] = Value::Array(features);
    let text = serde_json::to_string(&collection).context("cannot encode the GeoJSON")?;
    std::fs::write(&args.output, text + "\n")
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    eprintln!(
        "wrote {count} footprint{} to {}{}",
        if count == 1 { "" } else { "s" },
        args.output.display(),
        if skipped > 0 {
            format!(
                "; skipped {skipped} file{}",
                if skipped == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        }
    );
    Ok(u8::from(skipped > 0))
}

/// One photo's GeoJSON feature.
fn feature(
    capture: &besikta_core::Capture,
    ground: &Ground,
    geometry_opts: &GeometryOptions,
    opts: &FootprintOptions,
    crs: Option<&CrsTransform>,
) -> anyhow::Result<Value> {
    let geometry = PhotoGeometry::with_options(capture, ground, geometry_opts)?;
    let mut ring = geometry.footprint(opts)?;
    let gsd_cm = geometry.gsd_cm_center()?;
    let decimals = match crs {
        Some(t) => {
            t.apply_many(&mut ring)?;
            // Keep the ring counter-clockwise in the output plane too.
            let area2: f64 = ring
                .windows(2)
                .map(|w| w[0][0] * w[1][1] - w[1][0] * w[0][1])
                .sum();
            if area2 < 0.0 {
                ring.reverse();
            }
            if t.is_geographic() {
                8
            } else {
                3
            }
        }
        // 1e-8 degrees is about a millimetre.
        None => 8,
    };
    let coords: Vec<Value> = ring
        .iter()
        .map(|p| json!([round(p[0], decimals), round(p[1], decimals)]))
        .collect();
    let position = geometry.camera_position();
    Ok(json!({
        "type": "Feature",
        "geometry": { "type": "Polygon", "coordinates": [coords] },
        "properties": {
            "file": capture.file,
            "gsd_cm": round(gsd_cm, 4),
            "camera_latitude": position.lat,
            "camera_longitude": position.lon,
            "relative_altitude_m": capture.relative_altitude_m,
        }
    }))
}

fn round(v: f64, decimals: i32) -> f64 {
    let k = 10f64.powi(decimals);
    (v * k).round() / k
}

/// Parses `LAT,LON` in decimal degrees.
fn parse_lat_lon(s: &str) -> Result<[f64; 2], String> {
    let err = || format!("{s:?} is not LAT,LON in decimal degrees (e.g. 59.3293,18.0686)");
    let (lat, lon) = s.split_once(',').ok_or_else(err)?;
    let lat: f64 = lat.trim().parse().map_err(|_| err())?;
    let lon: f64 = lon.trim().parse().map_err(|_| err())?;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(err());
    }
    Ok([lat, lon])
}
