//! Photo limits checked where a photo is recorded ([`crate::Store::add_photo_within`]): the
//! check of what an organisation holds and the new row are one transaction, serialised with
//! every other writer of the database (a PostgreSQL advisory lock per organisation; SQLite's
//! write lock), so several API processes on one database cannot together go over a quota.

use crate::PhotoAdded;

/// The most photos and photo bytes an organisation may keep stored; `None`: no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhotoLimits {
    pub max_photos: Option<u64>,
    pub max_photo_bytes: Option<u64>,
}

impl PhotoLimits {
    /// Whether any limit is set (none: nothing to count or lock).
    pub fn is_set(&self) -> bool {
        self.max_photos.is_some() || self.max_photo_bytes.is_some()
    }

    /// Whether one more photo of `size` bytes fits beside `usage`.
    pub fn fits(&self, usage: PhotoUsage, size: u64) -> bool {
        self.max_photos
            .is_none_or(|max| usage.photos.saturating_add(1) <= max)
            && self
                .max_photo_bytes
                .is_none_or(|max| usage.bytes.saturating_add(size) <= max)
    }
}

/// What an organisation holds against its quota: its photos and their bytes, those whose
/// files retention removed left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhotoUsage {
    pub photos: u64,
    pub bytes: u64,
}

/// What [`crate::Store::add_photo_within`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum WithinLimits {
    /// Recorded (or a duplicate, which takes no room).
    Added(PhotoAdded),
    /// Refused: the photo would go over a limit; nothing changed. The usage at that moment.
    Over(PhotoUsage),
}

/// The photo [`crate::Store::add_photo`] recorded: with no limits nothing is refused.
pub(crate) fn without_limits(added: WithinLimits) -> crate::Result<PhotoAdded> {
    match added {
        WithinLimits::Added(added) => Ok(added),
        WithinLimits::Over(_) => Err(crate::StoreError::Corrupt {
            what: "photo limits",
            message:
                "a photo recorded without limits was refused; report this bug in besikta-store"
                    .into(),
        }),
    }
}

/// Counts of the usage query (photos, bytes) as stored (signed) to [`PhotoUsage`].
pub(crate) fn usage_of(photos: i64, bytes: i64) -> PhotoUsage {
    PhotoUsage {
        photos: photos.max(0) as u64,
        bytes: bytes.max(0) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photo_fits_until_either_limit_would_be_passed() {
        let limits = PhotoLimits {
            max_photos: Some(2),
            max_photo_bytes: Some(100),
        };
        let held = |photos, bytes| PhotoUsage { photos, bytes };
        assert!(limits.fits(held(1, 50), 50));
        assert!(!limits.fits(held(2, 0), 1), "photo count full");
        assert!(!limits.fits(held(0, 50), 51), "bytes over");
        assert!(PhotoLimits::default().fits(held(u64::MAX - 1, u64::MAX), u64::MAX));
        assert!(!PhotoLimits::default().is_set());
    }
}
