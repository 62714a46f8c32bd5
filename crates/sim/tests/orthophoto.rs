//! `SimConfig::orthophoto`: the true ground written as a GeoTIFF that GDAL reads back in the
//! flight's working CRS, and that agrees with the photos: the ground under each photo's
//! centre (rendered from the true pose, looking straight down) has the same colour in the
//! orthophoto at the true camera position.

use besikta_sim::{simulate, SimConfig};
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::Dataset;
use std::path::PathBuf;

fn helsinki() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/registers/helsinki.osm.pbf")
}

fn mean_rgb(img: &image::RgbImage, cx: u32, cy: u32, r: u32) -> [f64; 3] {
    let mut s = [0.0; 3];
    let mut n = 0.0;
    for y in cy - r..=cy + r {
        for x in cx - r..=cx + r {
            let p = img.get_pixel(x, y).0;
            for c in 0..3 {
                s[c] += p[c] as f64;
            }
            n += 1.0;
        }
    }
    s.map(|v| v / n)
}

#[test]
fn the_orthophoto_is_the_ground_the_photos_see() {
    let dir = tempfile::tempdir().unwrap();
    let ortho = dir.path().join("truth.tif");
    let out = simulate(&SimConfig {
        register: helsinki(),
        out_dir: dir.path().join("photos"),
        seed: 31,
        photos: 4,
        width_px: 800,
        defects: 3,
        orthophoto: Some(ortho.clone()),
        ..Default::default()
    })
    .unwrap();
    let ds = Dataset::open(&ortho).unwrap();
    assert_eq!(ds.raster_count(), 3);
    let srs = ds.spatial_ref().unwrap();
    assert_eq!(
        format!("EPSG:{}", srs.auth_code().unwrap()),
        out.frame,
        "the working CRS"
    );
    let gt = ds.geo_transform().unwrap();
    assert!((gt[1] - 0.05).abs() < 0.03 && gt[5] < 0.0, "{gt:?}");
    let (w, h) = ds.raster_size();
    let bands: Vec<Vec<u8>> = (1..=3)
        .map(|b| {
            ds.rasterband(b)
                .unwrap()
                .read_as::<u8>((0, 0), (w, h), (w, h), None)
                .unwrap()
                .data()
                .to_vec()
        })
        .collect();
    let mut wgs = SpatialRef::from_epsg(4326).unwrap();
    wgs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut srs = srs;
    srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let to = CoordTransform::new(&wgs, &srs).unwrap();
    for p in &out.photos {
        let (mut xs, mut ys, mut zs) = (vec![p.true_lon], vec![p.true_lat], vec![0.0]);
        to.transform_coords(&mut xs, &mut ys, &mut zs).unwrap();
        let col = ((xs[0] - gt[0]) / gt[1]) as usize;
        let row = ((ys[0] - gt[3]) / gt[5]) as usize;
        let r = (0.3 / gt[1]).round() as usize;
        let mut o = [0.0; 3];
        let mut n = 0.0;
        for y in row - r..=row + r {
            for x in col - r..=col + r {
                for (c, band) in bands.iter().enumerate() {
                    o[c] += band[y * w + x] as f64;
                }
                n += 1.0;
            }
        }
        let o = o.map(|v| v / n);
        let img = image::open(dir.path().join("photos").join(&p.file))
            .unwrap()
            .to_rgb8();
        // 0.3 m either side at the photo's GSD (about 4.5 cm at 40 m with 800 px).
        let gsd = out.gsd_cm / 100.0;
        let rp = (0.3 / gsd).round() as u32;
        let ph = mean_rgb(&img, img.width() / 2, img.height() / 2, rp);
        let diff = (0..3).map(|c| (o[c] - ph[c]).abs()).fold(0.0, f64::max);
        assert!(
            diff < 20.0,
            "{}: orthophoto {o:?} vs photo {ph:?} at the nadir",
            p.file
        );
    }
}
