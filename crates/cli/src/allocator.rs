//! glibc's mmap threshold, fixed at start-up so freed mid-sized buffers go back to the system.
//!
//! glibc serves an allocation from its heaps unless it is at least the "mmap threshold", and
//! raises that threshold (up to 32 MiB) each time a mapped block is freed. After the first
//! decoded photo is freed, alignment's ground-image planes (about 0.4 MiB each on a 1,600 px
//! photo) come from the heaps and stay resident after alignment frees them: +150 MiB of peak
//! RSS from 20 to 200 simulated photos (`benches/results/memory-series-sim-2026-12-02.md`).
//! With the threshold fixed at 128 KiB, each such buffer is its own mapping and is returned
//! when freed.
//!
//! `besikta process` also calls `malloc_trim(0)` between stages ([`release_free_memory`]), so
//! what a stage freed inside the heaps goes back before the next stage allocates, and after
//! each photo of the inference stage: the small and mid-sized pieces a photo frees (its
//! detections, outlines, per-tile buffers) otherwise stayed resident in the heaps' free lists,
//! and peak RSS still crept up with the flight. Peak RSS at 20 / 200 / 1,000 simulated photos,
//! one session: 291.6 / 297.5 / 314.2 MB without, 292.8 / 285.6 / 302.0 MB with; no cost
//! separable from the machine's load in wall time
//! (`benches/results/memory-series-sim-2026-12-06-s37.jsonl`).
//! `serve` and `worker` hand [`release_free_memory`] to the server
//! (`ServerConfig::release_memory`), whose jobs call it at the same points.
//!
//! `BESIKTA_MALLOC_MMAP_THRESHOLD` overrides the threshold: a byte count (`131072`, `4194304`), or
//! `glibc` to leave glibc's own dynamic threshold. A `GLIBC_TUNABLES` that sets
//! `glibc.malloc.mmap_threshold` is an explicit deployment choice and is left as it is.

/// The threshold the binary sets unless told otherwise: 128 KiB (glibc's own starting value,
/// but kept there instead of rising).
pub const DEFAULT_MMAP_THRESHOLD: usize = 128 * 1024;

/// The environment variable that overrides [`DEFAULT_MMAP_THRESHOLD`].
pub const ENV: &str = "BESIKTA_MALLOC_MMAP_THRESHOLD";

/// glibc refuses a threshold above HEAP_MAX_SIZE / 2 (32 MiB on 64-bit systems).
const MAX_MMAP_THRESHOLD: usize = 32 * 1024 * 1024;

/// What to do with the allocator at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    /// Fix the mmap threshold at this many bytes.
    Threshold(usize),
    /// Leave glibc as it is, and why.
    Leave(&'static str),
}

/// The setting for the values of `BESIKTA_MALLOC_MMAP_THRESHOLD` and `GLIBC_TUNABLES`.
pub fn setting(ours: Option<&str>, tunables: Option<&str>) -> Result<Setting, String> {
    let tuned = tunables.is_some_and(|t| {
        t.split(':')
            .any(|kv| kv.trim_start().starts_with("glibc.malloc.mmap_threshold="))
    });
    match ours.map(str::trim) {
        Some(v) if v.eq_ignore_ascii_case("glibc") => Ok(Setting::Leave("glibc's own")),
        Some(v) => match v.replace('_', "").parse::<usize>() {
            Ok(n) if n <= MAX_MMAP_THRESHOLD => Ok(Setting::Threshold(n)),
            _ => Err(format!(
                "{ENV}={v:?} is not a byte count up to {MAX_MMAP_THRESHOLD} (32 MiB); \
                 set it to e.g. 131072, or to \"glibc\" to keep glibc's dynamic threshold"
            )),
        },
        None if tuned => Ok(Setting::Leave("GLIBC_TUNABLES")),
        None => Ok(Setting::Threshold(DEFAULT_MMAP_THRESHOLD)),
    }
}

/// Reads the environment and applies the setting; says on stderr why when it cannot.
pub fn configure() {
    let ours = std::env::var(ENV).ok();
    let tunables = std::env::var("GLIBC_TUNABLES").ok();
    match setting(ours.as_deref(), tunables.as_deref()) {
        Ok(Setting::Threshold(n)) => {
            if !set_mmap_threshold(n) {
                eprintln!("warning: could not fix glibc's mmap threshold at {n} bytes ({ENV})");
            }
        }
        Ok(Setting::Leave(_)) => {}
        Err(message) => eprintln!("warning: {message}; glibc's threshold is left as it is"),
    }
}

/// Fixes glibc's mmap threshold (which also stops glibc raising it); false if glibc refused.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn set_mmap_threshold(bytes: usize) -> bool {
    let Ok(value) = libc::c_int::try_from(bytes) else {
        return false;
    };
    // SAFETY: mallopt only stores the value in glibc's malloc parameters (under its lock);
    // it takes no pointers and is safe to call at any time from any thread.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, value) == 1 }
}

/// Not glibc: nothing to set.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn set_mmap_threshold(_bytes: usize) -> bool {
    true
}

/// Gives the free memory inside glibc's heaps back to the system (`malloc_trim(0)`), e.g.
/// once alignment has dropped its ground images. Costs one pass over the heaps' free lists.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_free_memory() {
    // SAFETY: malloc_trim takes no pointers; it works on glibc's own free lists under their
    // locks and may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Not glibc: nothing to give back.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_128_kib_unless_a_deployment_or_the_variable_says_otherwise() {
        assert_eq!(setting(None, None), Ok(Setting::Threshold(131_072)));
        assert_eq!(
            setting(None, Some("glibc.malloc.arena_max=2")),
            Ok(Setting::Threshold(131_072))
        );
        assert_eq!(
            setting(
                None,
                Some("glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=4194304")
            ),
            Ok(Setting::Leave("GLIBC_TUNABLES"))
        );
        // Our own variable wins over GLIBC_TUNABLES.
        assert_eq!(
            setting(Some("4194304"), Some("glibc.malloc.mmap_threshold=131072")),
            Ok(Setting::Threshold(4_194_304))
        );
        assert_eq!(
            setting(Some(" 1_048_576 "), None),
            Ok(Setting::Threshold(1_048_576))
        );
        assert_eq!(
            setting(Some("GLIBC"), None),
            Ok(Setting::Leave("glibc's own"))
        );
    }

    #[test]
    fn a_bad_value_is_refused_with_what_to_set() {
        for bad in ["128k", "-1", "", "33554433"] {
            let err = setting(Some(bad), None).expect_err(bad);
            assert!(err.contains(ENV) && err.contains("131072"), "{err}");
        }
        assert_eq!(
            setting(Some("33554432"), None),
            Ok(Setting::Threshold(33_554_432))
        );
    }

    fn vm_rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/self/status")
    }

    /// What the pipeline does to glibc: a big buffer freed (a decoded photo) raises glibc's
    /// threshold; then many ~0.4 MiB planes, each followed by a small allocation that lives
    /// on, are freed. With the threshold fixed, their memory goes back to the system.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn freed_planes_go_back_to_the_system_once_the_threshold_is_fixed() {
        assert!(set_mmap_threshold(DEFAULT_MMAP_THRESHOLD));
        let photo = vec![1u8; 24 << 20];
        drop(std::hint::black_box(photo));
        let mut planes = Vec::new();
        let mut small = Vec::new();
        for i in 0..160u32 {
            planes.push(vec![i as f32 + 1.0; 400 * 267]);
            small.push(Box::new([i; 16]));
        }
        let held = vm_rss_kib();
        drop(std::hint::black_box(planes));
        let after = vm_rss_kib();
        // 160 planes of 427 kB = 65 MiB; at least 48 MiB of it must be returned.
        assert!(
            held.saturating_sub(after) >= 48 * 1024,
            "VmRSS {held} kB with the planes, {after} kB after freeing them"
        );
        assert_eq!(small.len(), 160);
    }

    /// Whatever the threshold (tests share one process), memory freed inside the heaps is
    /// back with the system once `release_free_memory` has run.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn released_memory_is_no_longer_resident() {
        let mut pieces = Vec::new();
        let mut small = Vec::new();
        for i in 0..2000u32 {
            pieces.push(vec![(i % 200) as u8 + 1; 60_000]);
            small.push(Box::new([i; 16]));
        }
        let held = vm_rss_kib();
        drop(std::hint::black_box(pieces));
        release_free_memory();
        let after = vm_rss_kib();
        // 2,000 pieces of 60 kB (under any mmap threshold) = 114 MiB; 80 MiB must be back.
        assert!(
            held.saturating_sub(after) >= 80 * 1024,
            "VmRSS {held} kB with the pieces, {after} kB after freeing and releasing them"
        );
        assert_eq!(small.len(), 2000);
    }
}
