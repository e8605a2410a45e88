//! Prints the estimated heap bytes (`heap_len` plus the value's own size) of hashes, lists and
//! a stream built the way `bench/redis_memory.sh`-style scripts build them in Redis, so the
//! two can be set side by side. `heap_len` counts buffers and slots, not allocator overhead.
//!
//! cargo run -p ember-store --release --example memory

use ember_store::hash::{HashLimits, HashValue};
use ember_store::list::{End, ListLimits, ListValue};
use ember_store::stream::{AddId, StreamLimits, StreamValue};

fn main() {
    for count in [10, 1000] {
        let mut hash = HashValue::new();
        for at in 0..count {
            let (field, value) = (format!("field:{at}"), format!("value:{at}"));
            hash.insert(
                field.as_bytes(),
                value.as_bytes(),
                &HashLimits::default(),
                0,
            );
        }
        let bytes = hash.heap_len() + std::mem::size_of::<HashValue>();
        println!(
            "hash {count} fields ({}): {bytes} bytes",
            hash.encoding_name()
        );
        let mut list = ListValue::new();
        for at in 0..count {
            let element = format!("element:{at}");
            list.push(End::Back, &[element.as_bytes()], &ListLimits::default());
        }
        let bytes = list.heap_len() + std::mem::size_of::<ListValue>();
        println!(
            "list {count} elements ({}): {bytes} bytes",
            list.encoding_name()
        );
    }
    let mut stream = StreamValue::new();
    for at in 0..100_000u64 {
        let value = at.to_string();
        let fields: [&[u8]; 2] = [b"sensor", value.as_bytes()];
        stream
            .add(
                AddId::Auto,
                &fields,
                1_700_000_000_000 + at / 10,
                &StreamLimits::default(),
            )
            .expect("increasing IDs");
    }
    let bytes = stream.heap_len() + std::mem::size_of::<StreamValue>();
    println!("stream 100000 entries: {bytes} bytes");
}
