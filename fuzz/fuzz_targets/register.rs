//! Fuzz target: an asset register file through GDAL and `Register::load`, in memory
//! (`/vsimem/`), as the server checks an uploaded register. The first byte picks the
//! format the file is named as (GeoJSON, GeoPackage, FlatGeobuf, OSM PBF, zipped shapefile)
//! and the asset kind; the rest is the file.
#![no_main]

use besikta_core::AssetKind;
use besikta_report::register::frame_for;
use besikta_report::{Register, RegisterSource};
use libfuzzer_sys::fuzz_target;

const FORMATS: [&str; 5] = ["geojson", "gpkg", "fgb", "osm.pbf", "shp.zip"];
const KINDS: [Option<AssetKind>; 3] = [None, Some(AssetKind::Road), Some(AssetKind::Roof)];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, file)) = data.split_first() else {
        return;
    };
    let format = FORMATS[usize::from(pick) % FORMATS.len()];
    let kind = KINDS[usize::from(pick) / FORMATS.len() % KINDS.len()];
    let path = format!("/vsimem/fuzz/register.{format}");
    // GDAL reads the bytes in place and the handle unlinks the file when dropped. (Not
    // `create_mem_file`: gdal 0.19 hands GDAL an empty Vec's dangling pointer to free,
    // which crashed this target on an empty file.)
    let mut bytes = file.to_vec();
    let Ok(_file) = gdal::vsi::create_mem_file_from_ref(&path, &mut bytes) else {
        return;
    };
    let src = RegisterSource {
        kind,
        ..RegisterSource::new(&path)
    };
    if let Ok(Some(frame)) = frame_for(std::slice::from_ref(&src)) {
        if let Ok(register) = Register::load(&src, &frame) {
            for asset in &register.assets {
                assert!(asset.width_m.is_finite(), "{asset:?}");
            }
        }
    }
});
