//! Merging a flight in parts gives exactly the findings of one merge of everything: a few
//! hundred scattered observations (cracks in pieces, potholes, several photos with their
//! own position uncertainties, coverage that drops weak findings) merged at once and in
//! parts of 1, 7 and 60 observations.

use besikta_report::evidence::Coverage;
use besikta_report::{merge_and_weigh, Merger, Observation, Parts, ReportConfig, WorkFrame};

mod common;

/// A small deterministic generator (no dependency for one test).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn observations(f: &(WorkFrame, [f64; 2])) -> Vec<Observation> {
    let mut r = Lcg(7);
    let mut out = Vec::new();
    // Defects on a 120 m x 40 m street; each seen by 1-4 photos with a little offset, a crack
    // sometimes in two pieces, plus a row of fragments along a marking.
    for d in 0..120 {
        let (x, y) = (r.next() * 120.0, r.next() * 40.0);
        let crack = d % 3 != 0;
        let views = 1 + (r.next() * 4.0) as usize;
        for v in 0..views {
            let photo = format!("p{}.jpg", (d + v * 5) % 16);
            let sigma = [0.05, 0.3, 1.0][(d + v) % 3];
            let (dx, dy) = (r.next() * 0.6 - 0.3, r.next() * 0.6 - 0.3);
            let (w, h) = if crack {
                (1.5 + r.next() * 2.0, 0.1 + r.next() * 0.1)
            } else {
                (0.4 + r.next() * 0.4, 0.4 + r.next() * 0.4)
            };
            let pieces = if crack && r.next() < 0.3 { 2 } else { 1 };
            for p in 0..pieces {
                let x0 = x + dx + p as f64 * (w + 0.15);
                out.push(obs(
                    f,
                    &photo,
                    if crack { "crack" } else { "pothole" },
                    [x0, y + dy, x0 + w, y + dy + h],
                    sigma,
                    0.3 + 0.6 * r.next() as f32,
                ));
            }
        }
    }
    for k in 0..40 {
        let x = k as f64 * 1.2;
        out.push(obs(
            f,
            &format!("p{}.jpg", k % 2),
            "crack",
            [x, 45.0, x + 1.0, 45.1],
            0.2,
            0.6,
        ));
    }
    out
}

/// An observation from `photo` on the rectangle `r`, with its pose sigma and confidence.
fn obs(
    f: &(WorkFrame, [f64; 2]),
    photo: &str,
    class: &str,
    r: [f64; 4],
    sigma: f64,
    confidence: f32,
) -> Observation {
    Observation {
        confidence,
        length_px: (class == "crack").then_some((r[2] - r[0]) * 50.0),
        pose_sigma_m: Some(sigma),
        sides_grey: None,
        ..common::observation(f, photo, class, r)
    }
}

#[test]
fn a_flight_merged_in_parts_gives_the_findings_of_one_merge() {
    let f = common::frame();
    let (frame, origin) = (&f.0, f.1);
    let all = observations(&f);
    // Every photo covers the whole street: a finding seen by few of them is weak.
    let square: Vec<[f64; 2]> = [[-5.0, -5.0], [130.0, -5.0], [130.0, 50.0], [-5.0, 50.0]]
        .iter()
        .map(|p| {
            frame
                .to_wgs84([origin[0] + p[0], origin[1] + p[1]])
                .unwrap()
        })
        .collect();
    let coverage: Vec<Coverage> = (0..16)
        .map(|i| Coverage {
            photo: format!("p{i}.jpg"),
            classes: vec!["crack".into(), "pothole".into()],
            footprint: square.clone(),
            processed: (i % 4 == 0).then(|| vec![square.clone()]),
        })
        .collect();
    let mut cfg = ReportConfig::default();
    cfg.merge.box_classes = vec!["pothole".into()];
    cfg.evidence
        .rules
        .iter_mut()
        .for_each(|r| r.min_ratio = 0.2);
    let once = merge_and_weigh(all.clone(), &coverage, &[], frame, &cfg).unwrap();
    assert!(once.findings().len() > 15, "{}", once.findings().len());
    assert!(!once.dropped().is_empty(), "the rules drop some findings");
    let want = serde_json::to_string(once.findings()).unwrap();

    let mut parts = Parts::default();
    for o in &all {
        parts.add(o, frame);
    }
    assert_eq!(parts.len(), all.len());
    for max_part in [1, 7, 60] {
        let split = parts.split(&cfg, max_part);
        assert!(split.len() > 3, "{max_part}: {} parts", split.len());
        // Every observation once, each part in flight order.
        let mut seen: Vec<usize> = split.iter().flatten().copied().collect();
        assert!(split.iter().all(|p| p.windows(2).all(|w| w[0] < w[1])));
        seen.sort_unstable();
        assert_eq!(seen, (0..all.len()).collect::<Vec<_>>());
        // The 40 fragments along the marking can merge with their neighbours: one part.
        let marking: Vec<usize> = (all.len() - 40..all.len()).collect();
        assert!(
            split.iter().any(|p| marking.iter().all(|m| p.contains(m))),
            "{max_part}"
        );
        let mut merger = Merger::new(&coverage, &[], frame, &cfg).unwrap();
        for part in &split {
            merger
                .add(part.iter().map(|&i| all[i].clone()).collect())
                .unwrap();
        }
        let merged = merger.finish();
        assert_eq!(merged.dropped(), once.dropped(), "{max_part}");
        assert_eq!(
            serde_json::to_string(merged.findings()).unwrap(),
            want,
            "{max_part}"
        );
    }
}
