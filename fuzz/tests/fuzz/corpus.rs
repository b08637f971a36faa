//! Replays the seeds and the committed corpus (`fuzz/corpus/<target>/`,
//! inputs AFL++ found that reach new code, and every input that once
//! failed) through their targets.

use std::path::Path;

use kiwi_fuzz::{seeds, target, TARGETS};

#[test]
fn seeds_pass_their_targets() {
    let seeds = seeds::all();
    for (name, _) in TARGETS {
        assert!(
            seeds.iter().any(|(n, _)| n == name),
            "no seed for target {name}"
        );
    }
    for (name, data) in seeds {
        let run = target(name).unwrap_or_else(|| panic!("unknown target {name}"));
        run(&data);
    }
}

#[test]
fn corpus_replays_without_failure() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (name, run) in TARGETS {
        let dir = root.join(name);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus of {name} at {}: {e}", dir.display()));
        let mut replayed = 0;
        for entry in entries {
            let path = entry.expect("corpus entry").path();
            let data = std::fs::read(&path).expect("corpus file");
            run(&data);
            replayed += 1;
        }
        assert!(replayed > 0, "the corpus of {name} is empty");
    }
}
