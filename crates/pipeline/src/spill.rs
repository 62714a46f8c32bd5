//! What a one-process run finds, kept on disk until the merge (issue 14, memory flat in
//! flight size): each photo's observations and processed areas are appended to an unnamed
//! file in the output folder as they are made, and read back only after the second-view
//! windows, when the models' memory is free. Held in memory they grew the peak by about
//! 25 MiB per 1,000 photos. The observations are read back one merge part at a time
//! ([`Spill::scan`], `units::merge_in_parts`), so the merge does not hold them all either.
//!
//! The file is removed from the folder as soon as it is created, so nothing is left behind
//! when the process stops early; only the open handle keeps it. Values are written as JSON
//! lines with `float_roundtrip`, so every `f64` reads back bit for bit and the findings are
//! the same as when they were held in memory.

use crate::PipelineError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Files made by this process so far, for unique names.
static MADE: AtomicUsize = AtomicUsize::new(0);

/// Values of `T` appended one by one and read back in the same order, once.
pub(crate) struct Spill<T> {
    out: BufWriter<File>,
    /// Where it was made, for messages.
    path: PathBuf,
    len: usize,
    _t: PhantomData<T>,
}

impl<T: Serialize + DeserializeOwned> Spill<T> {
    /// A new empty spill in `dir` (named after `what`, removed from `dir` at once).
    pub fn new(dir: &Path, what: &str) -> Result<Spill<T>, PipelineError> {
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".besikta-{what}-{}-{n}.jsonl", std::process::id()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io_error(&path, e))?;
        std::fs::remove_file(&path).map_err(|e| io_error(&path, e))?;
        Ok(Spill {
            out: BufWriter::with_capacity(1 << 16, file),
            path,
            len: 0,
            _t: PhantomData,
        })
    }

    /// Appends `v`.
    pub fn push(&mut self, v: &T) -> Result<(), PipelineError> {
        serde_json::to_writer(&mut self.out, v)
            .map_err(|e| io_error(&self.path, std::io::Error::other(e)))?;
        self.out
            .write_all(b"\n")
            .map_err(|e| io_error(&self.path, e))?;
        self.len += 1;
        Ok(())
    }

    /// Reads the values back in the order appended, parsing only those `want` asks for
    /// (by index) and handing them to `take`; the spill can be read again after.
    pub fn scan(
        &mut self,
        mut want: impl FnMut(usize) -> bool,
        mut take: impl FnMut(usize, T) -> Result<(), PipelineError>,
    ) -> Result<(), PipelineError> {
        self.out.flush().map_err(|e| io_error(&self.path, e))?;
        let mut file = self.out.get_ref();
        file.seek(SeekFrom::Start(0))
            .map_err(|e| io_error(&self.path, e))?;
        let mut read = 0;
        let mut line = String::new();
        let mut lines = BufReader::with_capacity(1 << 16, file);
        loop {
            line.clear();
            let n = lines
                .read_line(&mut line)
                .map_err(|e| io_error(&self.path, e))?;
            if n == 0 {
                break;
            }
            if want(read) {
                let v = serde_json::from_str(&line)
                    .map_err(|e| io_error(&self.path, std::io::Error::other(e)))?;
                take(read, v)?;
            }
            read += 1;
        }
        // Appending goes on at the end.
        file.seek(SeekFrom::End(0))
            .map_err(|e| io_error(&self.path, e))?;
        if read != self.len {
            return Err(io_error(
                &self.path,
                std::io::Error::other(format!("{} values written, {read} read back", self.len)),
            ));
        }
        Ok(())
    }

    /// Every value, in the order appended; the file goes when this returns.
    pub fn read_all(self) -> Result<Vec<T>, PipelineError> {
        let path = self.path.clone();
        let mut file = self
            .out
            .into_inner()
            .map_err(|e| io_error(&path, e.into_error()))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| io_error(&path, e))?;
        let mut values = Vec::with_capacity(self.len);
        for line in BufReader::new(file).lines() {
            let line = line.map_err(|e| io_error(&path, e))?;
            let v = serde_json::from_str(&line)
                .map_err(|e| io_error(&path, std::io::Error::other(e)))?;
            values.push(v);
        }
        if values.len() != self.len {
            return Err(io_error(
                &path,
                std::io::Error::other(format!(
                    "{} values written, {} read back",
                    self.len,
                    values.len()
                )),
            ));
        }
        Ok(values)
    }
}

fn io_error(path: &Path, e: std::io::Error) -> PipelineError {
    PipelineError::Write {
        path: path.display().to_string(),
        message: format!(
            "cannot keep the flight's results on disk until the merge ({e}); check the space \
             and permissions of the output folder"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_bit_for_bit_in_order_and_no_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let mut s: Spill<(String, Vec<[f64; 2]>, Option<f64>)> =
            Spill::new(dir.path(), "test").unwrap();
        // Values whose shortest decimal form is long, and the extremes.
        let values: Vec<_> = (0..1000)
            .map(|i| {
                let x = 0.1 + i as f64 / 3.0;
                (
                    format!("DJI_{i:04}.JPG \"quoted\"\n"),
                    vec![[x, -x * 1e-9], [f64::MIN_POSITIVE, f64::MAX]],
                    (i % 2 == 0).then_some(24.94 + x * 1e-7),
                )
            })
            .collect();
        for v in &values {
            s.push(v).unwrap();
        }
        // Removed from the folder at once: an interrupted run leaves nothing behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let back = s.read_all().unwrap();
        assert_eq!(back.len(), values.len());
        for (a, b) in back.iter().zip(&values) {
            assert_eq!(a.0, b.0);
            assert_eq!(a.2.map(f64::to_bits), b.2.map(f64::to_bits));
            for (p, q) in a.1.iter().zip(&b.1) {
                assert_eq!(p.map(f64::to_bits), q.map(f64::to_bits));
            }
        }
    }

    #[test]
    fn a_scan_reads_the_values_asked_for_and_appending_goes_on_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut s: Spill<u32> = Spill::new(dir.path(), "test").unwrap();
        for v in 0..10 {
            s.push(&(v * 7)).unwrap();
        }
        let mut got = Vec::new();
        s.scan(
            |i| i % 3 == 0,
            |i, v| {
                got.push((i, v));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(got, vec![(0, 0), (3, 21), (6, 42), (9, 63)]);
        // Twice, then more values after the scans.
        let mut n = 0;
        s.scan(
            |_| true,
            |_, _| {
                n += 1;
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(n, 10);
        s.push(&1000).unwrap();
        let back = s.read_all().unwrap();
        assert_eq!(back.len(), 11);
        assert_eq!((back[9], back[10]), (63, 1000));
    }

    #[test]
    fn a_folder_it_cannot_write_is_a_clear_error() {
        let err = Spill::<u32>::new(Path::new("/nonexistent/besikta-out"), "observations")
            .err()
            .expect("no folder, no spill");
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/besikta-out"), "{msg}");
        assert!(msg.contains("output folder"), "{msg}");
    }
}
