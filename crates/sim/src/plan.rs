//! Lawnmower flight planning: parallel north-south lines flown alternately up and down, the
//! camera pointing straight down with the top of the photo ahead, photos spaced for the
//! requested forward and side overlap.

/// One planned exposure, in working metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shot {
    pub x: f64,
    pub y: f64,
    /// Heading of the drone and the camera, degrees clockwise from north (0 or 180).
    pub yaw_deg: f64,
    /// Flight line number, from the west.
    pub line: usize,
}

/// A planned flight.
#[derive(Debug, Clone, PartialEq)]
pub struct FlightPlan {
    pub shots: Vec<Shot>,
    /// Ground footprint of one nadir photo: across the track (photo x), along it (photo y).
    pub footprint_m: [f64; 2],
    /// Distance between lines and between exposures on a line, metres.
    pub spacing_m: [f64; 2],
    /// Box covered by the footprints: `[xmin, ymin, xmax, ymax]`.
    pub coverage: [f64; 4],
}

/// Plans `photos` exposures centred on `centre` (working metres). `footprint_m` is the ground
/// size of one photo (width across the track, height along it); `overlap` is 0..1.
pub fn lawnmower(
    centre: [f64; 2],
    photos: usize,
    footprint_m: [f64; 2],
    overlap: f64,
) -> FlightPlan {
    let photos = photos.max(1);
    let side = footprint_m[0] * (1.0 - overlap);
    let forward = footprint_m[1] * (1.0 - overlap);
    // The line count that makes the covered area closest to square.
    let extent = |lines: usize| {
        let per_line = photos.div_ceil(lines);
        [
            (lines - 1) as f64 * side + footprint_m[0],
            (per_line - 1) as f64 * forward + footprint_m[1],
        ]
    };
    let lines = (1..=photos)
        .min_by(|&a, &b| {
            let ea = extent(a);
            let eb = extent(b);
            (ea[0] / ea[1])
                .ln()
                .abs()
                .total_cmp(&(eb[0] / eb[1]).ln().abs())
        })
        .unwrap_or(1);
    let per_line = photos.div_ceil(lines);
    let x_start = centre[0] - (lines - 1) as f64 * side / 2.0;
    let y_start = centre[1] - (per_line - 1) as f64 * forward / 2.0;
    let mut shots = Vec::with_capacity(photos);
    'outer: for line in 0..lines {
        let north = line % 2 == 0;
        for k in 0..per_line {
            if shots.len() == photos {
                break 'outer;
            }
            let j = if north { k } else { per_line - 1 - k };
            shots.push(Shot {
                x: x_start + line as f64 * side,
                y: y_start + j as f64 * forward,
                yaw_deg: if north { 0.0 } else { 180.0 },
                line,
            });
        }
    }
    let [w, h] = extent(lines);
    FlightPlan {
        shots,
        footprint_m,
        spacing_m: [side, forward],
        coverage: [
            centre[0] - w / 2.0,
            centre[1] - h / 2.0,
            centre[0] + w / 2.0,
            centre[1] + h / 2.0,
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twelve_photos_make_three_lines_of_four_with_the_overlap_asked() {
        // Phantom 4 Pro at 40 m: 60 m x 40 m footprints; 70 % overlap.
        let p = lawnmower([1000.0, 2000.0], 12, [60.0, 40.0], 0.7);
        assert_eq!(p.shots.len(), 12);
        assert_eq!(p.shots.iter().filter(|s| s.line == 0).count(), 4);
        assert!((p.spacing_m[0] - 18.0).abs() < 1e-9 && (p.spacing_m[1] - 12.0).abs() < 1e-9);
        // Neighbouring photos on a line overlap by 70 % of the footprint height.
        let (a, b) = (p.shots[0], p.shots[1]);
        let overlap = 1.0 - (b.y - a.y).abs() / 40.0;
        assert!((overlap - 0.7).abs() < 1e-9);
        // Lines alternate direction (a lawnmower), centred on the centre.
        assert_eq!(p.shots[0].yaw_deg, 0.0);
        assert_eq!(p.shots[4].yaw_deg, 180.0);
        assert_eq!(p.shots[4].y, p.shots[3].y, "turns at the end of the line");
        let mx = p.shots.iter().map(|s| s.x).sum::<f64>() / 12.0;
        let my = p.shots.iter().map(|s| s.y).sum::<f64>() / 12.0;
        assert!((mx - 1000.0).abs() < 1e-9 && (my - 2000.0).abs() < 1e-9);
        assert!((p.coverage[2] - p.coverage[0] - 96.0).abs() < 1e-9);
        assert!((p.coverage[3] - p.coverage[1] - 76.0).abs() < 1e-9);
    }

    #[test]
    fn a_prime_count_still_gives_every_photo() {
        let p = lawnmower([0.0, 0.0], 7, [60.0, 40.0], 0.75);
        assert_eq!(p.shots.len(), 7);
    }
}
