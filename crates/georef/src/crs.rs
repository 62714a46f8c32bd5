//! CRS transforms from and to WGS 84 through GDAL/PROJ, always in x = easting/longitude,
//! y = northing/latitude order (GDAL's traditional GIS axis order).

use crate::GeorefError;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};

/// WGS 84 geographic coordinates with longitude first.
pub fn wgs84() -> Result<SpatialRef, gdal::errors::GdalError> {
    let mut srs = SpatialRef::from_epsg(4326)?;
    srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    Ok(srs)
}

/// The one reader of a CRS as users and files write it: `EPSG:3067`, a bare EPSG code
/// `3067`, a WKT or a PROJ string (anything GDAL's `SetFromUserInput` accepts), in
/// traditional GIS axis order (x = easting/longitude).
pub fn spatial_ref(definition: &str) -> Result<SpatialRef, gdal::errors::GdalError> {
    let t = definition.trim();
    let mut srs = match t.strip_prefix("EPSG:").unwrap_or(t).parse::<u32>() {
        Ok(code) => SpatialRef::from_epsg(code)?,
        Err(_) => SpatialRef::from_definition(t)?,
    };
    srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    Ok(srs)
}

/// A transform between WGS 84 (lon, lat) and one other CRS, both directions.
///
/// Holds GDAL objects, so it is neither `Send` nor `Sync`: build one per thread.
#[derive(Debug)]
pub struct CrsTransform {
    definition: String,
    target: SpatialRef,
    forward: CoordTransform,
    inverse: CoordTransform,
}

impl CrsTransform {
    /// Builds the transform from WGS 84 to the CRS `definition`: anything GDAL's
    /// `SetFromUserInput` accepts, e.g. `EPSG:3006`, `EPSG:3067`, `EPSG:32633`, a WKT or a
    /// PROJ string.
    pub fn from_wgs84(definition: &str) -> Result<Self, GeorefError> {
        let crs_err = |reason: &str, source| GeorefError::Crs {
            definition: definition.to_string(),
            reason: reason.to_string(),
            source,
        };
        let target = spatial_ref(definition)
            .map_err(|e| crs_err("GDAL/PROJ does not know this CRS", Some(e)))?;
        Self::between(definition, target)
            .map_err(|e| crs_err("cannot transform from WGS 84", Some(e)))
    }

    pub(crate) fn from_spatial_ref(
        definition: &str,
        mut target: SpatialRef,
    ) -> Result<Self, gdal::errors::GdalError> {
        target.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        Self::between(definition, target)
    }

    fn between(definition: &str, target: SpatialRef) -> Result<Self, gdal::errors::GdalError> {
        let source = wgs84()?;
        Ok(Self {
            definition: definition.to_string(),
            forward: CoordTransform::new(&source, &target)?,
            inverse: CoordTransform::new(&target, &source)?,
            target,
        })
    }

    /// The definition this transform was built from.
    pub fn definition(&self) -> &str {
        &self.definition
    }

    /// The EPSG code of the target CRS, when it has one (looked up if not explicit).
    pub fn epsg(&self) -> Option<u32> {
        let named = |srs: &SpatialRef| {
            (srs.auth_name().as_deref() == Some("EPSG"))
                .then(|| srs.auth_code().ok())
                .flatten()
                .and_then(|c| u32::try_from(c).ok())
        };
        named(&self.target).or_else(|| {
            let mut srs = self.target.clone();
            srs.auto_identify_epsg().ok()?;
            named(&srs)
        })
    }

    /// Whether the target CRS is geographic (degrees) rather than projected (metres).
    pub fn is_geographic(&self) -> bool {
        self.target.is_geographic()
    }

    /// WGS 84 longitude/latitude (degrees) to target `[x, y]`.
    pub fn apply(&self, lon: f64, lat: f64) -> Result<[f64; 2], GeorefError> {
        let mut out = [[lon, lat]];
        self.apply_many(&mut out)?;
        Ok(out[0])
    }

    /// Target `[x, y]` back to WGS 84 `[lon, lat]` (degrees).
    pub fn inverse(&self, x: f64, y: f64) -> Result<[f64; 2], GeorefError> {
        let mut out = [[x, y]];
        self.inverse_many(&mut out)?;
        Ok(out[0])
    }

    /// Transforms `[lon, lat]` points to target `[x, y]` in place, in one GDAL call.
    pub fn apply_many(&self, points: &mut [[f64; 2]]) -> Result<(), GeorefError> {
        run(&self.forward, points).map_err(|e| GeorefError::Crs {
            definition: self.definition.clone(),
            reason: "a point could not be transformed from WGS 84".into(),
            source: Some(e),
        })
    }

    /// Transforms target `[x, y]` points to `[lon, lat]` in place, in one GDAL call.
    pub fn inverse_many(&self, points: &mut [[f64; 2]]) -> Result<(), GeorefError> {
        run(&self.inverse, points).map_err(|e| GeorefError::Crs {
            definition: self.definition.clone(),
            reason: "a point could not be transformed to WGS 84".into(),
            source: Some(e),
        })
    }
}

/// Runs the forward (WGS 84 -> target) transform of `t` in place.
pub(crate) fn run_forward(t: &CrsTransform, points: &mut [[f64; 2]]) -> Result<(), GeorefError> {
    t.apply_many(points)
}

pub(crate) fn run(
    transform: &CoordTransform,
    points: &mut [[f64; 2]],
) -> Result<(), gdal::errors::GdalError> {
    let mut xs: Vec<f64> = points.iter().map(|p| p[0]).collect();
    let mut ys: Vec<f64> = points.iter().map(|p| p[1]).collect();
    transform.transform_coords(&mut xs, &mut ys, &mut [])?;
    for (p, (x, y)) in points.iter_mut().zip(xs.into_iter().zip(ys)) {
        *p = [x, y];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_crs_is_the_same_crs_in_gis_order() {
        let wkt = SpatialRef::from_epsg(3067).unwrap().to_wkt().unwrap();
        let proj = "+proj=utm +zone=35 +ellps=GRS80 +units=m +no_defs";
        for text in ["EPSG:3067", "3067", " EPSG:3067 ", wkt.as_str(), proj] {
            let srs = spatial_ref(text).unwrap();
            assert!(srs.is_projected(), "{text}");
            // Helsinki: easting first, whatever the CRS's own axis order.
            let t = CoordTransform::new(&wgs84().unwrap(), &srs).unwrap();
            let (mut x, mut y, mut z) = ([24.94], [60.17], [0.0]);
            t.transform_coords(&mut x, &mut y, &mut z).unwrap();
            assert!((x[0] - 385_500.0).abs() < 1000.0, "{text}: x {}", x[0]);
            assert!((y[0] - 6_672_000.0).abs() < 2000.0, "{text}: y {}", y[0]);
        }
        assert!(spatial_ref("EPSG:99999999").is_err());
        assert!(spatial_ref("not a crs").is_err());
    }
}
