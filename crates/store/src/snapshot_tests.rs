//! Tests of snapshot export and import against real fjall databases in temp dirs.

use super::*;
use crate::{ApplyOptions, Command, Condition, Op, StoreConfig};
use hakv_api::to_canonical_json;
use serde_json::json;

fn open(dir: &std::path::Path) -> StateMachine {
    StateMachine::open(&StoreConfig::new(dir.to_path_buf(), 1 << 20)).unwrap()
}

fn put(key: &str, value: serde_json::Value, ttl_ms: Option<u64>) -> Command {
    Command {
        at_ms: 1_000,
        op: Op::Put {
            key: key.into(),
            value: to_canonical_json(&value),
            ttl_ms,
            condition: Condition::Always,
        },
    }
}

fn delete(key: &str) -> Command {
    Command {
        at_ms: 1_000,
        op: Op::Delete {
            key: key.into(),
            condition: Condition::Always,
        },
    }
}

#[test]
fn import_replaces_everything_with_the_exported_state() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let source = open(dirs[0].path());
    let options = ApplyOptions {
        durable: false,
        meta: &[(b"raft/applied", b"7".to_vec())],
    };
    source
        .apply_batch_with(
            &[
                put("a", json!(1), None),
                put("b", json!({"x": "é"}), Some(5_000)),
                put("gone", json!(0), None),
                delete("gone"),
            ],
            &options,
            |_, _| {},
        )
        .unwrap();
    let export = source.export_snapshot().unwrap();
    assert_eq!(export.revision, source.revision());
    assert_eq!(export.keys, 2);
    assert_eq!(export.meta.get(&b"raft/applied"[..]), Some(&b"7".to_vec()));

    let target = open(dirs[1].path());
    target
        .apply_batch(
            &[
                put("b", json!("old"), Some(1)),
                put("only-here", json!(2), Some(9)),
            ],
            |_, _| {},
        )
        .unwrap();
    let mut seen = None;
    let import = target
        .import_snapshot(&export.bytes, &[(b"raft/applied", b"8".to_vec())], |rev| {
            seen = Some(rev)
        })
        .unwrap();
    assert_eq!(seen, Some(export.revision));
    assert_eq!(import.revision, export.revision);
    assert_eq!(target.revision(), source.revision());
    for key in ["a", "b", "gone", "only-here"] {
        assert_eq!(target.get(key).unwrap(), source.get(key).unwrap(), "{key}");
    }
    assert_eq!(
        target.due_for_expiry(u64::MAX, 100).unwrap(),
        source.due_for_expiry(u64::MAX, 100).unwrap()
    );
    assert_eq!(target.meta(b"raft/applied").unwrap(), Some(b"8".to_vec()));

    // The install is durable: a reopened store has the same state.
    drop(target);
    let reopened = open(dirs[1].path());
    assert_eq!(reopened.revision(), source.revision());
    assert_eq!(reopened.get("a").unwrap(), source.get("a").unwrap());
    assert_eq!(reopened.get("only-here").unwrap(), None);

    // Writes after an install land above the ingested tables, and survive another reopen.
    reopened
        .apply_batch(&[put("a", json!("after"), None), delete("b")], |_, _| {})
        .unwrap();
    drop(reopened);
    let again = open(dirs[1].path());
    assert_eq!(
        again.get("a").unwrap().map(|v| v.value),
        Some(to_canonical_json(&json!("after")))
    );
    assert_eq!(again.get("b").unwrap(), None);
}

/// An installed state takes what the sender's takes on disk, not its raw size: the ingested
/// tables are compressed (without it a rebuilt member held 16× its leader's bytes).
#[test]
fn an_installed_state_is_compressed_like_the_senders() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let source = open(dirs[0].path());
    let value = json!("a JSON document repeats itself ".repeat(32));
    let keys = 4_000;
    for batch in (0..keys).collect::<Vec<_>>().chunks(500) {
        let commands: Vec<_> = batch
            .iter()
            .map(|i| put(&format!("k{i:05}"), value.clone(), None))
            .collect();
        source.apply_batch(&commands, |_, _| {}).unwrap();
    }
    let export = source.export_snapshot().unwrap();
    let raw_bytes = export.bytes.len() as u64;
    assert!(raw_bytes > 3_000_000, "{raw_bytes}");

    let target = open(dirs[1].path());
    target.import_snapshot(&export.bytes, &[], |_| {}).unwrap();
    assert_eq!(target.revision(), source.revision());
    let on_disk = target.table_bytes();
    assert!(
        on_disk < raw_bytes / 4,
        "{on_disk} bytes of tables for {raw_bytes} bytes of snapshot"
    );
}

/// Snapshot bytes with the given data entries, in the given order, and a valid checksum.
fn snapshot_with_data(entries: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut out = Checksummed::new(&mut bytes);
    out.put(MAGIC).unwrap();
    out.put(&[FORMAT_V2]).unwrap();
    out.put(&1u64.to_be_bytes()).unwrap();
    out.put(&[TAG_META]).unwrap();
    out.put(&SECTION_END.to_be_bytes()).unwrap();
    out.put(&[TAG_DATA]).unwrap();
    for (key, value) in entries {
        put_entry(&mut out, key, value).unwrap();
    }
    out.put(&SECTION_END.to_be_bytes()).unwrap();
    out.put(&[TAG_EXPIRY]).unwrap();
    out.put(&SECTION_END.to_be_bytes()).unwrap();
    out.put(&[TAG_END]).unwrap();
    out.put(&(entries.len() as u64).to_be_bytes()).unwrap();
    let crc = out.crc.clone().finalize();
    bytes.extend_from_slice(&crc.to_be_bytes());
    bytes
}

#[test]
fn a_snapshot_whose_keys_do_not_ascend_is_refused_before_anything_changes() {
    let dir = tempfile::tempdir().unwrap();
    let target = open(dir.path());
    target
        .apply_batch(&[put("mine", json!(2), None)], |_, _| {})
        .unwrap();
    let ascending = snapshot_with_data(&[(b"a", b"1"), (b"b", b"2")]);
    assert!(StateMachine::verify_snapshot(&ascending[..]).is_ok());
    for bad in [
        snapshot_with_data(&[(b"b", b"2"), (b"a", b"1")]),
        snapshot_with_data(&[(b"a", b"1"), (b"a", b"1")]),
    ] {
        let result = target.import_snapshot(&bad, &[], |_| panic!("must not become visible"));
        assert!(matches!(result, Err(StoreError::Corrupt { .. })), "{result:?}");
    }
    assert!(target.get("mine").unwrap().is_some());
}

#[test]
fn damaged_snapshots_are_refused_and_leave_the_state_alone() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let source = open(dirs[0].path());
    source
        .apply_batch(&[put("a", json!(1), None)], |_, _| {})
        .unwrap();
    let bytes = source.export_snapshot().unwrap().bytes;
    let target = open(dirs[1].path());
    target
        .apply_batch(&[put("mine", json!(2), None)], |_, _| {})
        .unwrap();

    let mut newer_version = bytes.clone();
    newer_version[MAGIC.len()] = 3;
    let mut trailing = bytes.clone();
    trailing.push(0);
    let damaged = [
        &bytes[..bytes.len() - 1],
        &bytes[..20],
        &newer_version[..],
        &trailing[..],
        b"junk",
    ];
    for bad in damaged {
        let result = target.import_snapshot(bad, &[], |_| panic!("must not become visible"));
        assert!(matches!(result, Err(StoreError::Corrupt { .. })), "{bad:?}");
    }
    assert!(target.get("mine").unwrap().is_some());
    assert!(target.get("a").unwrap().is_none());
}

#[test]
fn an_empty_state_machine_round_trips() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let export = open(dirs[0].path()).export_snapshot().unwrap();
    assert_eq!((export.revision, export.keys), (Revision::ZERO, 0));
    let target = open(dirs[1].path());
    target
        .apply_batch(&[put("x", json!(1), None)], |_, _| {})
        .unwrap();
    target.import_snapshot(&export.bytes, &[], |_| {}).unwrap();
    assert_eq!(target.get("x").unwrap(), None);
    assert_eq!(target.revision(), Revision::ZERO);
}

#[test]
fn an_interrupted_install_refuses_reads_until_it_is_repeated() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let source = open(dirs[0].path());
    let values: Vec<Command> = (0..2000)
        .map(|i| put(&format!("k{i:04}"), json!(i), None))
        .collect();
    source.apply_batch(&values, |_, _| {}).unwrap();
    let bytes = source.export_snapshot().unwrap().bytes;

    let target = open(dirs[1].path());
    target
        .apply_batch(&[put("old", json!(1), None)], |_, _| {})
        .unwrap();
    // The check pass reads the whole stream; the install pass dies halfway, as in a crash.
    let passes = std::cell::Cell::new(0);
    let died = target.import_snapshot_from(
        || {
            passes.set(passes.get() + 1);
            let reader: Box<dyn std::io::Read> = match passes.get() {
                1 => Box::new(&bytes[..]),
                _ => Box::new(std::io::Read::chain(&bytes[..bytes.len() / 2], FailingReader)),
            };
            Ok(reader)
        },
        &[],
        |_| {},
    );
    assert!(died.is_err());
    assert!(target.is_installing());
    assert!(matches!(target.get("old"), Err(StoreError::Installing)));
    drop(target);

    let reopened = open(dirs[1].path());
    assert!(reopened.is_installing(), "the mark survives the crash");
    assert!(matches!(
        reopened.scan("", None, 10, 0),
        Err(StoreError::Installing)
    ));
    reopened.import_snapshot(&bytes, &[], |_| {}).unwrap();
    assert!(!reopened.is_installing());
    assert_eq!(reopened.get("k1999").unwrap(), source.get("k1999").unwrap());
    assert_eq!(reopened.get("old").unwrap(), None);
    assert_eq!(reopened.revision(), source.revision());
}

/// A reader whose every read fails, as a disk that went away.
struct FailingReader;

impl std::io::Read for FailingReader {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("the disk went away"))
    }
}
