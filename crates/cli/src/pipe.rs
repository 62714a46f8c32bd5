//! Quiet exit when the reader of our output goes away (`besikta scan ... | head`).
//!
//! Rust ignores SIGPIPE, so a write to a closed pipe fails with `BrokenPipe` instead of
//! ending the process as it would a C tool. Two places see that failure: writes that return
//! errors (they reach `main` in the error chain) and `println!`/`eprint!`, which panic. Both
//! end here in the same way a shell shows for a tool killed by SIGPIPE: no message, no
//! backtrace, status 141.

use std::io::ErrorKind;

/// Exit status after the reader went away: 128 + SIGPIPE (13), what `cat big | head` leaves.
pub const CLOSED_EXIT: u8 = 141;

/// Whether an error comes from writing to a pipe whose reader has gone.
pub fn is_closed_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(ErrorKind::BrokenPipe)
    })
}

/// Makes the panic of `println!`/`eprintln!` on a closed pipe a quiet exit; any other panic
/// is reported as before.
pub fn exit_quietly_on_closed_pipe() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        // std's words for these panics: "failed printing to stdout: Broken pipe (os error 32)".
        if message.starts_with("failed printing to std")
            && message.to_ascii_lowercase().contains("broken pipe")
        {
            std::process::exit(i32::from(CLOSED_EXIT));
        }
        report(info);
    }));
}
