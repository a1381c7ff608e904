//! The conformance list in `conformance_tests!` is written by hand; these
//! tests make a test function that is missing from it (or a name in it that is
//! no test) fail loudly instead of silently never running.

use std::collections::BTreeSet;

/// Every `pub async fn NAME<` in a suite's source: the suite's tests (helpers
/// are private or not generic over the runtime).
fn declared(source: &str) -> BTreeSet<&str> {
    source
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("pub async fn "))
        .filter_map(|rest| rest.split_once('<').map(|(name, _)| name.trim()))
        .filter(|name| name.chars().all(|c| c.is_alphanumeric() || c == '_'))
        .collect()
}

/// Fails naming every test in `source` that `listed` lacks, and every listed
/// name that is no test there.
fn check(file: &str, source: &str, listed: &[&str]) {
    let declared = declared(source);
    let listed: BTreeSet<&str> = listed.iter().copied().collect();
    let missing: Vec<_> = declared.difference(&listed).collect();
    let unknown: Vec<_> = listed.difference(&declared).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "conformance_tests! in conformance/mod.rs is out of date with {file}: \
         tests missing from its list: {missing:?}; listed names that are no test: {unknown:?}"
    );
}

#[test]
fn every_suite_test_is_in_the_conformance_list() {
    let (suite, _) = crate::conformance_tests!(@list (@names));
    // The `suite` list's tests live in several files, one per area.
    let sources = [
        include_str!("suite/access.rs"),
        include_str!("suite/admission.rs"),
        include_str!("suite/backpressure.rs"),
        include_str!("suite/calls.rs"),
        include_str!("suite/deadlines.rs"),
        include_str!("suite/failures.rs"),
        include_str!("suite/streams.rs"),
        include_str!("suite/visibility.rs"),
    ];
    check("suite/", &sources.concat(), suite);
}

#[test]
fn every_typed_suite_test_is_in_the_conformance_list() {
    let (_, typed) = crate::conformance_tests!(@list (@names));
    check("typed_suite.rs", include_str!("typed_suite.rs"), typed);
}

/// The hostile suite's tests live in several files, one per kind of attack;
/// its list must hold the tests of all of them together.
#[test]
fn every_hostile_test_is_in_the_conformance_list() {
    let hostile = crate::conformance_tests!(@list (@hostile_names));
    let sources = [
        include_str!("hostile/attacks.rs"),
        include_str!("hostile/scanner.rs"),
        include_str!("hostile/bounds.rs"),
        include_str!("hostile/churn.rs"),
    ];
    check("hostile/", &sources.concat(), hostile);
}

#[test]
fn the_scan_finds_tests_and_only_tests() {
    let source = "pub async fn alpha<R: TestRuntime>(rt: R) {}\n\
                  async fn helper<R>(rt: R) {}\n\
                  pub fn register<R: Runtime>() {}\n    pub async fn beta<R>(rt: R) {}\n";
    assert_eq!(declared(source), BTreeSet::from(["alpha", "beta"]));
}
