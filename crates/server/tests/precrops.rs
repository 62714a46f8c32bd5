//! Crops made at processing time, through the API with the real pipeline on the Brighton
//! fixture photos: after processing, a cold crop request is served from the crop stored
//! with the job's products (no photo decode), byte for byte the crop the decode pool makes
//! on demand; processing again removes the old crops with the old products.
//! Runs on PostgreSQL too (`BESIKTA_TEST_DATABASE=postgres`, feature `postgres`).

mod common;

use axum::http::StatusCode;
use common::{brighton_photos, env_with, Env};

/// The stored crops of a products folder, file name -> bytes.
fn stored_crops(out: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut crops: Vec<(String, Vec<u8>)> = std::fs::read_dir(out.join("crops"))
        .unwrap()
        .flatten()
        .map(|d| {
            (
                d.file_name().to_string_lossy().to_string(),
                std::fs::read(d.path()).unwrap(),
            )
        })
        .collect();
    crops.sort();
    crops
}

async fn finding_ids(e: &Env, flight: i64) -> Vec<i64> {
    let served = e.findings_geojson(flight, e.token("a", "viewer")).await;
    served["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_i64().unwrap())
        .collect()
}

/// The crop of finding `id`: its bytes and where the server took it from.
async fn crop(e: &Env, id: i64) -> (Vec<u8>, String) {
    let r = e
        .get(
            &format!("/api/v1/findings/{id}/photo.jpg"),
            e.token("a", "viewer"),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let source = r
        .header("x-besikta-crop")
        .expect("X-Besikta-Crop")
        .to_string();
    (r.body.to_vec(), source)
}

/// The crop counters of `/metrics`: cache hits, misses, precomputed served, decodes.
async fn crop_metrics(e: &Env) -> [u64; 4] {
    let r = e.get("/metrics", e.token("a", "admin")).await;
    assert_eq!(r.status, StatusCode::OK);
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    [
        "besikta_crop_cache_hits_total",
        "besikta_crop_cache_misses_total",
        "besikta_crop_precomputed_served_total",
        "besikta_crop_decodes_total",
    ]
    .map(|name| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in /metrics"))
            .parse()
            .unwrap()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processing_stores_each_findings_crop_and_cold_requests_use_it() {
    let e = env_with(|c| c.threads_per_job = 2);
    let flight = e.create_flight("a", "brighton").await;
    let files = brighton_photos(&["DJI_0018.JPG", "DJI_0019.JPG", "DJI_0020.JPG"]);
    let r = e.multipart(flight, e.token("a", "crew"), &files).await;
    assert_eq!(r.status, StatusCode::OK);
    e.process_to_done(flight, e.token("a", "crew")).await;

    let out = e.outputs(flight);
    assert_eq!(out.len(), 1, "{out:?}");
    let ids = finding_ids(&e, flight).await;
    assert!(
        ids.len() >= 2,
        "the coarse crack model finds several defects: {ids:?}"
    );
    let stored = stored_crops(&out[0]);
    assert!(
        !stored.is_empty() && stored.len() <= ids.len(),
        "one crop per distinct best view: {} crops for {} findings",
        stored.len(),
        ids.len()
    );
    let is_stored = |bytes: &[u8]| stored.iter().any(|(_, b)| b == bytes);

    // Cold: served from the stored crop, no decode; then from the cache.
    let (first, source) = crop(&e, ids[0]).await;
    assert_eq!(source, "precomputed");
    assert!(is_stored(&first));
    assert!(image::load_from_memory(&first).is_ok());
    assert_eq!(
        crop_metrics(&e).await,
        [0, 1, 1, 0],
        "hits, misses, precomputed, decodes: no photo decoded"
    );
    let (again, source) = crop(&e, ids[0]).await;
    assert_eq!(
        (again.as_slice(), source.as_str()),
        (first.as_slice(), "cache")
    );

    // Without the stored crops the pool decodes the photo: the same bytes as stored.
    std::fs::remove_dir_all(out[0].join("crops")).unwrap();
    let (decoded, source) = crop(&e, ids[1]).await;
    assert_eq!(source, "decoded");
    assert_eq!(crop_metrics(&e).await, [1, 2, 1, 1]);
    assert!(
        is_stored(&decoded),
        "the crop made on demand is byte for byte one made at processing time"
    );

    // Processed again: the old products and their crops go, the new job's are served.
    e.process_to_done(flight, e.token("a", "crew")).await;
    let out2 = e.outputs(flight);
    assert_eq!(out2.len(), 1, "{out2:?}");
    assert_ne!(out2[0], out[0]);
    assert!(!out[0].exists(), "the old products and crops are removed");
    let stored2 = stored_crops(&out2[0]);
    let ids2 = finding_ids(&e, flight).await;
    let last = *ids2.last().unwrap();
    let (bytes, source) = crop(&e, last).await;
    assert_eq!(source, "precomputed");
    assert!(stored2.iter().any(|(_, b)| *b == bytes));
}
