//! Large per-photo buffers (resampled photos, blend planes) kept per thread and reused for the
//! next photo, so a long flight does not leave the allocator a fresh photo-sized block each
//! time (glibc keeps freed blocks of that size in the heap, and peak RSS grew with photos).
//!
//! The kept buffers are as large as the largest canvases seen so far, so a long flight holds
//! a few MB more than a short one (measured 2026-12-06 with an experimental build keeping
//! nothing: peak RSS 287.3 / 271.8 / 285.1 MB at 20 / 200 / 1,000 simulated photos against
//! 290.4 / 282.7 / 296.7 MB with the pool, but 78.6 s against 72.6 s at 200 photos, under a
//! similar load; `benches/results/memory-series-sim-2026-12-06-s37.jsonl`). Measured again
//! interleaved with the same load (2026-12-06, s38, `memory-series-sim-2026-12-06-s38.jsonl`):
//! keeping nothing took 63.6 / 63.1 s against 61.1 / 60.6 s at 200 photos and 334.0 s against
//! 295.0 s at 1,000 (4-13 % slower) for 287.8 / 271.8 / 287.2 MB against 290.6 / 282.6 /
//! 297.2 MB; freeing buffers left idle for 32 takes changed nothing (290.7 / 282.8 / 296.0 MB).
//! Kept: the time matters more than 10 MB.

use std::cell::RefCell;

/// Buffers of each kind a thread keeps between uses; more are freed, smallest first.
const KEEP: usize = 4;

thread_local! {
    static F32: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
    static U8: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Takes the kept buffer that fits `len` best (the smallest one large enough, else the
/// largest), or a new one.
fn take<T: Clone>(pool: &RefCell<Vec<Vec<T>>>, len: usize, zero: T) -> Vec<T> {
    let mut pool = pool.borrow_mut();
    let fits = pool
        .iter()
        .enumerate()
        .filter(|(_, v)| v.capacity() >= len)
        .min_by_key(|(_, v)| v.capacity())
        .map(|(i, _)| i);
    let largest = || {
        pool.iter()
            .enumerate()
            .max_by_key(|(_, v)| v.capacity())
            .map(|(i, _)| i)
    };
    let mut v = match fits.or_else(largest) {
        Some(i) => pool.swap_remove(i),
        None => Vec::new(),
    };
    v.clear();
    v.resize(len, zero);
    v
}

fn give<T>(pool: &RefCell<Vec<Vec<T>>>, v: Vec<T>) {
    if v.capacity() == 0 {
        return;
    }
    let mut pool = pool.borrow_mut();
    pool.push(v);
    if pool.len() > KEEP {
        if let Some(i) = pool
            .iter()
            .enumerate()
            .min_by_key(|(_, v)| v.capacity())
            .map(|(i, _)| i)
        {
            pool.swap_remove(i);
        }
    }
}

/// `len` zeros, in a kept buffer when this thread has one.
pub(crate) fn take_f32(len: usize) -> Vec<f32> {
    F32.with(|p| take(p, len, 0.0))
}

/// Keeps `v` for this thread's next [`take_f32`].
pub(crate) fn give_f32(v: Vec<f32>) {
    F32.with(|p| give(p, v));
}

/// `len` zero bytes, in a kept buffer when this thread has one.
pub(crate) fn take_u8(len: usize) -> Vec<u8> {
    U8.with(|p| take(p, len, 0))
}

/// Keeps `v` for this thread's next [`take_u8`].
pub(crate) fn give_u8(v: Vec<u8>) {
    U8.with(|p| give(p, v));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_buffer_comes_back_zeroed_and_the_pool_stays_bounded() {
        let mut v = take_f32(1000);
        assert!(v.iter().all(|&x| x == 0.0));
        v.fill(7.0);
        let ptr = v.as_ptr();
        give_f32(v);
        let w = take_f32(800);
        assert_eq!(w.as_ptr(), ptr, "the kept buffer is reused");
        assert_eq!(w.len(), 800);
        assert!(w.iter().all(|&x| x == 0.0));
        for n in 1..=10 {
            give_u8(vec![1u8; n * 10]);
        }
        U8.with(|p| {
            let caps: Vec<usize> = p.borrow().iter().map(Vec::capacity).collect();
            assert_eq!(caps.len(), KEEP);
            assert!(
                caps.iter().all(|&c| c >= 70),
                "the largest are kept: {caps:?}"
            );
        });
    }
}
