//! Registers for the map: a register read by [`Register::load`] (so the map shows exactly
//! the assets jobs match against, whatever the file format), moved to WGS 84 once and
//! indexed, answering bounding-box queries as GeoJSON without GDAL per request.

use crate::register::{frame_for, AssetGeometry, Register, RegisterSource};
use crate::ReportError;
use besikta_core::AssetKind;
use geo::{BoundingRect, Coord, Geometry, Intersects, LineString, MultiLineString, Polygon, Rect};
use rstar::{primitives::GeomWithData, primitives::Rectangle, RTree, AABB};
use serde_json::{json, Value};

/// One asset in WGS 84 longitude, latitude.
#[derive(Debug, Clone)]
pub struct MapAsset {
    pub id: String,
    pub name: Option<String>,
    pub kind: AssetKind,
    /// Road class (`highway`) or building type.
    pub class: Option<String>,
    /// A `MultiLineString` (roads) or `MultiPolygon` (roofs).
    pub geometry: Geometry<f64>,
}

impl MapAsset {
    /// The asset as a GeoJSON feature (RFC 7946 positions: longitude, latitude), its id
    /// and name in the properties.
    pub fn feature(&self) -> Value {
        json!({
            "type": "Feature",
            "id": self.id,
            "properties": {
                "asset_id": self.id,
                "asset_name": self.name,
                "asset_kind": self.kind.as_str(),
                "class": self.class,
            },
            "geometry": geometry_json(&self.geometry),
        })
    }
}

/// Positions rounded to 1e-8 degrees (about 1 mm).
fn pos(c: &Coord<f64>) -> Value {
    json!([(c.x * 1e8).round() / 1e8, (c.y * 1e8).round() / 1e8])
}

fn line_json(l: &LineString<f64>) -> Value {
    Value::Array(l.0.iter().map(pos).collect())
}

fn polygon_json(p: &Polygon<f64>) -> Value {
    Value::Array(
        std::iter::once(p.exterior())
            .chain(p.interiors())
            .map(line_json)
            .collect(),
    )
}

fn geometry_json(g: &Geometry<f64>) -> Value {
    match g {
        Geometry::MultiLineString(m) => json!({
            "type": "MultiLineString",
            "coordinates": m.0.iter().map(line_json).collect::<Vec<_>>(),
        }),
        Geometry::MultiPolygon(m) => json!({
            "type": "MultiPolygon",
            "coordinates": m.0.iter().map(polygon_json).collect::<Vec<_>>(),
        }),
        _ => Value::Null,
    }
}

/// The assets a bounding box touches, at most `limit` of them.
#[derive(Debug)]
pub struct InBox<'a> {
    /// In the register's order.
    pub assets: Vec<&'a MapAsset>,
    /// How many assets touch the box in all (more than `assets.len()` when capped).
    pub matched: usize,
}

impl InBox<'_> {
    /// Whether assets were left out to stay within the limit.
    pub fn capped(&self) -> bool {
        self.matched > self.assets.len()
    }

    /// A GeoJSON FeatureCollection; `matched` and `capped` as foreign members.
    pub fn geojson(&self) -> Value {
        json!({
            "type": "FeatureCollection",
            "features": self.assets.iter().map(|a| a.feature()).collect::<Vec<_>>(),
            "matched": self.matched,
            "capped": self.capped(),
        })
    }
}

/// A register in WGS 84 with an R-tree over its assets' bounding boxes.
pub struct RegisterMap {
    /// The register's own CRS (label), e.g. `EPSG:3067`.
    pub crs: String,
    pub assets: Vec<MapAsset>,
    index: RTree<GeomWithData<Rectangle<[f64; 2]>, usize>>,
}

impl std::fmt::Debug for RegisterMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterMap")
            .field("crs", &self.crs)
            .field("assets", &self.assets.len())
            .finish()
    }
}

impl RegisterMap {
    /// Reads the register as a job does ([`frame_for`], [`Register::load`]) and moves every
    /// asset to WGS 84.
    pub fn load(src: &RegisterSource) -> Result<RegisterMap, ReportError> {
        let frame =
            frame_for(std::slice::from_ref(src))?.ok_or_else(|| ReportError::RegisterContent {
                path: src.path.display().to_string(),
                layer: "(first)".into(),
                message: "the file has no layers".into(),
            })?;
        let register = Register::load(src, &frame)?;
        let to_geo = |l: &LineString<f64>| -> Result<LineString<f64>, ReportError> {
            l.0.iter()
                .map(|c| frame.to_wgs84([c.x, c.y]).map(|[x, y]| Coord { x, y }))
                .collect::<Result<Vec<_>, _>>()
                .map(LineString::new)
        };
        let mut assets = Vec::with_capacity(register.assets.len());
        for a in register.assets {
            let geometry = match &a.geometry {
                AssetGeometry::Line(m) => Geometry::MultiLineString(MultiLineString::new(
                    m.0.iter().map(to_geo).collect::<Result<_, _>>()?,
                )),
                AssetGeometry::Area(m) => {
                    let polys =
                        m.0.iter()
                            .map(|p| {
                                Ok(Polygon::new(
                                    to_geo(p.exterior())?,
                                    p.interiors().iter().map(to_geo).collect::<Result<_, _>>()?,
                                ))
                            })
                            .collect::<Result<Vec<_>, ReportError>>()?;
                    Geometry::MultiPolygon(geo::MultiPolygon::new(polys))
                }
            };
            assets.push(MapAsset {
                id: a.id,
                name: a.name,
                kind: a.kind,
                class: a.class,
                geometry,
            });
        }
        let index = RTree::bulk_load(
            assets
                .iter()
                .enumerate()
                .filter_map(|(i, a)| {
                    let r = a.geometry.bounding_rect()?;
                    Some(GeomWithData::new(
                        Rectangle::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]),
                        i,
                    ))
                })
                .collect(),
        );
        Ok(RegisterMap {
            crs: register.crs,
            assets,
            index,
        })
    }

    /// The assets whose geometry touches `bbox` (`[min_lon, min_lat, max_lon, max_lat]`),
    /// as GDAL's spatial filter (`ogr2ogr -spat`) selects them: the geometry itself, not
    /// only its bounding box, must meet the box. At most `limit`, in the register's order.
    pub fn in_bbox(&self, bbox: [f64; 4], limit: usize) -> InBox<'_> {
        let rect = Rect::new(
            Coord {
                x: bbox[0],
                y: bbox[1],
            },
            Coord {
                x: bbox[2],
                y: bbox[3],
            },
        );
        let env = AABB::from_corners([bbox[0], bbox[1]], [bbox[2], bbox[3]]);
        let mut hits: Vec<usize> = self
            .index
            .locate_in_envelope_intersecting(&env)
            .map(|c| c.data)
            .filter(|&i| rect.intersects(&self.assets[i].geometry))
            .collect();
        hits.sort_unstable();
        let matched = hits.len();
        InBox {
            assets: hits
                .into_iter()
                .take(limit)
                .map(|i| &self.assets[i])
                .collect(),
            matched,
        }
    }
}
