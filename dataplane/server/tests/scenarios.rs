//! The three scenarios of examples/ run against a fresh `ember --threads 2`, as a user would run
//! them: a flash sale through one Lua script and one function (1,000 concurrent clients, no
//! oversell), red packets claimed with LPOP by 1,000 concurrent clients (every packet exactly
//! once), and live comments fanned out over pub/sub to 1,000 subscribers (all delivered, in
//! order). Each example checks its own invariants and exits non-zero when one fails.

mod common;

use std::process::Command;

use common::Ember;

/// Runs `examples/<script>` with `args` against `ember`; its output.
fn run_example(
    ember: &Ember,
    python: &str,
    python_path: &str,
    script: &str,
    args: &[&str],
) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/").to_string() + script;
    let output = Command::new(python)
        .arg(&path)
        .args(["--port", &ember.port.to_string()])
        .args(args)
        .env("PYTHONPATH", python_path)
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script} failed:\n{text}");
    text
}

/// redis-py's interpreter and path, or `None` after saying why the test is skipped.
fn redis_py() -> Option<(String, String)> {
    let found = common::python_with_redis_py();
    if found.is_none() {
        eprintln!(
            "skipped: redis-py is not installed (ci/setup-servertests.sh puts it in .deps/python-redis)"
        );
    }
    found
}

#[test]
fn flash_sale_never_oversells() {
    let Some((python, python_path)) = redis_py() else {
        return;
    };
    let ember = Ember::start(2);
    let text = run_example(
        &ember,
        &python,
        &python_path,
        "flash_sale.py",
        &["--clients", "1000", "--stock", "500"],
    );
    assert!(
        text.contains(
            "script: 1000 clients, stock 500: sold 500, left 0, orders 500 -> no oversell"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "function: 1000 clients, stock 500: sold 500, left 0, orders 500 -> no oversell"
        ),
        "{text}"
    );
}

#[test]
fn red_packets_are_each_claimed_once() {
    let Some((python, python_path)) = redis_py() else {
        return;
    };
    let ember = Ember::start(2);
    let text = run_example(
        &ember,
        &python,
        &python_path,
        "red_packets.py",
        &["--clients", "1000", "--packets", "5000"],
    );
    assert!(
        text.contains(
            "claimed 5000 of 5000 packets, 100000 of 100000 -> every packet exactly once"
        ),
        "{text}"
    );
}

#[test]
fn live_comments_reach_every_subscriber_in_order() {
    let ember = Ember::start(2);
    let text = run_example(
        &ember,
        "python3",
        "",
        "live_comments.py",
        &["--subscribers", "1000", "--messages", "100"],
    );
    assert!(text.contains("100000 of 100000 delivered"), "{text}");
    assert!(text.contains("all in order"), "{text}");
}
