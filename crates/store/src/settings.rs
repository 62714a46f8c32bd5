//! Organisation settings: choices an organisation's admin makes once for all its users,
//! stored as one JSON document per organisation so a new setting needs no schema change.

use serde::{Deserialize, Serialize};

/// An organisation's settings; every field has a default, so a document written before a
/// setting existed reads as that setting's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrgSettings {
    /// Work-order exports include unreviewed findings (marked `unreviewed`) unless the
    /// request says otherwise; by default they hold confirmed and corrected findings only.
    pub workorders_include_unreviewed: bool,
    /// The service operator's upload quota for this organisation (`besikta quota`): each
    /// limit given replaces the one of `serve --quota-photo-gb/--quota-photos` for it.
    /// Shown to the organisation, never set through its API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<OrgQuota>,
}

/// An organisation's own upload limits; a limit left out (`None`) is the service's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrgQuota {
    /// Bytes of stored photos at most.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_photo_bytes: Option<u64>,
    /// Stored photos at most.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_photos: Option<u64>,
}

impl OrgSettings {
    /// The stored document, or the defaults when none was stored.
    pub(crate) fn from_stored(text: Option<String>) -> crate::Result<OrgSettings> {
        match text {
            None => Ok(OrgSettings::default()),
            Some(text) => serde_json::from_str(&text).map_err(|e| crate::StoreError::Corrupt {
                what: "organisation settings",
                message: e.to_string(),
            }),
        }
    }

    pub(crate) fn to_stored(&self) -> crate::Result<String> {
        serde_json::to_string(self).map_err(|e| crate::StoreError::Corrupt {
            what: "organisation settings",
            message: e.to_string(),
        })
    }
}
