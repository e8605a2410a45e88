//! ember-bench: Ember's load generator and side-by-side comparisons.
fn main() {
    eprintln!("ember-bench: not yet implemented");
    std::process::exit(2);
}
