//! Conformance tests of the typed layer, with the types and handlers they use.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use grid_proto::Error;
use serde::{Deserialize, Serialize};

use crate::conformance::cluster::Cluster;
use crate::conformance::probe::Probe;
use crate::conformance::TestRuntime;
use crate::handler::Ctx;
use crate::manager::ManagerBuilder;
use crate::router::Router;
use crate::runtime::Runtime;
use crate::typed::{Single, Streaming, TypedError, TypedReceiver, TypedSender};

/// A request with nesting, a map, optional fields and a byte string.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    /// Plain field.
    pub node: String,
    /// Nested structs.
    pub disks: Vec<Disk>,
    /// A map.
    pub labels: BTreeMap<String, u32>,
    /// Optional, present.
    pub owner: Option<String>,
    /// Optional, absent.
    pub comment: Option<String>,
    /// Bytes, encoded as a MessagePack byte string.
    #[serde(with = "serde_bytes")]
    pub digest: Vec<u8>,
}

/// A nested struct.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Disk {
    /// Path.
    pub path: String,
    /// Free bytes.
    pub free: u64,
    /// Whether it is healthy.
    pub healthy: bool,
}

/// A structured handler error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DiskError {
    /// No such disk.
    NotFound {
        /// The path asked for.
        path: String,
    },
    /// The disk is full.
    Full(u64),
}

/// The first version of a record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordV1 {
    /// Name.
    pub name: String,
    /// Size.
    pub size: u64,
}

/// The second version: one optional field added.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordV2 {
    /// Name.
    pub name: String,
    /// Size.
    pub size: u64,
    /// Added in version 2; absent from version 1 senders.
    #[serde(default)]
    pub checksum: Option<u32>,
}

/// Echoes an [`Inventory`].
pub const INVENTORY: Single<Inventory, Inventory, DiskError> = Single::new(100);
/// Fails with the [`DiskError`] the request names.
pub const DISK_ERROR: Single<String, u64, DiskError> = Single::new(101);
/// Takes version 2 records and answers with them, checksum filled in.
pub const RECORD_V2: Single<RecordV2, RecordV2> = Single::new(102);
/// The same handler as an old caller knows it.
pub const RECORD_V1: Single<RecordV1, RecordV1> = Single::new(102);
/// Not registered with these types: handler 1 (byte echo) answers bytes.
pub const ECHO_AS_U64: Single<String, u64> = Single::new(crate::conformance::handlers::ECHO);
/// Stream: initial `u32` step; each `u64` comes back plus the step; the
/// handler records its subroute.
pub const ADDER: Streaming<u32, u64, u64> = Streaming::new(103);
/// Stream: sends `0..n` for an initial `n`, then fails with
/// `DiskError::Full(n)`; for an initial 0 it fails before sending anything.
pub const FAILING_SCAN: Streaming<u64, (), u64, DiskError> = Streaming::new(104);

/// Registers the typed handlers.
pub fn register<R: Runtime>(builder: ManagerBuilder<R>, probe: &Arc<Probe>) -> ManagerBuilder<R> {
    let (p1, p2) = (probe.clone(), probe.clone());
    let router = Router::new()
        .handle(&INVENTORY, |_ctx: Ctx, inventory: Inventory| async move {
            Ok(inventory)
        })
        .handle(&DISK_ERROR, |_ctx: Ctx, path: String| async move {
            if path == "full" {
                Err(DiskError::Full(0))
            } else {
                Err(DiskError::NotFound { path })
            }
        })
        .handle(&RECORD_V2, |_ctx: Ctx, mut record: RecordV2| async move {
            record.checksum = Some(record.name.len() as u32);
            Ok::<_, String>(record)
        })
        .handle_stream(&ADDER, 4, move |ctx: Ctx, step: u32, rx, tx| {
            adder(p1.clone(), ctx, step, rx, tx)
        })
        .handle_stream((&ADDER, "disk-7"), 4, move |ctx: Ctx, step: u32, rx, tx| {
            adder(p2.clone(), ctx, step, rx, tx)
        })
        .handle_stream(
            &FAILING_SCAN,
            4,
            |_ctx: Ctx, count: u64, _rx, mut tx: TypedSender<u64>| async move {
                for value in 0..count {
                    if tx.send(&value).await.is_err() {
                        return Ok(());
                    }
                }
                Err(DiskError::Full(count))
            },
        );
    builder.router(router)
}

async fn adder(
    probe: Arc<Probe>,
    ctx: Ctx,
    step: u32,
    mut input: TypedReceiver<u64>,
    mut output: TypedSender<u64>,
) -> Result<(), String> {
    probe.record(format!("adder:{}", String::from_utf8_lossy(ctx.subroute())));
    while let Some(value) = input.recv().await {
        let value = value.map_err(|e| e.to_string())?;
        output
            .send(&(value + u64::from(step)))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn inventory() -> Inventory {
    Inventory {
        node: "node-a".into(),
        disks: vec![
            Disk {
                path: "/mnt/1".into(),
                free: 1 << 40,
                healthy: true,
            },
            Disk {
                path: "/mnt/2".into(),
                free: 0,
                healthy: false,
            },
        ],
        labels: [("rack".to_string(), 7), ("zone".to_string(), 2)]
            .into_iter()
            .collect(),
        owner: Some("ops".into()),
        comment: None,
        digest: vec![0, 1, 2, 255],
    }
}

/// Nested structs, maps, optional fields and byte strings round-trip.
pub async fn typed_echo_with_nested_types<R: TestRuntime>(rt: R) {
    let cluster = Cluster::start(&rt, 2).await;
    let sent = inventory();
    let received = cluster.conn(0, 1).call(&INVENTORY, &sent).await.unwrap();
    assert_eq!(received, sent);
    cluster.shutdown().await;
}

/// A handler's structured error arrives decoded.
pub async fn typed_error_is_decoded<R: TestRuntime>(rt: R) {
    let cluster = Cluster::start(&rt, 2).await;
    let conn = cluster.conn(0, 1);
    assert_eq!(
        conn.call(&DISK_ERROR, &"/mnt/9".to_string()).await,
        Err(TypedError::Remote(DiskError::NotFound {
            path: "/mnt/9".into()
        }))
    );
    assert_eq!(
        conn.call(&DISK_ERROR, &"full".to_string()).await,
        Err(TypedError::Remote(DiskError::Full(0)))
    );
    cluster.shutdown().await;
}

/// A typed stream carries typed messages both ways and ends cleanly.
pub async fn typed_stream_round_trip<R: TestRuntime>(rt: R) {
    let cluster = Cluster::start(&rt, 2).await;
    let (mut tx, mut rx) = cluster
        .conn(0, 1)
        .typed_stream(&ADDER, &10)
        .open()
        .await
        .unwrap();
    for value in 0..20u64 {
        tx.send(&value).await.unwrap();
        assert_eq!(rx.recv().await, Some(Ok(value + 10)));
    }
    tx.finish().unwrap();
    assert_eq!(rx.recv().await, None);
    cluster.shutdown().await;
}

/// A stream handler's own error arrives decoded at the caller, after the
/// messages it sent first, and the stream then ends.
pub async fn typed_stream_error_is_decoded<R: TestRuntime>(rt: R) {
    let cluster = Cluster::start(&rt, 2).await;
    let conn = cluster.conn(0, 1);
    let (_tx, mut rx) = conn.typed_stream(&FAILING_SCAN, &3).open().await.unwrap();
    for value in 0..3u64 {
        assert_eq!(rx.recv().await, Some(Ok(value)));
    }
    assert_eq!(
        rx.recv().await,
        Some(Err(TypedError::Remote(DiskError::Full(3))))
    );
    assert_eq!(rx.recv().await, None);
    // A handler that fails at once: the error arrives at opening or as the
    // first item, decoded either way.
    match conn.typed_stream(&FAILING_SCAN, &0).open().await {
        Err(error) => assert_eq!(error, TypedError::Remote(DiskError::Full(0))),
        Ok((_tx, mut rx)) => assert_eq!(
            rx.recv().await,
            Some(Err(TypedError::Remote(DiskError::Full(0))))
        ),
    }
    cluster.shutdown().await;
}

/// A typed stream on a subroute reaches that subroute's handler, which sees it.
pub async fn typed_stream_on_a_subroute<R: TestRuntime>(rt: R) {
    let cluster = Cluster::start(&rt, 2).await;
    let (mut tx, mut rx) = cluster
        .conn(0, 1)
        .typed_stream(&ADDER, &1)
        .subroute("disk-7")
        .open()
        .await
        .unwrap();
    tx.send(&41).await.unwrap();
    assert_eq!(rx.recv().await, Some(Ok(42)));
    tx.finish().unwrap();
    assert_eq!(rx.recv().await, None);
    cluster
        .probe
        .wait_for(&rt, "adder:disk-7", std::time::Duration::from_secs(5))
        .await;
    cluster.shutdown().await;
}

/// A caller one version behind (the handler's type gained an optional field)
/// still talks to the handler, both ways.
pub async fn version_skew_still_decodes<R: TestRuntime>(rt: R) {
    let cluster = Cluster::start(&rt, 2).await;
    let conn = cluster.conn(0, 1);
    let old = RecordV1 {
        name: "object".into(),
        size: 42,
    };
    assert_eq!(conn.call(&RECORD_V1, &old).await.unwrap(), old);
    let new = RecordV2 {
        name: "object".into(),
        size: 42,
        checksum: None,
    };
    let answered = conn.call(&RECORD_V2, &new).await.unwrap();
    assert_eq!(answered.checksum, Some(6));
    cluster.shutdown().await;
}

/// Payloads that do not decode give a clear error naming the handler and the
/// type, on either side, and the connection stays up.
pub async fn undecodable_payloads_are_clear_errors<R: TestRuntime>(rt: R) {
    let cluster = Cluster::start(&rt, 2).await;
    let conn = cluster.conn(0, 1);
    // The handler cannot decode the request.
    match conn
        .request(INVENTORY.id(), Bytes::from_static(b"\xff\x00 not msgpack"))
        .await
    {
        Err(Error::Decode(text)) => {
            assert!(text.contains("handler 100"), "{text}");
            assert!(text.contains("Inventory"), "{text}");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    // The caller cannot decode the response.
    match conn.call(&ECHO_AS_U64, &"not a number".to_string()).await {
        Err(TypedError::Grid(Error::Decode(text))) => {
            assert!(text.contains("handler 1"), "{text}");
            assert!(text.contains("u64"), "{text}");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    assert_eq!(
        conn.call(&INVENTORY, &inventory()).await.unwrap(),
        inventory()
    );
    cluster.shutdown().await;
}
