//! The decoder thread of the inference loops (owner tiles and second-view windows): decodes
//! the next photo, and computes its vegetation mask when there is no register, while the
//! current photo is inferred, so neither waits on the one thread that blends and
//! post-processes.

use crate::vegetation::{VegetationMask, VegetationRule};
use besikta_infer::InferError;
use image::RgbImage;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender};
use std::thread::Scope;
use std::time::Instant;

/// One photo as the decoder hands it over, in the order of the files it was given.
pub(crate) struct Decoded {
    pub img: Result<RgbImage, InferError>,
    /// Present when a vegetation rule was given and the photo decoded.
    pub veg: Option<VegetationMask>,
    /// Seconds spent decoding (the mask not included).
    pub decode_s: f64,
}

/// Starts the decoder in `scope` over `files`; it runs at most one photo ahead of the
/// consumer. Send each photo's pixel buffer back on the returned sender once it is
/// inferred: the decoder reuses it, so a flight holds three photo buffers at most.
pub(crate) fn decode_ahead<'scope>(
    scope: &'scope Scope<'scope, '_>,
    files: Vec<PathBuf>,
    max_pixels: u64,
    veg_rule: Option<VegetationRule>,
) -> (Receiver<Decoded>, Sender<Vec<u8>>) {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let (back_tx, back_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    scope.spawn(move || {
        for f in files {
            let t = Instant::now();
            let buf = back_rx.try_recv().unwrap_or_default();
            let img = besikta_infer::decode_photo_into(&f, max_pixels, buf);
            let decode_s = t.elapsed().as_secs_f64();
            let veg = match (&img, &veg_rule) {
                (Ok(img), Some(rule)) => Some(VegetationMask::new(img, rule)),
                _ => None,
            };
            if tx.send(Decoded { img, veg, decode_s }).is_err() {
                break;
            }
        }
    });
    (rx, back_tx)
}
