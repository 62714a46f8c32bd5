//! Camera geometry: pixel <-> ground, footprints, GSD, DEM sampling and CRS transforms.
//!
//! Every finding's position on the map comes from here. This page is the contract: the
//! frames, angles and heights below are what the code does, and the known-answer tests in
//! `tests/` hold it to them.
//!
//! # Pixels
//!
//! Pixel coordinates are continuous `[x, y]` with `(0, 0)` at the top-left *corner* of the
//! photo and `(width, height)` at the bottom-right corner; the centre of pixel column `i`,
//! row `j` is `(i + 0.5, j + 0.5)`. The principal point `(cx, cy)` of
//! [`besikta_core::Camera`] uses the same convention.
//!
//! # Camera model
//!
//! Pinhole with square pixels, focal length `f` in pixels and principal point
//! `(cx, cy)`. The camera frame is OpenCV's: `x` to the right of the photo, `y` down the
//! photo, `z` out of the lens along the optical axis. When the capture carries
//! [`besikta_core::BrownDistortion`] (DJI `DewarpData`, OpenCV convention, normalised
//! coordinates), a camera-frame point `(X, Y, Z)` maps to `x = X/Z, y = Y/Z`, then
//! `r² = x² + y²`,
//! `x' = x (1 + k1 r² + k2 r⁴ + k3 r⁶) + 2 p1 x y + p2 (r² + 2 x²)`,
//! `y' = y (1 + k1 r² + k2 r⁴ + k3 r⁶) + p1 (r² + 2 y²) + 2 p2 x y`, and the pixel is
//! `(cx + f x', cy + f y')`. Pixel -> ray inverts this by Newton's method (converged to
//! 1e-12 in normalised units, about 1e-9 px).
//!
//! # Orientation (DJI gimbal angles)
//!
//! Angles are the gimbal's absolute attitude in degrees, as DJI writes `GimbalYawDegree`,
//! `GimbalPitchDegree`, `GimbalRollDegree`:
//!
//! - **yaw** ψ: heading of the optical axis, clockwise from true north seen from above;
//! - **pitch** θ: 0 at the horizon, positive up, -90 looking straight down;
//! - **roll** φ: positive when the right side of the photo dips.
//!
//! They are aerospace Z-Y-X Euler angles in North-East-Down: the camera-to-NED rotation is
//! `R = Rz(ψ) · Ry(θ) · Rx(φ) · M`, where `M` takes camera axes (right, down, forward) to
//! body axes (forward = optical axis, right, down): at ψ = θ = φ = 0 the camera looks north
//! along the horizon with the top of the photo up. NED is then swapped to ENU
//! (`E = e, N = n, U = -d`). Consequences, tested in `tests/known_answers.rs`: at
//! θ = -90, ψ = 0 the top of the photo points north and its right edge east, like a map;
//! ψ = 90 turns the top east; θ = -45 puts the footprint north of the camera as a
//! trapezoid widening away from it.
//!
//! # Frames on the Earth
//!
//! The camera sits at the origin of a local East-North-Up tangent frame on the WGS 84
//! ellipsoid at its GPS latitude/longitude and height. Rays are traced in Earth-centred
//! Earth-fixed coordinates ([`geodesy`]: exact closed forms, no GDAL), so ground points
//! carry no flat-Earth approximation whatever the range. GDAL/PROJ is used only to output
//! coordinates in another CRS ([`CrsTransform`]) and to read and query a DEM ([`Dem`]).
//! CRS transforms use GDAL's traditional GIS axis order: x = longitude or easting,
//! y = latitude or northing, whatever the EPSG definition says.
//!
//! # Heights and datums
//!
//! DJI's `AbsoluteAltitude` is a height above mean sea level (EGM96-like, often barometric
//! and sometimes tens of metres off); `RelativeAltitude` is above the take-off point. The
//! camera is placed at the capture's absolute altitude (EXIF GPS altitude when that is
//! missing) and **that number is used as a height along the ellipsoid normal**: no geoid
//! model is applied, because only height *differences* between camera and ground shape
//! the rays, and the geoid is flat to millimetres over a flight. So every height in this
//! crate is in the capture's vertical reference:
//!
//! - [`Ground::TakeOffPlane`] (the default) is the level surface at absolute minus
//!   relative altitude, so the camera is exactly its relative altitude above it and the
//!   drone's absolute-altitude error cancels. Without an absolute altitude the camera is
//!   put at its relative altitude over height 0 (heights are then above take-off).
//! - [`Ground::Plane`] heights and [`Dem`] values must be in the same reference as the
//!   absolute altitude: metres above mean sea level for DJI (for example RH 2000 in
//!   Sweden, N2000 in Finland, NAVD 88 in the USA are all within a metre or so of it).
//!   Only the DEM's horizontal coordinates are reprojected; its values are not converted
//!   between vertical datums.
//! - [`GroundPoint::height_m`] is in the ground model's reference.
//! - When the absolute altitude cannot be trusted against the DEM (barometric drift, or an
//!   RTK drone's ellipsoidal heights over an orthometric DEM: the geoid is 20-40 m away in
//!   the Nordics), [`CameraHeight::OverTakeOff`] puts the camera at the ground height of
//!   the take-off point plus the relative altitude instead.
//!
//! # Ground intersection
//!
//! A level ground is the surface of constant height above the ellipsoid; the ray meets it
//! by Newton's method on the height along the ray. A DEM is sampled bilinearly between
//! cell centres in its own CRS (query points are transformed from WGS 84 with GDAL); the
//! ray is marched in steps of half a cell from where it drops below the DEM's highest
//! value, and the first crossing is refined by regula falsi (Illinois) until the ray is
//! within a micrometre of the surface. A ray that meets the DEM's edge (leaves the area it
//! covers) is checked for a crossing before the edge. Features thinner than half a cell
//! that a ray crosses entirely between two samples can be missed. A ray that
//! does not meet the ground is an error that says why ([`GeorefError::AboveHorizon`],
//! [`GeorefError::BeyondRange`], [`GeorefError::OutsideDem`]), never a point at infinity.
//! [`PhotoGeometry::ground_to_pixel`] projects without an occlusion test.

pub mod camera;
mod crs;
mod dem;
mod error;
pub mod geodesy;
mod geometry;

pub use crs::{spatial_ref, wgs84, CrsTransform};
pub use dem::{Dem, DemGrid};
pub use error::GeorefError;
pub use geometry::{
    CameraHeight, FootprintOptions, GeometryOptions, Ground, GroundPoint, PhotoGeometry,
};
