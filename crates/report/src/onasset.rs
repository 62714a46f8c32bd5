//! Defects only where the asset is: with a register, a road defect must lie on the road
//! surface and a roof defect on a building; everything else is dropped and counted.
//!
//! An observation's position is its outline's centroid. It is on a road when it is within
//! the road's half width plus the photo's position uncertainty of the centreline; on a roof
//! when it is inside a building outline or within the position uncertainty of one. A kind
//! the registers hold no asset of (a roads-only register and the roof model) is not
//! checked: nothing is known about where those assets are.

use crate::register::AssetGeometry;
use crate::{Observation, Register, ReportError, WorkFrame};
use besikta_core::AssetKind;
use geo::{BoundingRect, Centroid, Contains, Distance, Euclidean, Point};
use std::collections::BTreeMap;

/// Reason names counted in `dropped`.
pub const OFF_ROAD: &str = "off_road_surface";
pub const OFF_ROOF: &str = "off_building";

/// Whether the point (working metres) lies on an asset of `kind`, with `margin_m` of slack.
pub fn on_asset(registers: &[Register], kind: AssetKind, p: Point<f64>, margin_m: f64) -> bool {
    registers.iter().any(|reg| {
        reg.assets_in([p.x(), p.y(), p.x(), p.y()], margin_m + 30.0)
            .filter(|a| a.kind == kind)
            .any(|a| match &a.geometry {
                AssetGeometry::Line(lines) => {
                    Euclidean.distance(&p, lines) <= a.width_m / 2.0 + margin_m
                }
                AssetGeometry::Area(polys) => {
                    polys.contains(&p) || Euclidean.distance(&p, polys) <= margin_m
                }
            })
    })
}

/// Which asset kinds the registers hold, so an observation can be checked on its own: as
/// the process job does while photos are inferred (what is dropped then is not held to the
/// end of the flight), with the same result as [`AssetCheck::keep`] at the end.
#[derive(Debug, Clone, Copy)]
pub struct AssetCheck {
    roads: bool,
    roofs: bool,
}

impl AssetCheck {
    pub fn new(registers: &[Register]) -> AssetCheck {
        let has = |k: AssetKind| {
            registers
                .iter()
                .any(|r| r.assets.iter().any(|a| a.kind == k))
        };
        AssetCheck {
            roads: has(AssetKind::Road),
            roofs: has(AssetKind::Roof),
        }
    }

    /// Why `o` is dropped ([`OFF_ROAD`], [`OFF_ROOF`]), or `None` to keep it: kinds the
    /// registers hold no asset of, and outlines without a centre, are kept.
    pub fn drop_reason(
        &self,
        o: &Observation,
        registers: &[Register],
        frame: &WorkFrame,
    ) -> Result<Option<&'static str>, ReportError> {
        let checked = match o.asset_kind {
            AssetKind::Road => self.roads,
            AssetKind::Roof => self.roofs,
        };
        if !checked {
            return Ok(None);
        }
        let poly = frame.ring_to_work(&o.ground_polygon)?;
        let c = poly
            .centroid()
            .filter(|c| {
                poly.bounding_rect().is_some_and(|r| {
                    c.x() >= r.min().x
                        && c.x() <= r.max().x
                        && c.y() >= r.min().y
                        && c.y() <= r.max().y
                })
            })
            .or_else(|| poly.bounding_rect().map(|r| r.center().into()));
        let Some(c) = c else {
            return Ok(None);
        };
        if on_asset(registers, o.asset_kind, c, o.position_uncertainty_m) {
            return Ok(None);
        }
        Ok(Some(match o.asset_kind {
            AssetKind::Road => OFF_ROAD,
            AssetKind::Roof => OFF_ROOF,
        }))
    }

    /// The observations that lie on an asset of their kind; the rest counted by reason.
    pub fn keep(
        &self,
        observations: Vec<Observation>,
        registers: &[Register],
        frame: &WorkFrame,
        dropped: &mut BTreeMap<String, usize>,
    ) -> Result<Vec<Observation>, ReportError> {
        let mut kept = Vec::with_capacity(observations.len());
        for o in observations {
            match self.drop_reason(&o, registers, frame)? {
                None => kept.push(o),
                Some(why) => *dropped.entry(why.to_string()).or_default() += 1,
            }
        }
        Ok(kept)
    }
}
