use super::*;

const LIMITS: StreamLimits = StreamLimits {
    node_bytes_max: NODE_BYTES_MAX_DEFAULT,
    node_entries_max: NODE_ENTRIES_MAX_DEFAULT,
};

fn id(ms: u64, seq: u64) -> StreamId {
    StreamId::new(ms, seq)
}

/// Entries 1-0..=5-0 and group "g" at 0-0.
fn stream_with_group() -> StreamValue {
    let mut stream = StreamValue::new();
    for ms in 1..=5 {
        stream
            .add(AddId::Explicit(id(ms, 0)), &[&b"f"[..], b"v"], 0, &LIMITS)
            .unwrap();
    }
    stream
        .create_group(b"g", GroupStart::Id(StreamId::MIN), None)
        .unwrap();
    stream
}

fn read_ids(reads: &[GroupRead]) -> Vec<u64> {
    reads.iter().map(|read| read.id.ms).collect()
}

#[test]
fn group_lifecycle() {
    let mut stream = stream_with_group();
    assert_eq!(
        stream.create_group(b"g", GroupStart::LastId, None),
        Err(StreamError::BusyGroup)
    );
    stream
        .create_group(b"late", GroupStart::LastId, Some(5))
        .unwrap();
    assert_eq!(stream.group(b"late").unwrap().last_id, id(5, 0));
    assert_eq!(stream.create_consumer(b"g", b"alice", 0), Ok(true));
    assert_eq!(stream.create_consumer(b"g", b"alice", 0), Ok(false));
    assert_eq!(
        stream.create_consumer(b"zz", b"alice", 0),
        Err(StreamError::NoGroup)
    );
    stream
        .read_group(b"g", b"alice", ReadFrom::New, 2, false, 10)
        .unwrap();
    assert_eq!(stream.delete_consumer(b"g", b"alice"), Ok(2));
    assert_eq!(stream.pending_summary(b"g").unwrap().count, 0);
    assert_eq!(stream.delete_consumer(b"g", b"nobody"), Ok(0));
    stream
        .set_group_id(b"g", GroupStart::Id(id(1, 0)), Some(1))
        .unwrap();
    assert_eq!(stream.group(b"g").unwrap().entries_read, Some(1));
    assert!(stream.destroy_group(b"g"));
    assert!(!stream.destroy_group(b"g"));
    assert_eq!(
        StreamError::no_group_reply(b"k", b"g", NoGroupContext::ReadGroup),
        "NOGROUP No such key 'k' or consumer group 'g' in XREADGROUP with GROUP option"
    );
}

#[test]
fn read_group_delivers_and_tracks_pending() {
    let mut stream = stream_with_group();
    let first = stream
        .read_group(b"g", b"alice", ReadFrom::New, 2, false, 100)
        .unwrap();
    assert_eq!(read_ids(&first), [1, 2]);
    let second = stream
        .read_group(b"g", b"bob", ReadFrom::New, 0, false, 200)
        .unwrap();
    assert_eq!(read_ids(&second), [3, 4, 5]);
    assert!(stream
        .read_group(b"g", b"bob", ReadFrom::New, 0, false, 200)
        .unwrap()
        .is_empty());
    let summary = stream.pending_summary(b"g").unwrap();
    assert_eq!(summary.count, 5);
    assert_eq!(summary.bounds, Some((id(1, 0), id(5, 0))));
    let consumers: Vec<(Vec<u8>, usize)> = summary
        .consumers
        .iter()
        .map(|(name, count)| (name.to_vec(), *count))
        .collect();
    assert_eq!(
        consumers,
        vec![(b"alice".to_vec(), 2), (b"bob".to_vec(), 3)]
    );
    // History: alice's own pending entries after an ID, each counted as delivered again.
    let history = stream
        .read_group(
            b"g",
            b"alice",
            ReadFrom::History(StreamId::MIN),
            0,
            false,
            300,
        )
        .unwrap();
    assert_eq!(read_ids(&history), [1, 2]);
    let lines = stream
        .pending_range(
            b"g",
            StreamId::MIN,
            StreamId::MAX,
            10,
            Some(b"alice"),
            0,
            400,
        )
        .unwrap();
    assert_eq!(
        lines
            .iter()
            .map(|l| (l.id.ms, l.idle_ms, l.delivery_count))
            .collect::<Vec<_>>(),
        [(1, 100, 2), (2, 100, 2)]
    );
    // A deleted pending entry reads back with no fields.
    stream.delete(&[id(1, 0)]);
    let history = stream
        .read_group(
            b"g",
            b"alice",
            ReadFrom::History(StreamId::MIN),
            0,
            false,
            300,
        )
        .unwrap();
    assert_eq!(history[0].fields, None);
    assert!(history[1].fields.is_some());
    assert_eq!(stream.ack(b"g", &[id(1, 0), id(2, 0), id(9, 0)]), Ok(2));
    assert_eq!(stream.pending_summary(b"g").unwrap().count, 3);
    // IDLE filter and COUNT in the extended form.
    let idle = stream
        .pending_range(b"g", StreamId::MIN, StreamId::MAX, 2, None, 250, 500)
        .unwrap();
    assert_eq!(idle.iter().map(|l| l.id.ms).collect::<Vec<_>>(), [3, 4]);
    let none = stream
        .pending_range(b"g", StreamId::MIN, StreamId::MAX, 10, None, 301, 500)
        .unwrap();
    assert!(none.is_empty());
}

#[test]
fn no_ack_leaves_no_pending() {
    let mut stream = stream_with_group();
    let reads = stream
        .read_group(b"g", b"alice", ReadFrom::New, 0, true, 0)
        .unwrap();
    assert_eq!(reads.len(), 5);
    assert_eq!(stream.pending_summary(b"g").unwrap().count, 0);
    assert_eq!(stream.group(b"g").unwrap().last_id, id(5, 0));
}

#[test]
fn claim_as_redis() {
    let mut stream = stream_with_group();
    stream
        .read_group(b"g", b"alice", ReadFrom::New, 3, false, 1000)
        .unwrap();
    let options = ClaimOptions::default();
    // Not idle long enough: nothing moves.
    let claimed = stream
        .claim(b"g", b"bob", 500, &[id(1, 0)], options, 1200)
        .unwrap();
    assert!(claimed.is_empty());
    let claimed = stream
        .claim(b"g", b"bob", 500, &[id(1, 0), id(2, 0)], options, 1600)
        .unwrap();
    assert_eq!(claimed.iter().map(|e| e.id.ms).collect::<Vec<_>>(), [1, 2]);
    let line = &stream
        .pending_range(b"g", id(1, 0), id(1, 0), 1, None, 0, 1600)
        .unwrap()[0];
    assert_eq!(
        (line.consumer.as_bytes(), line.delivery_count, line.idle_ms),
        (&b"bob"[..], 2, 0)
    );
    // JUSTID does not count a delivery; RETRYCOUNT and TIME set the counters.
    let just_id = ClaimOptions {
        just_id: true,
        ..options
    };
    let claimed = stream
        .claim(b"g", b"carol", 0, &[id(1, 0)], just_id, 1700)
        .unwrap();
    assert!(claimed[0].fields.is_empty());
    let set = ClaimOptions {
        retry_count: Some(7),
        delivery_time_ms: Some(1650),
        ..options
    };
    stream
        .claim(b"g", b"carol", 0, &[id(2, 0)], set, 1700)
        .unwrap();
    let lines = stream
        .pending_range(b"g", id(1, 0), id(2, 0), 2, None, 0, 1700)
        .unwrap();
    assert_eq!(
        lines
            .iter()
            .map(|l| (l.delivery_count, l.idle_ms))
            .collect::<Vec<_>>(),
        [(2, 0), (7, 50)]
    );
    // FORCE claims an entry nobody had pending; without it nothing happens.
    assert!(stream
        .claim(b"g", b"bob", 0, &[id(5, 0)], options, 1800)
        .unwrap()
        .is_empty());
    let forced = ClaimOptions {
        force: true,
        ..options
    };
    assert_eq!(
        stream
            .claim(b"g", b"bob", 0, &[id(5, 0)], forced, 1800)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        stream
            .pending_range(b"g", id(5, 0), id(5, 0), 1, None, 0, 1800)
            .unwrap()[0]
            .delivery_count,
        2
    );
    // A pending entry deleted from the stream is dropped from the PEL.
    stream.delete(&[id(3, 0)]);
    assert!(stream
        .claim(b"g", b"bob", 0, &[id(3, 0)], options, 1900)
        .unwrap()
        .is_empty());
    assert!(stream
        .pending_range(b"g", id(3, 0), id(3, 0), 1, None, 0, 1900)
        .unwrap()
        .is_empty());
    // LASTID only raises the group's last ID.
    let last = ClaimOptions {
        last_id: Some(id(4, 0)),
        ..options
    };
    stream.claim(b"g", b"bob", 0, &[], last, 1900).unwrap();
    assert_eq!(stream.group(b"g").unwrap().last_id, id(4, 0));
    let consumers = stream.consumer_infos(b"g", 2000).unwrap();
    let names: Vec<&[u8]> = consumers.iter().map(|c| c.name.as_bytes()).collect();
    assert_eq!(names, [&b"alice"[..], b"bob", b"carol"]);
    assert_eq!(consumers[0].pending, 0);
}

#[test]
fn auto_claim_cursor_and_deleted() {
    let mut stream = stream_with_group();
    stream
        .read_group(b"g", b"alice", ReadFrom::New, 0, false, 0)
        .unwrap();
    stream.delete(&[id(2, 0)]);
    let first = stream
        .auto_claim(b"g", b"bob", 10, StreamId::MIN, 2, false, 100)
        .unwrap();
    // The deleted 2-0 counts against COUNT, as in Redis 7.0.15.
    assert_eq!(
        first.claimed.iter().map(|e| e.id.ms).collect::<Vec<_>>(),
        [1]
    );
    assert_eq!(first.deleted, [id(2, 0)]);
    assert_eq!(first.next, id(3, 0));
    let rest = stream
        .auto_claim(b"g", b"bob", 10, first.next, 10, true, 100)
        .unwrap();
    assert_eq!(
        rest.claimed.iter().map(|e| e.id.ms).collect::<Vec<_>>(),
        [3, 4, 5]
    );
    assert_eq!(rest.next, StreamId::MIN);
    // JUSTID left the delivery count alone.
    let line = &stream
        .pending_range(b"g", id(4, 0), id(4, 0), 1, None, 0, 100)
        .unwrap()[0];
    assert_eq!(line.delivery_count, 1);
    // Attempts are bounded by ten times COUNT: with COUNT 1 and nothing idle, it stops early.
    let mut many = StreamValue::new();
    for ms in 1..=30 {
        many.add(AddId::Explicit(id(ms, 0)), &[&b"f"[..], b"v"], 0, &LIMITS)
            .unwrap();
    }
    many.create_group(b"g", GroupStart::Id(StreamId::MIN), None)
        .unwrap();
    many.read_group(b"g", b"alice", ReadFrom::New, 0, false, 100)
        .unwrap();
    let bounded = many
        .auto_claim(b"g", b"bob", 1000, StreamId::MIN, 1, false, 100)
        .unwrap();
    assert!(bounded.claimed.is_empty());
    assert_eq!(bounded.next, id(11, 0));
}

#[test]
fn lag_and_entries_read_as_redis() {
    let mut stream = stream_with_group();
    let lag = |stream: &StreamValue| {
        let info = &stream.group_infos()[0];
        (info.entries_read, info.lag)
    };
    // A group created at 0-0 with no ENTRIESREAD: its counter can be worked out.
    assert_eq!(lag(&stream), (None, Some(5)));
    stream
        .read_group(b"g", b"alice", ReadFrom::New, 2, false, 0)
        .unwrap();
    assert_eq!(lag(&stream), (Some(2), Some(3)));
    stream
        .read_group(b"g", b"alice", ReadFrom::New, 0, false, 0)
        .unwrap();
    assert_eq!(lag(&stream), (Some(5), Some(0)));
    // A tombstone ahead of the group makes the lag unknown until the group passes it.
    stream
        .add(AddId::Explicit(id(6, 0)), &[&b"f"[..], b"v"], 0, &LIMITS)
        .unwrap();
    stream
        .add(AddId::Explicit(id(7, 0)), &[&b"f"[..], b"v"], 0, &LIMITS)
        .unwrap();
    stream.delete(&[id(6, 0)]);
    assert_eq!(lag(&stream), (Some(5), None));
    // Redis's counter rule only looks for tombstones at or after the entry delivered, so
    // stepping over 6-0 counts one read, and the lag stays one behind: the same numbers as
    // `streamReplyWithRange` and `streamReplyWithCGLag` give.
    stream
        .read_group(b"g", b"alice", ReadFrom::New, 0, false, 0)
        .unwrap();
    assert_eq!(lag(&stream), (Some(6), Some(1)));
}
