//! The flight's ground images held within a memory budget: what alignment keeps of every
//! photo for the whole run is small (camera, envelope and the cells it sees as runs of a
//! row); the ground images themselves are projected when a task needs them, kept while
//! later tasks will need them again (the one needed farthest in the future leaves first
//! when the budget is full) and dropped after their last use, so peak memory does not grow
//! with the number of photos. A photo dropped too early is projected again: the same
//! pixels give the same image, so results do not depend on the budget. The budget is
//! `AlignConfig::memory_mb`, or `hold_photos` photos' worth of images when that is less.

use crate::ortho::{self, Decoded, Frame, Ortho, Raster};
use crate::{AlignConfig, MIN_HOLD_MB};
use besikta_core::Capture;
use besikta_georef::Ground;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Instant;

/// The cells of the global grid a photo sees, as runs `[x0, x1)` per row.
#[derive(Debug, Clone)]
pub(crate) struct Coverage {
    y0: i64,
    /// Row `j` (cell row `y0 + j`) holds `runs[row_start[j]..row_start[j + 1]]`.
    row_start: Vec<u32>,
    runs: Vec<[i64; 2]>,
    cells: usize,
}

impl Coverage {
    /// The valid cells of a raster shaped like `r` whose validity is `seen`.
    pub fn of(r: &Raster, seen: &[bool]) -> Coverage {
        let mut row_start = Vec::with_capacity(r.h + 1);
        let mut runs = Vec::new();
        let mut cells = 0;
        for j in 0..r.h {
            row_start.push(runs.len() as u32);
            let row = &seen[j * r.w..(j + 1) * r.w];
            let mut i = 0;
            while i < r.w {
                if !row[i] {
                    i += 1;
                    continue;
                }
                let s = i;
                while i < r.w && row[i] {
                    i += 1;
                }
                runs.push([r.x0 + s as i64, r.x0 + i as i64]);
                cells += i - s;
            }
        }
        row_start.push(runs.len() as u32);
        Coverage {
            y0: r.y0,
            row_start,
            runs,
            cells,
        }
    }

    /// Number of cells seen.
    pub fn cells(&self) -> usize {
        self.cells
    }

    fn row(&self, y: i64) -> &[[i64; 2]] {
        let j = y - self.y0;
        if j < 0 || j as usize + 1 >= self.row_start.len() {
            return &[];
        }
        let j = j as usize;
        &self.runs[self.row_start[j] as usize..self.row_start[j + 1] as usize]
    }

    /// Number of cells both coverages see.
    pub fn shared(&self, other: &Coverage) -> usize {
        let h = |c: &Coverage| c.y0 + c.row_start.len() as i64 - 1;
        let (y0, y1) = (self.y0.max(other.y0), h(self).min(h(other)));
        let mut n = 0usize;
        for y in y0..y1 {
            let (a, b) = (self.row(y), other.row(y));
            let (mut p, mut q) = (0, 0);
            while p < a.len() && q < b.len() {
                let (s, e) = (a[p][0].max(b[q][0]), a[p][1].min(b[q][1]));
                if s < e {
                    n += (e - s) as usize;
                }
                if a[p][1] < b[q][1] {
                    p += 1;
                } else {
                    q += 1;
                }
            }
        }
        n
    }
}

/// What alignment keeps of a projected photo for the whole run.
#[derive(Debug, Clone)]
pub(crate) struct Placed {
    /// Camera position, metres east/north in the flight frame.
    pub camera: [f64; 2],
    /// Envelope `[xmin, ymin, xmax, ymax]` in metres.
    pub envelope: [f64; 4],
    pub coverage: Coverage,
}

fn raster_bytes(r: &Raster) -> usize {
    r.val.len() * std::mem::size_of::<[f32; 2]>() + r.ok.len()
}

/// Bytes a ground image holds.
fn ortho_bytes(o: &Ortho) -> usize {
    raster_bytes(&o.fine)
        + raster_bytes(&o.coarse)
        + raster_bytes(&o.top)
        + o.seen.len()
        + o.plain.as_deref().map(ortho_bytes).unwrap_or(0)
}

/// The bytes ground images may hold: `memory` (bytes), or `hold_photos` images of
/// `largest` bytes when that is less, but not less than [`MIN_HOLD_MB`] (`hold_photos` 0:
/// `memory` alone).
fn budget_bytes(memory: usize, hold_photos: usize, largest: usize) -> usize {
    if hold_photos == 0 {
        return memory;
    }
    let photos = largest.saturating_mul(hold_photos).max(MIN_HOLD_MB << 20);
    memory.min(photos)
}

struct Held {
    ortho: Rc<Ortho>,
    bytes: usize,
    used: u64,
}

/// The flight's ground images, projected on demand and held within `budget` bytes.
pub(crate) struct Grounds<'a> {
    captures: &'a [Capture],
    ground: &'a Ground,
    frame: &'a Frame,
    cfg: &'a AlignConfig,
    budget: usize,
    /// The largest ground image held so far, bytes ([`AlignConfig::hold_photos`]).
    largest: usize,
    held: Vec<Option<Held>>,
    bytes: usize,
    clock: u64,
    /// Ground images projected, counting repeats; the time it took, seconds; the most
    /// bytes held at once.
    pub projections: usize,
    pub project_s: f64,
    pub peak_bytes: usize,
    /// Photos being read ahead on the reader thread, and those it has read.
    ahead: Ahead,
}

/// How many tasks ahead of the current one photos are read ([`Grounds::run`]): a task
/// whose images are held takes a few milliseconds, a projection about a tenth of a second.
const READ_AHEAD_TASKS: usize = 2;

/// Reads photos for projection on a thread of its own, ahead of their turn: decoding is
/// about half of a projection, so the next photo is read while this one is projected. What
/// is read depends only on the file and block size ([`ortho::decode_downscaled`]), so a
/// photo read ahead gives the same image as one read in turn.
struct Ahead {
    jobs: Option<mpsc::Sender<(usize, PathBuf, usize)>>,
    done: mpsc::Receiver<(usize, Result<Decoded, String>)>,
    asked: BTreeSet<usize>,
    got: BTreeMap<usize, Result<Decoded, String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Ahead {
    fn new() -> Ahead {
        let (jobs, todo) = mpsc::channel::<(usize, PathBuf, usize)>();
        let (tell, done) = mpsc::channel();
        let reader = std::thread::Builder::new()
            .name("align-reader".into())
            .spawn(move || {
                // One photo-sized buffer for every photo this thread decodes, freed with it.
                let mut pixels = Vec::new();
                for (k, path, s) in todo {
                    let decoded = ortho::decode_downscaled(&path, s, &mut pixels);
                    if tell.send((k, decoded)).is_err() {
                        break;
                    }
                }
            })
            .ok();
        Ahead {
            jobs: reader.is_some().then_some(jobs),
            done,
            asked: BTreeSet::new(),
            got: BTreeMap::new(),
            reader,
        }
    }

    /// Starts reading photo `k` unless it is already asked for.
    fn ask(&mut self, k: usize, path: PathBuf, s: usize) {
        let Some(jobs) = &self.jobs else { return };
        if self.asked.insert(k) && jobs.send((k, path, s)).is_err() {
            self.asked.remove(&k);
        }
    }

    /// Photo `k` as read ahead, waiting for it; `None` when it was not asked for.
    fn take(&mut self, k: usize) -> Option<Result<Decoded, String>> {
        if !self.asked.remove(&k) {
            return None;
        }
        while !self.got.contains_key(&k) {
            let (j, d) = self.done.recv().ok()?;
            self.got.insert(j, d);
        }
        self.got.remove(&k)
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

impl<'a> Grounds<'a> {
    pub fn new(
        captures: &'a [Capture],
        ground: &'a Ground,
        frame: &'a Frame,
        cfg: &'a AlignConfig,
    ) -> Grounds<'a> {
        Grounds {
            captures,
            ground,
            frame,
            cfg,
            budget: cfg.memory_mb.saturating_mul(1 << 20),
            largest: 0,
            held: (0..captures.len()).map(|_| None).collect(),
            bytes: 0,
            clock: 0,
            projections: 0,
            project_s: 0.0,
            peak_bytes: 0,
            ahead: Ahead::new(),
        }
    }

    /// Starts reading photo `k` on the reader thread, unless it is held or already asked
    /// for, or does not place on the ground (its projection will say why).
    fn read_ahead(&mut self, k: usize) {
        if self.held[k].is_some() {
            return;
        }
        if let Some((path, s)) = ortho::decode_request(&self.captures[k], self.ground, self.frame) {
            self.ahead.ask(k, path, s);
        }
    }

    /// Projects photo `k` (not held). `Err` says in words why it cannot be used.
    fn project(&mut self, k: usize) -> Result<Ortho, String> {
        let c = &self.captures[k];
        let off_nadir = c.pose().map(|p| (p.pitch_deg + 90.0).abs()).unwrap_or(0.0);
        if off_nadir > self.cfg.max_off_nadir_deg {
            return Err(format!(
                "the camera looks {off_nadir:.0} degrees away from straight down (oblique photos are not aligned; at most {:.0})",
                self.cfg.max_off_nadir_deg
            ));
        }
        let t = Instant::now();
        let read = self.ahead.take(k);
        let o = ortho::project(c, self.ground, self.frame, self.cfg.vegetation_exg, read);
        self.project_s += t.elapsed().as_secs_f64();
        self.projections += 1;
        o
    }

    fn drop_photo(&mut self, k: usize) {
        if let Some(h) = self.held[k].take() {
            self.bytes -= h.bytes;
        }
    }

    /// Holds `o` as photo `k`'s ground image, making room by dropping the photos whose next
    /// use (`next`, `None` = never) is farthest away, least recently used first among
    /// equals; never one of `pinned`.
    fn hold(
        &mut self,
        k: usize,
        o: Rc<Ortho>,
        pinned: &[usize],
        next: &dyn Fn(usize) -> Option<usize>,
    ) {
        self.clock += 1;
        let bytes = ortho_bytes(&o);
        self.bytes += bytes;
        self.held[k] = Some(Held {
            ortho: o,
            bytes,
            used: self.clock,
        });
        self.peak_bytes = self.peak_bytes.max(self.bytes);
        self.largest = self.largest.max(bytes);
        let budget = budget_bytes(self.budget, self.cfg.hold_photos, self.largest);
        while self.bytes > budget {
            let victim = self
                .held
                .iter()
                .enumerate()
                .filter(|(i, h)| h.is_some() && !pinned.contains(i))
                .filter_map(|(i, h)| Some((i, h.as_ref()?.used)))
                .max_by_key(|&(i, used)| (next(i).unwrap_or(usize::MAX), u64::MAX - used));
            match victim {
                Some((v, _)) => self.drop_photo(v),
                None => break,
            }
        }
    }

    /// Pass over every photo in `order`, projecting each once: what is kept of it for the
    /// whole run (or why it cannot be used). The last images projected stay held, as far
    /// as the budget goes, for the tasks that follow.
    pub fn place(&mut self, order: &[usize]) -> Vec<Result<Placed, String>> {
        let mut placed: Vec<Result<Placed, String>> =
            vec![Err("not projected".into()); self.captures.len()];
        if let Some(&first) = order.first() {
            self.read_ahead(first);
        }
        for (i, &k) in order.iter().enumerate() {
            if let Some(&next) = order.get(i + 1) {
                self.read_ahead(next);
            }
            placed[k] = self.project(k).map(|mut o| {
                let seen = std::mem::take(&mut o.seen);
                let p = Placed {
                    camera: o.camera,
                    envelope: o.envelope,
                    coverage: Coverage::of(&o.fine, &seen),
                };
                // Least recently projected leaves first.
                self.hold(k, Rc::new(o), &[k], &|_| None);
                p
            });
        }
        placed
    }

    /// Runs `f` on each task's ground images in the order given (a task is one or two
    /// photos), holding images between tasks as the budget allows and dropping each after
    /// its last use. Results in task order; `Err` where a photo could not be projected.
    pub fn run<R>(
        &mut self,
        tasks: &[Vec<usize>],
        mut f: impl FnMut(usize, &[&Ortho]) -> R,
    ) -> Vec<Result<R, String>> {
        let mut uses: Vec<VecDeque<usize>> = vec![VecDeque::new(); self.captures.len()];
        for (t, task) in tasks.iter().enumerate() {
            for &k in task {
                uses[k].push_back(t);
            }
        }
        // Images no task needs are not kept.
        let unused: Vec<usize> = (0..uses.len()).filter(|&k| uses[k].is_empty()).collect();
        for k in unused {
            self.drop_photo(k);
        }
        let mut out = Vec::with_capacity(tasks.len());
        for (t, task) in tasks.iter().enumerate() {
            for &k in task {
                while uses[k].front().is_some_and(|&u| u <= t) {
                    uses[k].pop_front();
                }
            }
            // The photos of this task and the next two that are not held: read while this
            // task projects and correlates (a photo read ahead is consumed by the first
            // task that projects it).
            for ahead in tasks[t..].iter().take(READ_AHEAD_TASKS + 1) {
                for &k in ahead {
                    self.read_ahead(k);
                }
            }
            let mut images: Vec<Rc<Ortho>> = Vec::with_capacity(task.len());
            let mut failed = None;
            for &k in task {
                self.clock += 1;
                if let Some(h) = self.held[k].as_mut() {
                    h.used = self.clock;
                    images.push(h.ortho.clone());
                    continue;
                }
                match self.project(k) {
                    Ok(o) => {
                        let o = Rc::new(o);
                        let next = |i: usize| uses[i].front().copied();
                        self.hold(k, o.clone(), task, &next);
                        images.push(o);
                    }
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            out.push(match failed {
                Some(e) => Err(e),
                None => {
                    let refs: Vec<&Ortho> = images.iter().map(|o| o.as_ref()).collect();
                    Ok(f(t, &refs))
                }
            });
            drop(images);
            for &k in task {
                if uses[k].is_empty() {
                    self.drop_photo(k);
                }
            }
        }
        out
    }
}

/// Position of the point `(x, y)` (each in `0..n`, `n` a power of two) along the Hilbert
/// curve: photos near each other on the ground are mostly near each other in this order.
pub(crate) fn hilbert(n: u64, mut x: u64, mut y: u64) -> u64 {
    let mut d = 0;
    let mut s = n / 2;
    while s > 0 {
        let rx = u64::from(x & s > 0);
        let ry = u64::from(y & s > 0);
        d += s * s * ((3 * rx) ^ ry);
        if ry == 0 {
            if rx == 1 {
                x = n - 1 - x;
                y = n - 1 - y;
            }
            std::mem::swap(&mut x, &mut y);
        }
        s /= 2;
    }
    d
}

/// The photos in Hilbert order of their metadata positions (photos without one last, in
/// their own order).
pub(crate) fn ground_order(captures: &[Capture], frame: &Frame) -> Vec<usize> {
    let pos: Vec<Option<[f64; 2]>> = captures
        .iter()
        .map(|c| {
            let (lat, lon) = (c.latitude?, c.longitude?);
            (lat.is_finite() && lon.is_finite()).then(|| frame.to_enu(lat, lon, 0.0))
        })
        .collect();
    let (mut lo, mut hi) = ([f64::MAX; 2], [f64::MIN; 2]);
    for p in pos.iter().flatten() {
        for a in 0..2 {
            lo[a] = lo[a].min(p[a]);
            hi[a] = hi[a].max(p[a]);
        }
    }
    const N: u64 = 1 << 16;
    let span = (hi[0] - lo[0]).max(hi[1] - lo[1]).max(1e-9);
    let key = |k: usize| match pos[k] {
        Some(p) => {
            let q = |a: usize| (((p[a] - lo[a]) / span * (N - 1) as f64) as u64).min(N - 1);
            (0, hilbert(N, q(0), q(1)), k)
        }
        None => (1, 0, k),
    };
    let mut order: Vec<usize> = (0..captures.len()).collect();
    order.sort_by_key(|&k| key(k));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_images_are_held_by_the_photo_large_ones_by_memory() {
        const MIB: usize = 1 << 20;
        let memory = 384 * MIB;
        // Brighton's 9 MP photos (about 20 MiB of ground image each): memory decides.
        assert_eq!(budget_bytes(memory, 24, 20 * MIB), memory);
        // 1,600 px photos (about 2 MiB): the floor, not 384 MiB.
        assert_eq!(budget_bytes(memory, 24, 2 * MIB), MIN_HOLD_MB * MIB);
        // Between the floor and memory: 24 photos' worth.
        assert_eq!(budget_bytes(memory, 24, 8 * MIB), 192 * MIB);
        // hold_photos 0 is memory alone; memory below the floor still wins.
        assert_eq!(budget_bytes(memory, 0, 2 * MIB), memory);
        assert_eq!(budget_bytes(0, 24, 2 * MIB), 0);
        assert_eq!(budget_bytes(64 * MIB, 24, 2 * MIB), 64 * MIB);
    }

    #[test]
    fn runs_count_the_same_shared_cells_as_the_masks() {
        // Two irregular masks on offset rasters: the run count equals the cell-by-cell one.
        let mut a = Raster::new(-3, 5, 13, 9);
        let mut b = Raster::new(2, 1, 11, 10);
        let mut seed = 7u64;
        let mut bit = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            !(seed >> 33).is_multiple_of(3)
        };
        for v in a.ok.iter_mut() {
            *v = bit();
        }
        for v in b.ok.iter_mut() {
            *v = bit();
        }
        let (ca, cb) = (Coverage::of(&a, &a.ok), Coverage::of(&b, &b.ok));
        let at = |r: &Raster, x: i64, y: i64| {
            x >= r.x0 && x < r.x1() && y >= r.y0 && y < r.y1() && {
                r.ok[(y - r.y0) as usize * r.w + (x - r.x0) as usize]
            }
        };
        let mut both = 0;
        for y in -10..30 {
            for x in -10..30 {
                if at(&a, x, y) && at(&b, x, y) {
                    both += 1;
                }
            }
        }
        assert!(both > 10);
        assert_eq!(ca.shared(&cb), both);
        assert_eq!(cb.shared(&ca), both);
        assert_eq!(ca.cells(), a.ok.iter().filter(|&&v| v).count());
    }

    #[test]
    fn the_hilbert_order_visits_every_cell_once_stepping_to_neighbours() {
        let n = 8u64;
        let mut at = vec![(0u64, 0u64); (n * n) as usize];
        for x in 0..n {
            for y in 0..n {
                at[hilbert(n, x, y) as usize] = (x, y);
            }
        }
        for w in at.windows(2) {
            let d = w[0].0.abs_diff(w[1].0) + w[0].1.abs_diff(w[1].1);
            assert_eq!(d, 1, "{:?} -> {:?}", w[0], w[1]);
        }
    }
}
