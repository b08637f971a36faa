//! Write every target's seeds to `DIR/<target>/seed-<n>` (AFL's first
//! inputs; see fuzz/campaign.sh).

fn main() -> std::io::Result<()> {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: kiwi-fuzz-seeds DIR");
        std::process::exit(2);
    };
    let dir = std::path::PathBuf::from(dir);
    for (n, (target, data)) in kiwi_fuzz::seeds::all().into_iter().enumerate() {
        let target_dir = dir.join(target);
        std::fs::create_dir_all(&target_dir)?;
        std::fs::write(target_dir.join(format!("seed-{n:03}")), data)?;
    }
    Ok(())
}
