//! The `kafka-workload` binary: parses the command line, then runs the test, re-judges a
//! stored history or serves the store.

use kafka_workload::cli::{self, Parsed};

/// mimalloc, as the node uses: the runner's reader threads parse replies into buffers that
/// the scheduler thread frees, and the system allocator keeps what one thread frees in that
/// thread's arena, where the checker (on another thread) never reuses it; a run's peak RSS
/// was the final phase's freed replies plus the checker's own. With mimalloc a 10 s run at
/// 100k ops/s peaks 0.93x as high and its runner CPU is 0.94x (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let parsed = match cli::parse(std::env::args_os()) {
        Ok(p) => p,
        Err((code, text)) => {
            // Help goes to stdout, as Maelstrom prints it; errors to stderr.
            if code == 0 {
                use std::io::Write as _;
                let _ = std::io::stdout().write_all(text.as_bytes());
            } else {
                eprint!("{text}");
            }
            std::process::exit(code);
        }
    };
    let res = match parsed {
        Parsed::Test(cfg) => {
            kafka_workload::interrupt::install();
            kafka_workload::run_test(&cfg, &mut std::io::stdout().lock())
                .map(kafka_workload::exit_code)
        }
        Parsed::Check(opts) => kafka_workload::check::run(&opts, &mut std::io::stdout().lock())
            .map(kafka_workload::exit_code),
        Parsed::Serve(opts) => {
            kafka_workload::serve::run(&opts, &mut std::io::stdout().lock()).map(|()| 0)
        }
    };
    match res {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("kafka-workload: {e}");
            std::process::exit(e.exit_code());
        }
    }
}
