//! Per-organisation upload quotas (`besikta serve --quota-photo-gb N --quota-photos N`):
//! the most photo bytes and photos one organisation may keep stored. An upload that would
//! go over is refused with 413 and a reason naming the quota; photos already stored are
//! never touched. The check counts what the database holds (`Store::org_stats`), at the
//! start of an upload (tus creation with its `Upload-Length`, a multipart request) and
//! again when a photo's bytes are all in, by the store in the transaction that records it
//! (`add_photo`: atomic across every API process sharing the database). Photos whose files
//! the retention period removed (`retention`) no longer count. The operator can give one
//! organisation limits of its own (`besikta quota`, stored in its settings as
//! [`besikta_store::OrgQuota`]): each limit given replaces the flag's for it.

use crate::AppState;
use axum::http::StatusCode;

/// The quota of every organisation; `None`: no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quota {
    /// Bytes of stored photos per organisation.
    pub max_photo_bytes: Option<u64>,
    /// Stored photos per organisation.
    pub max_photos: Option<u64>,
}

impl Quota {
    /// Whether any limit is set.
    pub fn is_set(&self) -> bool {
        self.max_photo_bytes.is_some() || self.max_photos.is_some()
    }
}

/// A refused upload: its status (413) and the reason naming the quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverQuota {
    pub status: StatusCode,
    pub reason: String,
}

/// Bytes in words: `12.3 MB`, `1.50 GB`.
fn size(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else {
        format!("{:.1} MB", b / 1e6)
    }
}

/// Which limits of a [`Quota`] the organisation has of its own (else they are the flags').
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Origin {
    pub own_photos: bool,
    pub own_bytes: bool,
}

/// Every limit from `besikta serve`'s flags.
#[cfg(test)]
const FLAGS: Origin = Origin {
    own_photos: false,
    own_bytes: false,
};

/// What a limit set for the organisation alone is called in a refusal.
const OWN: &str = "set for this organisation with `besikta quota`";

/// The limits that apply to an organisation whose own quota is `own`, on a service whose
/// flags give `service`: each own limit replaces the flag's.
pub fn merge(service: Quota, own: Option<besikta_store::OrgQuota>) -> (Quota, Origin) {
    let own = own.unwrap_or_default();
    let quota = Quota {
        max_photo_bytes: own.max_photo_bytes.or(service.max_photo_bytes),
        max_photos: own.max_photos.or(service.max_photos),
    };
    let origin = Origin {
        own_photos: own.max_photos.is_some(),
        own_bytes: own.max_photo_bytes.is_some(),
    };
    (quota, origin)
}

/// The limits that apply to organisation `org_id` and where each was set.
pub fn for_org(state: &AppState, org_id: i64) -> Result<(Quota, Origin), OverQuota> {
    let settings = state.store().org_settings(org_id).map_err(|e| OverQuota {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        reason: format!("cannot read the organisation's quota: {e}"),
    })?;
    Ok(merge(state.config().quota, settings.quota))
}

/// Whether an organisation holding `photos` photos of `bytes` bytes may add `add_photos`
/// more of `add_bytes` bytes; a refusal names where the limit was set (`origin`).
pub fn check_counts_from(
    quota: &Quota,
    origin: Origin,
    photos: u64,
    bytes: u64,
    add_photos: u64,
    add_bytes: u64,
) -> Result<(), OverQuota> {
    let over = |reason: String| OverQuota {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        reason,
    };
    if let Some(max) = quota.max_photos {
        if photos + add_photos > max {
            let named = if origin.own_photos {
                OWN.to_string()
            } else {
                format!("--quota-photos {max}")
            };
            return Err(over(format!(
                "the organisation's photo quota is full: {photos} of at most {max} photos are stored (quota {named}); delete flights you no longer need or ask the service's operator to raise the quota"
            )));
        }
    }
    if let Some(max) = quota.max_photo_bytes {
        if bytes.saturating_add(add_bytes) > max {
            let named = if origin.own_bytes {
                OWN
            } else {
                "--quota-photo-gb"
            };
            return Err(over(format!(
                "this photo of {} would go over the organisation's storage quota: {} of at most {} are stored (quota {named}); delete flights you no longer need or ask the service's operator to raise the quota",
                size(add_bytes),
                size(bytes),
                size(max)
            )));
        }
    }
    Ok(())
}

/// Whether organisation `org_id` may store `add_photos` more photos of `add_bytes` bytes.
pub fn check(
    state: &AppState,
    org_id: i64,
    add_photos: u64,
    add_bytes: u64,
) -> Result<(), OverQuota> {
    let (quota, origin) = for_org(state, org_id)?;
    if !quota.is_set() {
        return Ok(());
    }
    let stats = state.store().org_stats(org_id).map_err(|e| OverQuota {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        reason: format!("cannot read the organisation's stored photos for its quota: {e}"),
    })?;
    // Photos whose files retention removed take no room any more.
    let (removed, removed_bytes) =
        state
            .store()
            .removed_photo_totals(org_id)
            .map_err(|e| OverQuota {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                reason: format!("cannot read the organisation's removed photos for its quota: {e}"),
            })?;
    check_counts_from(
        &quota,
        origin,
        (stats.photos - removed).max(0) as u64,
        (stats.photo_bytes - removed_bytes).max(0) as u64,
        add_photos,
        add_bytes,
    )
}

/// Records a photo of organisation `org_id` (as [`besikta_store::Store::add_photo`]) only
/// when it fits the organisation's quota. The store counts and records in one transaction
/// that every other writer of the database waits for (a PostgreSQL advisory lock on the
/// organisation, SQLite's write lock), so API processes sharing one database cannot
/// together go over the quota; a photo that would is refused with 413 naming the limit.
pub fn add_photo(
    state: &AppState,
    org_id: i64,
    photo: NewPhoto<'_>,
) -> Result<besikta_store::PhotoAdded, OverQuota> {
    let (quota, origin) = for_org(state, org_id)?;
    let limits = besikta_store::PhotoLimits {
        max_photos: quota.max_photos,
        max_photo_bytes: quota.max_photo_bytes,
    };
    let added = state
        .store()
        .add_photo_within(
            photo.flight_id,
            photo.name,
            photo.sha256,
            photo.size,
            photo.dir,
            limits,
        )
        .map_err(|e| OverQuota {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            reason: e.to_string(),
        })?;
    match added {
        besikta_store::WithinLimits::Added(added) => Ok(added),
        besikta_store::WithinLimits::Over(usage) => {
            Err(
                check_counts_from(&quota, origin, usage.photos, usage.bytes, 1, photo.size)
                    .err()
                    .unwrap_or_else(|| OverQuota {
                        status: StatusCode::PAYLOAD_TOO_LARGE,
                        reason: format!(
                "the photo would go over the organisation's quota ({} of {} photos, {} stored)",
                usage.photos,
                quota.max_photos.map_or("any".into(), |m| m.to_string()),
                size(usage.bytes)
            ),
                    }),
            )
        }
    }
}

/// A photo to record ([`add_photo`]): stored at `dir/<name>` in flight `flight_id`.
#[derive(Debug, Clone, Copy)]
pub struct NewPhoto<'a> {
    pub flight_id: i64,
    pub name: &'a str,
    pub sha256: &'a str,
    pub size: u64,
    /// Folder relative to the data folder.
    pub dir: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Limits set by the flags.
    fn check_counts(
        quota: &Quota,
        photos: u64,
        bytes: u64,
        add_photos: u64,
        add_bytes: u64,
    ) -> Result<(), OverQuota> {
        check_counts_from(quota, FLAGS, photos, bytes, add_photos, add_bytes)
    }

    #[test]
    fn counts_and_bytes_each_limit_uploads() {
        let none = Quota::default();
        assert!(check_counts(&none, 1_000_000, u64::MAX - 1, 1, 1).is_ok());
        let q = Quota {
            max_photos: Some(3),
            max_photo_bytes: Some(10_000_000),
        };
        assert!(
            check_counts(&q, 2, 5_000_000, 1, 5_000_000).is_ok(),
            "exactly full is allowed"
        );
        let e = check_counts(&q, 3, 0, 1, 1).unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(e.reason.contains("3 of at most 3 photos"), "{}", e.reason);
        assert!(e.reason.contains("--quota-photos"), "{}", e.reason);
        let e = check_counts(&q, 1, 9_000_000, 1, 2_000_000).unwrap_err();
        assert!(e.reason.contains("2.0 MB"), "{}", e.reason);
        assert!(
            e.reason.contains("9.0 MB of at most 10.0 MB"),
            "{}",
            e.reason
        );
        assert!(e.reason.contains("--quota-photo-gb"), "{}", e.reason);
    }

    #[test]
    fn an_organisations_own_limits_replace_the_flags_one_by_one() {
        let service = Quota {
            max_photos: Some(3),
            max_photo_bytes: Some(10_000_000),
        };
        assert_eq!(merge(service, None), (service, FLAGS));
        let own = besikta_store::OrgQuota {
            max_photos: Some(100),
            max_photo_bytes: None,
        };
        let (q, origin) = merge(service, Some(own));
        assert_eq!(q.max_photos, Some(100));
        assert_eq!(
            q.max_photo_bytes,
            Some(10_000_000),
            "the flag's byte limit stays"
        );
        assert!(origin.own_photos && !origin.own_bytes);
        // 50 stored photos pass the organisation's 100, not the flag's 3.
        assert!(check_counts_from(&q, origin, 50, 0, 1, 1).is_ok());
        let e = check_counts_from(&q, origin, 100, 0, 1, 1).unwrap_err();
        assert!(
            e.reason.contains("100 of at most 100 photos"),
            "{}",
            e.reason
        );
        assert!(e.reason.contains("besikta quota"), "{}", e.reason);
        assert!(!e.reason.contains("--quota-photos"), "{}", e.reason);
        // A limit only for the organisation, on a service without flags.
        let (q, _) = merge(
            Quota::default(),
            Some(besikta_store::OrgQuota {
                max_photos: None,
                max_photo_bytes: Some(1_000),
            }),
        );
        assert!(q.is_set());
        assert_eq!(q.max_photos, None);
    }
}
