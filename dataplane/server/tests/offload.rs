//! `ember --offload sim`: the router's key slots come from the Verilated `slot_hash` module,
//! whose cycles INFO reports, and every command still lands on the right shard.

mod common;

use common::Ember;

fn info_field(info: &str, name: &str) -> Option<String> {
    info.lines().find_map(|line| {
        line.strip_prefix(&format!("{name}:"))
            .map(|v| v.trim().to_string())
    })
}

#[test]
fn key_slots_through_the_simulated_module() {
    if std::process::Command::new("verilator")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: verilator is not installed, so ember-fpga was built without its simulator (make test installs it)");
        return;
    }
    let ember = Ember::start_with(&["--threads", "2", "--offload", "sim"]);
    let mut connection = ember.connect(false);
    for i in 0..200 {
        let _: () = redis::cmd("SET")
            .arg(format!("key:{i}"))
            .arg(i)
            .query(&mut connection)
            .unwrap();
    }
    let keys: Vec<String> = (0..200).map(|i| format!("key:{i}")).collect();
    let values: Vec<i64> = redis::cmd("MGET")
        .arg(&keys)
        .query(&mut connection)
        .unwrap();
    assert_eq!(values, (0..200).collect::<Vec<i64>>());
    let info: String = redis::cmd("INFO")
        .arg("ember")
        .query(&mut connection)
        .unwrap();
    assert_eq!(
        info_field(&info, "offload").as_deref(),
        Some("sim"),
        "{info}"
    );
    let cycles: u64 = info_field(&info, "offload_cycles")
        .unwrap()
        .parse()
        .unwrap();
    assert!(cycles > 0, "the simulated module ran no cycles: {info}");
    // Every shard holds the keys its slots give it, as with the software slot function.
    let size: i64 = redis::cmd("DBSIZE").query(&mut connection).unwrap();
    assert_eq!(size, 200);
}
