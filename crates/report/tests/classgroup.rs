//! Class groups (issue 13): findings of different roof-damage classes (missing_tile, debris,
//! moss) on one spot of one roof become one finding whose class is the group's first listed
//! (or most confident) class, with every observation, the contributing classes, and views,
//! support and confidence set again from all of them; other spots, other roofs, a class's
//! own second finding and chains of findings are left apart.

use besikta_core::{AssetKind, Severity};
use besikta_report::classgroup::{self, contributing_classes, ClassGroup, Pick};
use besikta_report::evidence::{combined_confidence, Coverage, EvidenceRules};
use besikta_report::{
    build_report_with, AssetMatch, Finding, Observation, ReportConfig, WorkFrame,
};

mod common;
use common::{frame, ring};

/// A roof observation from `photo` with confidence `conf` on the rectangle `r`.
fn obs(f: &(WorkFrame, [f64; 2]), photo: &str, class: &str, conf: f32, r: [f64; 4]) -> Observation {
    Observation {
        asset_kind: AssetKind::Roof,
        confidence: conf,
        pose_sigma_m: Some(0.05),
        sides_grey: None,
        ..common::observation(f, photo, class, r)
    }
}

/// Photos `a`..`e`, each covering 50 m around the origin for the roof model's classes.
fn coverage(f: &(WorkFrame, [f64; 2])) -> Vec<Coverage> {
    ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"]
        .iter()
        .map(|p| Coverage {
            photo: p.to_string(),
            classes: vec!["missing_tile".into(), "debris".into(), "moss".into()],
            footprint: ring(f, [-50.0, -50.0, 50.0, 50.0]),
            processed: None,
        })
        .collect()
}

/// One damaged patch seen as a missing tile by a, b, c (0.8) and as moss by c, d, e (0.6),
/// 0.3 m apart; a moss patch 10 m away seen by a, d and e. Every part passes its class's
/// evidence rule (moss: seen by at least half of the five photos covering it).
fn one_damage_two_classes(f: &(WorkFrame, [f64; 2])) -> Vec<Observation> {
    let tile = [0.0, 0.0, 0.6, 0.6];
    let beside = [0.9, 0.0, 1.4, 0.5];
    let far = [10.0, 0.0, 10.5, 0.5];
    vec![
        obs(f, "a.jpg", "missing_tile", 0.8, tile),
        obs(f, "b.jpg", "missing_tile", 0.8, tile),
        obs(f, "c.jpg", "missing_tile", 0.8, tile),
        obs(f, "c.jpg", "moss", 0.6, beside),
        obs(f, "d.jpg", "moss", 0.6, beside),
        obs(f, "e.jpg", "moss", 0.6, beside),
        obs(f, "a.jpg", "moss", 0.9, far),
        obs(f, "d.jpg", "moss", 0.9, far),
        obs(f, "e.jpg", "moss", 0.9, far),
    ]
}

/// The shipped rules with moss reported (the shipped ones turn it off; an organisation's
/// `evidence.toml` may turn it on, and then the group merges it).
fn moss_reported() -> EvidenceRules {
    let mut rules = EvidenceRules::default();
    rules.rules.iter_mut().for_each(|r| r.report = true);
    rules
}

fn config(evidence: EvidenceRules) -> ReportConfig {
    ReportConfig {
        evidence,
        ..ReportConfig::default()
    }
}

#[test]
fn a_missing_tile_and_moss_on_one_damage_are_one_missing_tile_finding() {
    let f = frame();
    let cov = coverage(&f);
    let cfg = config(moss_reported());
    assert_eq!(
        cfg.evidence.groups,
        vec![ClassGroup::roof_damage(), ClassGroup::road_damage()]
    );
    let r = build_report_with(one_damage_two_classes(&f), &cov, &[], &f.0, &cfg).unwrap();
    assert_eq!(r.findings.len(), 2, "{:#?}", r.findings);
    let merged = r
        .findings
        .iter()
        .find(|x| x.observations.len() == 6)
        .expect("the damage is one finding of all six observations");
    // The group lists missing_tile first (most severe): its class, outline and best view.
    assert_eq!(merged.class, "missing_tile");
    assert_eq!(contributing_classes(merged), ["missing_tile", "moss"]);
    assert_eq!(merged.observations[merged.best].class, "missing_tile");
    assert!((merged.area_m2 - 0.36).abs() < 1e-3, "{}", merged.area_m2);
    // Support over both classes: all five photos (c saw both; its best score counts once).
    assert_eq!((merged.support, merged.views), (5, 5));
    let expected = combined_confidence(&[0.8, 0.8, 0.8, 0.6, 0.6], 5);
    assert!(
        (merged.confidence - expected).abs() < 1e-6,
        "{} vs {expected}",
        merged.confidence
    );
    // The far moss stays its own finding; ids are numbered again without gaps.
    let far = r.findings.iter().find(|x| x.class == "moss").unwrap();
    assert_eq!(contributing_classes(far), ["moss"]);
    assert_eq!((far.support, far.views), (3, 5));
    let ids: Vec<&str> = r.findings.iter().map(|x| x.id.as_str()).collect();
    assert_eq!(ids, ["F00001", "F00002"]);
    // The GeoJSON carries the contributing classes of the merged finding.
    let gj = besikta_report::export::findings_geojson(&r.findings);
    let classes: Vec<&serde_json::Value> = gj["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| &x["properties"]["classes"])
        .collect();
    assert!(classes.contains(&&serde_json::json!(["missing_tile", "moss"])));
    // A one-class finding has none (its bytes as before class groups).
    assert!(classes.contains(&&serde_json::Value::Null));
    // Without the group (a models folder whose evidence.toml has no [[group]]): three.
    let none = config(EvidenceRules {
        groups: Vec::new(),
        ..moss_reported()
    });
    let r = build_report_with(one_damage_two_classes(&f), &cov, &[], &f.0, &none).unwrap();
    assert_eq!(r.findings.len(), 3);
}

#[test]
fn with_the_shipped_rules_moss_is_not_reported_and_is_counted() {
    let f = frame();
    let cov = coverage(&f);
    let rules = EvidenceRules::default();
    assert!(
        !rules
            .rules
            .iter()
            .find(|r| r.class == "moss")
            .unwrap()
            .report
    );
    let r = build_report_with(one_damage_two_classes(&f), &cov, &[], &f.0, &config(rules)).unwrap();
    // The missing tile alone, with its own three observations and outline; both moss
    // findings (the one beside it and the far one) are dropped and counted.
    assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
    assert_eq!(r.findings[0].class, "missing_tile");
    assert_eq!(r.findings[0].observations.len(), 3);
    assert_eq!(contributing_classes(&r.findings[0]), ["missing_tile"]);
    assert_eq!(
        r.dropped.get("class_not_reported"),
        Some(&2),
        "{:?}",
        r.dropped
    );
    // `report = false` is read from evidence.toml; without the key a class is reported.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("evidence.toml");
    std::fs::write(
        &p,
        "[[rule]]\nclass = \"moss\"\nreport = false\n\n[[rule]]\nclass = \"*\"\n",
    )
    .unwrap();
    let loaded = EvidenceRules::load(&p).unwrap();
    assert!(!loaded.rules[0].report && loaded.rules[1].report);
}

#[test]
fn groups_are_read_from_evidence_toml_and_most_confident_picks_the_lead_by_confidence() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("evidence.toml");
    std::fs::write(
        &p,
        "[[rule]]\nclass = \"*\"\n\n[[group]]\nname = \"roof_damage\"\n\
         classes = [\"missing_tile\", \"debris\", \"moss\"]\npick = \"most_confident\"\n",
    )
    .unwrap();
    let rules = EvidenceRules::load(&p).unwrap();
    assert_eq!(rules.groups[0].pick, Pick::MostConfident);
    let f = frame();
    // The moss part is the more confident finding (0.95 from c, d) than the tile (0.5 from a).
    let observations = vec![
        obs(&f, "a.jpg", "missing_tile", 0.5, [0.0, 0.0, 0.6, 0.6]),
        obs(&f, "c.jpg", "moss", 0.95, [0.9, 0.0, 1.4, 0.5]),
        obs(&f, "d.jpg", "moss", 0.95, [0.9, 0.0, 1.4, 0.5]),
    ];
    let r = build_report_with(observations.clone(), &[], &[], &f.0, &config(rules)).unwrap();
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.findings[0].class, "moss");
    assert_eq!(
        contributing_classes(&r.findings[0]),
        ["moss", "missing_tile"]
    );
    assert_eq!((r.findings[0].support, r.findings[0].views), (3, 3));
    // The default (first listed) gives the same spot the missing tile's class.
    let r = build_report_with(observations, &[], &[], &f.0, &config(moss_reported())).unwrap();
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.findings[0].class, "missing_tile");
    // Broken groups name the file and the fault.
    for (text, says) in [
        ("[[group]]\nname = \"g\"\nclasses = [\"moss\"]\n", "at least two"),
        (
            "[[group]]\nname = \"g\"\nclasses = [\"moss\", \"debris\"]\n\n[[group]]\nname = \"h\"\nclasses = [\"moss\", \"x\"]\n",
            "listed twice",
        ),
        ("[[group]]\nname = \"g\"\nclasses = [\"moss\", \"*\"]\n", "not a class"),
        (
            "[[group]]\nname = \"g\"\nclasses = [\"moss\", \"debris\"]\nsame_class_within_m = -1.0\n",
            "not a distance",
        ),
        (
            "[[group]]\nname = \"g\"\nclasses = [\"a\", \"b\"]\npick = \"loudest\"\n",
            "loudest",
        ),
    ] {
        std::fs::write(&p, format!("[[rule]]\nclass = \"*\"\n\n{text}")).unwrap();
        let e = EvidenceRules::load(&p).unwrap_err().to_string();
        assert!(e.contains("evidence.toml") && e.contains(says), "{e}");
    }
}

/// A finding as the report stage hands it to the class-group merge.
fn finding(f: &(WorkFrame, [f64; 2]), class: &str, r: [f64; 4], asset: Option<&str>) -> Finding {
    let o = obs(f, "a.jpg", class, 0.8, r);
    Finding {
        id: String::new(),
        class: class.into(),
        asset_kind: AssetKind::Roof,
        severity: Severity::Low,
        confidence: 0.8,
        length_m: None,
        area_m2: (r[2] - r[0]) * (r[3] - r[1]),
        polygon: o.ground_polygon.clone(),
        centroid: f
            .0
            .to_wgs84([f.1[0] + (r[0] + r[2]) / 2.0, f.1[1] + (r[1] + r[3]) / 2.0])
            .unwrap(),
        asset: asset.map(|id| AssetMatch {
            asset_id: id.into(),
            asset_name: None,
            asset_kind: AssetKind::Roof,
            chainage_m: None,
            offset_m: None,
            distance_m: 0.0,
            asset_area_m2: None,
        }),
        observations: vec![o],
        best: 0,
        views: 1,
        support: 1,
    }
}

#[test]
fn other_roofs_the_leads_own_class_and_chains_stay_apart() {
    let f = frame();
    let cfg = ReportConfig::default();
    // Without `same_class_within_m` (the shipped group sets it; see the next test).
    let groups = [ClassGroup {
        same_class_within_m: None,
        ..ClassGroup::roof_damage()
    }];
    let classes = |v: &[Finding]| -> Vec<Vec<String>> {
        v.iter()
            .map(|x| {
                contributing_classes(x)
                    .into_iter()
                    .map(String::from)
                    .collect()
            })
            .collect()
    };
    // Aligned views: tolerance max(2 x hypot(0.05, 0.05), 1.0) + 0.5 = 1.5 m.
    // Moss 1.0 m from the tile but on the neighbouring building: apart.
    let v = vec![
        finding(&f, "missing_tile", [0.0, 0.0, 0.5, 0.5], Some("b1")),
        finding(&f, "moss", [1.5, 0.0, 2.0, 0.5], Some("b2")),
    ];
    let out = classgroup::merge_groups(v, &groups, &[], &f.0, &cfg).unwrap();
    assert_eq!(out.len(), 2);
    // Two missing tiles 1.0 m apart (the merge kept them two) and a debris 1.0 m from the
    // first: the first tile absorbs the debris, not the other tile.
    let v = vec![
        finding(&f, "missing_tile", [0.0, 0.0, 0.5, 0.5], Some("b1")),
        finding(&f, "missing_tile", [1.5, 0.0, 2.0, 0.5], Some("b1")),
        finding(&f, "debris", [-1.5, 0.0, -1.0, 0.5], Some("b1")),
    ];
    let out = classgroup::merge_groups(v, &groups, &[], &f.0, &cfg).unwrap();
    assert_eq!(
        classes(&out),
        [vec!["missing_tile", "debris"], vec!["missing_tile"]]
    );
    // A chain: tile, moss 1.0 m east, debris 1.0 m further east (2.5 m from the tile):
    // the tile takes the moss; the debris stays, though it lies near the moss.
    let v = vec![
        finding(&f, "missing_tile", [0.0, 0.0, 0.5, 0.5], Some("b1")),
        finding(&f, "moss", [1.5, 0.0, 2.0, 0.5], Some("b1")),
        finding(&f, "debris", [3.0, 0.0, 3.5, 0.5], Some("b1")),
    ];
    let out = classgroup::merge_groups(v, &groups, &[], &f.0, &cfg).unwrap();
    assert_eq!(
        classes(&out),
        [vec!["missing_tile", "moss"], vec!["debris"]]
    );
    // Crack and pothole are in no group: never merged, however close.
    let v = vec![
        finding(&f, "crack", [0.0, 0.0, 0.5, 0.5], None),
        finding(&f, "pothole", [0.0, 0.0, 0.5, 0.5], None),
    ];
    let out = classgroup::merge_groups(v, &groups, &[], &f.0, &cfg).unwrap();
    assert_eq!(out.len(), 2);
}

#[test]
fn pieces_of_one_class_on_one_building_within_the_reach_are_one_finding() {
    let f = frame();
    let cfg = ReportConfig::default();
    // The shipped group: same-class findings within 2 m on one registered building.
    let groups = [ClassGroup::roof_damage()];
    assert_eq!(groups[0].same_class_within_m, Some(2.0));
    let n_obs = |v: &[Finding]| -> Vec<(String, usize)> {
        v.iter()
            .map(|x| (x.class.clone(), x.observations.len()))
            .collect()
    };
    // Two small pieces of one damaged patch, 1.4 m apart (as on simulated flight 23: the
    // merge keeps them two, farther apart than two views of one spot may be), and one 2.5 m
    // from the first: the first absorbs the second only.
    let v = vec![
        finding(&f, "missing_tile", [0.0, 0.0, 0.2, 0.2], Some("b1")),
        finding(&f, "missing_tile", [1.6, 0.0, 1.8, 0.2], Some("b1")),
        finding(&f, "missing_tile", [-2.7, 0.0, -2.5, 0.2], Some("b1")),
    ];
    let out = classgroup::merge_groups(v, &groups, &[], &f.0, &cfg).unwrap();
    assert_eq!(
        n_obs(&out),
        [("missing_tile".into(), 2), ("missing_tile".into(), 1)]
    );
    // Not transitive: a, b 1.5 m apart, c 1.5 m beyond b (3.2 m from a): a takes b only.
    let v = vec![
        finding(&f, "missing_tile", [0.0, 0.0, 0.2, 0.2], Some("b1")),
        finding(&f, "missing_tile", [1.7, 0.0, 1.9, 0.2], Some("b1")),
        finding(&f, "missing_tile", [3.4, 0.0, 3.6, 0.2], Some("b1")),
    ];
    let out = classgroup::merge_groups(v, &groups, &[], &f.0, &cfg).unwrap();
    assert_eq!(out.len(), 2, "{:?}", n_obs(&out));
    // Other buildings, or no register (nothing says it is one roof): apart.
    for (a, b) in [(Some("b1"), Some("b2")), (None, None)] {
        let v = vec![
            finding(&f, "missing_tile", [0.0, 0.0, 0.2, 0.2], a),
            finding(&f, "missing_tile", [1.0, 0.0, 1.2, 0.2], b),
        ];
        let out = classgroup::merge_groups(v, &groups, &[], &f.0, &cfg).unwrap();
        assert_eq!(out.len(), 2, "{a:?} {b:?}");
    }
}

/// Photos `a`..`c`, each covering 50 m around the origin for the road models' classes.
fn road_coverage(f: &(WorkFrame, [f64; 2])) -> Vec<Coverage> {
    ["a.jpg", "b.jpg", "c.jpg"]
        .iter()
        .map(|p| Coverage {
            photo: p.to_string(),
            classes: vec!["crack".into(), "pothole".into()],
            footprint: ring(f, [-50.0, -50.0, 50.0, 50.0]),
            processed: None,
        })
        .collect()
}

fn road_obs(
    f: &(WorkFrame, [f64; 2]),
    photo: &str,
    class: &str,
    conf: f32,
    r: [f64; 4],
) -> Observation {
    Observation {
        asset_kind: AssetKind::Road,
        length_px: (class == "crack").then_some(40.0),
        ..obs(f, photo, class, conf, r)
    }
}

#[test]
fn a_crack_and_a_pothole_on_one_spot_of_a_road_are_one_finding_of_the_more_confident_class() {
    // The shipped defaults: a crack seen by a, b, c (0.95) and a pothole on the same spot seen
    // by a, b (0.9), 0.2 m apart; another pothole 10 m away seen by a, b, c.
    let f = frame();
    let cov = road_coverage(&f);
    let cfg = ReportConfig::default();
    let crack = [0.0, 0.0, 0.8, 0.1];
    let pit = [0.1, 0.2, 0.6, 0.7];
    let far = [10.0, 0.0, 10.5, 0.5];
    let o = vec![
        road_obs(&f, "a.jpg", "crack", 0.95, crack),
        road_obs(&f, "b.jpg", "crack", 0.95, crack),
        road_obs(&f, "c.jpg", "crack", 0.95, crack),
        road_obs(&f, "a.jpg", "pothole", 0.9, pit),
        road_obs(&f, "b.jpg", "pothole", 0.9, pit),
        road_obs(&f, "a.jpg", "pothole", 0.9, far),
        road_obs(&f, "b.jpg", "pothole", 0.9, far),
        road_obs(&f, "c.jpg", "pothole", 0.9, far),
    ];
    let r = build_report_with(o.clone(), &cov, &[], &f.0, &cfg).unwrap();
    assert_eq!(r.findings.len(), 2, "{:#?}", r.findings);
    let merged = r
        .findings
        .iter()
        .find(|x| x.observations.len() == 5)
        .expect("the crack and the pothole on one spot are one finding");
    assert_eq!(merged.class, "crack", "the more confident class leads");
    assert_eq!(contributing_classes(merged), ["crack", "pothole"]);
    let alone = r.findings.iter().find(|x| x.class == "pothole").unwrap();
    assert_eq!(contributing_classes(alone), ["pothole"]);
    // Without the road group (an evidence.toml with the roof group only) they stay apart.
    let mut roof_only = ReportConfig::default();
    roof_only.evidence.groups = vec![ClassGroup::roof_damage()];
    let r = build_report_with(o, &cov, &[], &f.0, &roof_only).unwrap();
    assert_eq!(r.findings.len(), 3, "{:#?}", r.findings);
}
