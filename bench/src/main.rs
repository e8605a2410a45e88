//! ember-bench: Ember's load generator and side-by-side comparisons.
// The kernels branch wires only its own subcommands here; the lead merges them into the bench's real main.
mod infer;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("load-embeddings") => infer::load_embeddings_main(&args[1..]),
        Some("infer") => infer::main(&args[1..]),
        _ => Err("usage: ember-bench load-embeddings|infer [options]".to_string()),
    };
    if let Err(message) = result {
        eprintln!("ember-bench: {message}");
        std::process::exit(2);
    }
}
