//! Asset registers read through GDAL (GeoPackage, Shapefile, GeoJSON, FlatGeobuf, OSM PBF),
//! held in the working frame with an R-tree, and the matching of findings to assets.

use crate::frame::{crs_label, WorkFrame};
use crate::{ReportConfig, ReportError};
use besikta_core::AssetKind;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform};
use gdal::vector::LayerAccess;
use gdal::Dataset;
use geo::{
    Area, BoundingRect, Contains, Distance, Euclidean, Length, LineLocatePoint, LineString,
    MultiLineString, MultiPolygon, Point,
};
use rstar::{primitives::GeomWithData, primitives::Rectangle, RTree, AABB};
use std::path::{Path, PathBuf};

/// Where to read assets from and how to interpret the layer.
#[derive(Debug, Clone, Default)]
pub struct RegisterSource {
    pub path: PathBuf,
    /// Layer name; default: the first layer (OSM: `lines` for roads, `multipolygons` for roofs).
    pub layer: Option<String>,
    /// Asset kind; default: from the geometry (lines are roads, polygons are roofs). An OSM
    /// file without a kind gives both its roads and its buildings.
    pub kind: Option<AssetKind>,
    /// Field holding the asset id; default `osm_id`/`osm_way_id` for OSM, else `id`, else the FID.
    pub id_field: Option<String>,
    /// Field holding the human name; default `name`.
    pub name_field: Option<String>,
    /// Field with the road's full width in metres; default: by road class.
    pub width_field: Option<String>,
    /// Field with the road class used for default widths; default `highway`.
    pub class_field: Option<String>,
    /// CRS of the coordinates (`EPSG:3067`, WKT, PROJ), overriding what the file declares:
    /// for a GeoJSON in projected coordinates without a `crs` member, which GDAL reads as
    /// WGS 84. Default: the file's own.
    pub crs: Option<String>,
}

impl RegisterSource {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        RegisterSource {
            path: path.into(),
            ..Default::default()
        }
    }

    fn is_osm(&self) -> bool {
        let p = self.path.to_string_lossy().to_ascii_lowercase();
        p.ends_with(".osm.pbf") || p.ends_with(".osm") || p.ends_with(".pbf")
    }
}

/// Full carriageway width in metres by OSM `highway` class, for registers without widths.
pub fn default_road_width_m(class: Option<&str>) -> f64 {
    match class.unwrap_or("") {
        "motorway" | "trunk" => 12.0,
        "primary" | "motorway_link" | "trunk_link" => 10.0,
        "secondary" | "primary_link" => 8.0,
        "tertiary" | "secondary_link" | "tertiary_link" => 7.0,
        "residential" | "unclassified" | "living_street" | "road" => 6.0,
        "service" | "pedestrian" | "bus_guideway" => 5.0,
        "track" => 3.5,
        "cycleway" => 2.5,
        "footway" | "bridleway" | "steps" | "corridor" => 2.0,
        "path" => 1.5,
        _ => 5.0,
    }
}

/// True for roads that carry traffic (asphalt carriageways); false for footways, paths,
/// cycleways, steps, tracks and anything narrower than 4.5 m. The simulator paints the one
/// asphalt and the other paving; alignment tells the two surfaces apart the same way.
pub fn is_carriageway(a: &Asset) -> bool {
    !matches!(
        a.class.as_deref(),
        Some(
            "footway"
                | "path"
                | "cycleway"
                | "steps"
                | "pedestrian"
                | "bridleway"
                | "corridor"
                | "track"
        )
    ) && a.width_m >= 4.5
}

/// One asset of a register, in the working frame.
#[derive(Debug, Clone)]
pub struct Asset {
    pub id: String,
    pub name: Option<String>,
    pub kind: AssetKind,
    /// Road class (`highway`) or building type.
    pub class: Option<String>,
    /// Full road width, metres (0 for roofs).
    pub width_m: f64,
    pub geometry: AssetGeometry,
}

/// An asset's geometry in working metres.
#[derive(Debug, Clone)]
pub enum AssetGeometry {
    Line(MultiLineString<f64>),
    Area(MultiPolygon<f64>),
}

impl Asset {
    /// Area of the asset on the ground, m² (road: length x width).
    pub fn area_m2(&self) -> f64 {
        match &self.geometry {
            AssetGeometry::Line(l) => Euclidean.length(l) * self.width_m,
            AssetGeometry::Area(a) => a.unsigned_area(),
        }
    }
}

pub use besikta_core::finding::AssetMatch;

type Indexed = GeomWithData<Rectangle<[f64; 2]>, usize>;

/// A loaded register: assets in the working frame with a spatial index.
pub struct Register {
    pub source: PathBuf,
    /// The register's own CRS (label), e.g. `EPSG:4326`.
    pub crs: String,
    /// The register's own CRS as WKT, for writing outputs in it.
    pub crs_wkt: String,
    pub assets: Vec<Asset>,
    index: RTree<Indexed>,
    max_half_width_m: f64,
}

impl std::fmt::Debug for Register {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Register")
            .field("source", &self.source)
            .field("crs", &self.crs)
            .field("assets", &self.assets.len())
            .finish()
    }
}

fn open(path: &Path) -> Result<Dataset, ReportError> {
    crate::gdal_errors::install();
    crate::gdal_errors::take();
    Dataset::open(path).map_err(|e| ReportError::RegisterOpen {
        path: path.display().to_string(),
        message: crate::gdal_errors::explained(e),
    })
}

/// The layer's CRS in GIS axis order: the source's override, else the file's own.
fn layer_srs(
    src: &RegisterSource,
    layer: &gdal::vector::Layer<'_>,
) -> Result<gdal::spatial_ref::SpatialRef, ReportError> {
    let mut srs = match &src.crs {
        Some(text) => crate::frame::parse_crs(text)?,
        None => layer.spatial_ref().ok_or_else(|| ReportError::NoCrs {
            path: src.path.display().to_string(),
            layer: layer.name(),
        })?,
    };
    srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    Ok(srs)
}

/// Refuses a layer that says it is in longitude/latitude while its coordinates cannot be:
/// a GeoJSON in projected metres without a `crs` member (GDAL then assumes WGS 84), or a
/// wrong `.prj`. Read as degrees, no asset would lie anywhere near the photos.
fn check_lonlat(
    src: &RegisterSource,
    layer: &str,
    srs: &gdal::spatial_ref::SpatialRef,
    extent: [f64; 4],
) -> Result<(), ReportError> {
    let [min_x, min_y, max_x, max_y] = extent;
    let inside = (-180.0..=180.0).contains(&min_x)
        && (-180.0..=180.0).contains(&max_x)
        && (-90.0..=90.0).contains(&min_y)
        && (-90.0..=90.0).contains(&max_y);
    if !srs.is_geographic() || inside {
        return Ok(());
    }
    Err(ReportError::RegisterContent {
        path: src.path.display().to_string(),
        layer: layer.to_string(),
        message: format!(
            "its coordinates ({min_x:.0}, {min_y:.0} .. {max_x:.0}, {max_y:.0}) are not \
             longitudes and latitudes, but the file declares {} (a GeoJSON without a \"crs\" \
             member is read as WGS 84): the register is in a projected CRS it does not name. \
             Add the CRS to the file (e.g. ogr2ogr -a_srs EPSG:3067 fixed.geojson {}) or pass \
             it with --assets-crs EPSG:3067 (your CRS's code)",
            crs_label(srs),
            src.path.display()
        ),
    })
}

/// Reads the CRS (WKT) and the extent centre (lon/lat) of a register's first relevant layer,
/// to choose a working frame before loading.
pub fn register_crs(
    src: &RegisterSource,
) -> Result<(gdal::spatial_ref::SpatialRef, [f64; 2]), ReportError> {
    let ds = open(&src.path)?;
    let layer_name = layer_names(src).into_iter().next().flatten();
    let mut layer = pick_layer(&ds, src, layer_name.as_deref())?;
    let lname = layer.name();
    let srs = layer_srs(src, &layer)?;
    // OSM layers report no cheap extent; use the first feature instead.
    let extent = match if src.is_osm() {
        layer.try_get_extent()
    } else {
        layer.get_extent().map(Some)
    } {
        Ok(Some(e)) => e,
        _ => {
            let f = layer
                .features()
                .find_map(|f| f.geometry().map(|g| g.envelope()));
            f.ok_or_else(|| ReportError::RegisterContent {
                path: src.path.display().to_string(),
                layer: lname.clone(),
                message: crate::gdal_errors::explained("the layer has no features"),
            })?
        }
    };
    check_lonlat(
        src,
        &lname,
        &srs,
        [extent.MinX, extent.MinY, extent.MaxX, extent.MaxY],
    )?;
    let centre = [
        (extent.MinX + extent.MaxX) / 2.0,
        (extent.MinY + extent.MaxY) / 2.0,
    ];
    let to_geo =
        CoordTransform::new(&srs, &crate::frame::wgs84()).map_err(|e| ReportError::Crs {
            crs: crs_label(&srs),
            message: e.to_string(),
        })?;
    let (mut x, mut y, mut z) = ([centre[0]], [centre[1]], [0.0]);
    to_geo
        .transform_coords(&mut x, &mut y, &mut z)
        .map_err(|e| ReportError::Crs {
            crs: crs_label(&srs),
            message: e.to_string(),
        })?;
    Ok((srs, [x[0], y[0]]))
}

/// The working frame for these registers: the first one's CRS when projected, else UTM.
pub fn frame_for(sources: &[RegisterSource]) -> Result<Option<WorkFrame>, ReportError> {
    let Some(first) = sources.first() else {
        return Ok(None);
    };
    let (srs, centre) = register_crs(first)?;
    if srs.is_projected() && (srs.linear_units() - 1.0).abs() < 1e-9 {
        Ok(Some(WorkFrame::new(&srs)?))
    } else {
        Ok(Some(WorkFrame::utm_for(centre[0], centre[1])?))
    }
}

/// (layer name, kind, attribute filter) triples to read for a source.
fn layer_names(src: &RegisterSource) -> Vec<Option<String>> {
    if src.layer.is_some() {
        return vec![src.layer.clone()];
    }
    if src.is_osm() {
        return match src.kind {
            Some(AssetKind::Road) => vec![Some("lines".into())],
            Some(AssetKind::Roof) => vec![Some("multipolygons".into())],
            None => vec![Some("lines".into()), Some("multipolygons".into())],
        };
    }
    vec![None]
}

fn pick_layer<'a>(
    ds: &'a Dataset,
    src: &RegisterSource,
    name: Option<&str>,
) -> Result<gdal::vector::Layer<'a>, ReportError> {
    match name {
        Some(n) => ds.layer_by_name(n).map_err(|_| ReportError::MissingLayer {
            path: src.path.display().to_string(),
            layer: n.to_string(),
            available: ds.layers().map(|l| l.name()).collect::<Vec<_>>().join(", "),
        }),
        None => ds.layer(0).map_err(|_| ReportError::RegisterContent {
            path: src.path.display().to_string(),
            layer: "(first)".into(),
            message: "the file has no layers".into(),
        }),
    }
}

impl Register {
    /// Reads a register into the working frame.
    pub fn load(src: &RegisterSource, frame: &WorkFrame) -> Result<Register, ReportError> {
        let mut assets = Vec::new();
        let mut crs = String::new();
        let mut crs_wkt = String::new();
        for name in layer_names(src) {
            // OSM PBF is read sequentially: one dataset per layer keeps GDAL's reader simple.
            let ds = open(&src.path)?;
            let layer = pick_layer(&ds, src, name.as_deref())?;
            let (c, w) = read_layer(src, layer, frame, &mut assets)?;
            crs = c;
            crs_wkt = w;
        }
        let index = RTree::bulk_load(
            assets
                .iter()
                .enumerate()
                .filter_map(|(i, a)| {
                    let r = match &a.geometry {
                        AssetGeometry::Line(l) => l.bounding_rect(),
                        AssetGeometry::Area(p) => p.bounding_rect(),
                    }?;
                    Some(GeomWithData::new(
                        Rectangle::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]),
                        i,
                    ))
                })
                .collect(),
        );
        let max_half_width_m = assets.iter().map(|a| a.width_m / 2.0).fold(0.0, f64::max);
        Ok(Register {
            source: src.path.clone(),
            crs,
            crs_wkt,
            assets,
            index,
            max_half_width_m,
        })
    }

    /// The best asset for a finding at `centroid` (working metres) with outline `poly`.
    pub fn match_finding(
        &self,
        kind: AssetKind,
        centroid: [f64; 2],
        poly: &geo::Polygon<f64>,
        tolerance_m: f64,
        cfg: &ReportConfig,
    ) -> Option<AssetMatch> {
        let p = Point::new(centroid[0], centroid[1]);
        let reach = match kind {
            AssetKind::Road => self.max_half_width_m + tolerance_m,
            AssetKind::Roof => cfg.roof_tolerance_m + tolerance_m,
        };
        let env = AABB::from_corners(
            [centroid[0] - reach, centroid[1] - reach],
            [centroid[0] + reach, centroid[1] + reach],
        );
        let mut best: Option<(f64, AssetMatch)> = None;
        for cand in self.index.locate_in_envelope_intersecting(&env) {
            let a = &self.assets[cand.data];
            if a.kind != kind {
                continue;
            }
            let m = match &a.geometry {
                AssetGeometry::Line(lines) => {
                    let d = Euclidean.distance(&p, lines);
                    if d > a.width_m / 2.0 + tolerance_m {
                        continue;
                    }
                    let (chainage, offset) = chainage(lines, p);
                    (
                        d,
                        AssetMatch {
                            asset_id: a.id.clone(),
                            asset_name: a.name.clone(),
                            asset_kind: a.kind,
                            chainage_m: Some(chainage),
                            offset_m: Some(offset),
                            distance_m: d,
                            asset_area_m2: Some(a.area_m2()),
                        },
                    )
                }
                AssetGeometry::Area(polys) => {
                    let d = if polys.contains(&p) {
                        0.0
                    } else {
                        Euclidean.distance(poly, polys)
                    };
                    if d > cfg.roof_tolerance_m + tolerance_m {
                        continue;
                    }
                    (
                        d,
                        AssetMatch {
                            asset_id: a.id.clone(),
                            asset_name: a.name.clone(),
                            asset_kind: a.kind,
                            chainage_m: None,
                            offset_m: None,
                            distance_m: d,
                            asset_area_m2: Some(a.area_m2()),
                        },
                    )
                }
            };
            if best.as_ref().is_none_or(|(bd, _)| m.0 < *bd) {
                best = Some(m);
            }
        }
        best.map(|(_, m)| m)
    }

    /// Assets whose bounding box comes within `margin` metres of `env` (`[minx, miny, maxx, maxy]`).
    pub fn assets_in(&self, env: [f64; 4], margin: f64) -> impl Iterator<Item = &Asset> + '_ {
        let e = AABB::from_corners(
            [env[0] - margin, env[1] - margin],
            [env[2] + margin, env[3] + margin],
        );
        self.index
            .locate_in_envelope_intersecting(&e)
            .map(|c| &self.assets[c.data])
    }

    pub fn asset(&self, id: &str) -> Option<&Asset> {
        self.assets.iter().find(|a| a.id == id)
    }
}

/// Chainage along a (multi)line from its first vertex, and the signed lateral offset
/// (positive left of the digitised direction). Parts of a multiline are chained in order.
pub fn chainage(lines: &MultiLineString<f64>, p: Point<f64>) -> (f64, f64) {
    let mut best = (f64::INFINITY, 0.0, 0.0);
    let mut before = 0.0;
    for line in &lines.0 {
        let len = Euclidean.length(line);
        let d = Euclidean.distance(&p, line);
        if d < best.0 {
            let frac = line.line_locate_point(&p).unwrap_or(0.0);
            let ch = before + frac * len;
            best = (d, ch, d * side(line, p));
        }
        before += len;
    }
    (best.1, best.2)
}

/// +1 when the point is left of the nearest segment, -1 when right.
fn side(line: &LineString<f64>, p: Point<f64>) -> f64 {
    let seg = line.lines().min_by(|a, b| {
        Euclidean
            .distance(&p, a)
            .total_cmp(&Euclidean.distance(&p, b))
    });
    match seg {
        Some(s) => {
            let cross = (s.end.x - s.start.x) * (p.y() - s.start.y)
                - (s.end.y - s.start.y) * (p.x() - s.start.x);
            if cross >= 0.0 {
                1.0
            } else {
                -1.0
            }
        }
        None => 1.0,
    }
}

fn read_layer(
    src: &RegisterSource,
    mut layer: gdal::vector::Layer<'_>,
    frame: &WorkFrame,
    out: &mut Vec<Asset>,
) -> Result<(String, String), ReportError> {
    let path = src.path.display().to_string();
    let lname = layer.name();
    let content = |message: String| ReportError::RegisterContent {
        path: path.clone(),
        layer: lname.clone(),
        message,
    };
    let srs = layer_srs(src, &layer)?;
    // OSM files are always in degrees, and their extent would cost a whole read.
    if !src.is_osm() {
        if let Ok(e) = layer.get_extent() {
            check_lonlat(src, &lname, &srs, [e.MinX, e.MinY, e.MaxX, e.MaxY])?;
        }
    }
    let crs = crs_label(&srs);
    let crs_wkt = srs.to_wkt().unwrap_or_default();
    let to_work = CoordTransform::new(&srs, frame.srs()).map_err(|e| ReportError::Crs {
        crs: crs.clone(),
        message: e.to_string(),
    })?;
    let osm = src.is_osm();
    let osm_kind = if osm {
        match lname.as_str() {
            "lines" => Some(AssetKind::Road),
            "multipolygons" => Some(AssetKind::Roof),
            _ => None,
        }
    } else {
        None
    };
    if osm {
        let filter = match osm_kind {
            Some(AssetKind::Road) => "highway IS NOT NULL",
            Some(AssetKind::Roof) => "building IS NOT NULL",
            None => "1 = 1",
        };
        layer
            .set_attribute_filter(filter)
            .map_err(|e| content(e.to_string()))?;
    }
    let defn_names: Vec<String> = layer.defn().fields().map(|f| f.name()).collect();
    let has = |n: &str| defn_names.iter().any(|f| f == n);
    let require = |opt: &Option<String>, what: &str| -> Result<Option<String>, ReportError> {
        match opt {
            Some(f) if !has(f) => Err(content(format!(
                "no {what} field '{f}' (fields: {})",
                defn_names.join(", ")
            ))),
            Some(f) => Ok(Some(f.clone())),
            None => Ok(None),
        }
    };
    let id_field = require(&src.id_field, "id")?.or_else(|| {
        ["osm_id", "osm_way_id", "id", "ID", "fid"]
            .into_iter()
            .find(|f| has(f))
            .map(String::from)
    });
    let name_field =
        require(&src.name_field, "name")?.or_else(|| has("name").then(|| "name".into()));
    let width_field =
        require(&src.width_field, "width")?.or_else(|| has("width").then(|| "width".into()));
    let class_field = require(&src.class_field, "class")?.or_else(|| {
        ["highway", "building", "class"]
            .into_iter()
            .find(|f| has(f))
            .map(String::from)
    });

    let before = out.len();
    let mut unplaceable = 0usize;
    for feature in layer.features() {
        let Some(geom) = feature.geometry() else {
            continue;
        };
        let mut geom = geom.clone();
        if geom.transform_inplace(&to_work).is_err() {
            unplaceable += 1;
            // PROJ's complaint about this feature is counted here, not a failed read.
            crate::gdal_errors::take();
            continue;
        }
        let Ok(g) = geom.to_geo() else { continue };
        let geometry = match g {
            geo::Geometry::LineString(l) => AssetGeometry::Line(MultiLineString::new(vec![l])),
            geo::Geometry::MultiLineString(l) => AssetGeometry::Line(l),
            geo::Geometry::Polygon(p) => AssetGeometry::Area(MultiPolygon::new(vec![p])),
            geo::Geometry::MultiPolygon(p) => AssetGeometry::Area(p),
            _ => continue,
        };
        let kind = src.kind.or(osm_kind).unwrap_or(match geometry {
            AssetGeometry::Line(_) => AssetKind::Road,
            AssetGeometry::Area(_) => AssetKind::Roof,
        });
        let text = |f: &Option<String>| -> Option<String> {
            let f = f.as_ref()?;
            let idx = feature.field_index(f).ok()?;
            feature
                .field_as_string(idx)
                .ok()
                .flatten()
                .filter(|s| !s.is_empty())
        };
        // OSM ids are only unique per element type: name them `way/N` or `relation/N`.
        let osm_id = if osm && src.id_field.is_none() {
            let field = |f: &str| text(&Some(f.to_string()));
            match lname.as_str() {
                "multipolygons" => field("osm_way_id")
                    .map(|w| format!("way/{w}"))
                    .or_else(|| field("osm_id").map(|r| format!("relation/{r}"))),
                _ => field("osm_id").map(|w| format!("way/{w}")),
            }
        } else {
            None
        };
        let id = osm_id
            .or_else(|| text(&id_field))
            .or_else(|| feature.fid().map(|f| f.to_string()))
            .unwrap_or_else(|| out.len().to_string());
        let class = text(&class_field);
        let width_m = match kind {
            AssetKind::Roof => 0.0,
            AssetKind::Road => text(&width_field)
                .and_then(|w| w.trim().trim_end_matches('m').trim().parse::<f64>().ok())
                .filter(|w| *w > 0.0 && *w < 100.0)
                .unwrap_or_else(|| default_road_width_m(class.as_deref())),
        };
        out.push(Asset {
            id,
            name: text(&name_field),
            kind,
            class,
            width_m,
            geometry,
        });
    }
    // A read that stopped half way (GDAL said why, to its handler) is not a smaller register.
    if let Some(said) = crate::gdal_errors::take_failures() {
        return Err(content(format!(
            "GDAL could not read it to the end after {} assets: {said}",
            out.len() - before
        )));
    }
    if unplaceable > 0 && out.len() == before {
        return Err(content(format!(
            "none of its {unplaceable} features can be moved from {crs} into {}: the \
             coordinates do not fit the declared CRS; name the right one with --assets-crs",
            frame.name
        )));
    }
    Ok((crs, crs_wkt))
}
