//! Which waiting review goes to which new finding when a flight is processed again: the
//! same class, overlapping bboxes, the pairs with the largest intersection over union
//! first, each review and each finding used once. Pure, so every backend pairs alike.

/// A review waiting for its finding, or a new finding without a review: id, the model's
/// class and the WGS 84 bbox `[min_lon, min_lat, max_lon, max_lat]`.
pub(crate) type Boxed = (i64, String, [f64; 4]);

/// `(review id, finding id, finding bbox)` for each review that finds its finding.
pub(crate) fn pair(waiting: &[Boxed], findings: &[Boxed]) -> Vec<(i64, i64, [f64; 4])> {
    let mut pairs = Vec::new();
    for (ri, (_, rclass, rb)) in waiting.iter().enumerate() {
        for (fi, (_, fclass, fb)) in findings.iter().enumerate() {
            if rclass == fclass {
                if let Some(iou) = overlap(rb, fb) {
                    pairs.push((iou, ri, fi));
                }
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let (mut review_used, mut finding_used) =
        (vec![false; waiting.len()], vec![false; findings.len()]);
    let mut out = Vec::new();
    for (_, ri, fi) in pairs {
        if review_used[ri] || finding_used[fi] {
            continue;
        }
        review_used[ri] = true;
        finding_used[fi] = true;
        let (fid, _, b) = &findings[fi];
        out.push((waiting[ri].0, *fid, *b));
    }
    out
}

/// Intersection over union of two bboxes; `None` when they do not touch.
fn overlap(a: &[f64; 4], b: &[f64; 4]) -> Option<f64> {
    let w = a[2].min(b[2]) - a[0].max(b[0]);
    let h = a[3].min(b[3]) - a[1].max(b[1]);
    if w < 0.0 || h < 0.0 {
        return None;
    }
    let area = |r: &[f64; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    let union = area(a) + area(b) - w * h;
    Some(if union > 0.0 { w * h / union } else { 0.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_overlap_wins_and_each_side_is_used_once() {
        let waiting = vec![(1, "crack".to_string(), [0.0, 0.0, 1.0, 1.0])];
        let findings = vec![
            (10, "crack".to_string(), [0.4, 0.4, 1.4, 1.4]),
            (11, "crack".to_string(), [0.6, 0.0, 1.6, 1.0]),
            (12, "pothole".to_string(), [0.0, 0.0, 1.0, 1.0]),
        ];
        // IoU 0.16/1.84 for 10, 0.4/1.6 for 11; the pothole is another class.
        assert_eq!(pair(&waiting, &findings), [(1, 11, [0.6, 0.0, 1.6, 1.0])]);
        assert!(pair(&waiting, &findings[2..]).is_empty());
    }
}
