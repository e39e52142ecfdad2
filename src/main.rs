//! The `basis` binary: parse arguments, run, map errors to exit codes
//! (0 ok, 2 bad input or config, 1 internal error).

use clap::Parser;

fn main() {
    keep_freed_memory_for_reuse();
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

/// Let the allocator keep freed memory for the next allocation instead of handing it back to
/// the system at once: a long run frees and reallocates the same large buffers every row group
/// (the ledger's columns, the decoders' pages), and each time the pages were returned they had
/// to be faulted in again (8 % of an 8-year run). Memory is still handed back where the program
/// says so (`malloc_trim` after loading).
fn keep_freed_memory_for_reuse() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's tuning parameters; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
    }
}
