//! The `basis` binary: parse arguments, run, map errors to exit codes
//! (0 ok, 2 bad input or config, 1 internal error).

use clap::Parser;

fn main() {
    let cli = basis::cli::Cli::parse();
    if let Err(err) = basis::cli::run(cli) {
        if basis::error::is_input_error(&err) {
            eprintln!("error: {err:#}");
            std::process::exit(2);
        }
        eprintln!("internal error: {err:#}");
        std::process::exit(1);
    }
}
