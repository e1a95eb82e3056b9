//! The fuzz targets' bodies (`tollgate_tests::fuzzing`) over the committed corpus
//! (`../fuzz/corpus/<target>/`) and then, for a few seconds each, over random mutations of
//! it: the short smoke run CI does without a nightly compiler or libFuzzer
//! (`../scripts/fuzz` runs the real thing). A panic anywhere in the process fails the target,
//! even one the gateway caught and answered; so does a target's own check of the answer.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tollgate_tests::fuzzing::{Harness, Target};

/// How long each target runs on mutations after its corpus
/// (`TOLLGATE_FUZZ_SMOKE_SECONDS`, default 5).
fn smoke_time() -> Duration {
    let seconds = std::env::var("TOLLGATE_FUZZ_SMOKE_SECONDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(5);
    Duration::from_secs(seconds)
}

/// Panics seen anywhere in the process since [`count_panics`] was first called.
fn count_panics() -> Arc<AtomicUsize> {
    static HOOK: Once = Once::new();
    static PANICS: std::sync::OnceLock<Arc<AtomicUsize>> = std::sync::OnceLock::new();
    let panics = Arc::clone(PANICS.get_or_init(|| Arc::new(AtomicUsize::new(0))));
    HOOK.call_once(|| {
        let counter = Arc::clone(&panics);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            counter.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
    panics
}

fn corpus(target: Target) -> Vec<(PathBuf, Vec<u8>)> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target.name());
    let mut files: Vec<_> = std::fs::read_dir(&folder)
        .unwrap_or_else(|error| panic!("read {}: {error}", folder.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("a corpus file");
            (path, bytes)
        })
        .collect()
}

/// One of libFuzzer's simple mutations of `input`, sometimes spliced with `other`.
fn mutate(rng: &mut StdRng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut bytes = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let at = rng.random_range(0..=bytes.len());
        match rng.random_range(0..6) {
            0 if at < bytes.len() => bytes[at] ^= 1 << rng.random_range(0..8),
            1 if at < bytes.len() => bytes[at] = rng.random(),
            2 => {
                let insert: Vec<u8> = (0..rng.random_range(1..=8)).map(|_| rng.random()).collect();
                bytes.splice(at..at, insert);
            }
            3 => {
                let end = rng.random_range(at..=bytes.len());
                bytes.drain(at..end);
            }
            4 => {
                let from = rng.random_range(0..=other.len());
                bytes.truncate(at);
                bytes.extend_from_slice(&other[from..]);
            }
            _ => bytes.truncate(at),
        }
    }
    bytes
}

fn survives_its_corpus_and_mutations(target: Target) {
    let panics = count_panics();
    let corpus = corpus(target);
    assert!(!corpus.is_empty(), "{} has a seed corpus", target.name());
    for (path, input) in &corpus {
        eprintln!("{}: {}", target.name(), path.display());
        target.run(input);
    }
    let mut rng = StdRng::seed_from_u64(1);
    let deadline = Instant::now() + smoke_time();
    let mut mutations = 0;
    while Instant::now() < deadline {
        let (_, input) = &corpus[rng.random_range(0..corpus.len())];
        let (_, other) = &corpus[rng.random_range(0..corpus.len())];
        let mutated = mutate(&mut rng, input, other);
        target.run(&mutated);
        mutations += 1;
    }
    eprintln!(
        "{}: {} corpus inputs, {mutations} mutations",
        target.name(),
        corpus.len()
    );
    if !matches!(target, Target::ConfigToml | Target::ArrowEncode) {
        Harness::get().assert_serving();
    }
    assert_eq!(panics.load(Ordering::SeqCst), 0, "no panic in the process");
}

#[test]
fn pgwire_startup() {
    survives_its_corpus_and_mutations(Target::PgwireStartup);
}

#[test]
fn pgwire_session() {
    survives_its_corpus_and_mutations(Target::PgwireSession);
}

#[test]
fn sql_plan() {
    survives_its_corpus_and_mutations(Target::SqlPlan);
}

#[test]
fn arrow_encode() {
    survives_its_corpus_and_mutations(Target::ArrowEncode);
}

#[test]
fn flight_ticket() {
    survives_its_corpus_and_mutations(Target::FlightTicket);
}

#[test]
fn config_toml() {
    survives_its_corpus_and_mutations(Target::ConfigToml);
}

#[test]
fn rest_body() {
    survives_its_corpus_and_mutations(Target::RestBody);
}
