//! Environment settings for sweeps that take two numbers (`A,B`), as
//! `BESIKTA_MERGE_TOLERANCE` and `BESIKTA_COVERAGE_MARGINS` do: the value read, blank
//! meaning unset, and the two numbers parsed.

/// The value of `name` as text; `None` when unset or blank.
pub(crate) fn value(name: &str) -> Option<String> {
    std::env::var_os(name)
        .map(|v| v.to_string_lossy().into_owned())
        .filter(|t| !t.trim().is_empty())
}

/// `A,B` as two finite numbers (spaces allowed around each); `None` for anything else.
pub(crate) fn two_numbers(text: &str) -> Option<(f64, f64)> {
    let parsed: Vec<Option<f64>> = text
        .split(',')
        .map(|v| v.trim().parse::<f64>().ok().filter(|x| x.is_finite()))
        .collect();
    match parsed[..] {
        [Some(a), Some(b)] => Some((a, b)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_finite_numbers_or_none() {
        assert_eq!(two_numbers("1.5, 2"), Some((1.5, 2.0)));
        for bad in ["2", "a,b", "1,2,3", "1,inf", "NaN,1", ""] {
            assert_eq!(two_numbers(bad), None, "{bad}");
        }
    }
}
