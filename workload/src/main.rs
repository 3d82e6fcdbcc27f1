//! The `kafka-workload` binary: parses the command line and runs the test.

use clap::Parser as _;
use kafka_workload::cli::{Cli, Command, Config};

fn main() {
    let cli = Cli::parse();
    let Command::Test(opts) = cli.command;
    let cfg = match Config::from_opts(opts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kafka-workload: {e}");
            std::process::exit(2);
        }
    };
    match kafka_workload::run_test(&cfg, &mut std::io::stdout().lock()) {
        Ok(v) => std::process::exit(kafka_workload::exit_code(v)),
        Err(e) => {
            eprintln!("kafka-workload: {e}");
            std::process::exit(2);
        }
    }
}
