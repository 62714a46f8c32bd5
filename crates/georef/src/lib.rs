//! Camera geometry: pixel <-> ground, footprints, GSD, DEM sampling and CRS transforms.
