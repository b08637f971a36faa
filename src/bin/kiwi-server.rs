//! The standalone Kiwi server.

fn main() {
    std::process::exit(kiwi::cli::run(std::env::args_os()));
}
