//! The metric working CRS in which merging, matching and measuring happen.
//!
//! Distances and areas are computed in a projected CRS in metres: the register's own when it
//! is projected (so chainage agrees with the municipality's GIS), else the UTM zone of the
//! data. All spatial references use GDAL's traditional GIS axis order (x = easting or
//! longitude, y = northing or latitude) whatever the authority says.

use crate::ReportError;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};

/// A projected CRS in metres and the transforms to and from WGS 84.
pub struct WorkFrame {
    srs: SpatialRef,
    to_work: CoordTransform,
    to_wgs84: CoordTransform,
    /// Human name, e.g. `EPSG:3067` or the CRS name.
    pub name: String,
}

impl std::fmt::Debug for WorkFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkFrame")
            .field("name", &self.name)
            .finish()
    }
}

/// Parses `EPSG:3006`, `3006`, a WKT or a PROJ string into a spatial reference in GIS
/// order ([`besikta_georef::spatial_ref`], the one CRS reader).
pub fn parse_crs(text: &str) -> Result<SpatialRef, ReportError> {
    besikta_georef::spatial_ref(text).map_err(|e| ReportError::Crs {
        crs: text.to_string(),
        message: e.to_string(),
    })
}

/// WGS 84 in longitude, latitude order ([`besikta_georef::wgs84`]).
pub fn wgs84() -> SpatialRef {
    besikta_georef::wgs84().expect("EPSG:4326 is always known to PROJ")
}

/// `EPSG:NNNN` when GDAL can name the authority code, else the CRS name.
pub fn crs_label(srs: &SpatialRef) -> String {
    match (srs.auth_name(), srs.auth_code()) {
        (Some(a), Ok(c)) => format!("{a}:{c}"),
        _ => srs.name().unwrap_or_else(|| "unknown CRS".into()),
    }
}

impl WorkFrame {
    /// A frame in the given projected CRS.
    pub fn new(srs: &SpatialRef) -> Result<WorkFrame, ReportError> {
        let mut srs = srs.clone();
        srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        let name = crs_label(&srs);
        if !srs.is_projected() {
            return Err(ReportError::Crs {
                crs: name,
                message: "a metric projected CRS is needed for measuring".into(),
            });
        }
        let err = |e: gdal::errors::GdalError| ReportError::Crs {
            crs: name.clone(),
            message: e.to_string(),
        };
        let geo = wgs84();
        let to_work = CoordTransform::new(&geo, &srs).map_err(err)?;
        let to_wgs84 = CoordTransform::new(&srs, &geo).map_err(err)?;
        Ok(WorkFrame {
            srs,
            to_work,
            to_wgs84,
            name,
        })
    }

    /// The UTM zone (WGS 84) that contains the point.
    pub fn utm_for(lon: f64, lat: f64) -> Result<WorkFrame, ReportError> {
        let zone = (((lon + 180.0) / 6.0).floor() as i64).clamp(0, 59) + 1;
        let code = if lat >= 0.0 { 32600 } else { 32700 } + zone as u32;
        let srs = SpatialRef::from_epsg(code).map_err(|e| ReportError::Crs {
            crs: format!("EPSG:{code}"),
            message: e.to_string(),
        })?;
        WorkFrame::new(&srs)
    }

    /// The frame's spatial reference (GIS axis order).
    pub fn srs(&self) -> &SpatialRef {
        &self.srs
    }

    /// WGS 84 lon/lat to working x/y metres.
    pub fn to_work(&self, lonlat: [f64; 2]) -> Result<[f64; 2], ReportError> {
        transform_one(&self.to_work, lonlat, &self.name)
    }

    /// Working x/y metres to WGS 84 lon/lat.
    pub fn to_wgs84(&self, xy: [f64; 2]) -> Result<[f64; 2], ReportError> {
        transform_one(&self.to_wgs84, xy, &self.name)
    }

    /// A lon/lat ring as a polygon in working metres.
    pub fn ring_to_work(&self, ring: &[[f64; 2]]) -> Result<geo::Polygon<f64>, ReportError> {
        let mut xs: Vec<f64> = ring.iter().map(|p| p[0]).collect();
        let mut ys: Vec<f64> = ring.iter().map(|p| p[1]).collect();
        let mut zs = vec![0.0; ring.len()];
        self.to_work
            .transform_coords(&mut xs, &mut ys, &mut zs)
            .map_err(|e| ReportError::Crs {
                crs: self.name.clone(),
                message: e.to_string(),
            })?;
        let coords: Vec<geo::Coord<f64>> = xs
            .into_iter()
            .zip(ys)
            .map(|(x, y)| geo::coord! { x: x, y: y })
            .collect();
        Ok(geo::Polygon::new(geo::LineString::new(coords), vec![]))
    }
}

fn transform_one(t: &CoordTransform, p: [f64; 2], name: &str) -> Result<[f64; 2], ReportError> {
    let (mut x, mut y, mut z) = ([p[0]], [p[1]], [0.0]);
    t.transform_coords(&mut x, &mut y, &mut z)
        .map_err(|e| ReportError::Crs {
            crs: name.to_string(),
            message: e.to_string(),
        })?;
    Ok([x[0], y[0]])
}
