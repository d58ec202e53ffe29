//! Golden byte fixtures: one file per event type and schema version. A change
//! to the wire layout (a field added, reordered, or a serde attribute) makes
//! these fail. When the change is intended, it is a new schema version (see
//! "Schema evolution" in `shared/src/events/mod.rs`); only then regenerate
//! with `SHOPMESH_BLESS_FIXTURES=1 cargo test -p shopmesh-shared --test golden`.

use shopmesh_shared::codec::{self, ENCODING, WireHeaders};
use shopmesh_shared::events::EventType;
use shopmesh_shared::testkit::sample_events;
use std::path::PathBuf;

fn fixture_path(event_type: EventType, version: u16) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{}.v{version}.bin", event_type.as_str()))
}

#[test]
fn samples_cover_every_event_type_once() {
    let types: Vec<_> = sample_events().iter().map(|e| e.event_type()).collect();
    assert_eq!(types, EventType::ALL);
}

#[test]
fn encoding_matches_the_committed_fixtures() {
    let bless = std::env::var_os("SHOPMESH_BLESS_FIXTURES").is_some();
    for event in sample_events() {
        let path = fixture_path(event.event_type(), event.schema_version());
        let bytes = codec::encode(&event).unwrap();
        if bless {
            std::fs::write(&path, &bytes).unwrap();
            continue;
        }
        let golden = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; a new event type needs its fixture (see this file's header)",
                path.display()
            )
        });
        assert_eq!(
            bytes.as_ref(),
            golden.as_slice(),
            "wire bytes of {} v{} changed",
            event.event_type(),
            event.schema_version()
        );
    }
}

#[test]
fn committed_fixtures_decode_to_the_samples() {
    for event in sample_events() {
        let version = event.schema_version();
        let golden = std::fs::read(fixture_path(event.event_type(), version)).unwrap();
        let version = version.to_string();
        let headers = WireHeaders {
            encoding: ENCODING,
            event_type: event.event_type().as_str(),
            schema_version: &version,
        };
        assert_eq!(codec::decode(headers, &golden).unwrap(), event);
    }
}

#[test]
fn every_fixture_file_belongs_to_a_known_type() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let stem = name.strip_suffix(".bin").expect("fixtures are .bin files");
        let (type_name, version) = stem.rsplit_once(".v").expect("<type>.v<N>.bin");
        let event_type = EventType::parse(type_name).expect("fixture of a known type");
        let version: u16 = version.parse().unwrap();
        assert!(version >= 1 && version <= event_type.schema_version());
    }
}
