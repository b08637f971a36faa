//! The AFL++ driver: runs the target named by `KIWI_FUZZ_TARGET` on each
//! input AFL hands it (see fuzz/README.md and fuzz/campaign.sh).

fn main() {
    let name = std::env::var("KIWI_FUZZ_TARGET").unwrap_or_default();
    let Some(target) = kiwi_fuzz::target(&name) else {
        let names: Vec<&str> = kiwi_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
        eprintln!("set KIWI_FUZZ_TARGET to one of: {}", names.join(", "));
        std::process::exit(2);
    };
    afl::fuzz!(|data: &[u8]| {
        target(data);
    });
}
