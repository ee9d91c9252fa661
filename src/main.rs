//! The `dispel` binary: parse arguments, run, turn errors into an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = dispel::cli::Cli::parse();
    match dispel::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // A closed pipe (`dispel replay x | head`) is not a failure.
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    return ExitCode::SUCCESS;
                }
            }
            eprintln!("dispel: {err}");
            ExitCode::from(2)
        }
    }
}

// Events are built on one thread and freed on the trace writer's: glibc's allocator spends a
// third of a replay on that; mimalloc's per-thread heaps do not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
