//! The `besikta` command: parses arguments and wires the pipeline stages together.

mod align;
mod allocator;
mod device;
mod footprints;
mod infer;
mod mosaic;
mod pipe;
mod process;
mod quota;
mod scan;
mod serve;
mod simulate;
mod token;
mod training;
mod worker;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Besikta turns drone inspection flights into maintenance work.
#[derive(Debug, Parser)]
#[command(name = "besikta", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read every photo's metadata (no pixels decoded) and list it, with rejections.
    Scan(scan::Args),
    /// Write each photo's ground footprint as GeoJSON: the coverage map of a flight.
    Footprints(footprints::Args),
    /// Align a flight's photos to each other and write each photo's refined pose.
    Align(align::Args),
    /// Write an orthomosaic of a flight (aligned poses) as a Cloud-Optimised GeoTIFF.
    Mosaic(mosaic::Args),
    /// Run a defect model on photos and report what it finds.
    Infer(infer::Args),
    /// Process a flight: photos -> defects on the map -> findings and work orders.
    Process(process::Args),
    /// Render a simulated flight over a real register, with known ground truth.
    Simulate(simulate::Args),
    /// Run the web service: uploads, processing jobs, the defect map and exports.
    Serve(serve::Args),
    /// Manage API tokens of the service.
    Token(token::Args),
    /// Give one organisation upload limits of its own (replacing serve's --quota-* for it).
    Quota(quota::Args),
    /// Run processing jobs from the service's shared queue (PostgreSQL), beside `serve`.
    Worker(worker::Args),
    /// Write reviewed findings as training chips per model (COCO, YOLO, provenance manifest).
    ExportTraining(training::ExportArgs),
    /// Store outlines and classes fixed in CVAT (XML) or COCO as corrected reviews.
    ImportCorrections(training::ImportArgs),
}

fn main() -> ExitCode {
    // Before any big allocation: freed mid-sized buffers go back to the system.
    allocator::configure();
    pipe::exit_quietly_on_closed_pipe();
    // GDAL's messages become part of our errors instead of its own lines on stderr.
    besikta_report::gdal_errors::install();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(args) => scan::run(args),
        Command::Footprints(args) => footprints::run(args),
        Command::Align(args) => align::run(args),
        Command::Mosaic(args) => mosaic::run(args),
        Command::Infer(args) => infer::run(args),
        Command::Process(args) => process::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Token(args) => token::run(args),
        Command::Quota(args) => quota::run(args),
        Command::Worker(args) => worker::run(args),
        Command::ExportTraining(args) => training::run_export(args),
        Command::ImportCorrections(args) => training::run_import(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        // The reader of our output went away (`| head`): nothing to say, nobody to say it to.
        Err(err) if pipe::is_closed_pipe(&err) => ExitCode::from(pipe::CLOSED_EXIT),
        Err(err) => {
            // Walk the chain so the user reads a sentence, not a debug dump.
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  because: {cause}");
            }
            ExitCode::from(2)
        }
    }
}
