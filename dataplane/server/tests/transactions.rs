//! MULTI / EXEC / DISCARD through the redis crate (its atomic pipelines send MULTI ... EXEC),
//! with keys on both shards of `--threads 2`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

struct Ember(Child, u16);

impl Drop for Ember {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_ember() -> Ember {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ember"))
        .args(["--port", "0", "--threads", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ember");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = loop {
        let line = lines.next().expect("ready line").unwrap();
        if let Some(address) = line.strip_prefix("ember: ready to accept connections on ") {
            break address.rsplit(':').next().unwrap().parse().unwrap();
        }
    };
    Ember(child, port)
}

#[test]
fn atomic_pipeline_across_shards() {
    let ember = start_ember();
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", ember.1)).unwrap();
    let mut connection = client.get_connection().unwrap();
    // Keys chosen to land on both shards: slots of "a".."h" spread over 0..16383.
    let keys: Vec<String> = (b'a'..=b'h').map(|c| (c as char).to_string()).collect();
    let mut pipe = redis::pipe();
    pipe.atomic();
    for (i, key) in keys.iter().enumerate() {
        pipe.cmd("SET").arg(key).arg(i).ignore();
    }
    pipe.cmd("MGET").arg(&keys);
    pipe.cmd("INCR").arg("a");
    pipe.cmd("DBSIZE");
    let (values, incremented, size): (Vec<i64>, i64, i64) = pipe.query(&mut connection).unwrap();
    assert_eq!(values, (0..8).collect::<Vec<i64>>());
    assert_eq!(incremented, 1);
    assert_eq!(size, 8);
}

#[test]
fn errors_as_redis_words_them() {
    let ember = start_ember();
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", ember.1)).unwrap();
    let mut connection = client.get_connection().unwrap();
    let error = redis::cmd("EXEC").query::<()>(&mut connection).unwrap_err();
    assert_eq!(error.detail(), Some("EXEC without MULTI"));
    let error = redis::cmd("DISCARD")
        .query::<()>(&mut connection)
        .unwrap_err();
    assert_eq!(error.detail(), Some("DISCARD without MULTI"));
    let _: () = redis::cmd("MULTI").query(&mut connection).unwrap();
    let error = redis::cmd("MULTI")
        .query::<()>(&mut connection)
        .unwrap_err();
    assert_eq!(error.detail(), Some("MULTI calls can not be nested"));
    let queued: String = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut connection)
        .unwrap();
    assert_eq!(queued, "QUEUED");
    let _ = redis::cmd("NOSUCHCOMMAND")
        .query::<()>(&mut connection)
        .unwrap_err();
    let error = redis::cmd("EXEC").query::<()>(&mut connection).unwrap_err();
    assert_eq!(error.kind(), redis::ErrorKind::ExecAbortError, "{error}");
    let value: Option<String> = redis::cmd("GET").arg("k").query(&mut connection).unwrap();
    assert_eq!(value, None, "an aborted transaction writes nothing");
    let _: () = redis::cmd("MULTI").query(&mut connection).unwrap();
    let _: String = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut connection)
        .unwrap();
    let _: () = redis::cmd("DISCARD").query(&mut connection).unwrap();
    let value: Option<String> = redis::cmd("GET").arg("k").query(&mut connection).unwrap();
    assert_eq!(value, None, "a discarded transaction writes nothing");
}
