//! `Store::add_photo_within` on both backends: two store handles on one database (as two
//! API processes have) record photos of one organisation from many threads at once
//! against a small limit; exactly the limit is recorded, each refusal reports the usage
//! that filled it, a duplicate is never refused, photos retention removed free their room,
//! and another organisation is not affected.

use besikta_store::testing::PgCluster;
use besikta_store::{
    PgStore, PhotoAdded, PhotoLimits, PhotoUsage, SqliteStore, Store, WithinLimits,
};
use std::sync::Arc;

/// Two handles on one fresh database of a backend.
struct Pair {
    backend: &'static str,
    stores: [Arc<dyn Store>; 2],
    /// The SQLite file's folder, kept while the handles are used.
    _dir: Option<tempfile::TempDir>,
}

fn handle_pairs() -> Vec<Pair> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("besikta.db");
    let sqlite: [Arc<dyn Store>; 2] = [
        Arc::new(SqliteStore::open(&file).unwrap()),
        Arc::new(SqliteStore::open(&file).unwrap()),
    ];
    let url = PgCluster::shared().unwrap().fresh_database().unwrap();
    let pg: [Arc<dyn Store>; 2] = [
        Arc::new(PgStore::open_with(&url, 4).unwrap()),
        Arc::new(PgStore::open_with(&url, 4).unwrap()),
    ];
    vec![
        Pair {
            backend: "sqlite",
            stores: sqlite,
            _dir: Some(dir),
        },
        Pair {
            backend: "postgres",
            stores: pg,
            _dir: None,
        },
    ]
}

#[test]
fn two_handles_recording_at_once_record_exactly_the_limit() {
    for Pair {
        backend,
        stores,
        _dir,
    } in handle_pairs()
    {
        let org = stores[0].ensure_org("Espoo", None).unwrap().id;
        let other = stores[0].ensure_org("Vantaa", None).unwrap().id;
        let flights: Vec<i64> = (0..4)
            .map(|i| stores[0].create_flight(org, &format!("f{i}")).unwrap().id)
            .collect();
        let limits = PhotoLimits {
            max_photos: Some(3),
            max_photo_bytes: Some(1_000),
        };
        // 16 photos of 100 bytes over 4 flights, from 16 threads on two handles.
        let threads: Vec<_> = (0..16)
            .map(|i| {
                let store = stores[i % 2].clone();
                let flight = flights[i % 4];
                std::thread::spawn(move || {
                    store
                        .add_photo_within(
                            flight,
                            &format!("p{i}.jpg"),
                            &format!("sha{i}"),
                            100,
                            &format!("flights/{flight}/photos"),
                            limits,
                        )
                        .unwrap()
                })
            })
            .collect();
        let results: Vec<WithinLimits> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let recorded: Vec<_> = results
            .iter()
            .filter_map(|r| match r {
                WithinLimits::Added(PhotoAdded::New(p)) => Some(p.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(recorded.len(), 3, "{backend}: {results:?}");
        for r in &results {
            if let WithinLimits::Over(usage) = r {
                assert_eq!(usage.photos, 3, "{backend}: refused only when full");
            }
        }
        assert_eq!(stores[1].org_stats(org).unwrap().photos, 3, "{backend}");

        // A duplicate takes no room: never refused.
        let first = &recorded[0];
        let again = stores[1]
            .add_photo_within(
                first.flight_id,
                "again.jpg",
                &first.sha256,
                100,
                "x",
                limits,
            )
            .unwrap();
        assert!(
            matches!(&again, WithinLimits::Added(PhotoAdded::Duplicate(p)) if p.id == first.id),
            "{backend}: {again:?}"
        );
        // A photo retention removed frees its room.
        stores[0].mark_photo_removed(first.id, 1).unwrap();
        let one_more = |store: &Arc<dyn Store>, sha: &str, size: u64| {
            store
                .add_photo_within(flights[0], "late.jpg", sha, size, "x", limits)
                .unwrap()
        };
        assert!(
            matches!(
                one_more(&stores[1], "late", 100),
                WithinLimits::Added(PhotoAdded::New(_))
            ),
            "{backend}"
        );
        assert_eq!(
            one_more(&stores[0], "later", 100),
            WithinLimits::Over(PhotoUsage {
                photos: 3,
                bytes: 300
            }),
            "{backend}"
        );
        // The byte limit alone: 300 of 1,000 bytes held, 701 more do not fit.
        let bytes_only = PhotoLimits {
            max_photos: None,
            max_photo_bytes: Some(1_000),
        };
        let big = stores[0]
            .add_photo_within(flights[1], "big.jpg", "big", 701, "x", bytes_only)
            .unwrap();
        assert!(matches!(big, WithinLimits::Over(_)), "{backend}: {big:?}");
        // Another organisation has room of its own.
        let theirs = stores[1].create_flight(other, "theirs").unwrap().id;
        let r = stores[1]
            .add_photo_within(theirs, "p.jpg", "sha0", 100, "x", limits)
            .unwrap();
        assert!(
            matches!(r, WithinLimits::Added(PhotoAdded::New(_))),
            "{backend}: {r:?}"
        );
    }
}
