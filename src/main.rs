//! The `maelstrom-kafka` binary: Maelstrom starts it with `--bin` and talks to it over stdin and
//! stdout, one JSON message per line. Settings come from the environment (see `Config`).

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::process::ExitCode;

use maelstrom_kafka::{Config, run};

/// mimalloc: the node allocates many small buffers on several threads at once (keys, messages,
/// reply batches), which is where the system allocator is slowest.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Plain files over duplicated descriptors: `std::io::Stdout` is line-buffered behind a lock,
    // and the writer thread already batches whole lines itself.
    let (input, output) = match (
        std_file(io::stdin().as_fd()),
        std_file(io::stdout().as_fd()),
    ) {
        (Ok(input), Ok(output)) => (input, output),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("maelstrom-kafka: cannot open stdin/stdout: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(input, output, Config::from_env()) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our replies is gone; there is no one left to serve.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("maelstrom-kafka: {e}");
            ExitCode::FAILURE
        }
    }
}

fn std_file(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<File> {
    fd.try_clone_to_owned().map(File::from)
}
