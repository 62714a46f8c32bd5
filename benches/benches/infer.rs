//! Criterion benchmarks of the infer stage: decode, tiling and resampling, one inference batch,
//! post-processing. Run with `cargo bench -p besikta-benches --bench infer`.

use besikta_infer::image::{GrayImage, Luma};
use besikta_infer::postprocess::{segment_detections, SegPostConfig};
use besikta_infer::tiling::{fill_tile, Normaliser, TilePlan, TileSource};
use besikta_infer::{decode_photo, EngineConfig, InferOptions, Manifest, Model};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn manifest_path() -> PathBuf {
    fixtures().join("models/mtscrack_static.toml")
}

fn decode(c: &mut Criterion) {
    let jpg = fixtures().join("brighton/DJI_0018.JPG");
    let mut g = c.benchmark_group("infer/decode");
    g.sample_size(10);
    g.bench_function("jpeg_4000x2250", |b| {
        b.iter(|| {
            decode_photo(
                black_box(&jpg),
                besikta_ingest::ReadOptions::default().max_pixels,
            )
            .unwrap()
        })
    });
    g.finish();
}

fn tiling(c: &mut Criterion) {
    let manifest = Manifest::load(&manifest_path()).unwrap();
    let photo = decode_photo(
        &fixtures().join("brighton/DJI_0018.JPG"),
        besikta_ingest::ReadOptions::default().max_pixels,
    )
    .unwrap();
    let norm = Normaliser::new(&manifest);
    let mut g = c.benchmark_group("infer/tiling");
    g.sample_size(10);
    let mut buf = vec![0f32; 3 * 256 * 256];
    let mut row = Vec::new();
    // Native scale: 180 tiles of a 4000x2250 photo, copied and normalised.
    g.bench_function("fill_all_tiles_native", |b| {
        let plan = TilePlan::new(photo.width(), photo.height(), &manifest, None, None);
        b.iter(|| {
            for &t in &plan.tiles {
                fill_tile(
                    &TileSource::Direct(&photo),
                    &plan,
                    t,
                    &norm,
                    &mut buf,
                    &mut row,
                );
            }
            black_box(&buf);
        })
    });
    // Downsampling to half (photo at 2 mm/px, model at 1): one resize of the whole photo.
    g.bench_function("downsample_photo_half", |b| {
        b.iter(|| besikta_infer::tiling::downsample(&photo, 2000, 1125))
    });
    g.bench_function("image_crate_resize_photo_half", |b| {
        b.iter(|| {
            besikta_infer::image::imageops::resize(
                &photo,
                2000,
                1125,
                besikta_infer::image::imageops::FilterType::Triangle,
            )
        })
    });
    // Upsampling 2x, tile by tile (bilinear), 100 tiles.
    g.bench_function("fill_100_tiles_upsampled_2x", |b| {
        let plan = TilePlan::new(photo.width(), photo.height(), &manifest, Some(2.0), None);
        let src = TileSource::Upsampled {
            photo: &photo,
            scale: plan.scale,
        };
        b.iter(|| {
            for &t in plan.tiles.iter().take(100) {
                fill_tile(&src, &plan, t, &norm, &mut buf, &mut row);
            }
            black_box(&buf);
        })
    });
    g.finish();
}

fn inference(c: &mut Criterion) {
    let cfg = EngineConfig {
        workers: 1,
        intra_threads: 1,
        ..EngineConfig::default()
    };
    let mut model = Model::load(&manifest_path(), &cfg).unwrap();
    let photo = decode_photo(
        &fixtures().join("cracks/parity_deepcrack_11111_crop.png"),
        besikta_ingest::ReadOptions::default().max_pixels,
    )
    .unwrap();
    let input = model.preprocess_tile(&photo, 0, 0);
    let mut g = c.benchmark_group("infer/session");
    g.sample_size(10);
    g.bench_function("mtscrack_batch1_256_one_thread", |b| {
        b.iter(|| model.run_tensor(black_box(&input), 1).unwrap())
    });
    g.finish();
}

fn postprocess(c: &mut Criterion) {
    // A real crack mask: the model's output on a crack photo, tiled over a 4000x2250 canvas.
    let cfg = EngineConfig {
        workers: 1,
        intra_threads: 1,
        ..EngineConfig::default()
    };
    let mut model = Model::load(&manifest_path(), &cfg).unwrap();
    let crack = decode_photo(
        &fixtures().join("cracks/deepcrack_11111.jpg"),
        besikta_ingest::ReadOptions::default().max_pixels,
    )
    .unwrap();
    let small = model
        .infer_image(&crack, &InferOptions::default())
        .unwrap()
        .mask
        .unwrap();
    let (w, h) = (4000u32, 2250u32);
    let mask = GrayImage::from_fn(w, h, |x, y| {
        let v = small.get_pixel(x % small.width(), y % small.height())[0];
        Luma([v])
    });
    let score: Vec<f32> = mask
        .as_raw()
        .iter()
        .map(|&v| if v > 0 { 0.9 } else { 0.0 })
        .collect();
    let manifest = model.manifest().clone();
    let post = SegPostConfig {
        min_area_px: manifest.thresholds.min_area_px,
        simplify_px: 1.0,
    };
    let mut g = c.benchmark_group("infer/postprocess");
    g.sample_size(10);
    g.bench_function("components_outlines_skeletons_4000x2250", |b| {
        b.iter(|| segment_detections(black_box(&mask), &score, &manifest, post))
    });
    g.finish();
}

criterion_group!(benches, decode, tiling, inference, postprocess);
criterion_main!(benches);
