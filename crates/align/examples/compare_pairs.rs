//! Measures the two pair estimators against each other on one flight: correlation (what
//! alignment uses) and features + RANSAC (FAST + BRIEF), on every overlapping pair, with
//! what each leaves when the pair is estimated again after applying it, their agreement,
//! loop closure over triangles of pairs, and (simulated flights) the error against the
//! true relative pose. Prints a Markdown report.
//!
//! ```text
//! cargo run -p besikta-align --example compare_pairs -- FLIGHT_DIR [--truth FLIGHT_DIR/flight.json] [--json OUT.json]
//!     [--fast-threshold N] [--min-inliers N] [--ratio R] [--inlier-m M]   (feature settings; defaults: FeatureConfig::default())
//! ```

use besikta_align::{compare_pairs, AlignConfig, Estimate, FeatureConfig, PairComparison, Rigid};
use besikta_core::Capture;
use besikta_georef::Ground;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: compare_pairs FLIGHT_DIR [--truth FLIGHT.json] [--json OUT.json] [--fast-threshold N] [--min-inliers N] [--ratio R] [--inlier-m M]\n  FLIGHT.json: the flight.json `besikta simulate` writes (true poses)"
    );
    ExitCode::from(2)
}

/// The captures with the true positions and headings of `flight.json`.
fn true_captures(path: &PathBuf, caps: &[Capture]) -> Result<Vec<Capture>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    let photos = v["photos"].as_array().ok_or_else(|| {
        format!(
            "{} has no 'photos' array (give the flight.json of besikta simulate)",
            path.display()
        )
    })?;
    caps.iter()
        .map(|c| {
            let p = photos
                .iter()
                .find(|p| p["file"].as_str().is_some_and(|f| c.file.ends_with(f)))
                .ok_or_else(|| format!("{} is not in {}", c.file, path.display()))?;
            let num = |k: &str| {
                p[k].as_f64()
                    .ok_or_else(|| format!("{} lacks {k} in {}", c.file, path.display()))
            };
            let mut t = c.clone();
            t.latitude = Some(num("true_lat")?);
            t.longitude = Some(num("true_lon")?);
            t.gimbal_yaw_deg = Some(num("true_yaw_deg")?);
            Ok(t)
        })
        .collect()
}

fn name(f: &str) -> &str {
    std::path::Path::new(f)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(f)
}

fn norm(r: &Rigid) -> f64 {
    r.shift_m[0].hypot(r.shift_m[1])
}

fn fmt_rigid(r: &Rigid) -> String {
    format!(
        "{:+.2}, {:+.2} / {:+.2}°",
        r.shift_m[0], r.shift_m[1], r.rotation_deg
    )
}

fn fmt_left(l: &Option<Result<Rigid, String>>) -> String {
    match l {
        Some(Ok(r)) => format!("{:.0} cm / {:.2}°", norm(r) * 100.0, r.rotation_deg.abs()),
        Some(Err(_)) => "no match".into(),
        None => "".into(),
    }
}

fn cell(e: &Estimate, corr: bool) -> String {
    match &e.outcome {
        Ok(_) => {
            let s = if corr {
                format!(
                    "peak {:.2}, {} ties",
                    e.score.unwrap_or(f64::NAN),
                    e.support
                )
            } else {
                format!(
                    "{} inliers ({:.0} %)",
                    e.support,
                    e.score.unwrap_or(f64::NAN) * 100.0
                )
            };
            match &e.note {
                Some(n) => format!("{s}, {n}"),
                None => s,
            }
        }
        Err(_) => "rejected".into(),
    }
}

fn stats(v: &[f64]) -> String {
    if v.is_empty() {
        return "n = 0".into();
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rms = (s.iter().map(|x| x * x).sum::<f64>() / s.len() as f64).sqrt();
    format!(
        "n = {}, median {:.1}, RMS {:.1}, max {:.1}",
        s.len(),
        s[s.len() / 2],
        rms,
        s[s.len() - 1]
    )
}

fn method(p: &PairComparison, m: usize) -> &Estimate {
    if m == 0 {
        &p.correlation
    } else {
        &p.features
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first().map(PathBuf::from) else {
        return usage();
    };
    let mut truth_path = None;
    let mut json_path = None;
    let mut fcfg = FeatureConfig::default();
    let mut k = 1;
    while k < args.len() {
        let num = |v: &String| v.parse::<f64>().ok();
        match (args[k].as_str(), args.get(k + 1)) {
            ("--truth", Some(v)) => truth_path = Some(PathBuf::from(v)),
            ("--json", Some(v)) => json_path = Some(PathBuf::from(v)),
            ("--fast-threshold", Some(v)) => match v.parse() {
                Ok(t) => fcfg.fast_threshold = t,
                Err(_) => return usage(),
            },
            ("--min-inliers", Some(v)) => match v.parse() {
                Ok(n) => fcfg.min_inliers = n,
                Err(_) => return usage(),
            },
            ("--ratio", Some(v)) => match num(v) {
                Some(r) => fcfg.ratio = r,
                None => return usage(),
            },
            ("--inlier-m", Some(v)) => match num(v) {
                Some(r) => fcfg.inlier_m = r,
                None => return usage(),
            },
            _ => return usage(),
        }
        k += 2;
    }
    let mut scan = besikta_ingest::scan(std::slice::from_ref(&dir));
    scan.captures.sort_by(|a, b| a.file.cmp(&b.file));
    let caps = scan.captures;
    if caps.len() < 2 {
        eprintln!(
            "{}: fewer than two photos with metadata ({} rejected)",
            dir.display(),
            scan.rejected.len()
        );
        return ExitCode::FAILURE;
    }
    let truth = match truth_path.as_ref().map(|p| true_captures(p, &caps)) {
        Some(Err(e)) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
        Some(Ok(t)) => Some(t),
        None => None,
    };
    let cfg = AlignConfig::default();
    let t0 = std::time::Instant::now();
    let cmp = compare_pairs(&caps, truth.as_deref(), &Ground::TakeOffPlane, &cfg, &fcfg);
    let total_s = t0.elapsed().as_secs_f64();
    if let Some(p) = &json_path {
        match serde_json::to_string_pretty(&cmp) {
            Ok(s) => {
                if let Err(e) = std::fs::write(p, s) {
                    eprintln!("cannot write {}: {e}", p.display());
                    return ExitCode::FAILURE;
                }
            }
            Err(e) => {
                eprintln!("cannot serialise the comparison: {e}");
                return ExitCode::FAILURE;
            }
        }
    }

    println!(
        "## {} ({} photos, {} overlapping pairs)\n",
        dir.display(),
        caps.len(),
        cmp.pairs.len()
    );
    for (f, e) in &cmp.not_projected {
        println!("- not projected: {}: {e}", name(f));
    }
    println!("Shift (east, north, m) and rotation (° counter-clockwise) of b's ground image relative to a's at the overlap's centre; 'left' = |shift| / |rotation| that correlation (C) and features (F) still measure after b is resampled through the estimate.\n");
    let with_truth = truth.is_some();
    print!("| pair | overlap | correlation | C shift / rot | C rms | left by C | left by F | features | F shift / rot | F rms | left by C | left by F | C-F diff |");
    if with_truth {
        print!(" C error | F error |");
    }
    println!();
    print!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    if with_truth {
        print!("---|---|");
    }
    println!();
    for p in &cmp.pairs {
        let (c, f) = (&p.correlation, &p.features);
        let rig = |e: &Estimate| match &e.outcome {
            Ok(r) => fmt_rigid(r),
            Err(_) => "".into(),
        };
        let rms = |e: &Estimate| {
            e.rms_m
                .map(|r| format!("{:.0} cm", r * 100.0))
                .unwrap_or_default()
        };
        let diff = match (&c.outcome, &f.outcome) {
            (Ok(a), Ok(b)) => format!(
                "{:.0} cm / {:.2}°",
                (a.shift_m[0] - b.shift_m[0]).hypot(a.shift_m[1] - b.shift_m[1]) * 100.0,
                (a.rotation_deg - b.rotation_deg).abs()
            ),
            _ => "".into(),
        };
        print!(
            "| {}-{} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            name(&p.a),
            name(&p.b),
            p.overlap,
            cell(c, true),
            rig(c),
            rms(c),
            fmt_left(&c.left_by_correlation),
            fmt_left(&c.left_by_features),
            cell(f, false),
            rig(f),
            rms(f),
            fmt_left(&f.left_by_correlation),
            fmt_left(&f.left_by_features),
            diff
        );
        if with_truth {
            for e in [c, f] {
                match (&e.outcome, &p.truth) {
                    (Ok(r), Some(t)) => print!(
                        " {:.1} cm / {:.2}° |",
                        (r.shift_m[0] - t.shift_m[0]).hypot(r.shift_m[1] - t.shift_m[1]) * 100.0,
                        (r.rotation_deg - t.rotation_deg).abs()
                    ),
                    _ => print!(" |"),
                }
            }
        }
        println!();
    }

    println!("\n### Rejections\n");
    for p in &cmp.pairs {
        for (m, e) in [("correlation", &p.correlation), ("features", &p.features)] {
            if let Err(why) = &e.outcome {
                println!("- {}-{} {m}: {why}", name(&p.a), name(&p.b));
            }
        }
    }

    println!("\n### Summary\n");
    let labels = ["correlation", "features + RANSAC"];
    for (m, label) in labels.iter().enumerate() {
        let acc: Vec<&PairComparison> = cmp
            .pairs
            .iter()
            .filter(|p| method(p, m).outcome.is_ok())
            .collect();
        let mut photos: Vec<&str> = acc.iter().flat_map(|p| [&p.a[..], &p.b[..]]).collect();
        photos.sort_unstable();
        photos.dedup();
        let secs: f64 = cmp.pairs.iter().map(|p| method(p, m).seconds).sum();
        println!(
            "- **{}**: {} of {} pairs accepted, touching {} of {} photos; {:.2} s per pair",
            label,
            acc.len(),
            cmp.pairs.len(),
            photos.len(),
            caps.len(),
            secs / cmp.pairs.len().max(1) as f64
        );
        for (checker, get) in [("correlation", 0usize), ("features", 1usize)] {
            let left: Vec<&Option<Result<Rigid, String>>> = acc
                .iter()
                .map(|p| {
                    let e = method(p, m);
                    if get == 0 {
                        &e.left_by_correlation
                    } else {
                        &e.left_by_features
                    }
                })
                .collect();
            let ok: Vec<f64> = left
                .iter()
                .filter_map(|l| l.as_ref()?.as_ref().ok())
                .map(|r| norm(r) * 100.0)
                .collect();
            let rot: Vec<f64> = left
                .iter()
                .filter_map(|l| l.as_ref()?.as_ref().ok())
                .map(|r| r.rotation_deg.abs())
                .collect();
            println!(
                "  - shift left, measured again by {checker} after applying the estimate (cm): {}; {} of {} pairs no longer match; rotation left (°): {}",
                stats(&ok),
                left.len() - ok.len(),
                left.len(),
                stats(&rot)
            );
        }
        let rms: Vec<f64> = acc
            .iter()
            .filter_map(|p| method(p, m).rms_m)
            .map(|r| r * 100.0)
            .collect();
        println!(
            "  - residual RMS of its own ties / inliers about the rigid fit (cm): {}",
            stats(&rms)
        );
        // Loop closure over triangles of accepted pairs.
        let mut by: HashMap<(&str, &str), Rigid> = HashMap::new();
        for p in &acc {
            if let Ok(r) = &method(p, m).outcome {
                by.insert((&p.a[..], &p.b[..]), *r);
            }
        }
        let mut closure = Vec::new();
        for (&(a, b), r_ab) in &by {
            for (&(b2, c), r_bc) in &by {
                if b2 != b {
                    continue;
                }
                if let Some(r_ac) = by.get(&(a, c)) {
                    let composed = r_bc.after(r_ab).at(r_ac.centre_m);
                    closure.push(
                        (composed.shift_m[0] - r_ac.shift_m[0])
                            .hypot(composed.shift_m[1] - r_ac.shift_m[1])
                            * 100.0,
                    );
                }
            }
        }
        println!(
            "  - loop closure over triangles of accepted pairs a-b, b-c, a-c (cm): {}",
            stats(&closure)
        );
        if with_truth {
            let err: Vec<(f64, f64)> = acc
                .iter()
                .filter_map(|p| {
                    let r = method(p, m).outcome.as_ref().ok()?;
                    let t = p.truth.as_ref()?;
                    Some((
                        (r.shift_m[0] - t.shift_m[0]).hypot(r.shift_m[1] - t.shift_m[1]) * 100.0,
                        (r.rotation_deg - t.rotation_deg).abs(),
                    ))
                })
                .collect();
            let e: Vec<f64> = err.iter().map(|x| x.0).collect();
            let y: Vec<f64> = err.iter().map(|x| x.1).collect();
            println!(
                "  - error against the true relative pose: shift (cm) {}; rotation (°) {}",
                stats(&e),
                stats(&y)
            );
        }
    }
    let both: Vec<&PairComparison> = cmp
        .pairs
        .iter()
        .filter(|p| p.correlation.outcome.is_ok() && p.features.outcome.is_ok())
        .collect();
    let d: Vec<f64> = both
        .iter()
        .filter_map(|p| {
            let (a, b) = (
                p.correlation.outcome.as_ref().ok()?,
                p.features.outcome.as_ref().ok()?,
            );
            Some((a.shift_m[0] - b.shift_m[0]).hypot(a.shift_m[1] - b.shift_m[1]) * 100.0)
        })
        .collect();
    println!(
        "- accepted by both: {} pairs; correlation minus features shift (cm): {}",
        both.len(),
        stats(&d)
    );
    println!(
        "- projecting the photos took {:.1} s; everything {:.1} s",
        cmp.project_s, total_s
    );
    ExitCode::SUCCESS
}
