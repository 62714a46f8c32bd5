//! A person's word on a finding: the review state, the reason for a rejection and what a
//! correction changed, with `as_str`/`FromStr` so stores, APIs and exports share one spelling.

use crate::{AssetKind, Severity};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An unknown spelling of one of this module's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownWord {
    /// What was being read (`review state`, `reject reason`, `severity`, `asset kind`).
    pub what: &'static str,
    pub text: String,
    /// The accepted spellings.
    pub expected: &'static [&'static str],
}

impl fmt::Display for UnknownWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} {:?}; expected one of: {}",
            self.what,
            self.text,
            self.expected.join(", ")
        )
    }
}

impl std::error::Error for UnknownWord {}

macro_rules! words {
    ($ty:ident, $what:literal, $( $variant:ident => $text:literal ),+ $(,)?) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];
            /// The spellings [`FromStr`] accepts.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $text),+
                }
            }
        }

        impl FromStr for $ty {
            type Err = UnknownWord;
            fn from_str(text: &str) -> Result<Self, UnknownWord> {
                match text {
                    $($text => Ok($ty::$variant),)+
                    _ => Err(UnknownWord { what: $what, text: text.to_string(), expected: $ty::NAMES }),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// Where a finding is in review. Work orders take `Confirmed` and `Corrected` by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReviewState {
    #[default]
    Unreviewed,
    Confirmed,
    Rejected,
    /// A person changed the class, severity or outline.
    Corrected,
}

words!(ReviewState, "review state",
    Unreviewed => "unreviewed",
    Confirmed => "confirmed",
    Rejected => "rejected",
    Corrected => "corrected",
);

impl ReviewState {
    /// Whether a finding in this state becomes work by default.
    pub fn is_work(self) -> bool {
        matches!(self, ReviewState::Confirmed | ReviewState::Corrected)
    }
}

/// Why a reviewer rejected a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RejectReason {
    NotADefect,
    WrongClass,
    Duplicate,
    OutOfScope,
}

words!(RejectReason, "reject reason",
    NotADefect => "not-a-defect",
    WrongClass => "wrong-class",
    Duplicate => "duplicate",
    OutOfScope => "out-of-scope",
);

words!(Severity, "severity",
    Low => "low",
    Medium => "medium",
    High => "high",
);

words!(AssetKind, "asset kind",
    Road => "road",
    Roof => "roof",
);

/// A person's review of one finding.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Review {
    pub state: ReviewState,
    /// Set when `state` is `Rejected`.
    pub reason: Option<RejectReason>,
    /// Who reviewed: the reviewing token's name in the audit log.
    pub by: Option<String>,
    /// RFC 3339, UTC.
    pub at: Option<String>,
    pub comment: Option<String>,
    /// What a correction changed; `None` where the model's value stands.
    pub corrected_class: Option<String>,
    pub corrected_severity: Option<Severity>,
    /// A corrected outline on the ground, WGS 84 lon/lat, closed ring.
    pub corrected_polygon: Option<Vec<[f64; 2]>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_reads_back_from_its_spelling_and_serde_agrees() {
        for s in ReviewState::ALL {
            assert_eq!(s.as_str().parse::<ReviewState>(), Ok(*s));
            assert_eq!(
                serde_json_like(&format!("{s:?}")),
                s.as_str(),
                "serde and as_str spell {s:?} the same"
            );
        }
        for r in RejectReason::ALL {
            assert_eq!(r.as_str().parse::<RejectReason>(), Ok(*r));
        }
        for s in Severity::ALL {
            assert_eq!(s.as_str().parse::<Severity>(), Ok(*s));
        }
        let err = "Confirmed".parse::<ReviewState>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown review state \"Confirmed\"; expected one of: unreviewed, confirmed, rejected, corrected"
        );
        assert!(ReviewState::Corrected.is_work());
        assert!(!ReviewState::Rejected.is_work());
        assert!(!ReviewState::Unreviewed.is_work());
    }

    /// serde's `rename_all = "lowercase"` of a unit variant name.
    fn serde_json_like(variant: &str) -> String {
        variant.to_lowercase()
    }
}
