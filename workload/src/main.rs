//! The `kafka-workload` binary: parses the command line and runs the test.

use kafka_workload::cli;

fn main() {
    let cfg = match cli::parse_args(std::env::args_os()) {
        Ok(c) => c,
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
    match kafka_workload::run_test(&cfg, &mut std::io::stdout().lock()) {
        Ok(v) => std::process::exit(kafka_workload::exit_code(v)),
        Err(e) => {
            eprintln!("kafka-workload: {e}");
            std::process::exit(e.exit_code());
        }
    }
}
