//! ember-bench: Ember's load generator and side-by-side comparisons.
//!
//! `ember-bench run` drives one Redis-protocol server (closed loop, open loop corrected for
//! coordinated omission, or a spinning single-connection latency mode) and checks every reply;
//! `ember-bench compare` runs the same workloads against redis-server and Ember pinned to the
//! same core, alternating, and writes medians, ratios and plots into bench/RESULTS.md.
#![deny(missing_docs)]

mod ceiling;
mod cli;
mod compare;
mod echo;
mod fanout;
mod hitratio;
mod infer;
mod load;
mod plot;
mod poller;
mod procstat;
mod rdma;
mod reply;
mod report;
mod run;
mod workload;

const USAGE: &str = "\
usage: ember-bench <command> [flags]

commands:
  run       one load run against one server (ember-bench run --help)
  compare   Redis and Ember side by side, results into bench/RESULTS.md (ember-bench compare --help)
  rdma      one-sided GETs through the shm provider against TCP GETs (ember-bench rdma --help)
  infer     inference through the server against in-process ONNX Runtime (ember-bench infer --help)
  fanout    PUBLISH to many subscribers of one channel: deliveries/s and latency
            (ember-bench fanout --help)
  hitratio  cache hit ratio of every eviction policy on key traces, in-process or
            through a server (ember-bench hitratio --help)
  ceiling-server  a RESP server that stores nothing: what a server that does no work
            reaches on this machine (ember-bench ceiling-server --help)
  load-embeddings  write the demo embedding tables into a running server
  help      this text";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let rest = &args[1..];
    // One arm per subcommand; other areas add theirs here (rdma, infer, load-embeddings).
    let result = match command.as_str() {
        "run" => run::main(rest),
        "compare" => compare::main(rest),
        "rdma" => rdma::main(rest),
        "infer" => infer::main(rest),
        "hitratio" => hitratio::main(rest),
        "fanout" => fanout::main(rest),
        "ceiling-server" => ceiling::main(rest),
        "load-embeddings" => infer::load_embeddings_main(rest),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command '{other}'\n{USAGE}")),
    };
    if let Err(message) = result {
        eprintln!("ember-bench {command}: {message}");
        std::process::exit(1);
    }
}
