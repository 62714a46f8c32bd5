//! Bounded merging and multi-view evidence on hand-built observations in a real UTM frame:
//! one defect seen from several photos is one finding, a chain of fragments along a street
//! is not, crack pieces of one photo add up, and findings seen by too few of the photos that
//! covered them are dropped and counted.

use besikta_report::evidence::{Coverage, EvidenceRules};
use besikta_report::{build_report, build_report_with, Observation, ReportConfig, WorkFrame};

mod common;
use common::frame;

/// An observation whose outline is the rectangle `[x0, y0, x1, y1]` (metres from the origin).
fn obs(
    f: &(WorkFrame, [f64; 2]),
    photo: &str,
    class: &str,
    r: [f64; 4],
    length_px: Option<f64>,
) -> Observation {
    Observation {
        length_px,
        ..common::observation(f, photo, class, r)
    }
}

fn keep_all() -> ReportConfig {
    ReportConfig {
        evidence: EvidenceRules::keep_all(),
        ..ReportConfig::default()
    }
}

#[test]
fn two_views_of_one_pothole_half_a_metre_apart_are_one_finding() {
    let f = frame();
    let a = obs(&f, "p1.jpg", "pothole", [0.0, 0.0, 0.6, 0.5], None);
    let b = obs(&f, "p2.jpg", "pothole", [0.5, 0.0, 1.1, 0.5], None);
    // A second pothole 8 m along: its own finding.
    let c = obs(&f, "p2.jpg", "pothole", [8.0, 0.0, 8.6, 0.5], None);
    let r = build_report(vec![a, b, c], &[], &f.0, &keep_all()).unwrap();
    assert_eq!(r.findings.len(), 2);
    let merged = r
        .findings
        .iter()
        .find(|x| x.observations.len() == 2)
        .unwrap();
    assert_eq!((merged.support, merged.views), (2, 2));
    // Noisy-OR of two 0.7 detections.
    assert!(
        (merged.confidence - 0.91).abs() < 1e-5,
        "{}",
        merged.confidence
    );
}

/// Two views of what may be one pothole, `gap` metres apart (outline to outline), from
/// photos whose relative position sigma is `sigma` (`None`: metadata poses, 1 m GPS).
fn findings_of_two_views(gap: f64, sigma: Option<f64>) -> usize {
    let f = frame();
    let mut a = obs(&f, "p1.jpg", "pothole", [0.0, 0.0, 0.5, 0.5], None);
    let mut b = obs(
        &f,
        "p2.jpg",
        "pothole",
        [0.5 + gap, 0.0, 1.0 + gap, 0.5],
        None,
    );
    a.pose_sigma_m = sigma;
    b.pose_sigma_m = sigma;
    build_report(vec![a, b], &[], &f.0, &keep_all())
        .unwrap()
        .findings
        .len()
}

#[test]
fn merge_tolerance_follows_each_photos_pose_uncertainty() {
    // Aligned poses (5 cm sigma): tolerance = max(2 x hypot(0.05, 0.05), 1.0) + 0.5 = 1.5 m,
    // so two potholes 1.8 m apart stay two, 1.0 m apart are one seen twice.
    assert_eq!(findings_of_two_views(1.8, Some(0.05)), 2);
    assert_eq!(findings_of_two_views(1.0, Some(0.05)), 1);
    // Poorly aligned (0.6 m): 2 x 0.85 + 0.5 = 2.2 m: 1.8 m apart is one pothole.
    assert_eq!(findings_of_two_views(1.8, Some(0.6)), 1);
    assert_eq!(findings_of_two_views(2.4, Some(0.6)), 2);
    // Metadata poses (1 m GPS each): clamped to 2 m + 0.5 m, as before alignment existed.
    assert_eq!(findings_of_two_views(1.8, None), 1);
    assert_eq!(findings_of_two_views(2.7, None), 2);
    let rules = besikta_report::merge::MergeRules::default();
    assert!((rules.pair_tolerance_m(1.0, 1.0, 0.5) - 2.5).abs() < 1e-12);
    assert!((rules.pair_tolerance_m(0.05, 0.05, 0.5) - 1.5).abs() < 1e-12);
    // One precise and one metadata photo: the imprecise one decides.
    assert!((rules.pair_tolerance_m(0.05, 1.0, 0.5) - 2.5).abs() < 1e-12);
}

#[test]
fn two_potholes_of_one_photo_are_never_fused_through_a_third_view() {
    let f = frame();
    // One photo sees two potholes 1.2 m apart; another sees something between them.
    let a = obs(&f, "p1.jpg", "pothole", [0.0, 0.0, 0.5, 0.5], None);
    let b = obs(&f, "p1.jpg", "pothole", [1.7, 0.0, 2.2, 0.5], None);
    let c = obs(&f, "p2.jpg", "pothole", [0.9, 0.0, 1.3, 0.5], None);
    let r = build_report(vec![a, b, c], &[], &f.0, &keep_all()).unwrap();
    assert_eq!(r.findings.len(), 2);
}

#[test]
fn fragments_along_a_100_m_line_do_not_chain_into_one_finding() {
    let f = frame();
    // A lane-marking edge traced as 1.5 m fragments every 2 m, alternately by two photos,
    // each within the merge tolerance of the next: transitive closure made one 100 m crack.
    let o: Vec<Observation> = (0..50)
        .map(|i| {
            let x = i as f64 * 2.0;
            let photo = if i % 2 == 0 { "a.jpg" } else { "b.jpg" };
            obs(&f, photo, "crack", [x, 0.0, x + 1.5, 0.05], Some(75.0))
        })
        .collect();
    let r = build_report(o, &[], &f.0, &keep_all()).unwrap();
    assert!(r.findings.len() >= 10, "{} findings", r.findings.len());
    let (frame, origin) = &f;
    for x in &r.findings {
        let xs: Vec<f64> = x
            .polygon
            .iter()
            .map(|p| frame.to_work(*p).unwrap()[0] - origin[0])
            .collect();
        let span = xs.iter().cloned().fold(f64::MIN, f64::max)
            - xs.iter().cloned().fold(f64::MAX, f64::min);
        let members: Vec<f64> = x
            .observations
            .iter()
            .map(|ob| frame.to_work(ob.ground_polygon[0]).unwrap()[0] - origin[0])
            .collect();
        let reach = members.iter().cloned().fold(f64::MIN, f64::max)
            - members.iter().cloned().fold(f64::MAX, f64::min);
        assert!(
            span < 6.0 && reach < 6.0,
            "a finding spans {span} m / {reach} m"
        );
    }
}

#[test]
fn crossing_cracks_from_two_photos_are_not_one_crack() {
    let f = frame();
    let along = obs(&f, "a.jpg", "crack", [0.0, 0.0, 3.0, 0.05], Some(150.0));
    let across = obs(&f, "b.jpg", "crack", [1.5, -1.5, 1.55, 1.5], Some(150.0));
    let r = build_report(vec![along, across], &[], &f.0, &keep_all()).unwrap();
    assert_eq!(r.findings.len(), 2);
}

#[test]
fn crack_pieces_of_one_photo_are_one_finding_with_the_summed_length() {
    let f = frame();
    // Three pieces of one crack network 10-20 cm apart in photo a, the whole crack in b.
    let o = vec![
        obs(&f, "a.jpg", "crack", [0.0, 0.0, 1.0, 0.05], Some(50.0)),
        obs(&f, "a.jpg", "crack", [1.2, 0.0, 2.0, 0.05], Some(40.0)),
        obs(&f, "a.jpg", "crack", [2.1, 0.0, 2.05, 0.9], Some(45.0)),
        obs(&f, "b.jpg", "crack", [0.0, 0.0, 2.1, 0.9], Some(60.0)),
    ];
    let mut cfg = keep_all();
    cfg.merge.crack_gap_m = 0.3;
    let r = build_report(o, &[], &f.0, &cfg).unwrap();
    assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
    let x = &r.findings[0];
    assert_eq!(x.support, 2);
    if x.best_photo() == "a.jpg" {
        // 135 px at 2 cm/px.
        assert!((x.length_m.unwrap() - 2.7).abs() < 1e-9, "{:?}", x.length_m);
    } else {
        assert!((x.length_m.unwrap() - 1.2).abs() < 1e-9, "{:?}", x.length_m);
    }
}

#[test]
fn a_finding_seen_once_among_four_covering_photos_is_dropped_and_counted() {
    let f = frame();
    let (frame, o) = &f;
    // Four photos all covering a 40 m square around the origin.
    let square: Vec<[f64; 2]> = [[-20.0, -20.0], [20.0, -20.0], [20.0, 20.0], [-20.0, 20.0]]
        .iter()
        .map(|p| frame.to_wgs84([o[0] + p[0], o[1] + p[1]]).unwrap())
        .collect();
    let coverage: Vec<Coverage> = ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
        .iter()
        .map(|p| Coverage {
            photo: p.to_string(),
            classes: vec!["pothole".into()],
            footprint: square.clone(),
            processed: None,
        })
        .collect();
    let observations = vec![
        // Seen by three of the four: kept.
        obs(&f, "a.jpg", "pothole", [0.0, 0.0, 0.5, 0.5], None),
        obs(&f, "b.jpg", "pothole", [0.1, 0.0, 0.6, 0.5], None),
        obs(&f, "c.jpg", "pothole", [0.0, 0.1, 0.5, 0.6], None),
        // Seen by one of four: weak.
        obs(&f, "d.jpg", "pothole", [10.0, 10.0, 10.5, 10.5], None),
    ];
    let mut cfg = keep_all();
    cfg.evidence.rules[0].min_ratio = 0.3;
    let r = build_report_with(observations, &coverage, &[], frame, &cfg).unwrap();
    assert_eq!(r.findings.len(), 1);
    let x = &r.findings[0];
    assert_eq!((x.support, x.views), (3, 4));
    assert_eq!(
        r.dropped.get("weak_evidence_ratio"),
        Some(&1),
        "{:?}",
        r.dropped
    );
    let gj = besikta_report::export::findings_geojson(&r.findings);
    let props = &gj["features"][0]["properties"];
    assert_eq!(props["views"], 4);
    assert_eq!(props["support"], 3);
    assert!(props["confidence"].as_f64().unwrap() > 0.7);
}

#[test]
fn shipped_evidence_rules_are_the_defaults() {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/evidence.toml");
    assert_eq!(EvidenceRules::load(&p).unwrap(), EvidenceRules::default());
}

#[test]
fn a_crack_seen_by_one_photo_only_is_dropped_by_the_default_rules() {
    let f = frame();
    let o = vec![
        obs(&f, "a.jpg", "crack", [0.0, 0.0, 1.0, 0.05], Some(50.0)),
        obs(&f, "a.jpg", "crack", [20.0, 0.0, 21.0, 0.05], Some(50.0)),
        obs(&f, "b.jpg", "crack", [20.1, 0.0, 21.1, 0.05], Some(50.0)),
    ];
    let r = build_report(o, &[], &f.0, &ReportConfig::default()).unwrap();
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.findings[0].support, 2);
    assert_eq!(r.dropped.get("weak_evidence_support"), Some(&1));
}

#[test]
fn a_crack_seen_as_many_pieces_per_photo_is_dropped_with_max_pieces_per_view() {
    let f = frame();
    let mut observations = Vec::new();
    for photo in ["a.jpg", "b.jpg", "c.jpg"] {
        // One crack seen whole by each photo.
        observations.push(obs(&f, photo, "crack", [0.0, 0.0, 1.0, 0.05], Some(50.0)));
        // A joint line 10 m away that each photo saw as three pieces 0.1 m apart.
        for x in [10.0, 10.6, 11.2] {
            observations.push(obs(&f, photo, "crack", [x, 0.0, x + 0.5, 0.05], Some(25.0)));
        }
    }
    let with = |max: Option<f64>| {
        let mut cfg = keep_all();
        cfg.evidence.rules[0].class = "crack".into();
        cfg.evidence.rules[0].max_pieces_per_view = max;
        build_report(observations.clone(), &[], &f.0, &cfg).unwrap()
    };
    let r = with(None);
    assert_eq!(r.findings.len(), 2);
    let pieces: Vec<f64> = r
        .findings
        .iter()
        .map(besikta_report::evidence::median_pieces_per_view)
        .collect();
    assert!(pieces.contains(&1.0) && pieces.contains(&3.0), "{pieces:?}");
    let r = with(Some(2.0));
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.findings[0].observations.len(), 3);
    assert_eq!(
        r.dropped.get("pieces_per_view"),
        Some(&1),
        "{:?}",
        r.dropped
    );
    assert_eq!(with(Some(3.0)).findings.len(), 2);
    // Read from TOML; below one piece per photo is refused, naming the file.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("evidence.toml");
    std::fs::write(
        &p,
        "[[rule]]\nclass = \"crack\"\nmax_pieces_per_view = 2.5\n",
    )
    .unwrap();
    let rules = EvidenceRules::load(&p).unwrap();
    assert_eq!(rules.rules[0].max_pieces_per_view, Some(2.5));
    std::fs::write(
        &p,
        "[[rule]]\nclass = \"crack\"\nmax_pieces_per_view = 0.5\n",
    )
    .unwrap();
    let e = EvidenceRules::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("evidence.toml") && e.contains("max_pieces_per_view"),
        "{e}"
    );
}

#[test]
fn a_line_between_two_surfaces_is_dropped_with_max_sides_grey() {
    let f = frame();
    let mut observations = Vec::new();
    for photo in ["a.jpg", "b.jpg", "c.jpg"] {
        // A crack in one pavement: its sides alike in every photo.
        observations.push(Observation {
            sides_grey: Some(2.0),
            ..obs(&f, photo, "crack", [0.0, 0.0, 1.0, 0.05], Some(50.0))
        });
        // The joint of asphalt and paving 10 m away: two views see different ground on its
        // sides, one (c) a patch where they look alike.
        observations.push(Observation {
            sides_grey: Some(if photo == "c.jpg" { 3.0 } else { 40.0 }),
            ..obs(&f, photo, "crack", [10.0, 0.0, 11.0, 0.05], Some(50.0))
        });
    }
    // A crack no observation measured (e.g. stored before the measure existed) is kept.
    observations.push(obs(
        &f,
        "a.jpg",
        "crack",
        [20.0, 0.0, 21.0, 0.05],
        Some(50.0),
    ));
    let with = |max: Option<f64>| {
        let mut cfg = keep_all();
        cfg.evidence.rules[0].class = "crack".into();
        cfg.evidence.rules[0].max_sides_grey = max;
        build_report(observations.clone(), &[], &f.0, &cfg).unwrap()
    };
    assert_eq!(with(None).findings.len(), 3);
    let r = with(Some(12.0));
    assert_eq!(r.findings.len(), 2, "{:?}", r.dropped);
    assert_eq!(r.dropped.get("edge_between_surfaces"), Some(&1));
    let medians: Vec<Option<f64>> = with(None)
        .findings
        .iter()
        .map(besikta_report::evidence::median_sides_grey)
        .collect();
    assert!(
        medians.contains(&Some(2.0)) && medians.contains(&Some(40.0)) && medians.contains(&None),
        "{medians:?}"
    );
    assert_eq!(with(Some(40.0)).findings.len(), 3);
    // Read from TOML; a value outside the grey levels is refused, naming the file.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("evidence.toml");
    std::fs::write(&p, "[[rule]]\nclass = \"crack\"\nmax_sides_grey = 12\n").unwrap();
    assert_eq!(
        EvidenceRules::load(&p).unwrap().rules[0].max_sides_grey,
        Some(12.0)
    );
    std::fs::write(&p, "[[rule]]\nclass = \"crack\"\nmax_sides_grey = -1\n").unwrap();
    let e = EvidenceRules::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("evidence.toml") && e.contains("max_sides_grey"),
        "{e}"
    );
}

#[test]
fn a_finding_the_pipelines_check_rejects_is_dropped_and_counted_by_its_reason() {
    let f = frame();
    let o = vec![
        obs(&f, "a.jpg", "pothole", [0.0, 0.0, 0.5, 0.5], None),
        obs(&f, "b.jpg", "pothole", [0.05, 0.0, 0.55, 0.5], None),
        obs(&f, "a.jpg", "pothole", [20.0, 0.0, 20.5, 0.5], None),
        obs(&f, "b.jpg", "pothole", [20.05, 0.0, 20.55, 0.5], None),
    ];
    // The check sees each merged finding whole (both photos' observations); it rejects
    // the one 20 m east.
    let east_of = f.0.to_wgs84([f.1[0] + 10.0, f.1[1]]).unwrap()[0];
    let far = |fd: &besikta_report::Finding| {
        assert_eq!(fd.observations.len(), 2);
        (fd.centroid[0] > east_of).then_some("inconsistent_views")
    };
    let cfg = keep_all();
    let merged = besikta_report::merge_and_weigh(o.clone(), &[], &[], &f.0, &cfg).unwrap();
    assert_eq!(merged.findings().len(), 2);
    let r = besikta_report::finish_report(merged, &[], &[], &f.0, &cfg, &far).unwrap();
    assert_eq!(r.findings.len(), 1);
    assert_eq!(
        r.dropped.get("inconsistent_views"),
        Some(&1),
        "{:?}",
        r.dropped
    );
    assert_eq!(
        build_report(o, &[], &f.0, &keep_all())
            .unwrap()
            .findings
            .len(),
        2
    );
    // The threshold is a per-class rule; a correlation outside -1..1 is refused.
    assert_eq!(
        EvidenceRules::default().min_view_consistency("pothole"),
        Some(0.6)
    );
    assert_eq!(EvidenceRules::default().min_view_consistency("crack"), None);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("evidence.toml");
    std::fs::write(
        &p,
        "[[rule]]\nclass = \"pothole\"\nmin_view_consistency = 1.5\n",
    )
    .unwrap();
    let e = EvidenceRules::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("evidence.toml") && e.contains("min_view_consistency"),
        "{e}"
    );
}
